//! The DACoN neural engine: a frozen DINOv2 and the DACoN head (U-Net,
//! MLPs, fusion), on burn.
//!
//! Models are built by their configs ([`dino::DinoConfig`],
//! [`head::HeadConfig`], [`unet::UNetConfig`]) and filled from weight files
//! ([`weights::WeightMap`]) under the official PyTorch names by
//! [`keymap::load_into`]; [`DaconEngine`] colours frames and
//! [`train::Trainer`] fine-tunes the head.
#![warn(missing_docs)]

pub mod any_engine;
pub mod cache;
mod cpu;
mod cpu_train;
pub mod describe;
pub mod device;
pub mod dino;
pub mod engine;
pub mod error;
pub mod head;
pub mod keymap;
pub mod pool;
mod pth;
pub mod resize;
pub mod train;
pub mod unet;
pub mod weights;

pub use error::{Error, Result};

pub use any_engine::{AnyEngine, AnyFeatures};
pub use burn::tensor::Device;
pub use device::DeviceChoice;
pub use engine::{DaconEngine, SegmentFeatures};
