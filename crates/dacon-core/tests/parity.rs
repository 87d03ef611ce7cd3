//! Parity with the official code on `../shared/vectors/parity-v1` (segment
//! maps, colour tables, rendered predictions, metrics) and with the
//! segmentation of `../shared/data/warpbench-dev` (real line art).
//!
//! Skipped, with a message, where `../shared` is absent.

use std::path::{Path, PathBuf};

use dacon_core::metrics::score_frame;
use dacon_core::{render, ColorTable, LineArt, RenderOptions, Segmentation};
use dacon_testkit::shared;

/// Every (line image, expected label png, gt image) of the parity clips.
fn clip_frames(v: &Path) -> Vec<(PathBuf, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for ch in ["charA", "charB", "charC"] {
        let clip = v.join("clips").join(ch);
        let exp = v.join("expected/seg").join(ch);
        out.push((
            clip.join("line/target.png"),
            exp.join("seg/target.png"),
            clip.join("gt/target.png"),
        ));
        let mut refs: Vec<_> = std::fs::read_dir(clip.join("ref/line"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        refs.sort();
        for r in refs {
            let name = r.file_name().unwrap().to_owned();
            out.push((
                r.clone(),
                exp.join("ref/seg").join(&name),
                clip.join("ref/gt").join(&name),
            ));
        }
    }
    out
}

#[test]
fn segmentation_and_tables_match_official() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let frames = clip_frames(&v);
    assert_eq!(frames.len(), 9);
    for (line, seg_png, gt) in frames {
        let art = LineArt::open(&line).unwrap();
        let seg = Segmentation::from_line_art(&art).unwrap();
        let expected = Segmentation::open(&seg_png).unwrap();
        assert_eq!(seg.count(), expected.count(), "{}", line.display());
        assert!(
            seg.labels() == expected.labels(),
            "labels differ: {}",
            line.display()
        );
        let gt_img = dacon_core::imageio::read_picture(&gt).unwrap().rgba;
        let table = ColorTable::from_image(&seg, &gt_img).unwrap();
        let expected_json = std::fs::read_to_string(seg_png.with_extension("json")).unwrap();
        let expected_table = ColorTable::from_json(&expected_json).unwrap();
        assert_eq!(table, expected_table, "{}", gt.display());
        // Byte-identical to the official writer (json.dump, indent 2).
        assert_eq!(table.to_json(), expected_json, "{}", gt.display());
    }
}

/// Reads an int64 tensor from a safetensors file (enough for the test).
fn read_i64_tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<i64>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &header[name];
    assert_eq!(t["dtype"], "I64", "{name}");
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let off = t["data_offsets"].as_array().unwrap();
    let (a, b) = (
        off[0].as_u64().unwrap() as usize,
        off[1].as_u64().unwrap() as usize,
    );
    let data = bytes[8 + n + a..8 + n + b]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, data)
}

fn official_prediction(v: &Path, ch: &str, ver: &str) -> ColorTable {
    let (shape, data) = read_i64_tensor(
        &v.join("expected/tensors.safetensors"),
        &format!("{ch}.{ver}.pred_colors"),
    );
    assert_eq!(shape[1], 4);
    ColorTable::from_colors(
        data.chunks_exact(4)
            .map(|c| [c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]),
    )
}

#[test]
fn render_reproduces_official_prediction_png() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    for ch in ["charA", "charB", "charC"] {
        let seg = Segmentation::open(&v.join(format!("expected/seg/{ch}/seg/target.png"))).unwrap();
        for ver in ["v1_0", "v1_1"] {
            let table = official_prediction(&v, ch, ver);
            let img = render(&seg, &table, None, RenderOptions::default()).unwrap();
            let expected =
                dacon_core::imageio::read_picture(&v.join(format!("expected/{ch}_{ver}_pred.png")))
                    .unwrap()
                    .rgba;
            assert!(img == expected, "{ch} {ver}: rendered image differs");
        }
    }
}

#[test]
fn metrics_match_official() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.join("expected/meta.json")).unwrap())
            .unwrap();
    for ch in ["charA", "charB", "charC"] {
        let seg_png = v.join(format!("expected/seg/{ch}/seg/target.png"));
        let seg = Segmentation::open(&seg_png).unwrap();
        let truth = ColorTable::open(&seg_png.with_extension("json")).unwrap();
        for ver in ["v1_0", "v1_1"] {
            let pred = official_prediction(&v, ch, ver);
            let (m, _) = score_frame(&seg, &truth, &pred).unwrap();
            let e = &meta["cases"][ch][ver]["metrics"];
            let pairs = [
                ("seg_acc", m.acc),
                ("seg_acc_thres", m.acc_thresh),
                ("pix_acc", m.pix_acc),
                ("pix_fg_acc", m.pix_fg_acc),
                ("pix_bg_miou", m.pix_bg_miou),
                ("seg_bg_miou", m.seg_bg_miou),
            ];
            for (k, got) in pairs {
                let want = e[k].as_f64().unwrap();
                // The official code accumulates pixel ratios in float32
                // (differences up to 3e-8 here); 1e-6 is the acceptance bound.
                assert!((got - want).abs() < 1e-6, "{ch} {ver} {k}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn warpbench_segmentation_matches_dataset_labels() {
    let Some(root) = shared("data/warpbench-dev") else {
        return;
    };
    let mut checked = 0;
    for ch in ["laughing_girl", "smoke_explosion"] {
        // Two frames per character keep the debug-profile test quick.
        for f in ["0000", "0005"] {
            let dir = root.join(ch);
            let art = LineArt::open(&dir.join(format!("line/{f}.png"))).unwrap();
            let seg = Segmentation::from_line_art(&art).unwrap();
            let expected = Segmentation::open(&dir.join(format!("seg/{f}.png"))).unwrap();
            assert!(seg == expected, "{ch}/{f}: labels differ");
            let gt = dacon_core::imageio::read_picture(&dir.join(format!("gt/{f}.png")))
                .unwrap()
                .rgba;
            let table = ColorTable::from_image(&seg, &gt).unwrap();
            let expected = ColorTable::open(&dir.join(format!("seg/{f}.json"))).unwrap();
            assert_eq!(table, expected, "{ch}/{f}: table differs");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}
