//! Scoring predictions on a benchmark layout, per frame, per character and
//! overall (frames weighted equally, as the official evaluation).

use serde::Serialize;

use crate::dataset::Clip;
use crate::error::{Error, Result};
use crate::metrics::{score_frame, FrameCounts, Metrics};
use crate::palette::ColorTable;
use crate::segment::Segmentation;

/// The score of one target frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameScore {
    /// Character (clip) name.
    pub clip: String,
    /// Frame name.
    pub frame: String,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Segment counts (including predictions missing).
    #[serde(flatten)]
    pub counts: FrameCounts,
}

/// Averages over a group of frames.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The metrics, averaged over frames.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Number of frames.
    pub frames: usize,
    /// Segments scored.
    pub segments: u64,
    /// Segments whose prediction was missing (counted wrong).
    pub missing: u64,
}

/// All frame scores of an evaluation.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per target frame.
    pub frames: Vec<FrameScore>,
}

impl Report {
    fn summarise<'a>(frames: impl Iterator<Item = &'a FrameScore> + Clone) -> Summary {
        Summary {
            metrics: Metrics::mean(frames.clone().map(|f| &f.metrics)).unwrap_or_default(),
            frames: frames.clone().count(),
            segments: frames.clone().map(|f| u64::from(f.counts.segments)).sum(),
            missing: frames.map(|f| u64::from(f.counts.missing)).sum(),
        }
    }

    /// The mean over every frame.
    pub fn overall(&self) -> Summary {
        Self::summarise(self.frames.iter())
    }

    /// The mean per character, sorted by name.
    pub fn per_character(&self) -> Vec<(String, Summary)> {
        let mut names: Vec<&str> = self.frames.iter().map(|f| f.clip.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                (
                    n.to_string(),
                    Self::summarise(self.frames.iter().filter(move |f| f.clip == n)),
                )
            })
            .collect()
    }

    /// `{"overall": {...}, "per_character": {"name": {...}}, "per_frame": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let per: serde_json::Map<String, serde_json::Value> = self
            .per_character()
            .into_iter()
            .map(|(n, s)| (n, serde_json::to_value(s).unwrap_or_default()))
            .collect();
        let mut frames = self.frames.clone();
        frames.sort_by(|a, b| (&a.clip, &a.frame).cmp(&(&b.clip, &b.frame)));
        serde_json::json!({
            "overall": self.overall(),
            "per_character": per,
            "per_frame": frames,
        })
    }
}

/// Loads the dataset's labels and truth of frame `target` of `clip`.
///
/// # Errors
/// [`Error::Layout`] when the clip was opened without them; I/O and decode
/// errors of the files.
pub fn load_truth(clip: &Clip, target: usize) -> Result<(Segmentation, ColorTable)> {
    let f = &clip.frames[target];
    let (Some(seg), Some(table)) = (&f.seg, &f.table) else {
        return Err(Error::layout(
            &clip.dir,
            format!("frame {} has no seg/*.png + .json", f.name),
        ));
    };
    Ok((Segmentation::open(seg)?, ColorTable::open(table)?))
}

/// Scores `pred` on frame `target` of `clip` against the dataset's truth.
pub fn score(
    clip: &Clip,
    target: usize,
    seg: &Segmentation,
    truth: &ColorTable,
    pred: &ColorTable,
) -> Result<FrameScore> {
    let f = &clip.frames[target];
    let what = f
        .table
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| f.name.clone());
    if truth.len() < seg.count() as usize {
        return Err(Error::Layout {
            path: f.table.clone().unwrap_or_default(),
            reason: format!(
                "has {} colours but the labels have {} segments (label/table mismatch)",
                truth.len(),
                seg.count()
            ),
        });
    }
    let (metrics, counts) = score_frame(seg, truth, pred, &what)?;
    Ok(FrameScore {
        clip: clip.name.clone(),
        frame: f.name.clone(),
        metrics,
        counts,
    })
}
