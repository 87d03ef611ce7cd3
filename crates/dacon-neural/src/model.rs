//! The DACoN head: U-Net, DINO MLP and fusion, loaded from a released
//! checkpoint (`dacon_v1_0.pth`, `dacon_v1_1.pth`: every key but `dino.*`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::layers::{linear, shape_of};
use crate::unet::{UNet, UNetConfig};
use crate::weights::WeightMap;

/// The two released variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// v1.0 (the paper): fusion MLP on the concatenation; pooling at the
    /// label resolution.
    V1_0,
    /// v1.1: sum of L2-normalised features; pooling at 512x512.
    V1_1,
}

impl Version {
    /// The size segments are pooled at: v1.0 the label map's own, v1.1
    /// `fixed`.
    pub fn pool_size(self, seg: &dacon_core::Segmentation, fixed: [usize; 2]) -> [usize; 2] {
        match self {
            Version::V1_0 => [seg.height() as usize, seg.width() as usize],
            Version::V1_1 => fixed,
        }
    }
}

/// `fc1 -> ReLU -> fc2`.
#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(w: &mut WeightMap, prefix: &str, device: &Device) -> Result<Mlp> {
        let s1 = shape_of(w, &format!("{prefix}.fc1.weight"), 2)
            .ok_or_else(|| missing(w, &format!("{prefix}.fc1.weight")))?;
        let s2 = shape_of(w, &format!("{prefix}.fc2.weight"), 2)
            .ok_or_else(|| missing(w, &format!("{prefix}.fc2.weight")))?;
        Ok(Mlp {
            fc1: linear(w, &format!("{prefix}.fc1"), s1[1], s1[0], device)?,
            fc2: linear(w, &format!("{prefix}.fc2"), s1[0], s2[0], device)?,
        })
    }

    /// # Shapes
    /// `[N, in]` -> `[N, out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

fn missing(w: &WeightMap, key: &str) -> Error {
    Error::MissingKey {
        path: w.path().to_path_buf(),
        key: key.to_string(),
        hint: String::new(),
    }
}

/// Sizes of a DACoN head, read from its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadConfig {
    /// Released variant.
    pub version: Version,
    /// Segment feature size (`feats_dim`).
    pub feats_dim: usize,
    /// DINO width the MLP expects.
    pub dino_dim: usize,
    /// U-Net widths.
    pub unet: UNetConfig,
}

/// U-Net, DINO MLP and (v1.0) fusion MLP.
#[derive(Module, Debug)]
pub struct DaconHead {
    /// The U-Net.
    pub unet: UNet,
    /// DINO feature reduction.
    pub dino_mlp: Mlp,
    /// v1.0 fusion of the concatenated features.
    pub dino_unet_mlp: Option<Mlp>,
}

impl DaconHead {
    /// Loads a checkpoint; version and sizes come from the tensors.
    ///
    /// # Errors
    /// [`Error::WrongModel`] for a file that is not a DACoN checkpoint,
    /// [`Error::MissingKey`] / [`Error::Shape`] naming the tensor.
    pub fn load(mut w: WeightMap, device: &Device) -> Result<(DaconHead, HeadConfig)> {
        let unet_cfg = UNet::read_config(&w)?;
        let s = shape_of(&w, "dino_mlp.fc1.weight", 2)
            .ok_or_else(|| missing(&w, "dino_mlp.fc1.weight"))?;
        let version = if w.has("dino_unet_mlp.fc1.weight") {
            Version::V1_0
        } else {
            Version::V1_1
        };
        let config = HeadConfig {
            version,
            feats_dim: unet_cfg.output,
            dino_dim: s[1],
            unet: unet_cfg,
        };
        let unet = UNet::load(&mut w, &config.unet, device)?;
        let dino_mlp = Mlp::load(&mut w, "dino_mlp", device)?;
        let dino_unet_mlp = match version {
            Version::V1_0 => Some(Mlp::load(&mut w, "dino_unet_mlp", device)?),
            Version::V1_1 => None,
        };
        Ok((
            DaconHead {
                unet,
                dino_mlp,
                dino_unet_mlp,
            },
            config,
        ))
    }

