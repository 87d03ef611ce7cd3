//! DINOv2 vision transformer (ViT-S/B/L/G with patch 14), inference only:
//! the frozen backbone of DACoN. Its output is the patch tokens of the last
//! block after the final norm, as `get_intermediate_layers(n=1)` returns.
//!
//! [`DinoConfig::init`] builds the model; [`Dino::load`] fills it from the
//! torch-hub `.pth` files (`blocks.N.attn.qkv`, ...) or from Hugging Face
//! `facebook/dinov2-*` safetensors (separate q/k/v, `layer_scale1.lambda1`,
//! ...), whose keys [`to_torch_hub`] renames once, so the model knows one
//! layout. The architecture (width, depth, registers, LayerScale, SwiGLU,
//! patch size) is read from the tensors.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{gelu, silu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor};

use crate::cpu::{self, Dense, Tokens};
use crate::error::{Error, Result};
use crate::keymap::load_into;
use crate::resize::bicubic_scale;
use crate::weights::{shape_of, tensor, values_or_zeros, RawTensor, Values, WeightMap};

/// Architecture of a DINOv2 backbone (defaults: the released ViT-S/14 at
/// 518 px); [`DinoConfig::read`] takes it from a checkpoint.
#[derive(Config, Debug)]
pub struct DinoConfig {
    /// Token width.
    #[config(default = 384)]
    pub embed_dim: usize,
    /// Number of blocks.
    #[config(default = 12)]
    pub depth: usize,
    /// Attention heads.
    #[config(default = 6)]
    pub num_heads: usize,
    /// Hidden width of the feed-forward (per branch for SwiGLU).
    #[config(default = 1536)]
    pub mlp_hidden: usize,
    /// SwiGLU feed-forward (ViT-G) instead of GELU MLP.
    #[config(default = false)]
    pub swiglu: bool,
    /// LayerScale after attention and feed-forward (every released model).
    #[config(default = true)]
    pub layer_scale: bool,
    /// Register tokens (0 or 4).
    #[config(default = 0)]
    pub registers: usize,
    /// Patch size (14).
    #[config(default = 14)]
    pub patch: usize,
    /// Side of the position-embedding grid (37 for 518 px).
    #[config(default = 37)]
    pub pos_grid: usize,
    /// DINOv2's offset for position-embedding interpolation.
    #[config(default = 0.1)]
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

/// DINOv2's LayerNorm epsilon.
const NORM_EPS: f64 = 1e-6;

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

impl DinoConfig {
    /// A backbone with fresh parameters: PyTorch's default initialisation
    /// for convolutions and linear layers, DINOv2's for the tokens
    /// (`normal(std 1e-6)`), position embedding (`normal(std 0.02)`) and
    /// LayerScale (1e-5). Random, so results mean nothing until weights are
    /// loaded with [`Dino::load`] or [`crate::keymap::load_into`].
    pub fn init(&self, device: &Device) -> Dino {
        let d = self.embed_dim;
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        let norm = || LayerNormConfig::new(d).with_epsilon(NORM_EPS).init(device);
        let tokens = |n: usize| {
            Initializer::Normal {
                mean: 0.0,
                std: 1e-6,
            }
            .init([1, n, d], device)
        };
        let layer_scale = || {
            self.layer_scale.then(|| LayerScale {
                gamma: Initializer::Constant { value: 1e-5 }.init([d], device),
            })
        };
        let blocks = (0..self.depth)
            .map(|_| Block {
                norm1: norm(),
                attn: Attention {
                    qkv: linear(d, 3 * d),
                    proj: linear(d, d),
                    heads: self.num_heads,
                },
                ls1: layer_scale(),
                norm2: norm(),
                mlp: if self.swiglu {
                    FeedForward::SwiGlu(SwiGlu {
                        w12: linear(d, 2 * self.mlp_hidden),
                        w3: linear(self.mlp_hidden, d),
                    })
                } else {
                    FeedForward::Gelu(GeluMlp {
                        fc1: linear(d, self.mlp_hidden),
                        fc2: linear(self.mlp_hidden, d),
                    })
                },
                ls2: layer_scale(),
            })
            .collect();
        let p = self.patch;
        Dino {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([3, d], [p, p])
                    .with_stride([p, p])
                    .with_padding(PaddingConfig2d::Explicit(0, 0, 0, 0))
                    .init(device),
            },
            cls_token: tokens(1),
            pos_embed: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([1, self.pos_grid * self.pos_grid + 1, d], device),
            register_tokens: (self.registers > 0).then(|| tokens(self.registers)),
            blocks,
            norm: norm(),
            patch: p,
            interpolate_offset: self.interpolate_offset,
        }
    }

