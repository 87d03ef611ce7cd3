//! The error type of the neural engine.

use std::path::PathBuf;

/// What can go wrong loading weights or running the models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The weight file could not be read.
    #[error("{}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
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
    /// The file is not the kind of weights expected.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An error of the model-free core.
    #[error(transparent)]
    Core(#[from] dacon_core::Error),
}

/// Result alias of the neural crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
