//! Saying what a weight file is (`dacon weights check`).

use std::fmt;
use std::path::Path;

use crate::dino::{Dino, DinoConfig, DinoLayout};
use crate::error::Result;
use crate::head::{HeadConfig, Version};
use crate::weights::WeightMap;

/// What a weight file holds.
#[derive(Debug, Clone)]
pub enum WeightKind {
    /// A DINOv2 backbone.
    Dino(DinoLayout, DinoConfig),
    /// A DACoN checkpoint (head without backbone).
    Dacon(HeadConfig),
    /// Neither: number of tensors and a few names.
    Unknown(usize, Vec<String>),
}

/// Reads `path` and recognises its contents.
///
/// # Errors
/// When the file cannot be read as `.pth` or safetensors.
pub fn describe(path: &Path) -> Result<WeightKind> {
    let mut w = WeightMap::open(path)?;
    if let Ok((layout, c)) = Dino::inspect(&mut w, None) {
        return Ok(WeightKind::Dino(layout, c));
    }
    if let Ok(c) = HeadConfig::read(&w) {
        return Ok(WeightKind::Dacon(c));
    }
    let names: Vec<String> = w.keys().take(5).map(str::to_owned).collect();
    Ok(WeightKind::Unknown(w.keys().count(), names))
}

fn model_name(dim: usize) -> &'static str {
    match dim {
        384 => " (ViT-S/14)",
        768 => " (ViT-B/14)",
        1024 => " (ViT-L/14)",
        1536 => " (ViT-G/14)",
        _ => "",
    }
}

impl fmt::Display for WeightKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightKind::Dino(layout, c) => write!(
                f,
                "DINOv2{} backbone, {} layout: width {}, {} blocks, {} heads, {} feed-forward {}, patch {}, position grid {} ({} px), {} register tokens",
                model_name(c.embed_dim),
                match layout {
                    DinoLayout::TorchHub => "torch-hub",
                    DinoLayout::HuggingFace => "Hugging Face",
                },
                c.embed_dim,
                c.depth,
                c.num_heads,
                if c.swiglu { "SwiGLU" } else { "GELU MLP" },
                c.mlp_hidden,
                c.patch,
                c.pos_grid,
                c.pos_grid * c.patch,
                c.registers
            ),
            WeightKind::Dacon(c) => write!(
                f,
                "DACoN {} checkpoint: feature size {}, U-Net {} (bottleneck {}), for a DINOv2 of width {}{}",
                match c.version {
                    Version::V1_0 => "v1.0",
                    Version::V1_1 => "v1.1",
                },
                c.feats_dim(),
                c.unet.hidden.iter().map(ToString::to_string).collect::<Vec<_>>().join("-"),
                2 * c.unet.hidden.last().copied().unwrap_or(0),
                c.dino_dim,
                model_name(c.dino_dim)
            ),
            WeightKind::Unknown(n, names) => write!(
                f,
                "neither DINOv2 nor DACoN weights: {n} tensors, e.g. {}",
                names.join(", ")
            ),
        }
    }
}
