use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dacon_core::{imageio::write_atomic, LineArt, Segmentation};

use crate::args::SegmentArgs;
use crate::batch::{self, Outcome};
use crate::inputs::{collect_images, prepare_out_dir, refuse_overwriting_inputs, stem};

pub fn run(args: &SegmentArgs) -> Result<()> {
    let frames = collect_images(&args.inputs)?;
    prepare_out_dir(&args.out)?;
    let summary = batch::run(
        &frames,
        |p| p.display().to_string(),
        &args.batch,
        |line| segment_one(line, &args.out, args),
    )?;
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

fn segment_one(line: &Path, out: &Path, args: &SegmentArgs) -> Result<Outcome> {
    let (labels_path, stats_path) = outputs(out, line)?;
    refuse_overwriting_inputs(&labels_path, &[line])?;
    if !args.batch.force && labels_path.is_file() && stats_path.is_file() {
        return Ok(Outcome::Skipped);
    }
    let mut art = LineArt::open(line)?;
    if let Some(t) = args.line_threshold {
        art.binarize(t);
        art.check_not_empty(&line.display().to_string())?;
    }
    let seg = Segmentation::from_line_art(&art)?;
    let text = stats_json(&seg)?;
    // Labels first, statistics last: a frame counts as complete (and is
    // skipped on the next run) only when both exist.
    seg.save(&labels_path)?;
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
