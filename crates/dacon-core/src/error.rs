//! The error type of the core crate.
//!
//! Pure functions (segmentation, colour tables, rendering, metrics) do not
//! know which file their data came from: their errors say what is wrong, and
//! the caller that read the file attaches its path once with
//! [`Error::with_path`]. Causes (an I/O error, an image decoder's error) are
//! kept as [`std::error::Error::source`], never copied into the message, so a
//! chain printer (`anyhow`'s `{:#}`) shows each reason once.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the model-free core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an image this build can decode, or it is damaged.
    #[error("{}: cannot decode image", path.display())]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// What the decoder said.
        #[source]
        source: image::ImageError,
    },
    /// The file's format is not one dacon reads.
    #[error("{}: unknown image format (expected PNG, TGA or TIFF)", path.display())]
    UnknownFormat {
        /// The file concerned.
        path: PathBuf,
    },
    /// The image could not be encoded.
    #[error("{}: cannot encode image", path.display())]
    Encode {
        /// The file concerned.
        path: PathBuf,
        /// What the encoder said.
        #[source]
        source: image::ImageError,
    },
    /// Two images that must cover the same canvas differ in size.
    #[error(
        "size {}x{} differs from the {}x{} of the frame it belongs to",
        actual[0], actual[1], expected[0], expected[1]
    )]
    SizeMismatch {
        /// Width and height of the frame.
        expected: [u32; 2],
        /// Width and height found.
        actual: [u32; 2],
    },
    /// The line art has nothing to segment.
    #[error("empty line art: {reason}")]
    EmptyLineArt {
        /// Why it is unusable.
        reason: &'static str,
    },
    /// More segments than a 24-bit label image can hold.
    #[error("{count} segments exceed the 16777215 a 24-bit label image can hold")]
    TooManySegments {
        /// How many segments were found (at least).
        count: u64,
    },
    /// A colour table is malformed.
    #[error("invalid colour table: {reason}")]
    ColorTable {
        /// What is wrong with it.
        reason: String,
    },
    /// A confidence sidecar (`NAME.confidence.json`) is malformed.
    #[error("invalid confidence sidecar: {reason}")]
    Sidecar {
        /// What is wrong with it.
        reason: String,
    },
    /// A segment has no colour in the table used for rendering or scoring.
    #[error("segment {segment} has no colour")]
    MissingColor {
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
    /// An engine was asked to colour a frame without any reference.
    #[error("no reference to colour from; give at least one coloured frame")]
    NoReferences,
    /// Invalid argument value given by the caller (not the data).
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The option concerned.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// No frame of that name in the cut.
    #[error("no frame named {name:?} in this cut")]
    UnknownFrame {
        /// The name asked for.
        name: String,
    },
    /// An edit based on an older state of a frame (another editor changed it
    /// since).
    #[error("frame {frame} changed since version {expected} (now {current}); reload it")]
    Conflict {
        /// The frame.
        frame: String,
        /// The version the edit was based on.
        expected: u64,
        /// The frame's version now.
        current: u64,
    },
    /// A change to an approved frame.
    #[error("frame {frame} is approved; reopen it to change it")]
    Approved {
        /// The frame.
        frame: String,
    },
    /// An error about the data of one file.
    #[error("{}", path.display())]
    WithPath {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
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

    /// Names the file the error is about, unless it already names one.
    #[must_use]
    pub fn with_path(self, path: impl AsRef<Path>) -> Self {
        if self.path().is_some() {
            return self;
        }
        Error::WithPath {
            path: path.as_ref().to_path_buf(),
            source: Box::new(self),
        }
    }

    /// The file the error is about, if it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Decode { path, .. }
            | Error::UnknownFormat { path }
            | Error::Encode { path, .. }
            | Error::Layout { path, .. }
            | Error::WithPath { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Result alias of the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaching a path to the error of a fallible core call.
pub trait ResultExt<T> {
    /// [`Error::with_path`] on the error.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| e.with_path(path))
    }
}

/// The message of an error and each of its causes joined by `": "`, as
/// `anyhow`'s `{:#}` prints them, but each reason once: the variants here
/// never repeat their cause's message, while some libraries' errors do
/// (burn's pickle reader prints its cause and also returns it as the
/// source), so a cause whose message already ends the text is left out.
/// Used by the CLI and the server's JSON errors.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !text.ends_with(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        cur = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_attached_once_and_every_reason_shown_once() {
        let e = Error::MissingColor { segment: 3 }
            .with_path("t.json")
            .with_path("other.json");
        assert_eq!(chain(&e), "t.json: segment 3 has no colour");
        let io = Error::io(
            Path::new("big.png"),
            std::io::Error::other("File too large"),
        );
        assert_eq!(chain(&io.with_path("x")), "big.png: File too large");
    }

    /// An error that prints its cause in its own message and also returns it
    /// as its source, as burn's pickle reader does.
    #[derive(Debug, thiserror::Error)]
    #[error("pickle: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_repeated_by_its_wrapper_is_printed_once() {
        let inner = std::io::Error::other("nesting exceeds 1000 levels");
        let e = Error::io(Path::new("w.pth"), std::io::Error::other(Repeats(inner)));
        assert_eq!(chain(&e), "w.pth: pickle: nesting exceeds 1000 levels",);
    }
}
