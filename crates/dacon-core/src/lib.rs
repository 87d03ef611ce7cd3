//! Model-free core of dacon: everything paint-bucket colorization needs that
//! is not a neural network.
//!
//! Data flows one way: [`LineArt`] → [`Segmentation`] → matches →
//! [`ColorTable`] → image ([`render()`]).
//!
//! - [`lineart`]: which pixels are lines and colour traces (the official rule).
//! - [`segment`]: closed regions, colour-trace merging, 24-bit label PNGs.
//! - [`palette`]: per-segment colours and the official JSON tables.
//! - [`render`](mod@render): the official output and compositing layers.
//! - [`metrics`]: the PaintBucket-Character metrics.
//! - [`dataset`]: benchmark and inference folder layouts.
//! - [`protocol`]: keyframe and consecutive evaluation tasks.
//! - [`matcher`]: the interface of colorization engines.
//!
//! This crate does not depend on any ML framework.
#![warn(missing_docs)]

pub mod classic;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod imageio;
pub mod lineart;
pub mod matcher;
pub mod metrics;
pub mod palette;
pub mod protocol;
pub mod render;
pub mod segment;
pub mod synth;

pub use error::{Error, Result};
pub use lineart::LineArt;
pub use matcher::{Confidence, Frame, Matcher, Prediction, Reference};
pub use metrics::Metrics;
pub use palette::{ColorTable, Rgba};
pub use render::{render, Layer, RenderOptions};
pub use segment::{SegmentStats, Segmentation};
