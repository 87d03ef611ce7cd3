//! Bad input: one error line naming the file, exit code 2, no output file.

use crate::util::*;

fn assert_clean_failure(r: Run, needle: &str, out_dir: &std::path::Path) {
    let r = r.fails();
    assert_eq!(r.code(), 2);
    let err = r.stderr();
    assert!(err.contains(needle), "error should name {needle}: {err}");
    // A single input gives a single line.
    assert_eq!(err.lines().count(), 1, "{err}");
    // Only our own files: no temp leftovers, no partial outputs.
    for f in files_in(out_dir) {
        assert!(!f.ends_with(".tmp"), "temp file left: {f}");
    }
}

#[test]
fn not_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("notes.png"), b"these are not pixels").unwrap();
    let r = dacon(d, &["segment", "notes.png", "--out", "seg"]);
    assert_clean_failure(r, "notes.png", &d.join("seg"));
    assert!(files_in(&d.join("seg")).is_empty());
}

#[test]
fn truncated_png() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("full.png"));
    let bytes = std::fs::read(d.join("full.png")).unwrap();
    std::fs::write(d.join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let r = dacon(d, &["segment", "cut.png", "--out", "seg"]);
    assert_clean_failure(r, "cut.png", &d.join("seg"));
    assert!(files_in(&d.join("seg")).is_empty());
}

#[test]
fn one_bad_frame_does_not_stop_the_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line/good.png"));
    std::fs::write(d.join("line/bad.png"), b"junk").unwrap();
    let r = dacon(d, &["segment", "line", "--out", "seg"]).fails();
    assert!(
        r.stderr().contains("bad.png: cannot decode"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains("1 done"), "{}", r.stderr());
    assert_eq!(files_in(&d.join("seg")), ["good.png", "good.stats.json"]);
}

#[test]
fn size_mismatch_between_colours_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line.png"));
    save(&image::RgbaImage::new(10, 10), &d.join("small_gt.png"));
    dacon(d, &["segment", "line.png", "--out", "seg", "-q"]).ok();
    let r = dacon(
        d,
        &["colors", "small_gt.png", "seg/line.png", "--out", "t.json"],
    );
    assert_clean_failure(r, "small_gt.png", d);
    assert!(!d.join("t.json").exists());
}

#[test]
fn size_mismatch_between_line_and_labels_in_render() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, gt) = boxes();
    save(&line, &d.join("line.png"));
    save(&gt, &d.join("gt.png"));
    save(
        &image::RgbaImage::from_pixel(8, 8, image::Rgba(BLACK)),
        &d.join("other.png"),
    );
    dacon(d, &["segment", "line.png", "--out", "seg", "-q"]).ok();
    dacon(d, &["colors", "gt.png", "seg/line.png", "--out", "t.json"]).ok();
    let r = dacon(
        d,
        &[
            "render",
            "other.png",
            "seg/line.png",
            "t.json",
            "--out",
            "out",
        ],
    );
    assert_clean_failure(r, "other.png", &d.join("out"));
    assert!(files_in(&d.join("out")).is_empty());
}

#[test]
fn empty_line_art() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    save(
        &image::RgbaImage::from_pixel(16, 16, image::Rgba(CLEAR)),
        &d.join("blank.png"),
    );
    let r = dacon(d, &["segment", "blank.png", "--out", "seg"]);
    assert_clean_failure(r, "blank.png", &d.join("seg"));
    assert!(files_in(&d.join("seg")).is_empty());
}

#[test]
fn missing_path() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = dacon(d, &["segment", "nowhere.png", "--out", "seg"]);
    assert_clean_failure(r, "nowhere.png", d);
    let r = dacon(
        d,
        &["colors", "nowhere.png", "nolabels.png", "--out", "t.json"],
    );
    assert_clean_failure(r, "nolabels.png", d);
    assert!(!d.join("t.json").exists());
}

#[test]
fn folder_without_images() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("empty")).unwrap();
    std::fs::write(d.join("empty/readme.txt"), b"x").unwrap();
    let r = dacon(d, &["segment", "empty", "--out", "seg"]);
    assert_clean_failure(r, "no images", d);
}

#[test]
fn bad_colour_table() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line.png"));
    dacon(d, &["segment", "line.png", "--out", "seg", "-q"]).ok();
    std::fs::write(d.join("t.json"), br#"{"1": [255, 255, 255, 0]}"#).unwrap();
    let r = dacon(
        d,
        &[
            "render",
            "line.png",
            "seg/line.png",
            "t.json",
            "--out",
            "out",
        ],
    );
    assert_clean_failure(r, "segment 2 has no colour", &d.join("out"));
    std::fs::write(d.join("t.json"), b"{nope").unwrap();
    let r = dacon(
        d,
        &[
            "render",
            "line.png",
            "seg/line.png",
            "t.json",
            "--out",
            "out",
        ],
    );
    assert_clean_failure(r, "t.json", &d.join("out"));
    assert!(files_in(&d.join("out")).is_empty());
}

/// A device this build cannot run on, or a name that is none, is a clear
/// error before any work: it names the choices or the feature to build with.
#[test]
fn a_device_this_build_lacks_is_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = dacon(
        d,
        &["bench", "--synthetic-model", "vits14", "--device", "gpu"],
    )
    .fails();
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("wgpu:cpu"), "{}", r.stderr());
    if !cfg!(feature = "cuda") {
        let r = dacon(
            d,
            &["bench", "--synthetic-model", "vits14", "--device", "cuda:1"],
        );
        let err = r.fails().stderr();
        assert!(err.contains("--features cuda"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // The environment stands in for the flag.
    let r = dacon_env(
        d,
        &["bench", "--synthetic-model", "vits14"],
        &[("DACON_DEVICE", "tpu")],
    );
    assert!(r.fails().stderr().contains("tpu"));
}
