use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use dacon_core::colorize::Export;
use dacon_core::frame::Threshold;
use dacon_core::{
    imageio::write_rgba_png, ColorTable, Frame, LineOptions, RenderOptions, ResultExt,
};

use crate::args::{BatchArgs, OutputArgs};
use crate::batch::{self, Outcome};
use crate::inputs::{
    images_in, prepare_out_dir, refuse_duplicate_names, refuse_overwriting_inputs, stem,
};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The line art (or a folder of it).
    #[arg(value_name = "LINE")]
    pub line: PathBuf,
    /// Its label PNG (or a folder of them).
    #[arg(value_name = "LABELS")]
    pub labels: PathBuf,
    /// The colour table (or a folder of `.json` tables).
    #[arg(value_name = "TABLE")]
    pub table: PathBuf,
    /// Output folder; writes `OUT/<name of LINE>.png`.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// How the line art was binarised when LABELS were made (`auto` or T,
    /// as given to `segment`/`colorize`): decides which pixels go to the
    /// line and which to the colour-trace layer. The labels are used as
    /// given.
    #[arg(long, value_name = "T|auto", value_parser = crate::args::parse_threshold)]
    pub line_threshold: Option<Threshold>,
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// The files of one frame to render.
struct RenderJob {
    line: PathBuf,
    labels: PathBuf,
    table: PathBuf,
}

pub fn run(args: &RenderArgs) -> Result<()> {
    let jobs = match (
        args.line.is_dir(),
        args.labels.is_dir(),
        args.table.is_dir(),
    ) {
        (false, false, false) => vec![RenderJob {
            line: args.line.clone(),
            labels: args.labels.clone(),
            table: args.table.clone(),
        }],
        (true, true, true) => {
            let jobs = jobs_in_dirs(args)?;
            let lines: Vec<PathBuf> = jobs.iter().map(|j| j.line.clone()).collect();
            refuse_duplicate_names(&lines)?;
            jobs
        }
        _ => bail!("LINE, LABELS and TABLE must be three files or three folders"),
    };
    prepare_out_dir(&args.out, &[&args.line, &args.labels, &args.table])?;
    let opts = args.output.options();
    let export = args.output.export(false);
    let line = LineOptions {
        threshold: args.line_threshold,
        close_gaps: None,
    };
    let summary = batch::run(
        &jobs,
        |j| j.line.display().to_string(),
        &args.batch,
        |j| render_one(j, &args.out, (opts, export, &line), args.batch.force),
    )?;
    summary.report("render", args.batch.quiet);
    summary.into_result()
}

fn jobs_in_dirs(args: &RenderArgs) -> Result<Vec<RenderJob>> {
    let lines = images_in(&args.line)?;
    if lines.is_empty() {
        bail!("{}: no images in this folder", args.line.display());
    }
    lines
        .into_iter()
        .map(|line| {
            let name = stem(&line)?;
            Ok(RenderJob {
                labels: args.labels.join(format!("{name}.png")),
                table: args.table.join(format!("{name}.json")),
                line,
            })
        })
        .collect()
}

fn render_one(
    j: &RenderJob,
    out: &Path,
    (opts, export, line): (RenderOptions, Export, &LineOptions),
    force: bool,
) -> Result<Outcome> {
    let dest = out.join(format!("{}.png", stem(&j.line)?));
    refuse_overwriting_inputs(&dest, &[&j.line, &j.labels, &j.table])?;
    if !force && dest.is_file() {
        return Ok(Outcome::Skipped);
    }
    let frame = Frame::open_labelled(&j.line, &j.labels, line)?;
    let table = ColorTable::open(&j.table)?;
    let img = dacon_core::render(&frame.seg, &table, Some(frame.drawn()), opts).at(&j.table)?;
    export
        .write(
            out,
            &stem(&j.line)?,
            &frame,
            &table,
            &LineOptions::default(),
        )
        .at(&j.table)?;
    write_rgba_png(&dest, &img)?;
    Ok(Outcome::Done)
}
