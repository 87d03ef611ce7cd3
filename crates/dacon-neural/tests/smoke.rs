//! The neural engine end to end on tiny random weights made here, so that
//! DINOv2, the U-Net, the head and a training step run on any clone (the
//! parity tests need `../shared`). What is checked holds for any weights:
//! shapes, determinism, finite losses and gradients, and that a frame
//! matched against itself as its own reference gets its own colours.

mod common;

use dacon_core::{ColorTable, Engine, Frame, LineArt, Reference, Segmentation};
use dacon_neural::dino::{Dino, DinoConfig};
use dacon_neural::head::{DaconHead, HeadConfig, Version};
use dacon_neural::keymap::to_weights;
use dacon_neural::train::{Adam, TrainFrame, Trainer};
use dacon_neural::unet::UNetConfig;
use dacon_neural::weights::{RawTensor, Values, WeightMap};
use dacon_neural::DaconEngine;

/// DINO width, depth, heads and position grid (interpolated to 37x37).
const DIM: usize = 8;
const DEPTH: usize = 2;
const HEADS: usize = 2;
const GRID: usize = 4;
/// U-Net widths and feature size.
const HIDDEN: [usize; 2] = [4, 8];
const FEATS: usize = 8;

/// A torch-hub-layout DINOv2 (patch 14, GELU MLP, LayerScale).
fn tiny_dino() -> DinoConfig {
    DinoConfig::new()
        .with_embed_dim(DIM)
        .with_depth(DEPTH)
        .with_num_heads(HEADS)
        .with_mlp_hidden(4 * DIM)
        .with_pos_grid(GRID)
}

/// A DACoN head of `version` for [`tiny_dino`].
fn tiny_head(version: Version) -> HeadConfig {
    HeadConfig::new()
        .with_version(version)
        .with_dino_dim(DIM)
        .with_dino_hidden(4 * FEATS)
        .with_fusion_hidden(4 * FEATS)
        .with_unet(
            UNetConfig::new()
                .with_hidden(HIDDEN.to_vec())
                .with_output(FEATS),
        )
}

/// Random weights of both models, as files of the official layouts hold
/// them.
fn tiny_weights(version: Version) -> (WeightMap, WeightMap) {
    let device = common::device();
    (
        to_weights(&tiny_head(version).init(&device), "tiny-head"),
        to_weights(&tiny_dino().init(&device), "tiny-dino"),
    )
}

