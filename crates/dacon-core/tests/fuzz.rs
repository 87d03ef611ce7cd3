//! Readers of untrusted files under a mutation fuzzer: line art and label
//! images in every format we read, colour tables and confidence sidecars.
//! Every mutant must give a value or an error, never a panic (or an
//! allocation the fuzzer's memory would not survive).
//!
//! CI runs 1500 cases per reader; a longer run:
//! `DACON_FUZZ_SECONDS=600 cargo test --release -p dacon-core --test fuzz -- --nocapture`.

use std::io::Cursor;
use std::path::Path;

use dacon_core::frame::Threshold;
use dacon_core::{ColorTable, Frame, LineOptions, Prediction, Segmentation};
use dacon_testkit::fuzz::{fuzz, Budget};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};

/// A little line art: a box with a coloured trace line, on transparency.
fn drawing() -> RgbaImage {
    RgbaImage::from_fn(24, 20, |x, y| {
        let edge = x == 2 || y == 2 || x == 21 || y == 17;
        Rgba(if edge {
            [0, 0, 0, 255]
        } else if y == 9 && (2..22).contains(&x) {
            [200, 30, 30, 255]
        } else {
            [255, 255, 255, 0]
        })
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

/// The drawing in every pixel format and file format the readers take.
fn image_seeds() -> Vec<Vec<u8>> {
    let rgba = DynamicImage::ImageRgba8(drawing());
    let mut seeds = vec![
        encode(&rgba, ImageFormat::Png),
        encode(&DynamicImage::ImageRgb8(rgba.to_rgb8()), ImageFormat::Png),
        encode(&DynamicImage::ImageLuma8(rgba.to_luma8()), ImageFormat::Png),
        encode(
            &DynamicImage::ImageRgba16(rgba.to_rgba16()),
            ImageFormat::Png,
        ),
        encode(&rgba, ImageFormat::Tiff),
        encode(&rgba, ImageFormat::Tga),
    ];
    // A 24-bit label image as `dacon segment` writes it.
    let seg =
        Segmentation::from_line_art(&dacon_core::LineArt::from_rgba(drawing(), true)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("labels.png");
    seg.save(&p).unwrap();
    seeds.push(std::fs::read(&p).unwrap());
    seeds
}

/// Writes the bytes to a file and reads them back with `read`.
fn through_file<T>(dir: &Path, name: &str, bytes: &[u8], read: impl Fn(&Path) -> T) -> T {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    read(&p)
}

#[test]
fn line_art_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = image_seeds();
    // The official rule, then binarising at a level with gap closing, then
    // the automatic level: every preparation path sees the mutants.
    let prepared = [
        LineOptions {
            threshold: Some(Threshold::Ink(128)),
            close_gaps: Some(8),
        },
        LineOptions {
            threshold: Some(Threshold::Auto),
            close_gaps: None,
        },
    ];
    let r = fuzz("line-art", &seeds, Budget::from_env(1500), |b| {
        through_file(dir.path(), "line.png", b, |p| {
            let plain = Frame::open(p, &LineOptions::default());
            let binarised = prepared.iter().any(|o| Frame::open(p, o).is_ok());
            if let Ok(f) = &plain {
                // A frame read is a consistent frame.
                assert_eq!(
                    f.seg.labels().len(),
                    (f.art.width() * f.art.height()) as usize
                );
                assert!(f.seg.labels().iter().all(|&l| l <= f.seg.count()));
            }
            plain.is_ok() || binarised
        })
    });
    assert!(
        r.accepted > 0,
        "no mutant was ever read: the seeds are broken"
    );
}

#[test]
fn label_image_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let r = fuzz("label-png", &image_seeds(), Budget::from_env(1500), |b| {
        through_file(dir.path(), "labels.png", b, |p| {
            match Segmentation::open(p) {
                Ok(seg) => {
                    // Labels are renumbered 1..count with none missing.
                    let counts = seg.pixel_counts();
                    assert!(counts.iter().skip(1).all(|&c| c > 0));
                    true
                }
                Err(_) => false,
            }
        })
    });
    assert!(r.accepted > 0);
}

#[test]
fn colour_table_reader_never_panics() {
    let seeds: Vec<Vec<u8>> = [
        ColorTable::from_colors([[255, 255, 255, 0], [1, 2, 3, 255], [9, 8, 7, 6]]).to_json(),
        ColorTable::from_colors([[10, 20, 30, 255]]).to_json_compact(),
        r#"{"16777215": [1, 2, 3], "7": [0, 0, 0, 0]}"#.to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let r = fuzz("colour-json", &seeds, Budget::from_env(1500), |b| {
        match ColorTable::from_json(&String::from_utf8_lossy(b)) {
            Ok(t) => {
                // What parses writes back to the same table.
                assert_eq!(ColorTable::from_json(&t.to_json()).unwrap(), t);
                true
            }
            Err(_) => false,
        }
    });
    assert!(r.accepted > 0);
}

#[test]
fn confidence_sidecar_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.json");
    ColorTable::from_colors([[1, 1, 1, 255], [2, 2, 2, 255]])
        .save(&table)
        .unwrap();
    let seed = concat!(
        "{\n  \"1\": {\"color\": [1, 1, 1, 255], \"similarity\": 0.9, \"margin\": 0.5, ",
        "\"reference\": 0, \"source_segment\": 3},\n",
        "  \"2\": {\"color\": [2, 2, 2, 255], \"similarity\": null, \"margin\": 0.1}\n}\n"
    );
    let r = fuzz(
        "confidence",
        &[seed.as_bytes().to_vec()],
        Budget::from_env(1500),
        |b| {
            through_file(dir.path(), "c.json", b, |p| {
                Prediction::read(&table, p, 2).is_ok()
            })
        },
    );
    assert!(r.accepted > 0);
}
