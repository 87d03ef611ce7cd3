//! DINOv2 vision transformer (ViT-S/B/L/G with patch 14), inference only:
//! the frozen backbone of DACoN. Its output is the patch tokens of the last
//! block after the final norm, as `get_intermediate_layers(n=1)` returns.
//!
//! Weights come from the torch-hub `.pth` files (`blocks.N.attn.qkv`, ...) or
//! from Hugging Face `facebook/dinov2-*` safetensors (separate q/k/v,
//! `layer_scale1.lambda1`, ...); the layout and the architecture (width,
//! depth, registers, LayerScale, SwiGLU, patch size) are read from the
//! tensors.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::{gelu, silu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::layers::{conv2d, layer_norm, linear, shape_of};
use crate::resize::bicubic_scale;
use crate::weights::{tensor, Values, WeightMap};

/// Architecture of a DINOv2 backbone, as read from its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Dinov2Config {
    /// Token width.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Hidden width of the feed-forward (per branch for SwiGLU).
    pub mlp_hidden: usize,
    /// SwiGLU feed-forward (ViT-G) instead of GELU MLP.
    pub swiglu: bool,
    /// Register tokens (0 or 4).
    pub registers: usize,
    /// Patch size (14).
    pub patch: usize,
    /// Side of the position-embedding grid (37 for 518 px).
    pub pos_grid: usize,
    /// DINOv2's offset for position-embedding interpolation.
    pub interpolate_offset: f64,
}

/// Weight layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DinoLayout {
    /// torch-hub `dinov2_vit*14[_reg4]_pretrain.pth`.
    TorchHub,
    /// Hugging Face `Dinov2Model` safetensors.
    HuggingFace,
}

/// Heads of the published models by width; other widths (test models) use
/// 16-wide heads.
pub fn default_heads(embed_dim: usize) -> usize {
    match embed_dim {
        384 => 6,
        768 => 12,
        1024 => 16,
        1536 => 24,
        d => (d / 16).max(1),
    }
}

#[derive(Module, Debug)]
struct Attention {
    qkv: Linear,
    proj: Linear,
    #[module(skip)]
    heads: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let hd = d / self.heads;
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, self.heads, hd])
            .permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().narrow(0, 0, 1).reshape([b, self.heads, n, hd]);
        let k = qkv.clone().narrow(0, 1, 1).reshape([b, self.heads, n, hd]);
        let v = qkv.narrow(0, 2, 1).reshape([b, self.heads, n, hd]);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let out = attention(q, k, v, None, None, options)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        self.proj.forward(out)
    }
}

#[derive(Module, Debug)]
struct FeedForward {
    /// `fc1`, or SwiGLU's fused `w12` (value and gate).
    fc1: Linear,
    /// `fc2`, or SwiGLU's `w3`.
    fc2: Linear,
    #[module(skip)]
    swiglu: bool,
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = if self.swiglu {
            let [b, n, two_h] = h.dims();
            let half = two_h / 2;
            let x1 = h.clone().narrow(2, 0, half);
            let x2 = h.narrow(2, half, half);
            silu(x1) * x2.reshape([b, n, half])
        } else {
            gelu(h)
        };
        self.fc2.forward(h)
    }
}

#[derive(Module, Debug)]
struct Block {
    norm1: LayerNorm,
    attn: Attention,
    ls1: Option<Param<Tensor<1>>>,
    norm2: LayerNorm,
    mlp: FeedForward,
    ls2: Option<Param<Tensor<1>>>,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let scale = |y: Tensor<3>, ls: &Option<Param<Tensor<1>>>| match ls {
            Some(g) => y * g.val().unsqueeze::<3>(),
            None => y,
        };
        let x = x.clone() + scale(self.attn.forward(self.norm1.forward(x)), &self.ls1);
        x.clone() + scale(self.mlp.forward(self.norm2.forward(x)), &self.ls2)
    }
}

/// The DINOv2 backbone.
#[derive(Module, Debug)]
pub struct Dinov2 {
    patch_embed: Conv2d,
    cls_token: Param<Tensor<3>>,
    pos_embed: Param<Tensor<3>>,
    register_tokens: Option<Param<Tensor<3>>>,
    blocks: Vec<Block>,
    norm: LayerNorm,
    #[module(skip)]
    patch: usize,
    #[module(skip)]
    interpolate_offset: f64,
}

