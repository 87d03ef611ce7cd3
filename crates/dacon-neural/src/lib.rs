//! The DACoN neural engine: a frozen DINOv2 and the DACoN head (U-Net,
//! MLPs, fusion), on burn.
#![warn(missing_docs)]

pub mod dino;
pub mod error;
mod layers;
mod pth;
pub mod resize;
pub mod weights;

pub use error::{Error, Result};
