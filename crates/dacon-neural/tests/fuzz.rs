//! The weight readers under the mutation fuzzer: `.pth` (our ZIP and pickle
//! reader, and burn's legacy reader where a mutant starts like a raw
//! pickle) and safetensors. Every mutant must give tensors or an error,
//! never a panic, an abort for memory or a stack overflow.
//!
//! CI runs 1500 cases per reader; a longer run:
//! `DACON_FUZZ_SECONDS=600 cargo test --release --workspace --test fuzz -- --nocapture`.

use std::collections::HashMap;
use std::path::Path;

use dacon_neural::weights::WeightMap;
use dacon_testkit::fuzz::{fuzz, Budget};
use dacon_testkit::pth;

/// Opens `bytes` as a weight file; what is read must be consistent.
fn open(dir: &Path, bytes: &[u8]) -> bool {
    let p = dir.join("w.bin");
    std::fs::write(&p, bytes).unwrap();
    match WeightMap::open(&p) {
        Ok(w) => {
            for k in w.keys() {
                let shape = w.shape(k).unwrap().to_vec();
                let t = w.get(k, &shape).unwrap();
                assert_eq!(t.data.len(), shape.iter().product::<usize>(), "{k}");
            }
            true
        }
        Err(e) => {
            // Every error names the file it is about.
            assert!(e.to_string().contains("w.bin"), "{e}");
            false
        }
    }
}

fn pth_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![pth::float_checkpoint(&[
        (
            "conv.weight",
            &[2, 1, 2, 2],
            &[0.5, -1.0, 2.0, 0.0, 1.5, 3.0, -2.5, 4.0],
        ),
        ("conv.bias", &[2], &[0.1, 0.2]),
        ("scalar", &[], &[7.0]),
    ])];
    // Two views of one half-precision storage (a transpose and an offset
    // row), and a bfloat16 tensor.
    let p = pth::state_dict_pickle(&[
        pth::TensorRef {
            name: "t",
            storage: "0",
            dtype: "HalfStorage",
            offset: 0,
            shape: &[3, 2],
            stride: &[1, 3],
        },
        pth::TensorRef {
            name: "row",
            storage: "0",
            dtype: "HalfStorage",
            offset: 3,
            shape: &[3],
            stride: &[1],
        },
        pth::TensorRef {
            name: "b",
            storage: "1",
            dtype: "BFloat16Storage",
            offset: 0,
            shape: &[2],
            stride: &[1],
        },
    ]);
    let halves: Vec<u8> = [0x3c00u16, 0x4000, 0xc000, 0x3800, 0x0001, 0x7bff]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let bf: Vec<u8> = [0x3f80u16, 0xc000]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    seeds.push(pth::torch_zip(&p, &[("0", &halves), ("1", &bf)]));
    seeds
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    let f32s: Vec<u8> = [1f32, -2.0, 0.5, 3.0, 4.0, 5.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f16s: Vec<u8> = [0x3c00u16, 0xc000]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let views = vec![
        (
            "a.weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &f32s)
                .unwrap(),
        ),
        (
            "h",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![2], &f16s).unwrap(),
        ),
    ];
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    vec![safetensors::serialize(views, Some(meta)).unwrap()]
}

#[test]
fn pth_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = pth_seeds();
    // The seeds themselves read back.
    assert!(seeds.iter().all(|s| open(dir.path(), s)));
    let r = fuzz("pth", &seeds, Budget::from_env(1500), |b| {
        open(dir.path(), b)
    });
    assert!(
        r.accepted > 0,
        "no mutant was ever read: the seeds are broken"
    );
}

#[test]
fn safetensors_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = safetensors_seeds();
    assert!(seeds.iter().all(|s| open(dir.path(), s)));
    let r = fuzz("safetensors", &seeds, Budget::from_env(1500), |b| {
        open(dir.path(), b)
    });
    assert!(
        r.accepted > 0,
        "no mutant was ever read: the seeds are broken"
    );
}
