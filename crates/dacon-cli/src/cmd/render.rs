use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use dacon_core::{imageio::write_rgba_png, ColorTable, LineArt, RenderOptions, Segmentation};

use crate::args::RenderArgs;
use crate::batch::{self, Outcome};
use crate::inputs::{images_in, prepare_out_dir, refuse_overwriting_inputs, stem};

/// One frame to render: line art, labels, table.
struct Frame {
    line: PathBuf,
    labels: PathBuf,
    table: PathBuf,
}

pub fn run(args: &RenderArgs) -> Result<()> {
    let frames = match (
        args.line.is_dir(),
        args.labels.is_dir(),
        args.table.is_dir(),
    ) {
        (false, false, false) => vec![Frame {
            line: args.line.clone(),
            labels: args.labels.clone(),
            table: args.table.clone(),
        }],
        (true, true, true) => frames_in_dirs(args)?,
        _ => bail!("LINE, LABELS and TABLE must be three files or three folders"),
    };
    prepare_out_dir(&args.out)?;
    let opts = args.layer.options(args.keep_lines);
    let summary = batch::run(
        &frames,
        |f| f.line.display().to_string(),
        &args.batch,
        |f| render_one(f, &args.out, opts, args.batch.force),
    )?;
    summary.report("render", args.batch.quiet);
    summary.into_result()
}

fn frames_in_dirs(args: &RenderArgs) -> Result<Vec<Frame>> {
    let lines = images_in(&args.line)?;
    if lines.is_empty() {
        bail!("{}: no images in this folder", args.line.display());
    }
    lines
        .into_iter()
        .map(|line| {
            let name = stem(&line)?;
            Ok(Frame {
                labels: args.labels.join(format!("{name}.png")),
                table: args.table.join(format!("{name}.json")),
                line,
            })
        })
        .collect()
}

fn render_one(f: &Frame, out: &Path, opts: RenderOptions, force: bool) -> Result<Outcome> {
    let dest = out.join(format!("{}.png", stem(&f.line)?));
    refuse_overwriting_inputs(&dest, &[&f.line, &f.labels, &f.table])?;
    if !force && dest.is_file() {
        return Ok(Outcome::Skipped);
    }
    let seg = Segmentation::open(&f.labels)?;
    let table = ColorTable::open(&f.table)?;
    let line = LineArt::open(&f.line)?;
    let img = dacon_core::render(
        &seg,
        &table,
        Some(&line),
        opts,
        &f.table.display().to_string(),
    )
    .map_err(|e| match e {
        dacon_core::Error::SizeMismatch { .. } => anyhow::anyhow!(
            "{}: size {}x{} does not match the labels {} ({}x{})",
            f.line.display(),
            line.width(),
            line.height(),
            f.labels.display(),
            seg.width(),
            seg.height()
        ),
        other => other.into(),
    })?;
    write_rgba_png(&dest, &img)?;
    Ok(Outcome::Done)
}
