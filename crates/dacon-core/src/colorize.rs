//! Colouring a cut: the main job, shared by the command line and the server.
//!
//! A clip's frames (`line/`) are coloured from its references (`ref/line` +
//! `ref/gt`). Independently, in parallel; or, with `propagate`, in order,
//! every finished frame joining the references of the next ones (the last
//! `window` of them), the consecutive-frame workflow of a paint department.
//!
//! Per frame the outputs are `NAME.json` (official prediction table),
//! `NAME.confidence.json` (similarity, margin and source reference segment
//! of every segment), `NAME.refs.json` (which frame each reference index of
//! the sidecar is) and `NAME.png`, written in that order and each
//! atomically, so a frame whose image exists is complete: a killed job
//! resumes by reading those back instead of colouring again. `review.json`
//! (least confident segments first) is rebuilt from every frame's sidecar at
//! the end, so it covers resumed frames too.
//!
//! With a corrections folder ([`crate::review`]), a frame's colours are its
//! prediction overlaid with the colourist's corrections, and so are the
//! colours it passes on as a reference; approved frames are never coloured
//! again, whatever `force` or `redo_after` say.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::color_table::{ColorTable, Rgba};
use crate::dataset::{Clip, FrameFiles};
use crate::engine::{Confidence, Engine, Prediction, Reference};
use crate::error::{Error, Result};
use crate::export::Layers;
use crate::frame::{Frame, LineOptions};
use crate::imageio::{remove_stale_temps, write_atomic, write_rgba_png};
use crate::metrics::{score_frame, Metrics};
use crate::render::{render, RenderOptions};
use crate::review::{FrameReview, Review};
use crate::segment::Segmentation;

/// How a cut is coloured.
#[derive(Debug, Clone)]
pub struct ColorizeOptions {
    /// How line art is prepared before segmentation.
    pub line: LineOptions,
    /// Colour frames in order, each finished frame becoming a reference.
    pub propagate: bool,
    /// With `propagate`: how many previous frames stay references (>= 1).
    pub window: usize,
    /// Segments per frame listed in `review.json`.
    pub review: usize,
    /// The image written per frame.
    pub render: RenderOptions,
    /// Colour frames again even when their outputs are complete.
    pub force: bool,
    /// Extra files written per frame.
    pub export: Export,
    /// Colour the frames named after this one again (in name order), as
    /// `force` does for all: "re-colour from here".
    pub redo_after: Option<String>,
    /// A corrections folder (see [`crate::review`]): corrected colours are
    /// kept and passed on, approved frames are left alone.
    pub corrections: Option<PathBuf>,
}

/// Extra files written per coloured frame, beside `NAME.png`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Export {
    /// `NAME.lines.png`, `NAME.traces.png`, `NAME.fills.png`: the line
    /// layer, the colour-trace layer and the fill layer (see
    /// [`crate::export::Layers`]).
    pub layers: bool,
    /// `NAME.ora`: the three layers in one OpenRaster file.
    pub ora: bool,
    /// `NAME.gaps.png`: the line art with the gap closings drawn over it,
    /// for review (with gap closing on).
    pub gap_overlay: bool,
}

impl Export {
    /// Names of the files [`Export::write`] writes for frame `name`.
    pub fn file_names(&self, name: &str, line: &LineOptions) -> Vec<String> {
        let mut names = Vec::new();
        if line.close_gaps.is_some_and(|px| px > 0) {
            names.push(format!("{name}.gaps.json"));
            if self.gap_overlay {
                names.push(format!("{name}.gaps.png"));
            }
        }
        if self.layers {
            for suffix in ["lines", "traces", "fills"] {
                names.push(format!("{name}.{suffix}.png"));
            }
        }
        if self.ora {
            names.push(format!("{name}.ora"));
        }
        names
    }

