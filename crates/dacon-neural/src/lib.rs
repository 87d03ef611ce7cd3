//! The DACoN neural engine: a frozen DINOv2 and the DACoN head (U-Net,
//! MLPs, fusion), on burn.
#![warn(missing_docs)]

pub mod any_engine;
pub mod cache;
pub mod describe;
pub mod device;
pub mod dino;
pub mod engine;
pub mod error;
mod layers;
pub mod model;
pub mod pool;
mod pth;
pub mod resize;
pub mod synthetic;
pub mod train;
pub mod unet;
pub mod weights;

pub use error::{Error, Result};

pub use any_engine::{AnyEngine, AnyFeatures};
pub use burn::tensor::Device;
pub use device::DeviceChoice;
pub use engine::{DaconEngine, SegmentFeatures};