    /// The architecture of a torch-hub-layout weight map (see
    /// [`to_torch_hub`]), with `heads` attention heads when given (else the
    /// Hugging Face `config.json` beside the weights, or [`default_heads`]).
    ///
    /// # Errors
    /// [`Error::WrongModel`] when the tensors do not form a DINOv2.
    pub fn read(w: &WeightMap, heads: Option<usize>) -> Result<DinoConfig> {
        let bad = |m: String| Error::WrongModel {
            path: w.path().to_path_buf(),
            message: m,
        };
        let pe = shape_of(w, "patch_embed.proj.weight", 4)
            .ok_or_else(|| bad("patch_embed.proj.weight is not a 4-d tensor".into()))?;
        let (embed_dim, patch) = (pe[0], pe[2]);
        let pos = shape_of(w, "pos_embed", 3)
            .ok_or_else(|| bad("missing or malformed pos_embed".into()))?;
        let registers = shape_of(w, "register_tokens", 3).map_or(0, |s| s[1]);
        let grid = ((pos[1] - 1) as f64).sqrt().round() as usize;
        if grid * grid + 1 != pos[1] {
            return Err(bad(format!(
                "pos_embed holds {} positions, not 1 + a square",
                pos[1]
            )));
        }
        let depth = (0..)
            .take_while(|i| w.keys().any(|k| k.starts_with(&format!("blocks.{i}."))))
            .count();
        if depth == 0 {
            return Err(bad("no transformer blocks".into()));
        }
        let (swiglu, mlp_hidden) = if let Some(s) = shape_of(w, "blocks.0.mlp.fc1.weight", 2) {
            (false, s[0])
        } else if let Some(s) = shape_of(w, "blocks.0.mlp.w12.weight", 2) {
            (true, s[0] / 2)
        } else {
            return Err(bad(
                "no feed-forward weights (blocks.0.mlp.fc1.weight or blocks.0.mlp.w12.weight)"
                    .into(),
            ));
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
        Ok(DinoConfig {
            embed_dim,
            depth,
            num_heads,
            mlp_hidden,
            swiglu,
            layer_scale: w.has("blocks.0.ls1.gamma"),
            registers,
            patch,
            pos_grid: grid,
            interpolate_offset: 0.1,
        })
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

/// `fc1 -> GELU -> fc2`.
#[derive(Module, Debug)]
struct GeluMlp {
    fc1: Linear,
    fc2: Linear,
}

/// ViT-G's feed-forward: `w12` gives value and gate, `silu(x1) * x2 -> w3`.
#[derive(Module, Debug)]
struct SwiGlu {
    w12: Linear,
    w3: Linear,
}

#[derive(Module, Debug)]
enum FeedForward {
    Gelu(GeluMlp),
    SwiGlu(SwiGlu),
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            FeedForward::Gelu(m) => m.fc2.forward(gelu(m.fc1.forward(x))),
            FeedForward::SwiGlu(m) => {
                let h = m.w12.forward(x);
                let [b, n, two_h] = h.dims();
                let half = two_h / 2;
                let x1 = h.clone().narrow(2, 0, half);
                let x2 = h.narrow(2, half, half);
                m.w3.forward(silu(x1) * x2.reshape([b, n, half]))
            }
        }
    }
}

/// A learned per-channel scale of a residual branch.
#[derive(Module, Debug)]
struct LayerScale {
    gamma: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
struct Block {
    norm1: LayerNorm,
    attn: Attention,
    ls1: Option<LayerScale>,
    norm2: LayerNorm,
    mlp: FeedForward,
    ls2: Option<LayerScale>,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let scale = |y: Tensor<3>, ls: &Option<LayerScale>| match ls {
            Some(s) => y * s.gamma.val().unsqueeze::<3>(),
            None => y,
        };
        let x = x.clone() + scale(self.attn.forward(self.norm1.forward(x)), &self.ls1);
        x.clone() + scale(self.mlp.forward(self.norm2.forward(x)), &self.ls2)
    }

