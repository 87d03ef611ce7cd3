use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use dacon_core::colorize::{colorize_clip, ColorizeOptions};
use dacon_core::dataset::{open_clips, Need};

use crate::args::{BatchArgs, EngineArgs, GapOverlayArg, LineArgs, OutputArgs};
use crate::batch::{progress, report_failure};

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
    /// Segments per frame listed in review.json.
    #[arg(long, default_value_t = 5)]
    pub review: usize,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub line: LineArgs,
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
        }
    }
}

pub fn run(args: &ColorizeArgs) -> Result<()> {
    let mut clips = Vec::new();
    for d in &args.dirs {
        clips.extend(open_clips(d, Need::Inference)?);
    }
    let several = clips.len() > 1;
    let outs: Vec<PathBuf> = clips
        .iter()
        .map(|clip| match &args.out {
            Some(o) if several => o.join(&clip.name),
            Some(o) => o.clone(),
            None => clip.dir.join("pred"),
        })
        .collect();
    // Two clips of one name would write into the same folder.
    for (i, a) in outs.iter().enumerate() {
        if outs[..i].contains(a) {
            anyhow::bail!(
                "{}: two clips would write here ({} and another of that name); colour them separately",
                a.display(),
                clips[i].dir.display()
            );
        }
    }
    for (clip, out) in clips.iter().zip(&outs) {
        dacon_core::colorize::check_out_dir(clip, out)?;
    }
    let engine = args.engine.load()?;
    let opts = args.options();
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
        })?;
        pb.finish_and_clear();
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
            failed += report.failed();
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} frames failed");
    }
    Ok(())
}
