//! Scoring predictions on a benchmark layout, per frame, per character and
//! overall (frames weighted equally, as the official evaluation).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::color_table::ColorTable;
use crate::dataset::{Clip, FrameFiles};
use crate::engine::{Engine, Prediction, Reference};
use crate::error::{Error, Result};
use crate::frame::{Frame, LineOptions};
use crate::metrics::{score_frame, FrameCounts, Metrics};
use crate::protocol::{RefSource, Task};
use crate::segment::Segmentation;

/// The score of one target frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

    /// The frames of reports written by [`Report::to_json`] (the shards of
    /// one evaluation), merged; a frame scored twice is an error, since
    /// shards never overlap.
    ///
    /// # Errors
    /// [`Error::Layout`] naming the file that is not a report or repeats a
    /// frame.
    pub fn merge(paths: &[std::path::PathBuf]) -> Result<Report> {
        let mut frames: Vec<FrameScore> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::layout(p, format!("not a report: {e}")))?;
            let per: Vec<FrameScore> = v
                .get("per_frame")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| Error::layout(p, format!("not a report: {e}")))?
                .ok_or_else(|| Error::layout(p, "not a report: no per_frame"))?;
            for f in per {
                if !seen.insert((f.clip.clone(), f.frame.clone())) {
                    return Err(Error::layout(
                        p,
                        format!("frame {}/{} is scored twice", f.clip, f.frame),
                    ));
                }
                frames.push(f);
            }
        }
        // The order of an unsharded run (clips, then frames, by name), so
        // the means are summed in the same order and agree to the last bit.
        frames.sort_by(|a, b| (&a.clip, &a.frame).cmp(&(&b.clip, &b.frame)));
        Ok(Report { frames })
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
    let seg = f
        .seg
        .as_ref()
        .ok_or_else(|| Error::layout(&f.line, "no labels in seg/"))?;
    Ok((Segmentation::open(seg)?, truth_table(clip, target)?))
}

/// The dataset's colour table of frame `target` of `clip`.
///
/// # Errors
/// [`Error::Layout`] when the clip was opened without it; read errors.
pub fn truth_table(clip: &Clip, target: usize) -> Result<ColorTable> {
    let f = &clip.frames[target];
    let table = f
        .table
        .as_ref()
        .ok_or_else(|| Error::layout(&f.line, "no colour table in seg/"))?;
    ColorTable::open(table)
}

/// A frame of an evaluation clip with the dataset's own labels.
///
/// # Errors
/// [`Error::Layout`] when the frame has no labels; read errors.
pub fn labelled_frame(files: &FrameFiles) -> Result<Frame> {
    let labels = files
        .seg
        .as_ref()
        .ok_or_else(|| Error::layout(&files.line, "no labels in seg/"))?;
    Frame::open_labelled(&files.line, labels, &LineOptions::default())
}

/// An engine's answer to one task.
#[derive(Debug)]
pub struct TaskRun {
    /// The target's labels (the dataset's).
    pub seg: Segmentation,
    /// The prediction.
    pub prediction: Prediction,
    /// Time spent in the engine (features of target and references, and
    /// matching), without reading files.
    pub engine_time: Duration,
}

/// Runs `engine` on one task of `clip`: the target and its references with
/// the dataset's labels, references coloured by their tables.
///
/// With `line` options other than the default, the target is instead
/// segmented from its line art with them (binarised, gaps closed) as in
/// production, and the prediction is carried over to the dataset's labels
/// ([`Segmentation::majority_of`]) so that it is scored on the same
/// segments whatever the preparation. References keep the dataset's labels
/// and tables: a painted reference is clean by definition.
///
/// # Errors
/// Read errors of the frames and tables; the engine's errors.
pub fn run_task<E: Engine>(
    engine: &E,
    clip: &Clip,
    task: &Task,
    line: &LineOptions,
) -> Result<TaskRun, E::Error> {
    let files = &clip.frames[task.target];
    let labelled = labelled_frame(files)?;
    // The dataset's labels, kept aside when the target is re-segmented.
    let (target, labels) = if *line == LineOptions::default() {
        (labelled, None)
    } else {
        (Frame::open(&files.line, line)?, Some(labelled.seg))
    };
    let mut refs = Vec::with_capacity(task.refs.len());
    for r in &task.refs {
        let files = match *r {
            RefSource::Sheet(i) => &clip.refs[i],
            RefSource::Frame(i) => &clip.frames[i],
        };
        let table = files
            .table
            .as_ref()
            .ok_or_else(|| Error::layout(&files.line, "reference without a colour table"))?;
        refs.push((labelled_frame(files)?, ColorTable::open(table)?));
    }
    let t0 = Instant::now();
    let target_features = engine.features(&target)?;
    let ref_features: Vec<E::Features> = refs
        .iter()
        .map(|(f, _)| engine.features(f))
        .collect::<Result<_, _>>()?;
    let references: Vec<Reference<'_, E::Features>> = ref_features
        .iter()
        .zip(&refs)
        .map(|(features, (_, colors))| Reference { features, colors })
        .collect();
    let prediction = engine.predict(&references, &target_features)?;
    let engine_time = t0.elapsed();
    let (seg, prediction) = match labels {
        Some(seg) => {
            let carried = prediction.carried_over(&seg.majority_of(&target.seg)?);
            (seg, carried)
        }
        None => (target.seg, prediction),
    };
    Ok(TaskRun {
        seg,
        prediction,
        engine_time,
    })
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
    let (metrics, counts) = score_frame(seg, truth, pred)
        .map_err(|e| e.with_path(f.table.as_deref().unwrap_or(&f.line)))?;
    Ok(FrameScore {
        clip: clip.name.clone(),
        frame: f.name.clone(),
        metrics,
        counts,
    })
}
