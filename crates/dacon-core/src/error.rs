//! The error type of the core crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the model-free core.
///
/// Variants that concern a file carry its path so that a batch job can report
/// `path: problem` and move on to the next frame.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not an image this build can decode, or it is damaged.
    #[error("{}: cannot decode image: {message}", path.display())]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// The image could not be encoded.
    #[error("{}: cannot encode image: {message}", path.display())]
    Encode {
        /// The file concerned.
        path: PathBuf,
        /// What the encoder said.
        message: String,
    },
    /// Two images that must cover the same canvas differ in size.
    #[error("{what}: size {actual_w}x{actual_h} differs from the {expected_w}x{expected_h} of the frame it belongs to")]
    SizeMismatch {
        /// Which image was wrong (usually its path).
        what: String,
        /// Width of the line art.
        expected_w: u32,
        /// Height of the line art.
        expected_h: u32,
        /// Width found.
        actual_w: u32,
        /// Height found.
        actual_h: u32,
    },
    /// The line art has nothing to segment.
    #[error("{what}: empty line art: {reason}")]
    EmptyLineArt {
        /// Which image (usually its path).
        what: String,
        /// Why it is unusable.
        reason: String,
    },
    /// More segments than a 24-bit label image can hold.
    #[error("{count} segments exceed the 16777215 a 24-bit label image can hold")]
    TooManySegments {
        /// How many segments were found.
        count: u64,
    },
    /// A colour table is malformed.
    #[error("{what}: invalid colour table: {reason}")]
    ColorTable {
        /// Which table (usually its path).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment has no colour in the table used for rendering or scoring.
    #[error("{what}: segment {segment} has no colour")]
    MissingColor {
        /// Which table (usually its path).
        what: String,
        /// The 1-based segment id.
        segment: u32,
    },
    /// A dataset folder does not have the expected layout.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is missing or inconsistent.
        reason: String,
    },
    /// Invalid argument value given by the caller (not the data).
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The option concerned.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn layout(path: &Path, reason: impl Into<String>) -> Self {
        Error::Layout {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
