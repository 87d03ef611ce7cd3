//! Random weights with the shapes of the released models, for benchmarks of
//! speed and memory where the real files cannot be downloaded. Values are
//! small deterministic pseudo-random numbers; results mean nothing.

use std::collections::BTreeMap;

use crate::weights::{RawTensor, WeightMap};

struct Filler(u64);

impl Filler {
    fn tensor(&mut self, shape: &[usize], scale: f32) -> RawTensor {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        RawTensor {
            shape: shape.to_vec(),
            data,
        }
    }
}

/// A torch-hub-layout DINOv2 of the given width and depth (patch 14, 518 px
/// grid, GELU MLP x4, LayerScale).
pub fn dino(embed_dim: usize, depth: usize) -> WeightMap {
    let mut f = Filler(0x1234_5678_9abc_def1);
    let d = embed_dim;
    let mut t = BTreeMap::new();
    let mut put = |k: String, shape: &[usize], scale: f32| {
        t.insert(k, f.tensor(shape, scale));
    };
    put("cls_token".into(), &[1, 1, d], 0.1);
    put("pos_embed".into(), &[1, 37 * 37 + 1, d], 0.1);
    put("patch_embed.proj.weight".into(), &[d, 3, 14, 14], 0.05);
    put("patch_embed.proj.bias".into(), &[d], 0.01);
    for i in 0..depth {
        let p = format!("blocks.{i}");
        for n in ["norm1", "norm2"] {
            put(format!("{p}.{n}.weight"), &[d], 0.1);
            put(format!("{p}.{n}.bias"), &[d], 0.1);
        }
        put(format!("{p}.attn.qkv.weight"), &[3 * d, d], 0.05);
        put(format!("{p}.attn.qkv.bias"), &[3 * d], 0.01);
        put(format!("{p}.attn.proj.weight"), &[d, d], 0.05);
        put(format!("{p}.attn.proj.bias"), &[d], 0.01);
        put(format!("{p}.ls1.gamma"), &[d], 0.1);
        put(format!("{p}.ls2.gamma"), &[d], 0.1);
        put(format!("{p}.mlp.fc1.weight"), &[4 * d, d], 0.05);
        put(format!("{p}.mlp.fc1.bias"), &[4 * d], 0.01);
        put(format!("{p}.mlp.fc2.weight"), &[d, 4 * d], 0.05);
        put(format!("{p}.mlp.fc2.bias"), &[d], 0.01);
    }
    put("norm.weight".into(), &[d], 0.1);
    put("norm.bias".into(), &[d], 0.1);
    WeightMap::from_tensors("synthetic-dinov2", t)
}

/// A DACoN checkpoint with the released sizes: U-Net 64..512, features 128,
/// for a DINOv2 of width `dino_dim`; v1.0 adds the fusion MLP.
pub fn dacon(dino_dim: usize, v1_0: bool) -> WeightMap {
    let mut f = Filler(0x0fed_cba9_8765_4321);
    let hidden = [64usize, 128, 256, 512];
    let feats = 128;
    let mut t = BTreeMap::new();
    let mut conv =
        |t: &mut BTreeMap<String, RawTensor>, k: String, o: usize, i: usize, k_size: usize| {
            t.insert(
                format!("{k}.weight"),
                f.tensor(&[o, i, k_size, k_size], 0.1),
            );
            t.insert(format!("{k}.bias"), f.tensor(&[o], 0.01));
        };
    let mut c_in = 3;
    for (i, &h) in hidden.iter().enumerate() {
        conv(
            &mut t,
            format!("unet.encoder_blocks.{i}.conv.0"),
            h,
            c_in,
            3,
        );
        conv(&mut t, format!("unet.encoder_blocks.{i}.conv.3"), h, h, 3);
        c_in = h;
    }
    conv(&mut t, "unet.bottleneck.conv.0".into(), 1024, 512, 3);
    conv(&mut t, "unet.bottleneck.conv.3".into(), 1024, 1024, 3);
    let mut cur = 1024;
    for (i, &h) in hidden.iter().rev().enumerate() {
        conv(&mut t, format!("unet.decoder_up_convs.{i}.up.1"), h, cur, 3);
        conv(
            &mut t,
            format!("unet.decoder_conv_blocks.{i}.conv.0"),
            h,
            2 * h,
            3,
        );
        conv(
            &mut t,
            format!("unet.decoder_conv_blocks.{i}.conv.3"),
            h,
            h,
            3,
        );
        cur = h;
    }
    conv(&mut t, "unet.final_conv".into(), feats, 64, 1);
    let mut lin = |t: &mut BTreeMap<String, RawTensor>, k: &str, o: usize, i: usize| {
        t.insert(format!("{k}.weight"), f.tensor(&[o, i], 0.1));
        t.insert(format!("{k}.bias"), f.tensor(&[o], 0.01));
    };
    lin(&mut t, "dino_mlp.fc1", 4 * feats, dino_dim);
    lin(&mut t, "dino_mlp.fc2", feats, 4 * feats);
    if v1_0 {
        lin(&mut t, "dino_unet_mlp.fc1", 4 * feats, 2 * feats);
        lin(&mut t, "dino_unet_mlp.fc2", feats, 4 * feats);
    }
    WeightMap::from_tensors("synthetic-dacon", t)
}
