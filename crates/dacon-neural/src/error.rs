//! The error type of the neural engine.
//!
//! As in the core crate, a variant names the file once and keeps the cause
//! as [`std::error::Error::source`], never copied into its own message, so a
//! chain printer (`anyhow`'s `{:#}`) shows each reason once.

use std::path::PathBuf;

pub use crate::pth::PthError;

/// What can go wrong loading weights or running the models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: cannot read", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder could not be written or created.
    #[error("{}: cannot write", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither a PyTorch checkpoint nor safetensors.
    #[error("{}: not a PyTorch (.pth) or safetensors file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A `torch.save` ZIP checkpoint our reader refuses (malformed, or
    /// beyond the bounds it keeps for untrusted files).
    #[error("{}: cannot read the PyTorch checkpoint", path.display())]
    Pth {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: PthError,
    },
    /// A legacy (pre-1.6) checkpoint that burn's reader refuses.
    #[error("{}: cannot read the legacy PyTorch checkpoint", path.display())]
    LegacyPth {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: burn::store::pytorch_reader::PytorchError,
    },
    /// A safetensors file that cannot be parsed or written.
    #[error("{}: bad safetensors data", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors crate said.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor of a type that is no weight.
    #[error("{}: tensor {key:?} has type {dtype}; only float tensors are weights", path.display())]
    NotFloat {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// Its element type.
        dtype: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("{}: missing tensor {key:?}{hint}", path.display())]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// What the file looks like instead.
        hint: String,
    },
    /// A tensor has the wrong shape.
    #[error("{}: tensor {key:?} has shape {actual:?}, expected {expected:?}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        key: String,
        /// Shape expected by the model.
        expected: Vec<usize>,
        /// Shape in the file.
        actual: Vec<usize>,
    },
    /// The file holds weights of another model than the one asked for (a
    /// backbone given as a DACoN checkpoint, a U-Net of unknown shape).
    #[error("{}: {message}", path.display())]
    WrongModel {
        /// The file.
        path: PathBuf,
        /// What the file is, and what was expected.
        message: String,
    },
    /// A `--device` this build cannot run on.
    #[error("device {name:?}: {why}")]
    Device {
        /// The name as given.
        name: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// An error of the model-free core.
    #[error(transparent)]
    Core(#[from] dacon_core::Error),
}

/// Result alias of the neural crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
