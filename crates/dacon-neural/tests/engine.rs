//! The whole neural engine against the official results on the parity clips:
//! DINO and U-Net maps, segment features (fused and raw DINO), similarity
//! matrices, argmax and predicted colours, for v1.0 and v1.1. Tolerance 1e-4
//! absolute (the acceptance bound; thread-count noise of the official code is
//! below 1.5e-5).

mod common;

use std::path::Path;

use dacon_core::{ColorTable, Engine, Frame, LineArt, Reference, Segmentation};
use dacon_neural::engine::similarity;
use dacon_neural::DaconEngine;

use common::{max_abs_diff, vectors, Expected};

const TOL: f64 = 1e-4;

fn frame(v: &Path, ch: &str, line: &str, seg: &str) -> Frame {
    let art = LineArt::open(&v.join(format!("clips/{ch}/{line}"))).unwrap();
    let seg = Segmentation::open(&v.join(format!("expected/seg/{ch}/{seg}"))).unwrap();
    Frame::new(art, seg)
}

#[test]
fn features_similarities_and_predictions_match_official() {
    let Some(v) = vectors() else { return };
    let e = Expected::open(&v);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.join("expected/meta.json")).unwrap())
            .unwrap();
    let device = common::device();
    for ver in ["v1_0", "v1_1"] {
        let engine = DaconEngine::load(
            &v.join(format!("dacon_tiny_{ver}.pth")),
            &v.join("dinov2_tiny_pretrain.pth"),
            None,
            &device,
        )
        .unwrap();
        for ch in ["charA", "charB", "charC"] {
            let case = &meta["cases"][ch][ver];
            let order: Vec<String> = case["ref_order"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            let mut ref_feats = Vec::new();
            let mut ref_tables = Vec::new();
            for name in &order {
                let f = frame(
                    &v,
                    ch,
                    &format!("ref/line/{name}.png"),
                    &format!("ref/seg/{name}.png"),
                );
                if ver == "v1_1" {
                    let maps = engine.maps(&f);
                    let (_, want) = e.get(&format!("{ch}.ref.{name}.dino_patch_map"));
                    let d = max_abs_diff(&maps.dino, &want);
                    assert!(d < TOL, "{ch} ref {name} DINO map: {d}");
                }
                let feats = engine.features(&f).unwrap();
                for (what, got) in [
                    ("seg_feats", &feats.fused),
                    ("seg_dino_raw", &feats.raw_dino),
                ] {
                    let (_, want) = e.get(&format!("{ch}.{ver}.ref.{name}.{what}"));
                    let d = max_abs_diff(got, &want);
                    assert!(d < TOL, "{ch} {ver} ref {name} {what}: {d}");
                }
                ref_feats.push(feats);
                ref_tables.push(
                    ColorTable::open(&v.join(format!("expected/seg/{ch}/ref/seg/{name}.json")))
                        .unwrap(),
                );
            }
            let target = frame(&v, ch, "line/target.png", "seg/target.png");
            if ch == "charA" && ver == "v1_1" {
                let maps = engine.maps(&target);
                let (_, want) = e.get("charA.target.unet_map");
                let d = max_abs_diff(&maps.unet, &want);
                assert!(d < TOL, "charA U-Net map: {d}");
            }
            let tf = engine.features(&target).unwrap();
            for (what, got) in [("seg_feats", &tf.fused), ("seg_dino_raw", &tf.raw_dino)] {
                let (_, want) = e.get(&format!("{ch}.{ver}.target.{what}"));
                let d = max_abs_diff(got, &want);
                assert!(d < TOL, "{ch} {ver} target {what}: {d}");
            }
            let refs: Vec<&[f32]> = ref_feats.iter().map(|f| f.fused.as_slice()).collect();
            let sim = similarity(&tf.fused, &refs, tf.feats_dim);
            let (shape, want) = e.get(&format!("{ch}.{ver}.sim"));
            let d = max_abs_diff(&sim, &want);
            assert!(d < TOL, "{ch} {ver} similarity: {d}");

            // Argmax on every row whose top-2 margin is clear of float noise.
            let (_, argmax) = e.get(&format!("{ch}.{ver}.argmax"));
            let n = shape[1];
            for (t, &want_j) in argmax.iter().enumerate() {
                let row = &want[t * n..(t + 1) * n];
                let mut sorted = row.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                if sorted[0] - sorted[1] <= 1e-4 {
                    continue;
                }
                let got_j = (0..n).fold(0, |b, j| {
                    if sim[t * n + j] > sim[t * n + b] {
                        j
                    } else {
                        b
                    }
                });
                assert_eq!(got_j, want_j as usize, "{ch} {ver} row {t}");
            }

            let references: Vec<_> = ref_feats
                .iter()
                .zip(&ref_tables)
                .map(|(features, colors)| Reference { features, colors })
                .collect();
            let p = engine.predict(&references, &tf).unwrap();
            let (_, colors) = e.get(&format!("{ch}.{ver}.pred_colors"));
            for (t, c) in colors.chunks_exact(4).enumerate() {
                let want = [c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8];
                assert_eq!(
                    p.colors.get(t as u32 + 1),
                    Some(want),
                    "{ch} {ver} segment {}",
                    t + 1
                );
            }
        }
    }
}