    /// Version and sizes of a checkpoint, without building the model.
    pub fn inspect(w: &WeightMap) -> Result<HeadConfig> {
        let unet = UNet::read_config(w)?;
        let s = shape_of(w, "dino_mlp.fc1.weight", 2)
            .ok_or_else(|| missing(w, "dino_mlp.fc1.weight"))?;
        let version = if w.has("dino_unet_mlp.fc1.weight") {
            Version::V1_0
        } else {
            Version::V1_1
        };
        Ok(HeadConfig {
            version,
            feats_dim: unet.output,
            dino_dim: s[1],
            unet,
        })
    }

    /// Fuses per-segment DINO features (raw) and U-Net features.
    ///
    /// # Shapes
    /// - dino: `[L, dino_dim]`, unet: `[L, feats_dim]`
    /// - output: `[L, feats_dim]`
    pub fn fuse(&self, dino: Tensor<2>, unet: Tensor<2>) -> Tensor<2> {
        let reduced = self.dino_mlp.forward(dino);
        match &self.dino_unet_mlp {
            Some(mlp) => mlp.forward(Tensor::cat(vec![reduced, unet], 1)),
            None => l2_normalize(reduced) + l2_normalize(unet),
        }
    }
}

/// A parameter of the head, by its official name.
#[derive(Debug, Clone)]
pub enum ParamRef {
    /// A linear weight (burn layout `[in, out]`).
    Linear(Tensor<2>),
    /// A convolution weight `[out, in, k, k]`.
    Conv(Tensor<4>),
    /// A bias.
    Bias(Tensor<1>),
}

impl ParamRef {
    fn values(t: ParamRef) -> Vec<f32> {
        use crate::weights::Values;
        match t {
            ParamRef::Linear(t) => t.transpose().values(),
            ParamRef::Conv(t) => t.values(),
            ParamRef::Bias(t) => t.values(),
        }
    }

    /// The values in PyTorch layout, flattened.
    pub fn value(&self) -> Vec<f32> {
        Self::values(match self {
            ParamRef::Linear(t) => ParamRef::Linear(t.clone().detach()),
            ParamRef::Conv(t) => ParamRef::Conv(t.clone().detach()),
            ParamRef::Bias(t) => ParamRef::Bias(t.clone().detach()),
        })
    }

    /// The gradient in PyTorch layout, flattened.
    pub fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Vec<f32>> {
        Some(Self::values(match self {
            ParamRef::Linear(t) => ParamRef::Linear(t.grad(grads)?),
            ParamRef::Conv(t) => ParamRef::Conv(t.grad(grads)?),
            ParamRef::Bias(t) => ParamRef::Bias(t.grad(grads)?),
        }))
    }
}

impl Mlp {
    fn param(&self, name: &str) -> Option<ParamRef> {
        let (layer, what) = name.split_once('.')?;
        let l = match layer {
            "fc1" => &self.fc1,
            "fc2" => &self.fc2,
            _ => return None,
        };
        match what {
            "weight" => Some(ParamRef::Linear(l.weight.val())),
            "bias" => l.bias.as_ref().map(|b| ParamRef::Bias(b.val())),
            _ => None,
        }
    }
}

impl DaconHead {
    /// The parameter with the official name `name` (e.g.
    /// `dino_mlp.fc1.weight`, `unet.final_conv.bias`).
    pub fn param(&self, name: &str) -> Option<ParamRef> {
        if let Some(rest) = name.strip_prefix("dino_mlp.") {
            return self.dino_mlp.param(rest);
        }
        if let Some(rest) = name.strip_prefix("dino_unet_mlp.") {
            return self.dino_unet_mlp.as_ref()?.param(rest);
        }
        self.unet.param(name.strip_prefix("unet.")?)
    }
}

/// `x / (||x|| + 1e-6)` per row, as the official `l2_normalize`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    // Clamping the squared norm far below any real one keeps the values and
    // gives a zero row a zero gradient instead of differentiating sqrt at 0.
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .clamp_min(1e-30)
        .sqrt()
        + 1e-6;
    x / norm
}
