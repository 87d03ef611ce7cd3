//! The PaintBucket-Character metrics, as the official DACoN evaluation
//! defines them (checked against the parity vectors' `meta.json`).
//!
//! Per frame: a segment is correct only when its predicted RGBA equals the
//! ground truth exactly; pixel metrics weight segments by their pixel count at
//! the label image's resolution (line pixels excluded); background is
//! [`BACKGROUND`]. Frames are then averaged with equal weight.

use serde::{Deserialize, Serialize};

use crate::color_table::{ColorTable, BACKGROUND};
use crate::error::{Error, Result};
use crate::segment::Segmentation;

/// Segments of at most this many pixels are left out of Acc-Thresh.
pub const SMALL_SEGMENT_PIXELS: u64 = 10;

/// Metrics of one frame, or their mean over frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// Correct segments / segments.
    pub acc: f64,
    /// The same over segments of more than 10 pixels.
    pub acc_thresh: f64,
    /// Correct pixels / pixels of all segments.
    pub pix_acc: f64,
    /// Correct pixels / pixels, over segments whose truth is not background.
    pub pix_fg_acc: f64,
    /// Background pixel IoU: TP / (TP + FP + FN), pixels.
    pub pix_bg_miou: f64,
    /// Background IoU counted in segments.
    pub seg_bg_miou: f64,
}

/// Counts behind a frame's [`Metrics`], for reports on missing predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FrameCounts {
    /// Segments in the frame.
    pub segments: u32,
    /// Segments predicted correctly.
    pub correct: u32,
    /// Segments the prediction had no colour for (counted wrong).
    pub missing: u32,
}

/// Scores `pred` against `truth` on the segments of `seg`.
///
/// A segment absent from `pred` counts as wrong. Ratios with an empty
/// denominator (no foreground, no background anywhere) are 1, as in the
/// official code's background IoU.
///
/// # Errors
/// [`Error::MissingColor`] when `truth` lacks a segment.
pub fn score_frame(
    seg: &Segmentation,
    truth: &ColorTable,
    pred: &ColorTable,
) -> Result<(Metrics, FrameCounts)> {
    truth.check_covers(seg)?;
    let counts = seg.pixel_counts();
    let (mut ok, mut ok_big, mut big) = (0u64, 0u64, 0u64);
    let (mut pix, mut pix_ok, mut fg, mut fg_ok) = (0u64, 0u64, 0u64, 0u64);
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    let (mut stp, mut sfp, mut sfn) = (0u64, 0u64, 0u64);
    let mut missing = 0u32;
    for id in 1..=seg.count() {
        let n = counts[id as usize];
        let t = truth.get(id).ok_or(Error::MissingColor { segment: id })?;
        let p = pred.get(id);
        if p.is_none() {
            missing += 1;
        }
        let correct = p == Some(t);
        let t_bg = t == BACKGROUND;
        let p_bg = p == Some(BACKGROUND);
        ok += u64::from(correct);
        pix += n;
        if correct {
            pix_ok += n;
        }
        if n > SMALL_SEGMENT_PIXELS {
            big += 1;
            ok_big += u64::from(correct);
        }
        if !t_bg {
            fg += n;
            if correct {
                fg_ok += n;
            }
        }
        match (t_bg, p_bg) {
            (true, true) => {
                tp += n;
                stp += 1;
            }
            (false, true) => {
                fp += n;
                sfp += 1;
            }
            (true, false) => {
                fneg += n;
                sfn += 1;
            }
            (false, false) => {}
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let m = Metrics {
        acc: ratio(ok, u64::from(seg.count())),
        acc_thresh: ratio(ok_big, big),
        pix_acc: ratio(pix_ok, pix),
        pix_fg_acc: ratio(fg_ok, fg),
        pix_bg_miou: ratio(tp, tp + fp + fneg),
        seg_bg_miou: ratio(stp, stp + sfp + sfn),
    };
    Ok((
        m,
        FrameCounts {
            segments: seg.count(),
            correct: ok as u32,
            missing,
        },
    ))
}

impl Metrics {
    /// The mean of per-frame metrics, each frame weighted equally; `None`
    /// for no frame.
    pub fn mean<'a>(frames: impl IntoIterator<Item = &'a Metrics>) -> Option<Metrics> {
        let mut n = 0usize;
        let mut s = Metrics::default();
        for m in frames {
            n += 1;
            s.acc += m.acc;
            s.acc_thresh += m.acc_thresh;
            s.pix_acc += m.pix_acc;
            s.pix_fg_acc += m.pix_fg_acc;
            s.pix_bg_miou += m.pix_bg_miou;
            s.seg_bg_miou += m.seg_bg_miou;
        }
        (n > 0).then(|| {
            let k = n as f64;
            Metrics {
                acc: s.acc / k,
                acc_thresh: s.acc_thresh / k,
                pix_acc: s.pix_acc / k,
                pix_fg_acc: s.pix_fg_acc / k,
                pix_bg_miou: s.pix_bg_miou / k,
                seg_bg_miou: s.seg_bg_miou / k,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_frame() {
        // Segments: 1 (12 px, bg), 2 (3 px, red), 3 (5 px, bg); one line px.
        let mut labels = vec![1u32; 12];
        labels.extend([2, 2, 2]);
        labels.extend([3; 5]);
        labels.push(0);
        let seg = Segmentation::from_labels(21, 1, labels);
        let red = [255, 0, 0, 255];
        let truth = ColorTable::from_colors([BACKGROUND, red, BACKGROUND]);
        let mut pred = ColorTable::default();
        pred.set(1, BACKGROUND);
        pred.set(2, BACKGROUND); // wrong, predicted background
                                 // segment 3 missing -> wrong
        let (m, c) = score_frame(&seg, &truth, &pred).unwrap();
        assert_eq!(c.missing, 1);
        assert_eq!(c.correct, 1);
        assert!((m.acc - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.acc_thresh - 1.0).abs() < 1e-12); // only segment 1 is > 10 px
        assert!((m.pix_acc - 12.0 / 20.0).abs() < 1e-12);
        assert_eq!(m.pix_fg_acc, 0.0);
        // bg IoU in pixels: TP 12, FP 3, FN 5.
        assert!((m.pix_bg_miou - 12.0 / 20.0).abs() < 1e-12);
        assert!((m.seg_bg_miou - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn mean_weights_frames_equally() {
        let a = Metrics {
            acc: 1.0,
            ..Default::default()
        };
        let b = Metrics::default();
        assert_eq!(Metrics::mean([&a, &b]).unwrap().acc, 0.5);
        assert!(Metrics::mean([]).is_none());
    }
}