/// Line art of regions of different sizes and places (a frame, a line
/// off-centre, a half line and a small box), and a distinct colour per
/// segment. Written as an uncompressed TGA (no image encoder needed).
fn drawing() -> (Frame, ColorTable) {
    let (w, h) = (64u16, 48u16);
    let is_line = |x: u16, y: u16| {
        let small_box = (40..52).contains(&x)
            && (8..18).contains(&y)
            && (x == 40 || x == 51 || y == 8 || y == 17);
        x == 2 || y == 2 || x == w - 3 || y == h - 3 || x == 22 || (y == 30 && x > 22) || small_box
    };
    // Type 2 (true colour), 32 bits, origin top-left, 8 alpha bits.
    let mut tga = vec![0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    tga.extend_from_slice(&w.to_le_bytes());
    tga.extend_from_slice(&h.to_le_bytes());
    tga.extend_from_slice(&[32, 0x28]);
    for y in 0..h {
        for x in 0..w {
            // BGRA: black ink, or transparent white paper.
            tga.extend_from_slice(if is_line(x, y) {
                &[0, 0, 0, 255]
            } else {
                &[255, 255, 255, 0]
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line.tga");
    std::fs::write(&path, tga).unwrap();
    let art = LineArt::open(&path).unwrap();
    let seg = Segmentation::from_line_art(&art).unwrap();
    let mut colors = ColorTable::default();
    for id in 1..=seg.count() {
        colors.set(id, [(40 * id % 256) as u8, 128, id as u8, 255]);
    }
    (Frame::new(art, seg), colors)
}

#[test]
fn engine_on_tiny_random_weights() {
    let device = common::device();
    for version in [Version::V1_1, Version::V1_0] {
        let (head, dino) = tiny_weights(version);
        let engine = DaconEngine::from_weights(head, dino, Some(HEADS), &device).unwrap();
        assert_eq!(engine.dino_config.embed_dim, DIM);
        assert_eq!(engine.head_config.feats_dim(), FEATS);
        assert_eq!(engine.version(), version);
        let (frame, colors) = drawing();
        let segments = frame.seg.count() as usize;
        assert!(segments >= 5, "the drawing has {segments} segments");

        let f = engine.features(&frame).unwrap();
        assert_eq!(f.segments, segments);
        assert_eq!(f.feats_dim, FEATS);
        assert_eq!(f.fused.len(), segments * FEATS);
        assert_eq!(f.unet.len(), segments * FEATS);
        assert_eq!(f.raw_dino.len(), segments * DIM);
        assert!(f
            .fused
            .iter()
            .chain(&f.raw_dino)
            .chain(&f.unet)
            .all(|v| v.is_finite()));
        // Same input, same output, bit for bit.
        let again = engine.features(&frame).unwrap();
        assert_eq!(f.fused, again.fused);
        assert_eq!(f.raw_dino, again.raw_dino);

        // A frame matched against itself gets its own colours, each from
        // its own segment, with the full similarity of a vector to itself.
        let refs = [Reference {
            features: &f,
            colors: &colors,
        }];
        let p = engine.predict(&refs, &f).unwrap();
        assert_eq!(p.colors, colors, "{version}");
        for (i, c) in p.confidence.iter().enumerate() {
            assert_eq!(c.source.unwrap().segment, i as u32 + 1);
            assert!((c.similarity - 1.0).abs() < 1e-4, "{}", c.similarity);
        }
        // No reference is an error, not a panic.
        assert!(engine.predict(&[], &f).is_err());
    }
}

#[test]
fn training_steps_on_tiny_random_weights() {
    let device = common::device();
    let (dino, head) = (tiny_dino(), tiny_head(Version::V1_1));
    let mut trainer = Trainer::new(
        (dino.init(&device), dino),
        (head.init(&device), head),
        &device,
    )
    .unwrap();
    let (frame, colors) = drawing();
    let (frame2, _) = drawing();
    let tf = TrainFrame::new(frame.art, &frame.seg, colors.clone());
    let tf2 = TrainFrame::new(frame2.art, &frame2.seg, colors);
    let mut before = trainer.weights();
    // The head stays trainable from step to step: the second step moves
    // every parameter again.
    for step in 1..=2 {
        let loss = trainer.train_step(&[(&tf, &tf2)], Adam::new(1e-3)).unwrap();
        assert!(
            loss.loss.is_finite() && loss.ce.is_finite() && loss.l1.is_finite(),
            "{loss:?}"
        );
        assert!(loss.loss > 0.0);
        assert_eq!(trainer.step, step);
        // Gradients reached every parameter, finite: after an Adam step
        // (which moves each by about lr where its gradient is non-zero)
        // every tensor is finite and moments exist for each.
        let after = trainer.weights();
        let mut moved = 0;
        for k in before.keys() {
            let shape = before.shape(k).unwrap().to_vec();
            let old = &before.get(k, &shape).unwrap().data;
            let new = &after.get(k, &shape).unwrap().data;
            assert!(new.iter().all(|v| v.is_finite()), "{k}");
            let (m, v) = &trainer.moments[k];
            assert!(m.iter().chain(v).all(|x| x.is_finite()), "{k}");
            assert!(
                old.iter().zip(new).all(|(a, b)| (a - b).abs() <= 1.1e-3),
                "{k}"
            );
            moved += usize::from(old != new);
        }
        assert_eq!(
            moved,
            before.keys().count(),
            "step {step}: some parameters did not move"
        );
        before = after;
    }
}

#[test]
fn training_is_deterministic() {
    let device = common::device();
    let (head, dino) = tiny_weights(Version::V1_0);
    let run = || {
        let mut t = Trainer::load(head.clone(), dino.clone(), Some(HEADS), &device).unwrap();
        let (frame, colors) = drawing();
        let tf = TrainFrame::new(frame.art, &frame.seg, colors);
        let l = t.train_step(&[(&tf, &tf)], Adam::new(1e-2)).unwrap();
        let w = t.weights();
        (
            l.loss,
            w.get("dino_mlp.fc1.weight", &[4 * FEATS, DIM])
                .unwrap()
                .data
                .clone(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn weights_carry_the_official_names_and_load_back_unchanged() {
    let device = common::device();
    let (head, dino) = tiny_weights(Version::V1_0);
    for (key, shape) in [
        ("unet.encoder_blocks.1.conv.3.weight", vec![8, 8, 3, 3]),
        ("unet.bottleneck.conv.0.bias", vec![16]),
        ("unet.decoder_up_convs.0.up.1.weight", vec![8, 16, 3, 3]),
        ("unet.decoder_conv_blocks.1.conv.0.weight", vec![4, 8, 3, 3]),
        ("unet.final_conv.weight", vec![FEATS, 4, 1, 1]),
        ("dino_mlp.fc1.weight", vec![4 * FEATS, DIM]),
        ("dino_unet_mlp.fc2.bias", vec![FEATS]),
    ] {
        assert_eq!(head.shape(key), Some(shape.as_slice()), "{key}");
    }
    assert_eq!(head.keys().count(), 2 * (2 * 2 + 2 + 3 * 2 + 1) + 2 * 4);
    for (key, shape) in [
        ("patch_embed.proj.weight", vec![DIM, 3, 14, 14]),
        ("pos_embed", vec![1, GRID * GRID + 1, DIM]),
        ("blocks.1.attn.qkv.weight", vec![3 * DIM, DIM]),
        ("blocks.0.ls2.gamma", vec![DIM]),
        ("blocks.1.mlp.fc2.weight", vec![DIM, 4 * DIM]),
        ("blocks.0.norm1.bias", vec![DIM]),
        ("norm.weight", vec![DIM]),
    ] {
        assert_eq!(dino.shape(key), Some(shape.as_slice()), "{key}");
    }
    // Loading into a fresh module and saving again gives the same tensors.
    let (reloaded, config) = DaconHead::load(head.clone(), &device).unwrap();
    assert_eq!(config.version, Version::V1_0);
    let again = to_weights(&reloaded, "again");
    assert!(head.keys().eq(again.keys()));
    for k in head.keys() {
        let shape = head.shape(k).unwrap().to_vec();
        assert_eq!(
            head.get(k, &shape).unwrap().data,
            again.get(k, &shape).unwrap().data,
            "{k}"
        );
    }
    // A tensor of another shape is an error naming the key.
    let mut bad = head;
    bad.get_mut("dino_mlp.fc2.weight").unwrap().shape = vec![FEATS, 4 * FEATS + 1];
    let e = DaconHead::load(bad, &device).unwrap_err().to_string();
    assert!(e.contains("dino_mlp.fc2.weight"), "{e}");
}

/// The torch-hub map `hub` in the Hugging Face `Dinov2Model` layout.
fn hugging_face(hub: &WeightMap) -> WeightMap {
    let mut out = std::collections::BTreeMap::new();
    for k in hub.keys() {
        let shape = hub.shape(k).unwrap().to_vec();
        let t = hub.get(k, &shape).unwrap().clone();
        let renamed = match k {
            "cls_token" => "embeddings.cls_token".to_string(),
            "pos_embed" => "embeddings.position_embeddings".to_string(),
            _ if k.starts_with("patch_embed.proj.") => k.replace(
                "patch_embed.proj.",
                "embeddings.patch_embeddings.projection.",
            ),
            _ if k.starts_with("norm.") => k.replace("norm.", "layernorm."),
            _ => k
                .replace("blocks.", "encoder.layer.")
                .replace("attn.proj.", "attention.output.dense.")
                .replace("ls1.gamma", "layer_scale1.lambda1")
                .replace("ls2.gamma", "layer_scale2.lambda1"),
        };
        if let Some(prefix) = renamed.strip_suffix(".attn.qkv.weight") {
            for (i, part) in ["query", "key", "value"].into_iter().enumerate() {
                let rows = t.shape[0] / 3;
                let n = rows * t.shape[1];
                out.insert(
                    format!("{prefix}.attention.attention.{part}.weight"),
                    RawTensor {
                        shape: vec![rows, t.shape[1]],
                        data: t.data[i * n..(i + 1) * n].to_vec(),
                    },
                );
            }
        } else if let Some(prefix) = renamed.strip_suffix(".attn.qkv.bias") {
            for (i, part) in ["query", "key", "value"].into_iter().enumerate() {
                let n = t.shape[0] / 3;
                out.insert(
                    format!("{prefix}.attention.attention.{part}.bias"),
                    RawTensor {
                        shape: vec![n],
                        data: t.data[i * n..(i + 1) * n].to_vec(),
                    },
                );
            }
        } else {
            out.insert(renamed, t);
        }
    }
    WeightMap::from_tensors("hf", out)
}

#[test]
fn both_dino_layouts_give_the_same_model() {
    let device = common::device();
    let (_, hub) = tiny_weights(Version::V1_1);
    let hf = hugging_face(&hub);
    assert!(hf.has("encoder.layer.1.attention.attention.value.bias"));
    let (a, ca) = Dino::load(hub, Some(HEADS), &device).unwrap();
    let (b, cb) = Dino::load(hf, Some(HEADS), &device).unwrap();
    assert_eq!(ca.to_string(), cb.to_string());
    assert!(ca.layer_scale);
    let x = burn::tensor::Tensor::<4>::random(
        [1, 3, 56, 42],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let (ya, yb) = (a.forward(x.clone()), b.forward(x));
    assert_eq!(ya.dims(), [DIM, 4, 3]);
    assert_eq!(ya.values(), yb.values());
}