/// Names of one block's tensors in a layout.
struct Keys {
    norm1: String,
    norm2: String,
    proj: String,
    ls1: String,
    ls2: String,
    fc1: String,
    fc2: String,
}

impl Dinov2 {
    /// Reads a backbone from a weight map (either layout), with `heads`
    /// attention heads when given (else [`default_heads`], or the Hugging
    /// Face `config.json` beside the weights).
    ///
    /// # Errors
    /// [`Error::WrongModel`] when the file is not a DINOv2 checkpoint,
    /// [`Error::MissingKey`] / [`Error::Shape`] naming the tensor.
    pub fn load(
        mut w: WeightMap,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<(Dinov2, Dinov2Config)> {
        let layout = detect_layout(&w)?;
        let config = read_config(&w, layout, heads)?;
        let model = build(&mut w, layout, &config, device)?;
        Ok((model, config))
    }

    /// The layout and architecture of a DINOv2 weight map, without building
    /// the model.
    pub fn inspect(w: &WeightMap, heads: Option<usize>) -> Result<(DinoLayout, Dinov2Config)> {
        let layout = detect_layout(w)?;
        Ok((layout, read_config(w, layout, heads)?))
    }

    /// Patch tokens of the last block after the final norm, as a feature
    /// map.
    ///
    /// # Shapes
    /// - image: `[1, 3, H, W]` (H and W multiples of the patch size)
    /// - output: `[D, H / patch, W / patch]`
    pub fn forward(&self, image: Tensor<4>) -> Tensor<3> {
        let tokens = self.patch_tokens(image.clone());
        let [_, h, w] = [
            0,
            image.dims()[2] / self.patch,
            image.dims()[3] / self.patch,
        ];
        let [_, n, d] = tokens.dims();
        debug_assert_eq!(n, h * w);
        tokens.reshape([n, d]).transpose().reshape([d, h, w])
    }

    /// Patch tokens `[B, H/p * W/p, D]` (register and class tokens dropped).
    pub fn patch_tokens(&self, image: Tensor<4>) -> Tensor<3> {
        let [b, _, h, w] = image.dims();
        let x = self.patch_embed.forward(image);
        let [_, d, gh, gw] = x.dims();
        let x = x.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, d]);
        let x =
            Tensor::cat(vec![cls, x], 1) + self.position_embedding(h / self.patch, w / self.patch);
        let x = match &self.register_tokens {
            Some(r) => {
                let r = r.val();
                let regs = r.dims()[1];
                Tensor::cat(
                    vec![
                        x.clone().narrow(1, 0, 1),
                        r.expand([b, regs, d]),
                        x.narrow(1, 1, gh * gw),
                    ],
                    1,
                )
            }
            None => x,
        };
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self.norm.forward(x);
        let skip = 1 + self
            .register_tokens
            .as_ref()
            .map_or(0, |r| r.val().dims()[1]);
        x.narrow(1, skip, gh * gw)
    }

    /// The position embedding for a `gh` x `gw` patch grid: the stored one,
    /// or its bicubic interpolation as DINOv2's `interpolate_pos_encoding`
    /// (scale factors `(g + 0.1) / M`).
    fn position_embedding(&self, gh: usize, gw: usize) -> Tensor<3> {
        let pos = self.pos_embed.val();
        let [_, n, d] = pos.dims();
        let m = ((n - 1) as f64).sqrt().round() as usize;
        if gh * gw == n - 1 && gh == gw {
            return pos;
        }
        let device = pos.device();
        let cls = pos.clone().narrow(1, 0, 1);
        // [M*M, D] -> [D, M, M] on the CPU, as the official code reshapes.
        let grid: Vec<f32> = pos
            .narrow(1, 1, n - 1)
            .reshape([m * m, d])
            .transpose()
            .values();
        let sy = (gh as f64 + self.interpolate_offset) / m as f64;
        let sx = (gw as f64 + self.interpolate_offset) / m as f64;
        let (out, oh, ow) = bicubic_scale(&grid, d, m, m, sy, sx);
        assert_eq!((oh, ow), (gh, gw), "position grid interpolation size");
        let patch = tensor(out, [d, gh * gw], &device)
            .transpose()
            .reshape([1, gh * gw, d]);
        Tensor::cat(vec![cls, patch], 1)
    }
}

