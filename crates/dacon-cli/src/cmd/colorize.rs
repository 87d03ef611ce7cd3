use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use dacon_core::colorize::{colorize_clip, ColorizeOptions, CutReport};
use dacon_core::dataset::{open_clips, Clip, Need};
use dacon_core::shard::{ManifestItem, Shard};

use crate::args::{BatchArgs, EngineArgs, GapOverlayArg, LineArgs, OutputArgs};
use crate::batch::{progress, report_failure, ManifestLog};

#[derive(Debug, Args)]
pub struct ColorizeArgs {
    /// Clip folders (`line/` + `ref/`), or parents of several.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output folder (default: `DIR/pred`; with several clips, one
    /// sub-folder per clip).
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Colour frames in order, each finished frame becoming a reference.
    #[arg(long)]
    pub propagate: bool,
    /// With --propagate: how many previous frames stay references.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub window: u32,
    /// A corrections folder (`OUT/corrections` of `dacon serve`): a frame
    /// with a corrections file keeps those colours (and, with --propagate,
    /// passes them on to the frames after it); approved frames are never
    /// coloured again. Predictions (`NAME.json`) stay the engine's. The
    /// frames after the first corrected one are coloured again.
    #[arg(long, value_name = "DIR")]
    pub corrections: Option<PathBuf>,
    /// Segments per frame listed in review.json.
    #[arg(long, default_value_t = 5)]
    pub review: usize,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub line: LineArgs,
    /// Do only part I of N of the cuts (0-based), e.g. `--shard
    /// $JOB_COMPLETION_INDEX/8` in a Kubernetes Indexed Job or `--shard
    /// $SLURM_ARRAY_TASK_ID/8` in a Slurm array: every N-th clip of the
    /// sorted list from clip I, so N workers colour every cut once. Needs
    /// --out; writes `OUT/manifest-I-of-N.json`. Reruns resume.
    #[arg(long, value_name = "I/N", requires = "out")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub gap_overlay: GapOverlayArg,
    #[command(flatten)]
    pub batch: BatchArgs,
}

impl ColorizeArgs {
    fn options(&self) -> ColorizeOptions {
        ColorizeOptions {
            line: self.line.options(),
            propagate: self.propagate,
            window: self.window as usize,
            review: self.review,
            render: self.output.options(),
            force: self.batch.force,
            export: self.output.export(self.gap_overlay.gap_overlay),
            redo_after: None,
            corrections: self.corrections.clone(),
        }
    }
}

pub fn run(args: &ColorizeArgs) -> Result<()> {
    let mut clips = Vec::new();
    for d in &args.dirs {
        clips.extend(open_clips(d, Need::Inference)?);
    }
    // Sharded or not, several clips go to one sub-folder each.
    let several = clips.len() > 1 || args.shard.is_some_and(|s| s.count > 1);
    if several && args.corrections.is_some() {
        anyhow::bail!("--corrections belongs to one cut; colour the clips one at a time");
    }
    if let Some(c) = &args.corrections {
        if !c.is_dir() {
            anyhow::bail!("{}: no such corrections folder", c.display());
        }
    }
    if let Some(s) = args.shard {
        clips = s.select(clips);
    }
    let outs = output_folders(args, &clips, several)?;
    let manifest = match (args.shard, &args.out) {
        (Some(s), Some(out)) => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("{}: cannot create output folder", out.display()))?;
            let names = clips.iter().map(|c| c.name.clone()).collect();
            Some(ManifestLog::start(out, "colorize", s, names)?)
        }
        _ => None,
    };
    let engine = args.engine.load()?;
    let mut opts = args.options();
    if let (Some(dir), [clip]) = (&args.corrections, clips.as_slice()) {
        let review =
            dacon_core::review::Review::open(dir, clip.frames.iter().map(|f| f.name.as_str()))?;
        opts.redo_after = review.first_corrected().map(str::to_owned);
    }
    let pool = args.batch.jobs.pool()?;
    let mut failed = 0;
    for (clip, out) in clips.iter().zip(&outs) {
        let pb = progress(clip.frames.len() as u64, args.batch.quiet, "frames");
        pb.set_message(clip.name.clone());
        let report = pool.install(|| {
            colorize_clip(&engine, clip, out, &opts, &|f, r| {
                if let Err(e) = r {
                    report_failure(&pb, &f.line.display(), e);
                }
                pb.inc(1);
            })
        });
        pb.finish_and_clear();
        if let Some(m) = &manifest {
            m.record(manifest_item(clip, &report))?;
        }
        failed += summarise(clip, out, &report?);
    }
    if let Some(m) = &manifest {
        m.finish()?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} frames failed");
    }
    Ok(())
}

/// Where each clip's outputs go, after checking that none is an input
/// folder and no two clips share one.
fn output_folders(args: &ColorizeArgs, clips: &[Clip], several: bool) -> Result<Vec<PathBuf>> {
    let outs: Vec<PathBuf> = clips
        .iter()
        .map(|clip| match &args.out {
            Some(o) if several => o.join(&clip.name),
            Some(o) => o.clone(),
            None => clip.dir.join("pred"),
        })
        .collect();
    for (i, (clip, out)) in clips.iter().zip(&outs).enumerate() {
        if outs[..i].contains(out) {
            anyhow::bail!(
                "{}: two clips would write here ({} and another of that name); colour them separately",
                out.display(),
                clip.dir.display()
            );
        }
        dacon_core::colorize::check_out_dir(clip, out)?;
    }
    Ok(outs)
}

/// How a clip ended, for the shard's manifest.
fn manifest_item(
    clip: &Clip,
    report: &Result<CutReport<dacon_neural::Error>, dacon_neural::Error>,
) -> ManifestItem {
    let (finished, error) = match report {
        Err(e) => (0, Some(format!("{e:#}"))),
        Ok(r) if r.failed() > 0 => (
            r.finished().count(),
            Some(format!("{} frames failed", r.failed())),
        ),
        Ok(r) => (r.finished().count(), None),
    };
    ManifestItem {
        name: clip.name.clone(),
        status: if error.is_some() { "failed" } else { "done" }.into(),
        frames: Some(finished),
        error,
    }
}

/// Prints where a clip went and its accuracy; returns its failed frames.
fn summarise<E>(clip: &Clip, out: &std::path::Path, report: &CutReport<E>) -> usize {
    println!(
        "{}: {} frames coloured -> {}",
        clip.name,
        report.finished().count(),
        out.display()
    );
    if let Some((n, m)) = report.score() {
        println!(
            "{}: accuracy against gt/ over {n} frames: Acc {:.4}, Acc-Thresh {:.4}, Pix-Acc {:.4}",
            clip.name, m.acc, m.acc_thresh, m.pix_acc
        );
    }
    if report.failed() > 0 {
        eprintln!(
            "{}: {} of {} frames failed",
            clip.name,
            report.failed(),
            report.frames.len()
        );
    }
    report.failed()
}
