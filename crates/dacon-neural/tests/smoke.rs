//! The neural engine end to end on tiny random weights made here, so that
//! DINOv2, the U-Net, the head and a training step run on any clone (the
//! parity tests need `../shared`). What is checked holds for any weights:
//! shapes, determinism, finite losses and gradients, and that a frame
//! matched against itself as its own reference gets its own colours.

mod common;

use std::collections::BTreeMap;

use dacon_core::rng::Rng;
use dacon_core::{ColorTable, Engine, Frame, LineArt, Reference, Segmentation};
use dacon_neural::train::{Adam, TrainFrame, Trainer};
use dacon_neural::weights::{RawTensor, WeightMap};
use dacon_neural::DaconEngine;

/// DINO width, depth, heads and position grid (interpolated to 37x37).
const DIM: usize = 8;
const DEPTH: usize = 2;
const HEADS: usize = 2;
const GRID: usize = 4;
/// U-Net widths and feature size.
const HIDDEN: [usize; 2] = [4, 8];
const FEATS: usize = 8;

struct Weights {
    rng: Rng,
    map: BTreeMap<String, RawTensor>,
}

impl Weights {
    fn new(seed: u64) -> Self {
        Weights {
            rng: Rng::new(seed),
            map: BTreeMap::new(),
        }
    }

    fn put(&mut self, key: &str, shape: &[usize], scale: f64) {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| self.rng.range(-scale, scale) as f32)
            .collect();
        self.map.insert(
            key.to_string(),
            RawTensor {
                shape: shape.to_vec(),
                data,
            },
        );
    }

    fn linear(&mut self, key: &str, d_out: usize, d_in: usize) {
        let s = 1.0 / (d_in as f64).sqrt();
        self.put(&format!("{key}.weight"), &[d_out, d_in], s);
        self.put(&format!("{key}.bias"), &[d_out], s);
    }

    fn conv(&mut self, key: &str, d_out: usize, d_in: usize, k: usize) {
        let s = 1.0 / ((d_in * k * k) as f64).sqrt();
        self.put(&format!("{key}.weight"), &[d_out, d_in, k, k], s);
        self.put(&format!("{key}.bias"), &[d_out], s);
    }

    fn done(self, name: &str) -> WeightMap {
        WeightMap::from_tensors(name, self.map)
    }
}

/// A torch-hub-layout DINOv2 (patch 14, GELU MLP, LayerScale).
fn tiny_dino() -> WeightMap {
    let mut w = Weights::new(1);
    let d = DIM;
    w.put("cls_token", &[1, 1, d], 0.5);
    w.put("pos_embed", &[1, GRID * GRID + 1, d], 0.5);
    w.conv("patch_embed.proj", d, 3, 14);
    for i in 0..DEPTH {
        let p = format!("blocks.{i}");
        for n in ["norm1", "norm2"] {
            w.put(&format!("{p}.{n}.weight"), &[d], 1.0);
            w.put(&format!("{p}.{n}.bias"), &[d], 0.1);
        }
        w.linear(&format!("{p}.attn.qkv"), 3 * d, d);
        w.linear(&format!("{p}.attn.proj"), d, d);
        w.put(&format!("{p}.ls1.gamma"), &[d], 0.5);
        w.put(&format!("{p}.ls2.gamma"), &[d], 0.5);
        w.linear(&format!("{p}.mlp.fc1"), 4 * d, d);
        w.linear(&format!("{p}.mlp.fc2"), d, 4 * d);
    }
    w.put("norm.weight", &[d], 1.0);
    w.put("norm.bias", &[d], 0.1);
    w.done("tiny-dino")
}