    /// The block's parameters, read out for [`CpuBlock::forward`].
    fn cpu(&self) -> CpuBlock {
        let scale = |ls: &Option<LayerScale>| ls.as_ref().map(|s| s.gamma.val().values());
        CpuBlock {
            norm1: CpuNorm::of(&self.norm1),
            qkv: dense(&self.attn.qkv),
            proj: dense(&self.attn.proj),
            heads: self.attn.heads,
            ls1: scale(&self.ls1),
            norm2: CpuNorm::of(&self.norm2),
            mlp: match &self.mlp {
                FeedForward::Gelu(m) => (dense(&m.fc1), dense(&m.fc2), false),
                FeedForward::SwiGlu(m) => (dense(&m.w12), dense(&m.w3), true),
            },
            ls2: scale(&self.ls2),
        }
    }
}

/// A [`Block`] for [`cpu`]'s token operations.
struct CpuBlock {
    norm1: CpuNorm,
    qkv: Dense,
    proj: Dense,
    heads: usize,
    ls1: Option<Vec<f32>>,
    norm2: CpuNorm,
    /// First layer, second layer, SwiGLU (else GELU) between them.
    mlp: (Dense, Dense, bool),
    ls2: Option<Vec<f32>>,
}

impl CpuBlock {
    /// [`Block::forward`] on one image's tokens.
    fn forward(&self, mut x: Tokens) -> Tokens {
        let y = self.proj.apply(&cpu::attention(
            &self.qkv.apply(&self.norm1.apply(&x)),
            self.heads,
        ));
        add_scaled(&mut x, &y, self.ls1.as_deref());
        let (first, second, swiglu) = &self.mlp;
        let mut h = first.apply(&self.norm2.apply(&x));
        let h = if *swiglu {
            cpu::swiglu(&h)
        } else {
            cpu::gelu(&mut h);
            h
        };
        let y = second.apply(&h);
        add_scaled(&mut x, &y, self.ls2.as_deref());
        x
    }
}

/// `x += y * gamma` (per channel), or `x += y`.
fn add_scaled(x: &mut Tokens, y: &Tokens, gamma: Option<&[f32]>) {
    assert_eq!((x.n, x.d), (y.n, y.d), "residual shapes");
    if x.d == 0 {
        return;
    }
    for (xr, yr) in x.data.chunks_mut(x.d).zip(y.data.chunks(y.d)) {
        match gamma {
            Some(g) => {
                for ((a, b), g) in xr.iter_mut().zip(yr).zip(g) {
                    *a += b * g;
                }
            }
            None => {
                for (a, b) in xr.iter_mut().zip(yr) {
                    *a += b;
                }
            }
        }
    }
}

/// A [`LayerNorm`]'s parameters.
struct CpuNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl CpuNorm {
    fn of(norm: &LayerNorm) -> CpuNorm {
        let gamma = norm.gamma.val().values();
        let beta = values_or_zeros(norm.beta.as_ref(), gamma.len());
        CpuNorm { gamma, beta }
    }

