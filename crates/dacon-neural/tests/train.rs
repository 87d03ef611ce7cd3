//! The training step against the official one (`train.*` vectors and
//! `meta.json -> train`): similarity maps (1e-4 absolute), losses (1e-4
//! relative), gradients (norm of difference over norm: MLPs 1e-4, U-Net
//! 1e-2; the official code itself moves by 2.8e-3 on U-Net gradients between
//! thread counts), and the parameters after one Adam step (1e-6 absolute).

mod common;

use std::path::Path;

use dacon_core::{ColorTable, LineArt, Segmentation};
use dacon_neural::keymap;
use dacon_neural::train::{TrainFrame, Trainer};
use dacon_neural::weights::WeightMap;

use common::{max_abs_diff, vectors, Expected};

fn frame(clip: &Path, name: &str) -> TrainFrame {
    TrainFrame::new(
        LineArt::open(&clip.join(format!("line/{name}.png"))).unwrap(),
        &Segmentation::open(&clip.join(format!("seg/{name}.png"))).unwrap(),
        ColorTable::open(&clip.join(format!("json_color/{name}.json"))).unwrap(),
    )
}

fn tiny_trainer(v: &Path, ver: &str) -> Trainer {
    Trainer::load(
        WeightMap::open(&v.join(format!("dacon_tiny_train_{ver}.pth"))).unwrap(),
        WeightMap::open(&v.join("dinov2_tiny_pretrain.pth")).unwrap(),
        None,
        &common::device(),
    )
    .unwrap()
}

fn rel(got: &[f32], want: &[f64]) -> f64 {
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (f64::from(*a) - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
    diff / norm.max(1e-30)
}

#[test]
fn one_training_step_matches_official() {
    let Some(v) = vectors() else { return };
    let e = Expected::open(&v);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.join("expected/meta.json")).unwrap())
            .unwrap();
    let clip = v.join("train_data/trainclip");
    let (src, tgt) = (frame(&clip, "0000"), frame(&clip, "0002"));
    for ver in ["v1_0", "v1_1"] {
        let trainer = tiny_trainer(&v, ver);
        let out = trainer.loss(&src, &tgt).unwrap();
        let (_, want) = e.get(&format!("train.{ver}.sim"));
        let d = max_abs_diff(&out.sim, &want);
        assert!(d < 1e-4, "{ver} sim: {d}");
        let (_, want) = e.get(&format!("train.{ver}.dino_sim"));
        let d = max_abs_diff(&out.dino_sim, &want);
        assert!(d < 1e-4, "{ver} dino sim: {d}");
        let m = &meta["train"][ver];
        let total: f32 = out
            .total
            .clone()
            .detach()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()[0];
        for (name, got, key) in [
            ("total", total, "total_loss"),
            ("ce", out.ce, "ce_loss"),
            ("l1", out.l1, "mae_loss"),
        ] {
            let want = m[key].as_f64().unwrap();
            let r = (f64::from(got) - want).abs() / want.abs();
            assert!(r < 1e-4, "{ver} {name}: {got} vs {want}");
        }

        let grads = out.total.backward();
        let gradients = keymap::gradients(&trainer.head, &grads);
        let values = trainer.weights();
        let names: Vec<String> = e
            .names()
            .into_iter()
            .filter_map(|n| {
                n.strip_prefix(&format!("train.{ver}.grad."))
                    .map(str::to_owned)
            })
            .collect();
        assert!(!names.is_empty());
        for name in &names {
            // Biases of convolutions feeding an InstanceNorm have a true
            // gradient of zero; the recorded values are rounding noise.
            if name.starts_with("unet.")
                && name.ends_with(".bias")
                && !name.starts_with("unet.final_conv")
            {
                continue;
            }
            let g = gradients
                .get(name.as_str())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let (_, want) = e.get(&format!("train.{ver}.grad.{name}"));
            let tol = if name.starts_with("unet.") {
                1e-2
            } else {
                1e-4
            };
            let r = rel(g, &want);
            assert!(r < tol, "{ver} grad {name}: relative error {r}");
        }
        // One Adam step (PyTorch defaults, lr 1e-4): at step 1 the update is
        // lr * g / (|g| + eps) with bias-corrected moments.
        for name in e.names().into_iter().filter_map(|n| {
            n.strip_prefix(&format!("train.{ver}.after_adam."))
                .map(str::to_owned)
        }) {
            let shape = values.shape(&name).unwrap().to_vec();
            let (value, grad) = (&values.get(&name, &shape).unwrap().data, &gradients[&name]);
            let stepped: Vec<f32> = value
                .iter()
                .zip(grad)
                .map(|(&w, &g)| {
                    let (m, v) = (
                        0.1 * f64::from(g) / 0.1,
                        0.001 * f64::from(g).powi(2) / 0.001,
                    );
                    (f64::from(w) - 1e-4 * m / (v.sqrt() + 1e-8)) as f32
                })
                .collect();
            let (_, want) = e.get(&format!("train.{ver}.after_adam.{name}"));
            let d = max_abs_diff(&stepped, &want);
            assert!(d < 1e-6, "{ver} after Adam {name}: {d}");
        }
    }
}