/// A DACoN v1.1 head (v1.0 adds the fusion MLP) for [`tiny_dino`].
fn tiny_head(v1_0: bool) -> WeightMap {
    let mut w = Weights::new(2);
    let mut c_in = 3;
    for (i, &h) in HIDDEN.iter().enumerate() {
        w.conv(&format!("unet.encoder_blocks.{i}.conv.0"), h, c_in, 3);
        w.conv(&format!("unet.encoder_blocks.{i}.conv.3"), h, h, 3);
        c_in = h;
    }
    let top = 2 * HIDDEN[HIDDEN.len() - 1];
    w.conv("unet.bottleneck.conv.0", top, c_in, 3);
    w.conv("unet.bottleneck.conv.3", top, top, 3);
    let mut cur = top;
    for (i, &h) in HIDDEN.iter().rev().enumerate() {
        w.conv(&format!("unet.decoder_up_convs.{i}.up.1"), h, cur, 3);
        w.conv(&format!("unet.decoder_conv_blocks.{i}.conv.0"), h, 2 * h, 3);
        w.conv(&format!("unet.decoder_conv_blocks.{i}.conv.3"), h, h, 3);
        cur = h;
    }
    w.conv("unet.final_conv", FEATS, HIDDEN[0], 1);
    w.linear("dino_mlp.fc1", 4 * FEATS, DIM);
    w.linear("dino_mlp.fc2", FEATS, 4 * FEATS);
    if v1_0 {
        w.linear("dino_unet_mlp.fc1", 4 * FEATS, 2 * FEATS);
        w.linear("dino_unet_mlp.fc2", FEATS, 4 * FEATS);
    }
    w.done("tiny-head")
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
    for v1_0 in [false, true] {
        let engine =
            DaconEngine::from_weights(tiny_head(v1_0), tiny_dino(), Some(HEADS), &device).unwrap();
        assert_eq!(engine.dino_config.embed_dim, DIM);
        assert_eq!(engine.head_config.feats_dim, FEATS);
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
        assert_eq!(p.colors, colors, "v1_0 = {v1_0}");
        for (i, c) in p.confidence.iter().enumerate() {
            assert_eq!(c.source.unwrap().segment, i as u32 + 1);
            assert!((c.similarity - 1.0).abs() < 1e-4, "{}", c.similarity);
        }
        // No reference is an error, not a panic.
        assert!(engine.predict(&[], &f).is_err());
    }
}

#[test]
fn one_training_step_on_tiny_random_weights() {
    let device = common::device();
    let mut trainer = Trainer::load(tiny_head(false), tiny_dino(), Some(HEADS), &device).unwrap();
    let (frame, colors) = drawing();
    let (frame2, _) = drawing();
    let tf = TrainFrame::new(frame.art, &frame.seg, colors.clone());
    let tf2 = TrainFrame::new(frame2.art, &frame2.seg, colors);
    let before = trainer.params.clone();
    let loss = trainer.train_step(&[(&tf, &tf2)], Adam::new(1e-3)).unwrap();
    assert!(
        loss.loss.is_finite() && loss.ce.is_finite() && loss.l1.is_finite(),
        "{loss:?}"
    );
    assert!(loss.loss > 0.0);
    assert_eq!(trainer.step, 1);
    // Gradients reached every parameter, finite: after Adam's first step
    // (which moves each by about lr where its gradient is non-zero) every
    // tensor is finite and moments exist for each.
    let mut moved = 0;
    for k in before.keys() {
        let shape = before.shape(k).unwrap().to_vec();
        let old = &before.get(k, &shape).unwrap().data;
        let new = &trainer.params.get(k, &shape).unwrap().data;
        assert!(new.iter().all(|v| v.is_finite()), "{k}");
        let (m, v) = &trainer.moments[k];
        assert!(m.iter().chain(v).all(|x| x.is_finite()), "{k}");
        assert!(
            old.iter().zip(new).all(|(a, b)| (a - b).abs() <= 1.1e-3),
            "{k}"
        );
        moved += usize::from(old != new);
    }
    assert_eq!(moved, before.keys().count(), "some parameters did not move");
}

#[test]
fn training_is_deterministic() {
    let device = common::device();
    let run = || {
        let mut t = Trainer::load(tiny_head(true), tiny_dino(), Some(HEADS), &device).unwrap();
        let (frame, colors) = drawing();
        let tf = TrainFrame::new(frame.art, &frame.seg, colors);
        let l = t.train_step(&[(&tf, &tf)], Adam::new(1e-2)).unwrap();
        (
            l.loss,
            t.params
                .get("dino_mlp.fc1.weight", &[4 * FEATS, DIM])
                .unwrap()
                .data
                .clone(),
        )
    };
    assert_eq!(run(), run());
}
