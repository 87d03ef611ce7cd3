use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dacon_core::dataset::{open_clips, Clip, FrameFiles, Need};
use dacon_core::imageio::{read_picture, write_atomic, write_rgba_png};
use dacon_core::metrics::{score_frame, Metrics};
use dacon_core::{
    ColorTable, Frame, LineArt, Matcher, Prediction, Reference, RenderOptions, Segmentation,
};
use rayon::prelude::*;

use crate::args::ColorizeArgs;
use crate::batch::progress;
use crate::engine::Engine;

pub fn run(args: &ColorizeArgs) -> Result<()> {
    let mut clips = Vec::new();
    for d in &args.dirs {
        clips.extend(open_clips(d, Need::Inference)?);
    }
    for c in &clips {
        if c.refs.is_empty() {
            anyhow::bail!(
                "{}: no references; put coloured frames in ref/line/ and ref/gt/",
                c.dir.display()
            );
        }
    }
    let engine = Engine::load(&args.engine)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.batch.jobs.unwrap_or(0))
        .build()?;
    let several = clips.len() > 1;
    pool.install(|| {
        for clip in &clips {
            let out = match &args.out {
                Some(o) if several => o.join(&clip.name),
                Some(o) => o.clone(),
                None => clip.dir.join("pred"),
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create", out.display()))?;
            match &engine {
                Engine::Classic(m) => ClipRun {
                    matcher: m,
                    args,
                    clip,
                    out: &out,
                }
                .run()?,
                Engine::Dacon(m) => ClipRun {
                    matcher: m.as_ref(),
                    args,
                    clip,
                    out: &out,
                }
                .run()?,
            }
        }
        Ok(())
    })
}

struct ClipRun<'a, M> {
    matcher: &'a M,
    args: &'a ColorizeArgs,
    clip: &'a Clip,
    out: &'a Path,
}

/// One finished frame: what later frames and the summary need.
struct Done<F> {
    name: String,
    /// Kept only with --propagate, where the frame becomes a reference:
    /// features of a whole cut would otherwise pile up in memory.
    features: Option<F>,
    colors: ColorTable,
    review: Vec<serde_json::Value>,
    score: Option<Metrics>,
}