    /// Writes the files asked for, for a frame coloured with `colors`; and
    /// `NAME.gaps.json` whenever `line` closes gaps. Each file atomically.
    ///
    /// # Errors
    /// Rendering, encoding and I/O errors naming the file.
    pub fn write(
        &self,
        out: &Path,
        name: &str,
        frame: &Frame,
        colors: &ColorTable,
        line: &LineOptions,
    ) -> Result<()> {
        if let Some(px) = line.close_gaps.filter(|&px| px > 0) {
            let path = out.join(format!("{name}.gaps.json"));
            write_atomic(&path, gaps_json(frame, px).as_bytes())?;
            if self.gap_overlay {
                let img = crate::gaps::overlay(frame.drawn(), &frame.closings);
                write_rgba_png(&out.join(format!("{name}.gaps.png")), &img)?;
            }
        }
        if !self.layers && !self.ora {
            return Ok(());
        }
        let layers = Layers::new(&frame.seg, colors, frame.drawn(), &frame.art)?;
        if self.layers {
            for (suffix, img) in [
                ("lines", &layers.lines),
                ("traces", &layers.traces),
                ("fills", &layers.fills),
            ] {
                write_rgba_png(&out.join(format!("{name}.{suffix}.png")), img)?;
            }
        }
        if self.ora {
            layers.save_ora(&out.join(format!("{name}.ora")))?;
        }
        Ok(())
    }
}

/// `NAME.gaps.json`: the canvas, the closing distance and every closing
/// (`from`, `to`, `gap`, `width`, `kind`), one per line.
pub fn gaps_json(frame: &Frame, max_gap: u32) -> String {
    let rows: Vec<String> = frame
        .closings
        .iter()
        .map(|c| serde_json::to_string(c).unwrap_or_default())
        .collect();
    format!(
        "{{\n  \"width\": {},\n  \"height\": {},\n  \"close_gaps\": {max_gap},\n  \"closings\": [{}{}{}]\n}}\n",
        frame.seg.width(),
        frame.seg.height(),
        if rows.is_empty() { "" } else { "\n    " },
        rows.join(",\n    "),
        if rows.is_empty() { "" } else { "\n  " },
    )
}

impl Default for ColorizeOptions {
    fn default() -> Self {
        ColorizeOptions {
            line: LineOptions::default(),
            propagate: false,
            window: 1,
            review: 5,
            render: RenderOptions::default(),
            force: false,
            export: Export::default(),
            redo_after: None,
            corrections: None,
        }
    }
}

/// How a frame's colours came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameStatus {
    /// Coloured by the engine in this run.
    Coloured,
    /// Complete from an earlier run; read back.
    Resumed,
}

/// One segment worth checking, with where to find it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRow {
    /// The 1-based segment.
    pub segment: u32,
    /// Its predicted colour.
    pub color: Rgba,
    /// The engine's confidence.
    #[serde(flatten)]
    pub confidence: Confidence,
    /// Its size in pixels.
    pub pixels: u64,
    /// Mean pixel position, rounded.
    pub centroid: [f64; 2],
    /// Inclusive bounding box `[x_min, y_min, x_max, y_max]`.
    pub bbox: [u32; 4],
}

/// A finished frame.
#[derive(Debug, Clone)]
pub struct FrameResult {
    /// Frame name.
    pub name: String,
    /// What happened.
    pub status: FrameStatus,
    /// Its colours.
    pub colors: ColorTable,
    /// The least confident segments.
    pub review: Vec<ReviewRow>,
    /// Accuracy against `gt/NAME.*` when the clip has it.
    pub score: Option<Metrics>,
}

/// The outcome of a cut: every frame in order, each finished or failed.
#[derive(Debug)]
pub struct CutReport<E> {
    /// The output folder.
    pub out: PathBuf,
    /// One entry per frame of the clip, in order.
    pub frames: Vec<(FrameFiles, std::result::Result<FrameResult, E>)>,
}

impl<E> CutReport<E> {
    /// The frames that finished.
    pub fn finished(&self) -> impl Iterator<Item = &FrameResult> {
        self.frames.iter().filter_map(|(_, r)| r.as_ref().ok())
    }

    /// How many frames failed.
    pub fn failed(&self) -> usize {
        self.frames.iter().filter(|(_, r)| r.is_err()).count()
    }

