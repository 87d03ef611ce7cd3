//! Turning `--engine/--checkpoint/--dino` into a loaded engine.

use anyhow::{bail, Context, Result};
use dacon_core::classic::ClassicMatcher;
use dacon_neural::DaconEngine;

use crate::args::{EngineArg, EngineOpts, SyntheticModel, VersionArg};

/// A ready engine.
pub enum Engine {
    Classic(ClassicMatcher),
    Dacon(Box<DaconEngine>),
}

impl Engine {
    /// An engine with random weights of a released shape (benchmarks).
    pub fn synthetic(model: SyntheticModel, version: VersionArg) -> Result<Engine> {
        let (dim, depth) = model.shape();
        let engine = DaconEngine::from_weights(
            dacon_neural::synthetic::dacon(dim, version == VersionArg::V1_0),
            dacon_neural::synthetic::dino(dim, depth),
            None,
            &dacon_neural::Device::default(),
        )?;
        Ok(Engine::Dacon(Box::new(engine)))
    }

    /// Validates the options and loads the weights.
    pub fn load(opts: &EngineOpts) -> Result<Engine> {
        let kind = opts.engine.unwrap_or(if opts.checkpoint.is_some() {
            EngineArg::Dacon
        } else {
            EngineArg::Classic
        });
        match kind {
            EngineArg::Classic => {
                if opts.checkpoint.is_some() || opts.dino.is_some() {
                    bail!(
                        "--checkpoint and --dino belong to --engine dacon; drop them or choose it"
                    );
                }
                Ok(Engine::Classic(ClassicMatcher::default()))
            }
            EngineArg::Dacon => {
                let (Some(ckpt), Some(dino)) = (&opts.checkpoint, &opts.dino) else {
                    bail!(
                        "--engine dacon needs --checkpoint (dacon_v1_1.pth) and --dino (e.g. dinov2_vits14_pretrain.pth); \
                         without weights, use the default classic engine"
                    );
                };
                let device = dacon_neural::Device::default();
                let engine = DaconEngine::load(ckpt, dino, opts.dino_heads, &device)
                    .context("loading the DACoN engine")?;
                Ok(Engine::Dacon(Box::new(engine)))
            }
        }
    }
}
