use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use dacon_core::colorize::Export;
use dacon_core::shard::ManifestItem;
use dacon_core::{imageio::write_atomic, ColorTable, Frame, Segmentation};

use crate::args::{BatchArgs, GapOverlayArg, LineArgs, ShardArg};
use crate::batch::{self, ManifestLog, Outcome};
use crate::inputs::{
    collect_images, prepare_out_dir, refuse_duplicate_names, refuse_overwriting_inputs, stem,
};

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Line-art images (PNG, TGA, TIFF) or folders of them.
    #[arg(required = true, value_name = "LINE")]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub line: LineArgs,
    #[command(flatten)]
    pub gap_overlay: GapOverlayArg,
    #[command(flatten)]
    pub shard: ShardArg,
    #[command(flatten)]
    pub batch: BatchArgs,
}

pub fn run(args: &SegmentArgs) -> Result<()> {
    let frames = collect_images(&args.inputs)?;
    refuse_duplicate_names(&frames)?;
    let inputs: Vec<&Path> = args.inputs.iter().map(PathBuf::as_path).collect();
    prepare_out_dir(&args.out, &inputs)?;
    let frames = match args.shard.shard {
        Some(s) => s.select(frames),
        None => frames,
    };
    let manifest = match args.shard.shard {
        Some(s) => {
            let names = frames.iter().map(|f| stem(f)).collect::<Result<_>>()?;
            Some(ManifestLog::start(&args.out, "segment", s, names)?)
        }
        None => None,
    };
    let opts = args.line.options();
    let export = Export {
        gap_overlay: args.gap_overlay.gap_overlay,
        ..Export::default()
    };
    let summary = batch::run(
        &frames,
        |p| p.display().to_string(),
        &args.batch,
        |line| {
            let r = segment_one(line, &args.out, &opts, export, args.batch.force);
            if let Some(m) = &manifest {
                m.record(ManifestItem {
                    name: stem(line)?,
                    status: match &r {
                        Ok(Outcome::Done) => "done",
                        Ok(Outcome::Skipped) => "resumed",
                        Err(_) => "failed",
                    }
                    .into(),
                    frames: None,
                    error: r.as_ref().err().map(|e| format!("{e:#}")),
                })?;
            }
            r
        },
    )?;
    if let Some(m) = &manifest {
        m.finish()?;
    }
    summary.report("segment", args.batch.quiet);
    summary.into_result()
}

/// Output paths of one frame: labels and statistics.
pub fn outputs(out: &Path, line: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = stem(line)?;
    Ok((
        out.join(format!("{name}.png")),
        out.join(format!("{name}.stats.json")),
    ))
}

fn segment_one(
    line: &Path,
    out: &Path,
    opts: &dacon_core::LineOptions,
    export: Export,
    force: bool,
) -> Result<Outcome> {
    let (labels_path, stats_path) = outputs(out, line)?;
    refuse_overwriting_inputs(&labels_path, &[line])?;
    if !force && labels_path.is_file() && stats_path.is_file() {
        return Ok(Outcome::Skipped);
    }
    let frame = Frame::open(line, opts)?;
    let text = stats_json(&frame.seg)?;
    // Labels first, statistics last: a frame counts as complete (and is
    // skipped on the next run) only when both exist.
    let name = stem(line)?;
    export.write(out, &name, &frame, &ColorTable::default(), opts)?;
    frame.seg.save(&labels_path)?;
    write_atomic(&stats_path, text.as_bytes())?;
    Ok(Outcome::Done)
}

/// Statistics as JSON, one segment per line so the file stays readable and
/// diffable for frames with hundreds of segments.
fn stats_json(seg: &Segmentation) -> Result<String> {
    let mut rows = Vec::with_capacity(seg.count() as usize);
    for s in seg.stats() {
        rows.push(serde_json::to_string(&s).context("serialising statistics")?);
    }
    Ok(format!(
        "{{\n  \"width\": {},\n  \"height\": {},\n  \"segments\": {},\n  \"stats\": [\n    {}\n  ]\n}}\n",
        seg.width(),
        seg.height(),
        seg.count(),
        rows.join(",\n    ")
    ))
}
