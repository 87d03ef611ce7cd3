//! The DACoN head: U-Net, DINO MLP and fusion. [`HeadConfig::init`] builds
//! it; [`DaconHead::load`] reads a released checkpoint (`dacon_v1_0.pth`,
//! `dacon_v1_1.pth`: every key but `dino.*`) or one of ours into it.

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::keymap::load_into;
use crate::unet::{UNet, UNetConfig};
use crate::weights::{shape_of, WeightMap};

/// The two released variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// `v1_0` and `v1_1`, as the released file names spell them.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1_0 => "v1_0",
            Version::V1_1 => "v1_1",
        })
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "v1_0" => Ok(Version::V1_0),
            "v1_1" => Ok(Version::V1_1),
            _ => Err(format!("unknown DACoN version {s:?}: use v1_0 or v1_1")),
        }
    }
}

/// Sizes of an [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input width.
    pub d_input: usize,
    /// Hidden width.
    pub d_hidden: usize,
    /// Output width.
    pub d_output: usize,
}

impl MlpConfig {
    /// An MLP with PyTorch's default initialisation (random).
    pub fn init(&self, device: &Device) -> Mlp {
        Mlp {
            fc1: LinearConfig::new(self.d_input, self.d_hidden).init(device),
            fc2: LinearConfig::new(self.d_hidden, self.d_output).init(device),
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
    /// # Shapes
    /// `[N, in]` -> `[N, out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

/// Sizes of a DACoN head (defaults: the released ones for ViT-S/14);
/// [`HeadConfig::read`] takes them from a checkpoint.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Released variant.
    #[config(default = "Version::V1_1")]
    pub version: Version,
    /// DINO width the MLP expects.
    #[config(default = 384)]
    pub dino_dim: usize,
    /// Hidden width of the DINO MLP.
    #[config(default = 512)]
    pub dino_hidden: usize,
    /// Hidden width of the v1.0 fusion MLP.
    #[config(default = 512)]
    pub fusion_hidden: usize,
    /// U-Net widths; its output is the segment feature size.
    #[config(default = "UNetConfig::new()")]
    pub unet: UNetConfig,
}

impl HeadConfig {
    /// Segment feature size (`feats_dim`): the U-Net's output, which the
    /// MLPs produce too.
    pub fn feats_dim(&self) -> usize {
        self.unet.output
    }

    /// A head with PyTorch's default initialisation (random).
    pub fn init(&self, device: &Device) -> DaconHead {
        let feats = self.feats_dim();
        DaconHead {
            unet: self.unet.init(device),
            dino_mlp: MlpConfig::new(self.dino_dim, self.dino_hidden, feats).init(device),
            dino_unet_mlp: (self.version == Version::V1_0)
                .then(|| MlpConfig::new(2 * feats, self.fusion_hidden, feats).init(device)),
        }
    }

    /// Version and sizes of a checkpoint: v1.0 has the fusion MLP.
    ///
    /// # Errors
    /// [`Error::WrongModel`] for a file that is not a DACoN checkpoint,
    /// [`Error::MissingKey`] naming an absent MLP tensor.
    pub fn read(w: &WeightMap) -> Result<HeadConfig> {
        let unet = UNetConfig::read(w)?;
        let hidden_and_input = |key: &str| {
            shape_of(w, key, 2).ok_or_else(|| Error::MissingKey {
                path: w.path().to_path_buf(),
                key: key.to_string(),
                hint: String::new(),
            })
        };
        let dino = hidden_and_input("dino_mlp.fc1.weight")?;
        let (version, fusion_hidden) = if w.has("dino_unet_mlp.fc1.weight") {
            (
                Version::V1_0,
                hidden_and_input("dino_unet_mlp.fc1.weight")?[0],
            )
        } else {
            (Version::V1_1, dino[0])
        };
        Ok(HeadConfig {
            version,
            dino_dim: dino[1],
            dino_hidden: dino[0],
            fusion_hidden,
            unet,
        })
    }
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
        let config = HeadConfig::read(&w)?;
        let head = load_into(config.init(device), &mut w)?;
        Ok((head, config))
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