/// `frame` with its labels enlarged 3x (nearest) and one extra segment of a
/// single pixel at (1, 1), which the resize to 512 never samples.
fn frame_with_lost_segment(clip: &Path, name: &str) -> TrainFrame {
    let seg = Segmentation::open(&clip.join(format!("seg/{name}.png"))).unwrap();
    let (w, h) = (seg.width() as usize, seg.height() as usize);
    let mut labels = Vec::with_capacity(9 * w * h);
    for y in 0..3 * h {
        labels.extend((0..3 * w).map(|x| seg.labels()[(y / 3) * w + x / 3]));
    }
    let extra = seg.count() + 1;
    labels[3 * w + 1] = extra;
    let big = Segmentation::with_count(3 * w as u32, 3 * h as u32, labels, extra);
    let mut colors = ColorTable::open(&clip.join(format!("json_color/{name}.json"))).unwrap();
    colors.set(extra, [1, 2, 3, 255]);
    TrainFrame::new(
        LineArt::open(&clip.join(format!("line/{name}.png"))).unwrap(),
        &big,
        colors,
    )
}

#[test]
fn segments_lost_at_512_are_left_out_of_the_loss() {
    let Some(v) = vectors() else { return };
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.join("expected/meta.json")).unwrap())
            .unwrap();
    let clip = v.join("train_data/trainclip");
    let (src, tgt) = (
        frame_with_lost_segment(&clip, "0000"),
        frame_with_lost_segment(&clip, "0002"),
    );
    // floor(floor(2.25 y) / 3) = floor(0.75 y): the same 512 map as the
    // official sample once the lost segment is gone.
    assert_eq!(src.seg, frame(&clip, "0000").seg);
    let trainer = tiny_trainer(&v, "v1_1");
    let out = trainer.loss(&src, &tgt).unwrap();
    let want = meta["train"]["v1_1"]["ce_loss"].as_f64().unwrap();
    assert!((f64::from(out.ce) - want).abs() / want < 1e-4, "{}", out.ce);
    let grads = keymap::gradients(&trainer.head, &out.total.backward());
    for name in ["unet.final_conv.weight", "dino_mlp.fc1.weight"] {
        let g = &grads[name];
        assert!(
            g.iter().all(|x| x.is_finite()),
            "{name}: non-finite gradient"
        );
    }
}

#[test]
fn a_frame_paired_with_itself_gives_the_loss_and_gradient_of_two_copies() {
    let Some(v) = vectors() else { return };
    let clip = v.join("train_data/trainclip");
    let (f, copy) = (frame(&clip, "0002"), frame(&clip, "0002"));
    let trainer = tiny_trainer(&v, "v1_0");
    let once = trainer.loss(&f, &f).unwrap();
    let twice = trainer.loss(&f, &copy).unwrap();
    assert!((once.ce - twice.ce).abs() < 1e-6 && (once.l1 - twice.l1).abs() < 1e-6);
    let (g1, g2) = (
        keymap::gradients(&trainer.head, &once.total.backward()),
        keymap::gradients(&trainer.head, &twice.total.backward()),
    );
    // Only the float32 summation order differs: U-Net gradients go through
    // reductions over 512x512 (the spec allows 1e-2 for them; 1.4e-4 seen).
    for (name, tol) in [
        ("unet.final_conv.weight", 1e-3),
        ("dino_unet_mlp.fc2.weight", 1e-5),
    ] {
        let (a, b) = (&g1[name], &g2[name]);
        let b64: Vec<f64> = b.iter().map(|&x| f64::from(x)).collect();
        assert!(rel(a, &b64) < tol, "{name}: {}", rel(a, &b64));
    }
}
