//! A frame ready for colouring: its line art and its segments, made the same
//! way by every command.

use std::path::Path;

use crate::error::{Error, Result, ResultExt};
use crate::gaps::{Closing, MAX_CLOSE_GAP};
use crate::lineart::LineArt;
use crate::segment::Segmentation;

/// How anti-aliased or scanned line art is binarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// At this ink level (see [`LineArt::binarize`]).
    Ink(u8),
    /// At a level chosen per frame, keeping faint thin strokes closed (see
    /// [`LineArt::binarize_auto`]).
    Auto,
}

/// How line art is prepared before it is segmented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineOptions {
    /// Binarise anti-aliased line art first; `None` keeps the official rule.
    pub threshold: Option<Threshold>,
    /// Close gaps in the lines up to this many pixels wide (see
    /// [`crate::gaps`]); `None` or 0 segments exactly as the official
    /// code. (Where a dataset's own labels would be used, as in
    /// [`crate::eval::run_task`], `Some(0)` asks to segment the line art
    /// without closing instead.)
    pub close_gaps: Option<u32>,
}

impl LineOptions {
    /// Fails with [`Error::InvalidArgument`] when an option is out of range.
    pub fn check(&self) -> Result<()> {
        if let Some(px) = self.close_gaps {
            if px > MAX_CLOSE_GAP {
                return Err(Error::InvalidArgument {
                    name: "gap closing distance",
                    reason: format!(
                        "{px} px is more than the {MAX_CLOSE_GAP} px it can close; use 4-16"
                    ),
                });
            }
        }
        if self.threshold == Some(Threshold::Ink(0)) {
            return Err(Error::InvalidArgument {
                name: "line threshold",
                reason: "0 would make every pixel a line; use 1-255 or auto".into(),
            });
        }
        Ok(())
    }

    /// Applies the binarisation to `art` and checks that something is left
    /// to segment.
    ///
    /// # Errors
    /// [`crate::Error::EmptyLineArt`] when binarising left no line or no
    /// region; [`Error::InvalidArgument`] as [`LineOptions::check`].
    pub fn prepare(&self, art: &mut LineArt) -> Result<()> {
        self.check()?;
        match self.threshold {
            None => return Ok(()),
            Some(Threshold::Ink(t)) => art.binarize(t),
            Some(Threshold::Auto) => {
                art.binarize_auto();
            }
        }
        art.check_not_empty()
    }
}

/// A frame ready for matching: its line art and its segments.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The line art, binarised when the options say so (what engines see).
    pub art: LineArt,
    /// Its segmentation (computed, or the dataset's own). Pixels of gap
    /// closings carry a neighbouring segment's label, never 0.
    pub seg: Segmentation,
    /// The gaps closed while segmenting (empty unless asked for).
    pub closings: Vec<Closing>,
    /// The line art as drawn, kept when binarising changed it, for outputs
    /// that show the original soft lines.
    pub drawn: Option<LineArt>,
}

impl Frame {
    /// A frame of line art and its segmentation, without closings.
    pub fn new(art: LineArt, seg: Segmentation) -> Frame {
        Frame {
            art,
            seg,
            closings: Vec::new(),
            drawn: None,
        }
    }

    /// The line art as drawn (before binarising).
    pub fn drawn(&self) -> &LineArt {
        self.drawn.as_ref().unwrap_or(&self.art)
    }

    /// Reads line art, prepares it and segments it.
    ///
    /// # Errors
    /// Read and decode errors, [`crate::Error::EmptyLineArt`] and
    /// [`crate::Error::TooManySegments`], naming the file.
    pub fn open(line: &Path, opts: &LineOptions) -> Result<Frame> {
        opts.check()?;
        let art = read_line_art(line, opts)?;
        Frame::from_line_art(art, opts).at(line)
    }

    /// Reads line art and its given label image (a dataset's own
    /// segmentation), checking that they cover the same canvas. Gap closing
    /// does not apply: the labels are given.
    ///
    /// # Errors
    /// Read and decode errors naming the file, [`crate::Error::SizeMismatch`]
    /// naming the line art.
    pub fn open_labelled(line: &Path, labels: &Path, opts: &LineOptions) -> Result<Frame> {
        // The labels are given: the line art need not segment on its own.
        let art = LineArt::read(line)?;
        let (art, drawn) = prepared(art, opts).at(line)?;
        let seg = Segmentation::open(labels)?;
        seg.check_size(art.width(), art.height()).at(line)?;
        Ok(Frame {
            drawn,
            ..Frame::new(art, seg)
        })
    }

    /// Prepares and segments line art already in memory.
    ///
    /// # Errors
    /// As [`Frame::open`], without a path.
    pub fn from_line_art(art: LineArt, opts: &LineOptions) -> Result<Frame> {
        let (art, drawn) = prepared(art, opts)?;
        let (seg, closings) = match opts.close_gaps {
            Some(px) if px > 0 => Segmentation::from_line_art_closing(&art, px)?,
            _ => (Segmentation::from_line_art(&art)?, Vec::new()),
        };
        Ok(Frame {
            art,
            seg,
            closings,
            drawn,
        })
    }
}

/// Reads line art; the check for lines and regions waits for binarising
/// when the options binarise.
fn read_line_art(line: &Path, opts: &LineOptions) -> Result<LineArt> {
    if opts.threshold.is_some() {
        LineArt::read(line)
    } else {
        LineArt::open(line)
    }
}

/// The prepared line art, and the drawn one when preparing changed it.
fn prepared(art: LineArt, opts: &LineOptions) -> Result<(LineArt, Option<LineArt>)> {
    if opts.threshold.is_none() {
        opts.check()?;
        return Ok((art, None));
    }
    // An alpha channel opaque everywhere carries no ink to threshold.
    let mut art = art;
    art.read_opaque_as_paper();
    let mut p = art.clone();
    opts.prepare(&mut p)?;
    Ok((p, Some(art)))
}