    fn apply(&self, x: &Tokens) -> Tokens {
        cpu::layer_norm(x, &self.gamma, &self.beta, NORM_EPS)
    }
}

/// A [`Linear`]'s parameters.
fn dense(linear: &Linear) -> Dense {
    let [i, o] = linear.weight.dims();
    Dense {
        i,
        o,
        weight: linear.weight.val().values(),
        bias: values_or_zeros(linear.bias.as_ref(), o),
    }
}

/// The `p x p` patches of a `[c, h, w]` image as rows of `c * p * p`
/// values in the patch convolution's weight order (`[c][ky][kx]`), patches
/// row by row; a remainder narrower than a patch is dropped, as the
/// stride-`p` convolution drops it.
fn patches(img: &[f32], c: usize, h: usize, w: usize, p: usize) -> Vec<f32> {
    let (gh, gw) = (h / p, w / p);
    let mut out = Vec::with_capacity(gh * gw * c * p * p);
    for py in 0..gh {
        for px in 0..gw {
            for ch in 0..c {
                for ky in 0..p {
                    let row = (ch * h + py * p + ky) * w + px * p;
                    out.extend_from_slice(&img[row..row + p]);
                }
            }
        }
    }
    out
}

#[derive(Module, Debug)]
struct PatchEmbed {
    proj: Conv2d,
}

/// The DINOv2 backbone.
#[derive(Module, Debug)]
pub struct Dino {
    patch_embed: PatchEmbed,
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

impl Dino {
    /// Reads a backbone from a weight map (either layout), with `heads`
    /// attention heads when given (see [`DinoConfig::read`]).
    ///
    /// # Errors
    /// [`Error::WrongModel`] when the file is not a DINOv2 checkpoint,
    /// [`Error::MissingKey`] / [`Error::Shape`] naming the tensor.
    pub fn load(
        mut w: WeightMap,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<(Dino, DinoConfig)> {
        to_torch_hub(&mut w)?;
        let config = DinoConfig::read(&w, heads)?;
        let model = load_into(config.init(device), &mut w)?;
        Ok((model, config))
    }

    /// The layout and architecture of a DINOv2 weight map, without building
    /// the model; a Hugging Face map is renamed to the torch-hub layout in
    /// place.
    pub fn inspect(w: &mut WeightMap, heads: Option<usize>) -> Result<(DinoLayout, DinoConfig)> {
        let layout = to_torch_hub(w)?;
        Ok((layout, DinoConfig::read(w, heads)?))
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
    ///
    /// Inference on the CPU runs [`Dino::patch_tokens_cpu`], the same
    /// computation in plain loops around one GEMM kernel (#15: burn's
    /// tensors took 1.8x PyTorch's time).
    pub fn patch_tokens(&self, image: Tensor<4>) -> Tensor<3> {
        if !image.is_autodiff() && image.device() == Device::flex() {
            return self.patch_tokens_cpu(image);
        }
        self.patch_tokens_tensors(image)
    }

    /// The tensor graph: training (autodiff) and the GPU backends.
    fn patch_tokens_tensors(&self, image: Tensor<4>) -> Tensor<3> {
        let [b, _, h, w] = image.dims();
        let x = self.patch_embed.proj.forward(image);
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

    /// [`Dino::patch_tokens_tensors`] step for step, per image. Each
    /// block's parameters are read out of the module just before it runs
    /// and dropped after, so the copy costs one block's memory, not the
    /// model's (1.2 GB for ViT-L).
    fn patch_tokens_cpu(&self, image: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = image.dims();
        let device = image.device();
        let p = self.patch;
        let (gh, gw) = (h / p, w / p);
        let weight = self.patch_embed.proj.weight.val();
        let [d, ..] = weight.dims();
        // The patch convolution as a linear layer on flattened patches.
        let embed = Dense {
            i: c * p * p,
            o: d,
            weight: weight.reshape([d, c * p * p]).transpose().values(),
            bias: values_or_zeros(self.patch_embed.proj.bias.as_ref(), d),
        };
        let pos = self.position_embedding(gh, gw).values();
        let cls = self.cls_token.val().values();
        let registers = self
            .register_tokens
            .as_ref()
            .map_or_else(Vec::new, |r| r.val().values());
        let pixels = image.values();
        let mut xs: Vec<Tokens> = pixels
            .chunks_exact((c * h * w).max(1))
            .take(b)
            .map(|img| {
                let x = embed.apply(&Tokens {
                    n: gh * gw,
                    d: c * p * p,
                    data: patches(img, c, h, w, p),
                });
                // Class token, registers (no position), patches.
                let mut data = Vec::with_capacity((1 + gh * gw) * d + registers.len());
                data.extend(cls.iter().zip(&pos[..d]).map(|(a, b)| a + b));
                data.extend_from_slice(&registers);
                data.extend(x.data.iter().zip(&pos[d..]).map(|(a, b)| a + b));
                Tokens {
                    n: data.len() / d.max(1),
                    d,
                    data,
                }
            })
            .collect();
        for block in &self.blocks {
            let block = block.cpu();
            xs = xs.into_iter().map(|x| block.forward(x)).collect();
        }
        let norm = CpuNorm::of(&self.norm);
        let skip = 1 + registers.len() / d.max(1);
        let mut out = Vec::with_capacity(b * gh * gw * d);
        for x in &xs {
            out.extend_from_slice(&norm.apply(x).data[skip * d..]);
        }
        tensor(out, [b, gh * gw, d], &device)
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

/// The layout of a DINOv2 weight map, if it is one.
pub fn layout(w: &WeightMap) -> Option<DinoLayout> {
    if w.has("patch_embed.proj.weight") {
        Some(DinoLayout::TorchHub)
    } else if w.has("embeddings.patch_embeddings.projection.weight") {
        Some(DinoLayout::HuggingFace)
    } else {
        None
    }
}

/// Hugging Face names and their torch-hub counterparts, replaced where they
/// start the key (top-level tensors, blocks) or, after `blocks.N.`, start
/// the rest.
const HF_PREFIXES: &[(&str, &str)] = &[
    (
        "embeddings.patch_embeddings.projection.",
        "patch_embed.proj.",
    ),
    ("embeddings.cls_token", "cls_token"),
    ("embeddings.mask_token", "mask_token"),
    ("embeddings.position_embeddings", "pos_embed"),
    ("embeddings.register_tokens", "register_tokens"),
    ("layernorm.", "norm."),
    ("encoder.layer.", "blocks."),
];
const HF_BLOCK_PARTS: &[(&str, &str)] = &[
    ("attention.attention.qkv.", "attn.qkv."),
    ("attention.output.dense.", "attn.proj."),
    ("layer_scale1.lambda1", "ls1.gamma"),
    ("layer_scale2.lambda1", "ls2.gamma"),
    ("mlp.weights_in.", "mlp.w12."),
    ("mlp.weights_out.", "mlp.w3."),
];

fn hub_name(key: &str) -> String {
    let Some((hf, hub)) = HF_PREFIXES.iter().find(|(hf, _)| key.starts_with(hf)) else {
        return key.to_string();
    };
    let rest = &key[hf.len()..];
    if *hub != "blocks." {
        return format!("{hub}{rest}");
    }
    let (index, part) = rest.split_once('.').unwrap_or((rest, ""));
    let part = HF_BLOCK_PARTS
        .iter()
        .find(|(hf, _)| part.starts_with(hf))
        .map_or(part.to_string(), |(hf, hub)| {
            format!("{hub}{}", &part[hf.len()..])
        });
    format!("blocks.{index}.{part}")
}

/// Renames a Hugging Face `Dinov2Model` map to the torch-hub layout in
/// place, so that the model knows one layout; returns the layout found.
///
/// Hugging Face keeps query, key and value apart where the hub model fuses
/// them as one `[3D, D]` projection (q, k, v stacked).
///
/// # Errors
/// [`Error::WrongModel`] when the map is not a DINOv2 checkpoint;
/// [`Error::MissingKey`] / [`Error::Shape`] when a block lacks one of
/// query, key and value or they differ in shape.
pub fn to_torch_hub(w: &mut WeightMap) -> Result<DinoLayout> {
    let Some(found) = layout(w) else {
        return Err(Error::WrongModel {
            path: w.path().to_path_buf(),
            message: "not a DINOv2 checkpoint (no patch_embed.proj.weight or embeddings.patch_embeddings.projection.weight); run `dacon weights check` on it".into(),
        });
    };
    if found == DinoLayout::TorchHub {
        return Ok(found);
    }
    let queries: Vec<String> = w
        .keys()
        .filter_map(|k| k.strip_suffix(".attention.attention.query.weight"))
        .map(str::to_owned)
        .collect();
    for block in queries {
        let prefix = format!("{block}.attention.attention");
        for what in ["weight", "bias"] {
            let query = format!("{prefix}.query.{what}");
            let mut shape = w.shape(&query).map(<[usize]>::to_vec).unwrap_or_default();
            let mut fused = Vec::new();
            for part in ["query", "key", "value"] {
                fused.extend(w.take(&format!("{prefix}.{part}.{what}"), &shape)?);
            }
            if let Some(rows) = shape.first_mut() {
                *rows *= 3;
            }
            w.insert(
                format!("{prefix}.qkv.{what}"),
                RawTensor { shape, data: fused },
            );
        }
    }
    w.rename_keys(hub_name);
    Ok(found)
}

/// `num_attention_heads` of a Hugging Face `config.json` beside the weights.
fn hf_heads(w: &WeightMap) -> Option<usize> {
    let cfg = w.path().parent()?.join("config.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg).ok()?).ok()?;
    v.get("num_attention_heads")?.as_u64().map(|h| h as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The CPU loops compute what the tensor graph computes, on small
    /// random backbones with and without registers, LayerScale and SwiGLU,
    /// two images of a grid the position embedding must be interpolated
    /// to. (The parity tests compare the CPU path with PyTorch's vectors;
    /// the wgpu run of the same tests checks the graph.)
    #[test]
    fn cpu_loops_are_the_tensor_graph() {
        let device = Device::flex();
        for (registers, layer_scale, swiglu) in [(0, false, false), (4, true, true)] {
            let model = DinoConfig::new()
                .with_embed_dim(32)
                .with_depth(2)
                .with_num_heads(2)
                .with_mlp_hidden(48)
                .with_registers(registers)
                .with_layer_scale(layer_scale)
                .with_swiglu(swiglu)
                .with_pos_grid(5)
                .init(&device);
            let image =
                Tensor::<4>::random([2, 3, 42, 56], Distribution::Normal(0.0, 1.0), &device);
            let graph = model.patch_tokens_tensors(image.clone());
            let cpu = model.patch_tokens(image);
            assert_eq!(graph.dims(), [2, 12, 32]);
            assert_eq!(cpu.dims(), graph.dims());
            let (g, c) = (graph.values(), cpu.values());
            let worst = g
                .iter()
                .zip(&c)
                .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "registers {registers}: {worst}");
        }
    }

    #[test]
    fn hugging_face_names_become_torch_hub_names() {
        for (hf, hub) in [
            ("embeddings.cls_token", "cls_token"),
            ("embeddings.position_embeddings", "pos_embed"),
            (
                "embeddings.patch_embeddings.projection.bias",
                "patch_embed.proj.bias",
            ),
            ("encoder.layer.3.norm1.weight", "blocks.3.norm1.weight"),
            (
                "encoder.layer.3.attention.attention.qkv.bias",
                "blocks.3.attn.qkv.bias",
            ),
            (
                "encoder.layer.11.attention.output.dense.weight",
                "blocks.11.attn.proj.weight",
            ),
            ("encoder.layer.0.layer_scale2.lambda1", "blocks.0.ls2.gamma"),
            ("encoder.layer.0.mlp.fc1.weight", "blocks.0.mlp.fc1.weight"),
            (
                "encoder.layer.0.mlp.weights_out.bias",
                "blocks.0.mlp.w3.bias",
            ),
            ("layernorm.weight", "norm.weight"),
        ] {
            assert_eq!(hub_name(hf), hub);
        }
    }
}