impl<M: Matcher> ClipRun<'_, M> {
    fn run(&self) -> Result<()> {
        let refs = self.sheets()?;
        let frames = &self.clip.frames;
        let pb = progress(frames.len() as u64, self.args.batch.quiet, "frames");
        pb.set_message(self.clip.name.clone());
        let done: Vec<Result<Done<M::Features>>> = if self.args.propagate {
            let mut done: Vec<Result<Done<M::Features>>> = Vec::with_capacity(frames.len());
            for f in frames {
                let window = self.args.window as usize;
                let recent: Vec<&Done<M::Features>> = done
                    .iter()
                    .rev()
                    .filter_map(|d| d.as_ref().ok())
                    .take(window)
                    .collect();
                let mut all: Vec<Reference<'_, M::Features>> = refs
                    .iter()
                    .map(|(features, colors)| Reference { features, colors })
                    .collect();
                all.extend(recent.iter().filter_map(|d| {
                    d.features.as_ref().map(|features| Reference {
                        features,
                        colors: &d.colors,
                    })
                }));
                let r = self.frame(f, &all);
                if let Err(e) = &r {
                    pb.println(format!("{}: {e:#}", f.line.display()));
                }
                done.push(r);
                // Finished frames that left the window are no reference
                // any more: drop their features.
                let window = self.args.window as usize;
                if let Some(old) = done
                    .iter_mut()
                    .rev()
                    .filter_map(|d| d.as_mut().ok())
                    .nth(window)
                {
                    old.features = None;
                }
                pb.inc(1);
            }
            done
        } else {
            let all: Vec<Reference<'_, M::Features>> = refs
                .iter()
                .map(|(features, colors)| Reference { features, colors })
                .collect();
            frames
                .par_iter()
                .map(|f| {
                    let r = self.frame(f, &all);
                    if let Err(e) = &r {
                        pb.println(format!("{}: {e:#}", f.line.display()));
                    }
                    pb.inc(1);
                    r
                })
                .collect()
        };
        pb.finish_and_clear();
        self.finish(done)
    }

    /// Features and colours of the design sheets / key frames.
    fn sheets(&self) -> Result<Vec<(M::Features, ColorTable)>> {
        self.clip
            .refs
            .par_iter()
            .map(|r| {
                let frame = self.load(&r.line)?;
                let gt_path = r.gt.as_ref().context("reference without ref/gt image")?;
                let gt = read_picture(gt_path)?;
                let colors =
                    ColorTable::from_image(&frame.seg, &gt.rgba, &gt_path.display().to_string())?;
                let features = self.matcher.features(&frame).map_err(anyhow::Error::new)?;
                Ok((features, colors))
            })
            .collect()
    }

    fn load(&self, line: &Path) -> Result<Frame> {
        let mut art = LineArt::open(line)?;
        if let Some(t) = self.args.line_threshold {
            art.binarize(t);
            art.check_not_empty(&line.display().to_string())?;
        }
        let seg = Segmentation::from_line_art(&art)?;
        Ok(Frame { art, seg })
    }

    fn paths(&self, name: &str) -> [PathBuf; 3] {
        [
            self.out.join(format!("{name}.png")),
            self.out.join(format!("{name}.json")),
            self.out.join(format!("{name}.confidence.json")),
        ]
    }

    fn frame(
        &self,
        f: &FrameFiles,
        refs: &[Reference<'_, M::Features>],
    ) -> Result<Done<M::Features>> {
        let frame = self.load(&f.line)?;
        let [png, json, conf] = self.paths(&f.name);
        let complete = png.is_file() && json.is_file() && conf.is_file();
        let resume = complete && !self.args.batch.force;
        // Features are needed to predict, or to serve as a reference later.
        let features = if !resume || self.args.propagate {
            Some(self.matcher.features(&frame).map_err(anyhow::Error::new)?)
        } else {
            None
        };
        let (colors, review) = if resume {
            // Resume: a finished frame is read back (and still serves as a
            // reference in --propagate).
            (ColorTable::open(&json)?, Vec::new())
        } else {
            let p = self
                .matcher
                .predict(refs, features.as_ref().expect("computed when predicting"))
                .map_err(anyhow::Error::new)?;
            self.write(&frame, &p, [&png, &json, &conf])?;
            (
                p.colors.clone(),
                review_rows(&frame.seg, &p, self.args.review),
            )
        };
        let score = match &f.gt {
            Some(gt) => Some(score_against(&frame.seg, gt, &colors)?),
            None => None,
        };
        Ok(Done {
            name: f.name.clone(),
            features: features.filter(|_| self.args.propagate),
            colors,
            review,
            score,
        })
    }

    fn write(&self, frame: &Frame, p: &Prediction, [png, json, conf]: [&PathBuf; 3]) -> Result<()> {
        let opts: RenderOptions = self.args.layer.options(self.args.keep_lines);
        let img = dacon_core::render(&frame.seg, &p.colors, Some(&frame.art), opts, "prediction")?;
        // The image last: a frame counts as done when all three exist.
        write_atomic(json, p.colors.to_json_compact().as_bytes())?;
        write_atomic(conf, p.confidence_json().as_bytes())?;
        write_rgba_png(png, &img)?;
        Ok(())
    }

    fn finish(&self, done: Vec<Result<Done<M::Features>>>) -> Result<()> {
        let total = done.len();
        let ok: Vec<&Done<M::Features>> = done.iter().filter_map(|d| d.as_ref().ok()).collect();
        let failed = total - ok.len();
        let review: serde_json::Map<String, serde_json::Value> = ok
            .iter()
            .filter(|d| !d.review.is_empty())
            .map(|d| (d.name.clone(), serde_json::Value::Array(d.review.clone())))
            .collect();
        if !review.is_empty() {
            let text = serde_json::to_string_pretty(&review)?;
            write_atomic(&self.out.join("review.json"), text.as_bytes())?;
        }
        println!(
            "{}: {} frames coloured -> {}",
            self.clip.name,
            ok.len(),
            self.out.display()
        );
        let scores: Vec<&Metrics> = ok.iter().filter_map(|d| d.score.as_ref()).collect();
        if let Some(m) = Metrics::mean(scores.iter().copied()) {
            println!(
                "{}: accuracy against gt/ over {} frames: Acc {:.4}, Acc-Thresh {:.4}, Pix-Acc {:.4}",
                self.clip.name,
                scores.len(),
                m.acc,
                m.acc_thresh,
                m.pix_acc
            );
        }
        if failed > 0 {
            anyhow::bail!("{failed} of {total} frames of {} failed", self.clip.name);
        }
        Ok(())
    }
}

/// The least confident segments, with where to find them.
fn review_rows(seg: &Segmentation, p: &Prediction, n: usize) -> Vec<serde_json::Value> {
    if n == 0 {
        return Vec::new();
    }
    let stats = seg.stats();
    p.review(n)
        .into_iter()
        .map(|(id, color, c)| {
            let s = &stats[id as usize - 1];
            serde_json::json!({
                "segment": id,
                "color": color,
                "similarity": c.similarity,
                "margin": c.margin,
                "pixels": s.pixels,
                "centroid": [s.centroid[0].round(), s.centroid[1].round()],
                "bbox": s.bbox,
            })
        })
        .collect()
}

/// Scores colours against a painted frame, with the frame's own segments.
fn score_against(seg: &Segmentation, gt: &Path, colors: &ColorTable) -> Result<Metrics> {
    let pic = read_picture(gt)?;
    let truth = ColorTable::from_image(seg, &pic.rgba, &gt.display().to_string())?;
    Ok(score_frame(seg, &truth, colors, &gt.display().to_string())?.0)
}