fn detect_layout(w: &WeightMap) -> Result<DinoLayout> {
    if w.has("patch_embed.proj.weight") {
        Ok(DinoLayout::TorchHub)
    } else if w.has("embeddings.patch_embeddings.projection.weight") {
        Ok(DinoLayout::HuggingFace)
    } else {
        Err(Error::WrongModel {
            path: w.path().to_path_buf(),
            message: "not a DINOv2 checkpoint (no patch_embed.proj.weight or embeddings.patch_embeddings.projection.weight); run `dacon weights check` on it".into(),
        })
    }
}

fn read_config(w: &WeightMap, layout: DinoLayout, heads: Option<usize>) -> Result<Dinov2Config> {
    let (patch_key, pos_key, block_prefix, fc1_key, w12_key, reg_key) = match layout {
        DinoLayout::TorchHub => (
            "patch_embed.proj.weight",
            "pos_embed",
            "blocks.",
            "blocks.0.mlp.fc1.weight",
            "blocks.0.mlp.w12.weight",
            "register_tokens",
        ),
        DinoLayout::HuggingFace => (
            "embeddings.patch_embeddings.projection.weight",
            "embeddings.position_embeddings",
            "encoder.layer.",
            "encoder.layer.0.mlp.fc1.weight",
            "encoder.layer.0.mlp.weights_in.weight",
            "embeddings.register_tokens",
        ),
    };
    let bad = |m: String| Error::WrongModel {
        path: w.path().to_path_buf(),
        message: m,
    };
    let pe =
        shape_of(w, patch_key, 4).ok_or_else(|| bad(format!("{patch_key} is not a 4-d tensor")))?;
    let (embed_dim, patch) = (pe[0], pe[2]);
    let pos =
        shape_of(w, pos_key, 3).ok_or_else(|| bad(format!("missing or malformed {pos_key}")))?;
    let registers = shape_of(w, reg_key, 3).map_or(0, |s| s[1]);
    let grid = ((pos[1] - 1) as f64).sqrt().round() as usize;
    if grid * grid + 1 != pos[1] {
        return Err(bad(format!(
            "{pos_key} holds {} positions, not 1 + a square",
            pos[1]
        )));
    }
    let depth = (0..)
        .take_while(|i| {
            w.keys()
                .any(|k| k.starts_with(&format!("{block_prefix}{i}.")))
        })
        .count();
    if depth == 0 {
        return Err(bad("no transformer blocks".into()));
    }
    let (swiglu, mlp_hidden) = if let Some(s) = shape_of(w, fc1_key, 2) {
        (false, s[0])
    } else if let Some(s) = shape_of(w, w12_key, 2) {
        (true, s[0] / 2)
    } else {
        return Err(bad(format!(
            "no feed-forward weights ({fc1_key} or {w12_key})"
        )));
    };
    let num_heads = match heads {
        Some(h) => h,
        None => hf_heads(w).unwrap_or_else(|| default_heads(embed_dim)),
    };
    if num_heads == 0 || embed_dim % num_heads != 0 {
        return Err(bad(format!(
            "{num_heads} heads do not divide width {embed_dim}"
        )));
    }
    Ok(Dinov2Config {
        embed_dim,
        depth,
        num_heads,
        mlp_hidden,
        swiglu,
        registers,
        patch,
        pos_grid: grid,
        interpolate_offset: 0.1,
    })
}

