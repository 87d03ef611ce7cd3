use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dacon_neural::describe::{describe, WeightKind};
use hf_hub::api::sync::ApiBuilder;

use dacon_neural::head::Version;
use dacon_neural::keymap::to_weights;

use super::bench::SyntheticModel;

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Say what a weight file is: a DINOv2 backbone (layout, width, depth,
    /// heads, registers) or a DACoN checkpoint (version, sizes), or neither.
    ///
    /// Exit code 1 when the file is neither.
    ///
    /// Example: dacon weights check dacon_v1_1.pth
    Check {
        /// `.pth` or `.safetensors` files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Write random weights with the shapes of the released models (a
    /// DINOv2 and a DACoN checkpoint, safetensors) for benchmarks of any
    /// command without downloads. Results are meaningless colours.
    ///
    /// Example: dacon weights synthetic --model vits14 --out /tmp/w
    Synthetic {
        /// Backbone shape.
        #[arg(long, value_enum, default_value_t = SyntheticModel::Vits14)]
        model: SyntheticModel,
        /// DACoN version of the checkpoint: v1_0 or v1_1.
        #[arg(long = "dacon-version", default_value_t = Version::V1_1)]
        dacon_version: Version,
        /// Output folder.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: PathBuf,
    },
    /// Download DINOv2 weights from the Hugging Face hub into its standard
    /// cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    ///
    /// Names: dinov2-small, dinov2-base, dinov2-large, dinov2-giant, and
    /// dinov2-reg4-{small,base,large,giant} (with registers). The endpoint is
    /// `$HF_ENDPOINT` (default `https://huggingface.co`). Prints the path to
    /// pass as `--dino`. The DACoN checkpoints are not on the hub: download
    /// them from the links in the DACoN repository.
    ///
    /// Example: dacon weights fetch dinov2-small
    Fetch {
        /// Models to download.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Cache folder instead of the standard one.
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
}

pub fn run(cmd: &WeightsCommand) -> Result<ExitCode> {
    match cmd {
        WeightsCommand::Check { files } => {
            let mut unknown = false;
            for f in files {
                let kind = describe(f)?;
                unknown |= matches!(kind, WeightKind::Unknown(..));
                println!("{}: {kind}", f.display());
            }
            Ok(if unknown {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        WeightsCommand::Synthetic {
            model,
            dacon_version,
            out,
        } => {
            let (dim, depth) = model.shape();
            std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
            let dino = out.join(format!("dinov2_synthetic_{dim}x{depth}.safetensors"));
            let ckpt = out.join(format!("dacon_synthetic_{dacon_version}.safetensors"));
            // Random weights are made on the CPU: a file is the product, not speed.
            let device = dacon_neural::Device::flex();
            let (dino_config, head_config) = model.configs(*dacon_version);
            to_weights(&dino_config.init(&device), "synthetic DINOv2")
                .save_safetensors(&dino, Default::default())?;
            to_weights(&head_config.init(&device), "synthetic DACoN")
                .save_safetensors(&ckpt, Default::default())?;
            println!("--dino {} --checkpoint {}", dino.display(), ckpt.display());
            Ok(ExitCode::SUCCESS)
        }
        WeightsCommand::Fetch { names, cache } => {
            for n in names {
                let path = fetch(n, cache.clone())?;
                println!("{n}: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The hub repository of a model name.
fn repo_of(name: &str) -> Result<String> {
    let (registers, size) = match name.strip_prefix("dinov2-reg4-") {
        Some(size) => (true, size),
        None => (false, name.strip_prefix("dinov2-").unwrap_or("")),
    };
    if !["small", "base", "large", "giant"].contains(&size) {
        bail!(
            "unknown model {name:?}; choose dinov2-{{small,base,large,giant}} or dinov2-reg4-{{small,base,large,giant}}"
        );
    }
    Ok(if registers {
        format!("facebook/dinov2-with-registers-{size}")
    } else {
        format!("facebook/dinov2-{size}")
    })
}

/// Downloads `config.json` and `model.safetensors`; returns the weights.
fn fetch(name: &str, cache: Option<PathBuf>) -> Result<PathBuf> {
    let repo = repo_of(name)?;
    let mut builder =
        ApiBuilder::from_env().with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if let Some(c) = cache {
        builder = builder.with_cache_dir(c);
    }
    let api = builder
        .build()
        .context("setting up the Hugging Face client")?;
    let model = api.model(repo.clone());
    let mut weights = PathBuf::new();
    for file in ["config.json", "model.safetensors"] {
        let path = model.get(file).with_context(|| {
            format!(
                "cannot download {} (no network? set HF_ENDPOINT for a mirror, or download it elsewhere and pass the file with --dino)",
                model.url(file)
            )
        })?;
        if file == "model.safetensors" {
            weights = std::path::absolute(&path).unwrap_or(path);
        }
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_map_to_hub_repositories() {
        assert_eq!(repo_of("dinov2-large").unwrap(), "facebook/dinov2-large");
        assert_eq!(
            repo_of("dinov2-reg4-small").unwrap(),
            "facebook/dinov2-with-registers-small"
        );
        assert!(repo_of("dinov3-small").is_err());
    }
}
