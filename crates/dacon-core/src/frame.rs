//! A frame ready for colouring: its line art and its segments, made the same
//! way by every command.

use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::lineart::LineArt;
use crate::segment::Segmentation;

/// How line art is prepared before it is segmented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineOptions {
    /// Binarise anti-aliased line art at this ink level first (see
    /// [`LineArt::binarize`]); `None` keeps the official rule.
    pub threshold: Option<u8>,
}

impl LineOptions {
    /// Applies the options to `art` and checks that something is left to
    /// segment.
    ///
    /// # Errors
    /// [`crate::Error::EmptyLineArt`] when binarising left no line or no
    /// region.
    pub fn prepare(&self, art: &mut LineArt) -> Result<()> {
        if let Some(t) = self.threshold {
            art.binarize(t);
            art.check_not_empty()?;
        }
        Ok(())
    }
}

/// A frame ready for matching: its line art and its segments.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The line art as drawn (binarised when the options say so).
    pub art: LineArt,
    /// Its segmentation (computed, or the dataset's own).
    pub seg: Segmentation,
}

impl Frame {
    /// Reads line art, prepares it and segments it.
    ///
    /// # Errors
    /// Read and decode errors, [`crate::Error::EmptyLineArt`] and
    /// [`crate::Error::TooManySegments`], naming the file.
    pub fn open(line: &Path, opts: &LineOptions) -> Result<Frame> {
        let art = LineArt::open(line)?;
        Frame::from_line_art(art, opts).at(line)
    }

    /// Reads line art and its given label image (a dataset's own
    /// segmentation), checking that they cover the same canvas.
    ///
    /// # Errors
    /// Read and decode errors naming the file, [`crate::Error::SizeMismatch`]
    /// naming the line art.
    pub fn open_labelled(line: &Path, labels: &Path, opts: &LineOptions) -> Result<Frame> {
        let mut art = LineArt::open(line)?;
        opts.prepare(&mut art).at(line)?;
        let seg = Segmentation::open(labels)?;
        seg.check_size(art.width(), art.height()).at(line)?;
        Ok(Frame { art, seg })
    }

    /// Prepares and segments line art already in memory.
    ///
    /// # Errors
    /// As [`Frame::open`], without a path.
    pub fn from_line_art(mut art: LineArt, opts: &LineOptions) -> Result<Frame> {
        opts.prepare(&mut art)?;
        let seg = Segmentation::from_line_art(&art)?;
        Ok(Frame { art, seg })
    }
}
