//! Model-free core of dacon: everything paint-bucket colorization needs that
//! is not a neural network.
//!
//! Data flows one way: [`LineArt`] → [`Segmentation`] → matches →
//! [`ColorTable`] → image ([`render()`]).
//!
//! - [`lineart`]: which pixels are lines and colour traces (the official rule).
//! - [`segment`]: closed regions, colour-trace merging, 24-bit label PNGs.
//! - [`frame`]: line art prepared and segmented the same way everywhere.
//! - [`gaps`]: closing small gaps in line art (invisible closing lines).
//! - [`color_table`]: per-segment colours and the official JSON tables.
//! - [`render`](mod@render): the official output and compositing layers.
//! - [`export`]: line, colour-trace and fill layers, and OpenRaster files.
//! - [`metrics`]: the PaintBucket-Character metrics.
//! - [`dataset`]: benchmark and inference folder layouts.
//! - [`protocol`]: keyframe and consecutive evaluation tasks.
//! - [`engine`]: the interface of colorization engines; [`classic`] is the
//!   weight-free one.
//! - [`review`]: a colourist's corrections, approvals and the export of a
//!   reviewed cut.
//! - [`shard`]: splitting a job across the workers of a scheduler.
//! - [`rng`]: the small seeded generator behind every reproducible choice.
//!
//! This crate does not depend on any ML framework.
#![warn(missing_docs)]

pub mod classic;
pub mod color_table;
pub mod colorize;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod eval;
pub mod export;
pub mod frame;
pub mod gaps;
pub mod imageio;
pub mod lineart;
pub mod metrics;
pub mod protocol;
pub mod render;
pub mod review;
pub mod rng;
pub mod segment;
pub mod shard;

pub use color_table::{ColorTable, Rgba};
pub use engine::{Confidence, Engine, Prediction, Reference, Source};
pub use error::{Error, Result, ResultExt};
pub use frame::{Frame, LineOptions};
pub use lineart::LineArt;
pub use metrics::Metrics;
pub use render::{render, Layer, RenderOptions};
pub use segment::{SegmentStats, Segmentation};