    /// Mean accuracy over the frames that were scored.
    pub fn score(&self) -> Option<(usize, Metrics)> {
        let scores: Vec<&Metrics> = self.finished().filter_map(|f| f.score.as_ref()).collect();
        Metrics::mean(scores.iter().copied()).map(|m| (scores.len(), m))
    }
}

/// Which frame a reference index of a confidence sidecar stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum RefName {
    /// A design sheet / key frame of `ref/`.
    Sheet(String),
    /// An earlier frame of the cut (with `propagate`).
    Frame(String),
}

/// `OUT/NAME.refs.json`: the references of frame `name`, in the order the
/// confidence sidecar's `reference` indexes them.
pub fn refs_path(out: &Path, name: &str) -> PathBuf {
    out.join(format!("{name}.refs.json"))
}

/// Reads [`refs_path`]; `None` when absent (outputs of an older version).
///
/// # Errors
/// Read errors and a malformed file, naming it.
pub fn read_refs(out: &Path, name: &str) -> Result<Option<Vec<RefName>>> {
    let path = refs_path(out, name);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Sidecar {
                reason: format!("not a reference list: {e}"),
            }
            .with_path(&path)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The output files of frame `name` in `out`: table, confidence, image.
pub fn frame_outputs(out: &Path, name: &str) -> [PathBuf; 3] {
    [
        out.join(format!("{name}.json")),
        out.join(format!("{name}.confidence.json")),
        out.join(format!("{name}.png")),
    ]
}

/// Fails when `out` is, or lies inside, one of the clip's input folders:
/// outputs there would replace the inputs (and be scored as their own
/// truth).
///
/// # Errors
/// [`Error::InvalidArgument`] naming both folders.
pub fn check_out_dir(clip: &Clip, out: &Path) -> Result<()> {
    let Some(out) = absolute(out) else {
        return Ok(());
    };
    for sub in ["line", "gt", "seg", "ref"] {
        let Some(input) = absolute(&clip.dir.join(sub)) else {
            continue;
        };
        if out.starts_with(&input) {
            return Err(Error::InvalidArgument {
                name: "output folder",
                reason: format!(
                    "{} is inside the input folder {}; choose another --out",
                    out.display(),
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// `p` made absolute through its longest existing ancestor (symbolic links
/// resolved), so a folder not created yet still compares correctly.
fn absolute(p: &Path) -> Option<PathBuf> {
    let mut existing = p;
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return Some(rest.iter().rev().fold(c, |acc, part| acc.join(part)));
        }
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
        if existing.as_os_str().is_empty() {
            existing = Path::new(".");
        }
    }
}

/// Called after each frame of a cut, finished or failed.
pub type OnFrame<'a, E> = &'a (dyn Fn(&FrameFiles, std::result::Result<&FrameResult, &E>) + Sync);

/// Colours every frame of `clip` into `out` (created if missing).
/// `on_frame` is called after each frame, finished or failed (progress,
/// error reports); a failed frame does not stop the others.
///
/// # Errors
/// The output folder cannot be created or is an input folder; a reference
/// cannot be read or processed; `review.json` cannot be written.
pub fn colorize_clip<E: Engine>(
    engine: &E,
    clip: &Clip,
    out: &Path,
    opts: &ColorizeOptions,
    on_frame: OnFrame<'_, E::Error>,
) -> std::result::Result<CutReport<E::Error>, E::Error> {
    assert!(opts.window > 0, "window must be at least 1");
    if clip.refs.is_empty() {
        return Err(Error::layout(
            &clip.dir,
            "no references; put coloured frames in ref/line/ and ref/gt/",
        )
        .into());
    }
    check_out_dir(clip, out)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    remove_stale_temps(out)?;
    let review = match &opts.corrections {
        Some(dir) => Some(Review::open(
            dir,
            clip.frames.iter().map(|f| f.name.as_str()),
        )?),
        None => None,
    };
    let run = CutRun {
        engine,
        out,
        opts,
        review: review.as_ref(),
    };
    let sheet_names: Vec<RefName> = clip
        .refs
        .iter()
        .map(|r| RefName::Sheet(r.name.clone()))
        .collect();
    let sheets = run.sheets(clip)?;
    let sheet_refs = || {
        sheets
            .iter()
            .map(|(features, colors)| Reference { features, colors })
            .collect::<Vec<_>>()
    };
    let frames = &clip.frames;
    let results: Vec<std::result::Result<FrameResult, E::Error>> = if opts.propagate {
        // Features of recent finished frames, newest last.
        let mut recent: Vec<(E::Features, ColorTable, String)> = Vec::new();
        let mut results = Vec::with_capacity(frames.len());
        for f in frames {
            let mut refs = sheet_refs();
            refs.extend(
                recent
                    .iter()
                    .rev()
                    .map(|(features, colors, _)| Reference { features, colors }),
            );
            let mut names = sheet_names.clone();
            names.extend(
                recent
                    .iter()
                    .rev()
                    .map(|(_, _, name)| RefName::Frame(name.clone())),
            );
            let r = run.frame(f, &refs, &names, true);
            drop(refs);
            let r = r.map(|(result, features)| {
                if let Some(features) = features {
                    recent.push((features, result.colors.clone(), result.name.clone()));
                    if recent.len() > opts.window {
                        recent.remove(0);
                    }
                }
                result
            });
            on_frame(f, r.as_ref());
            results.push(r);
        }
        results
    } else {
        let refs = sheet_refs();
        frames
            .par_iter()
            .map(|f| {
                let r = run
                    .frame(f, &refs, &sheet_names, false)
                    .map(|(result, _)| result);
                on_frame(f, r.as_ref());
                r
            })
            .collect()
    };
    let report = CutReport {
        out: out.to_path_buf(),
        frames: frames.iter().cloned().zip(results).collect(),
    };
    write_review(&report)?;
    Ok(report)
}

/// `review.json`: `{"<frame>": [rows...]}` over every finished frame.
fn write_review<E>(report: &CutReport<E>) -> Result<()> {
    let review: serde_json::Map<String, serde_json::Value> = report
        .finished()
        .filter(|f| !f.review.is_empty())
        .map(|f| {
            (
                f.name.clone(),
                serde_json::to_value(&f.review).unwrap_or_default(),
            )
        })
        .collect();
    let path = report.out.join("review.json");
    if review.is_empty() {
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&review).unwrap_or_default();
    write_atomic(&path, text.as_bytes())
}

struct CutRun<'a, E> {
    engine: &'a E,
    out: &'a Path,
    opts: &'a ColorizeOptions,
    review: Option<&'a Review>,
}

impl<E: Engine> CutRun<'_, E> {
    /// Features and colours of the design sheets / key frames.
    fn sheets(&self, clip: &Clip) -> std::result::Result<Vec<(E::Features, ColorTable)>, E::Error> {
        clip.refs
            .par_iter()
            .map(|r| {
                let frame = Frame::open(&r.line, &self.opts.line)?;
                let painted = r
                    .gt
                    .as_ref()
                    .ok_or_else(|| Error::layout(&r.line, "reference without a ref/gt image"))?;
                let colors = ColorTable::from_painted(&frame.seg, painted)?;
                Ok((self.engine.features(&frame)?, colors))
            })
            .collect()
    }

    /// Colours one frame (or reads it back); returns its features when
    /// `keep_features` (it becomes a reference).
    fn frame(
        &self,
        f: &FrameFiles,
        refs: &[Reference<'_, E::Features>],
        ref_names: &[RefName],
        keep_features: bool,
    ) -> std::result::Result<(FrameResult, Option<E::Features>), E::Error> {
        let frame = Frame::open(&f.line, &self.opts.line)?;
        let [json, conf, png] = frame_outputs(self.out, &f.name);
        let state: Option<&FrameReview> = self.review.and_then(|r| r.frame(&f.name));
        let approved = state.is_some_and(|s| s.approved);
        let redo = self.opts.force
            || self
                .opts
                .redo_after
                .as_deref()
                .is_some_and(|after| f.name.as_str() > after);
        let complete = png.is_file() && json.is_file() && conf.is_file();
        let resume = complete && (approved || !redo);
        let features = if !resume || keep_features {
            Some(self.engine.features(&frame)?)
        } else {
            None
        };
        let (prediction, status) = if resume {
            (
                Prediction::read(&json, &conf, frame.seg.count())?,
                FrameStatus::Resumed,
            )
        } else {
            let features = features.as_ref().expect("computed when predicting");
            let p = self.engine.predict(refs, features)?;
            let names = serde_json::to_string(ref_names).unwrap_or_default();
            write_atomic(&refs_path(self.out, &f.name), names.as_bytes())?;
            self.write(&frame, &p, [&json, &conf, &png])?;
            (p, FrameStatus::Coloured)
        };
        let colors = match state {
            Some(s) => s.apply(&prediction.colors),
            None => prediction.colors.clone(),
        };
        let score = match &f.gt {
            Some(gt) => Some(score_against(&frame.seg, f.seg.as_deref(), gt, &colors)?),
            None => None,
        };
        // Corrected segments need no second look.
        let mut review = review_rows(&frame.seg, &prediction, self.opts.review);
        if let Some(s) = state {
            review.retain(|row| !s.corrections.contains_key(&row.segment));
        }
        let result = FrameResult {
            name: f.name.clone(),
            status,
            review,
            colors,
            score,
        };
        Ok((result, features.filter(|_| keep_features)))
    }

    fn write(&self, frame: &Frame, p: &Prediction, [json, conf, png]: [&PathBuf; 3]) -> Result<()> {
        let img = render(&frame.seg, &p.colors, Some(frame.drawn()), self.opts.render)?;
        // The image last: a frame counts as done when it exists.
        write_atomic(json, p.colors.to_json_compact().as_bytes())?;
        write_atomic(conf, p.confidence_json().as_bytes())?;
        let name = png.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
        self.opts
            .export
            .write(self.out, name, frame, &p.colors, &self.opts.line)?;
        write_rgba_png(png, &img)
    }
}

/// The `n` least confident segments, with where to find them.
pub fn review_rows(seg: &Segmentation, p: &Prediction, n: usize) -> Vec<ReviewRow> {
    if n == 0 {
        return Vec::new();
    }
    let stats = seg.stats();
    p.review(n)
        .into_iter()
        .filter_map(|(id, color, confidence)| {
            let s = stats.get(id as usize - 1)?;
            Some(ReviewRow {
                segment: id,
                color,
                // As the sidecar stores them, so a resumed frame's row is
                // the same as a freshly coloured one's.
                confidence: confidence.as_stored(),
                pixels: s.pixels,
                centroid: [s.centroid[0].round(), s.centroid[1].round()],
                bbox: s.bbox,
            })
        })
        .collect()
}

/// Scores colours against a painted frame: on the clip's own labels
/// (`seg/NAME.png`) when it has them, the colours carried over from the
/// frame's segments, so that frames segmented differently (gaps closed,
/// binarised) are scored on the same segments; else on the frame's own.
fn score_against(
    seg: &Segmentation,
    labels: Option<&Path>,
    painted: &Path,
    colors: &ColorTable,
) -> Result<Metrics> {
    let given;
    let (seg, colors) = match labels {
        Some(path) => {
            given = Segmentation::open(path)?;
            let map = given.majority_of(seg).map_err(|e| e.with_path(path))?;
            let mut carried = ColorTable::default();
            for (id, &from) in map.iter().enumerate().skip(1) {
                if let Some(c) = colors.get(from) {
                    carried.set(id as u32, c);
                }
            }
            (&given, std::borrow::Cow::Owned(carried))
        }
        None => (seg, std::borrow::Cow::Borrowed(colors)),
    };
    let truth = ColorTable::from_painted(seg, painted)?;
    Ok(score_frame(seg, &truth, &colors)
        .map_err(|e| e.with_path(painted))?
        .0)
}