/// `num_attention_heads` of a Hugging Face `config.json` beside the weights.
fn hf_heads(w: &WeightMap) -> Option<usize> {
    let cfg = w.path().parent()?.join("config.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg).ok()?).ok()?;
    v.get("num_attention_heads")?.as_u64().map(|h| h as usize)
}

fn build(
    w: &mut WeightMap,
    layout: DinoLayout,
    c: &Dinov2Config,
    device: &Device,
) -> Result<Dinov2> {
    let d = c.embed_dim;
    let hub = layout == DinoLayout::TorchHub;
    let (patch_prefix, cls_key, pos_key, reg_key, norm_key) = if hub {
        (
            "patch_embed.proj",
            "cls_token",
            "pos_embed",
            "register_tokens",
            "norm",
        )
    } else {
        (
            "embeddings.patch_embeddings.projection",
            "embeddings.cls_token",
            "embeddings.position_embeddings",
            "embeddings.register_tokens",
            "layernorm",
        )
    };
    let patch_embed = conv2d(w, patch_prefix, [d, 3, c.patch], c.patch, 0, device)?;
    let cls_token = w.param(cls_key, [1, 1, d], device)?;
    let pos_embed = w.param(pos_key, [1, c.pos_grid * c.pos_grid + 1, d], device)?;
    let register_tokens = if c.registers > 0 {
        Some(w.param(reg_key, [1, c.registers, d], device)?)
    } else {
        None
    };
    let mut blocks = Vec::with_capacity(c.depth);
    for i in 0..c.depth {
        let keys = if hub {
            let p = format!("blocks.{i}");
            Keys {
                norm1: format!("{p}.norm1"),
                norm2: format!("{p}.norm2"),
                proj: format!("{p}.attn.proj"),
                ls1: format!("{p}.ls1.gamma"),
                ls2: format!("{p}.ls2.gamma"),
                fc1: format!("{p}.mlp.{}", if c.swiglu { "w12" } else { "fc1" }),
                fc2: format!("{p}.mlp.{}", if c.swiglu { "w3" } else { "fc2" }),
            }
        } else {
            let p = format!("encoder.layer.{i}");
            Keys {
                norm1: format!("{p}.norm1"),
                norm2: format!("{p}.norm2"),
                proj: format!("{p}.attention.output.dense"),
                ls1: format!("{p}.layer_scale1.lambda1"),
                ls2: format!("{p}.layer_scale2.lambda1"),
                fc1: format!("{p}.mlp.{}", if c.swiglu { "weights_in" } else { "fc1" }),
                fc2: format!("{p}.mlp.{}", if c.swiglu { "weights_out" } else { "fc2" }),
            }
        };
        let qkv = if hub {
            linear(w, &format!("blocks.{i}.attn.qkv"), d, 3 * d, device)?
        } else {
            fused_qkv(
                w,
                &format!("encoder.layer.{i}.attention.attention"),
                d,
                device,
            )?
        };
        let ffn_out = if c.swiglu {
            2 * c.mlp_hidden
        } else {
            c.mlp_hidden
        };
        let ls = |w: &mut WeightMap, key: &str| -> Result<Option<Param<Tensor<1>>>> {
            if w.has(key) {
                Ok(Some(w.param(key, [d], device)?))
            } else {
                Ok(None)
            }
        };
        blocks.push(Block {
            norm1: layer_norm(w, &keys.norm1, d, 1e-6, device)?,
            attn: Attention {
                qkv,
                proj: linear(w, &keys.proj, d, d, device)?,
                heads: c.num_heads,
            },
            ls1: ls(w, &keys.ls1)?,
            norm2: layer_norm(w, &keys.norm2, d, 1e-6, device)?,
            mlp: FeedForward {
                fc1: linear(w, &keys.fc1, d, ffn_out, device)?,
                fc2: linear(w, &keys.fc2, c.mlp_hidden, d, device)?,
                swiglu: c.swiglu,
            },
            ls2: ls(w, &keys.ls2)?,
        });
    }
    Ok(Dinov2 {
        patch_embed,
        cls_token,
        pos_embed,
        register_tokens,
        blocks,
        norm: layer_norm(w, norm_key, d, 1e-6, device)?,
        patch: c.patch,
        interpolate_offset: c.interpolate_offset,
    })
}

/// Hugging Face keeps query, key and value apart; the hub model fuses them
/// as one `[3D, D]` projection (q, k, v stacked).
fn fused_qkv(w: &mut WeightMap, prefix: &str, d: usize, device: &Device) -> Result<Linear> {
    let mut weight = Vec::with_capacity(3 * d * d);
    let mut bias = Vec::with_capacity(3 * d);
    for part in ["query", "key", "value"] {
        weight.extend(w.take(&format!("{prefix}.{part}.weight"), &[d, d])?);
        bias.extend(w.take(&format!("{prefix}.{part}.bias"), &[d])?);
    }
    Ok(Linear {
        weight: Param::from_tensor(tensor(weight, [3 * d, d], device).transpose()),
        bias: Some(Param::from_tensor(tensor(bias, [3 * d], device))),
    })
}
