//! Crafted `.pth` files that once crashed the reader (issue 14): each must
//! be a typed error naming the file, never a panic, an abort for memory or
//! a stack overflow. The files are built here, byte by byte.

use dacon_neural::weights::WeightMap;
use dacon_neural::Error;
use dacon_testkit::pth;

/// Writes `bytes` to `name` in a temporary folder and opens it.
fn open(name: &str, bytes: &[u8]) -> (tempfile::TempDir, Result<WeightMap, Error>) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    let r = WeightMap::open(&p);
    (d, r)
}

#[track_caller]
fn assert_names_file(e: &Error, name: &str, what: &str) {
    let msg = e.to_string();
    assert!(msg.contains(name), "message does not name the file: {msg}");
    // The reader's own error is kept as the cause.
    let cause = std::error::Error::source(e).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|c| c.contains(what)),
        "cause of {msg:?} is {cause:?}, expected one about {what:?}"
    );
}

#[test]
fn a_valid_built_checkpoint_reads_back() {
    // The builder itself is right: a plain checkpoint reads back exactly,
    // so the hostile files below differ from it only where they say.
    let bytes = pth::float_checkpoint(&[
        ("a.weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ("b", &[], &[7.5]),
    ]);
    let (_d, w) = open("ok.pth", &bytes);
    let w = w.unwrap();
    assert_eq!(
        w.get("a.weight", &[2, 3]).unwrap().data,
        [1., 2., 3., 4., 5., 6.]
    );
    assert_eq!(w.get("b", &[]).unwrap().data, [7.5]);
}

#[test]
fn a_transposed_view_reads_in_view_order() {
    // A 3x2 view with strides (1, 3) of a 2x3 storage: the transpose.
    let p = pth::state_dict_pickle(&[pth::TensorRef {
        name: "t",
        storage: "0",
        dtype: "FloatStorage",
        offset: 0,
        shape: &[3, 2],
        stride: &[1, 3],
    }]);
    let storage: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let (_d, w) = open("t.pth", &pth::torch_zip(&p, &[("0", &storage)]));
    assert_eq!(
        w.unwrap().get("t", &[3, 2]).unwrap().data,
        [1., 4., 2., 5., 3., 6.]
    );
}

#[test]
fn a_stride_that_wraps_is_an_error() {
    let (_d, r) = open("stride.pth", &pth::huge_stride());
    assert_names_file(&r.unwrap_err(), "stride.pth", "storage");
}

#[test]
fn memo_copies_are_bounded() {
    let bytes = pth::memo_bomb(70);
    assert!(bytes.len() < 1000, "{} bytes", bytes.len());
    let (_d, r) = open("memo.pth", &bytes);
    assert_names_file(&r.unwrap_err(), "memo.pth", "pickle");
}

#[test]
fn deep_nesting_is_an_error() {
    let (_d, r) = open("deep.pth", &pth::deep_nesting(200_000));
    assert_names_file(&r.unwrap_err(), "deep.pth", "nest");
}

#[test]
fn moderate_nesting_is_fine() {
    // Nesting a real checkpoint could use (far below the limit) is read;
    // the file then fails only for not being a dictionary.
    let (_d, r) = open("nested.pth", &pth::deep_nesting(20));
    assert_names_file(&r.unwrap_err(), "nested.pth", "dictionary");
}

#[test]
fn a_broadcast_view_cannot_allocate_past_the_file() {
    // Stride 0 repeats one element: a tiny file asking for 2^40 values.
    let p = pth::state_dict_pickle(&[pth::TensorRef {
        name: "b",
        storage: "0",
        dtype: "FloatStorage",
        offset: 0,
        shape: &[1 << 20, 1 << 20],
        stride: &[0, 0],
    }]);
    let (_d, r) = open("broadcast.pth", &pth::torch_zip(&p, &[("0", &[0u8; 4])]));
    assert_names_file(&r.unwrap_err(), "broadcast.pth", "file");
}

#[test]
fn a_shape_whose_product_overflows_is_an_error() {
    let p = pth::state_dict_pickle(&[pth::TensorRef {
        name: "o",
        storage: "0",
        dtype: "FloatStorage",
        offset: 0,
        shape: &[1 << 32, 1 << 32, 2],
        stride: &[0, 0, 0],
    }]);
    let (_d, r) = open("overflow.pth", &pth::torch_zip(&p, &[("0", &[0u8; 4])]));
    assert_names_file(&r.unwrap_err(), "overflow.pth", "file");
}
