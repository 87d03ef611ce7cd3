use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dacon_core::dataset::{open_clips, Clip, Need};
use dacon_core::eval::{load_truth, run_task, score, truth_table, FrameScore, Report, Summary};
use dacon_core::imageio::{write_atomic, write_rgba_png};
use dacon_core::protocol::{Limit, Protocol, Task};
use dacon_core::{ColorTable, Engine, LineOptions, RenderOptions};
use rayon::prelude::*;

use crate::args::{EngineArgs, JobsArg, LineArgs, ShardArg};
use crate::batch::progress;
use crate::inputs::refuse_overwriting_inputs;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProtocolArg {
    /// Every frame coloured from the character's design sheets.
    Keyframe,
    /// Frame i+1 coloured from the painted frame i.
    Consecutive,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Benchmark root: character folders, or one character folder.
    #[arg(long, value_name = "ROOT", required_unless_present = "merge")]
    pub data: Option<PathBuf>,
    /// Merge the `--json` reports of the shards of one evaluation
    /// (`--shard I/N`) and print the tables of the whole.
    #[arg(long, value_name = "REPORT.json", num_args = 1.., conflicts_with_all = ["data", "predictions", "save_pred", "shard"])]
    pub merge: Vec<PathBuf>,
    /// Which protocol.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Keyframe)]
    pub protocol: ProtocolArg,
    /// Keyframe: how many design sheets (first N by name), or `max`.
    #[arg(long, value_name = "N|max", default_value = "max")]
    pub ref_shot: Limit,
    /// Consecutive: chunk length (20 for PaintBucket-Character) or `max`
    /// (the whole clip, PaintBucket-Real).
    #[arg(long, value_name = "N|max", default_value = "20")]
    pub clip_interval: Limit,
    /// Consecutive: use the K previous painted frames as references
    /// (official: 1).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub refs_window: u32,
    /// Consecutive: also use the following painted frame (not official).
    #[arg(long)]
    pub refs_next: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// With --line-threshold or --close-gaps, each target frame is
    /// segmented from its line art with them (as `colorize` does) instead
    /// of taking the dataset's labels, and its colours are scored on the
    /// dataset's labels (each dataset segment takes the colour of the
    /// segment covering most of it). References keep the dataset's labels.
    /// `--close-gaps 0` segments the line art without closing (how a leaky
    /// set scores without it).
    #[command(flatten)]
    pub line: LineArgs,
    /// Score these predictions instead of running an engine.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["engine", "checkpoint", "line_threshold", "close_gaps"])]
    pub predictions: Option<PathBuf>,
    /// Also write the report as JSON (`overall`, `per_character`, `per_frame`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the tables as Markdown.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Save the engine's predictions: `DIR/<character>/<frame>.{png,json}`.
    #[arg(long, value_name = "DIR")]
    pub save_pred: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArg,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl EvalArgs {
    /// The protocol the options describe.
    pub fn protocol(&self) -> Protocol {
        match self.protocol {
            ProtocolArg::Keyframe => Protocol::keyframe(self.ref_shot),
            ProtocolArg::Consecutive => Protocol::Consecutive {
                clip_interval: self.clip_interval,
                window: self.refs_window as usize,
                next: self.refs_next,
            },
        }
    }

    /// The report's title line.
    fn title(&self) -> String {
        let source = match &self.predictions {
            Some(p) => format!("predictions {}", p.display()),
            None if !self.merge.is_empty() => format!("{} merged reports", self.merge.len()),
            None => self.engine.describe(),
        };
        let source = match self.shard.shard {
            Some(s) => format!("{source}, shard {s}"),
            None => source,
        };
        match self.protocol {
            ProtocolArg::Keyframe => format!("keyframe, ref-shot {}, {source}", self.ref_shot),
            ProtocolArg::Consecutive => format!(
                "consecutive, clip-interval {}, refs-window {}{}, {source}",
                self.clip_interval,
                self.refs_window,
                if self.refs_next { " + next" } else { "" }
            ),
        }
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let Some(data) = &args.data else {
        let report = Report::merge(&args.merge)?;
        return write_report(args, &report);
    };
    if let Some(p) = &args.predictions {
        if !p.is_dir() {
            anyhow::bail!(
                "{}: predictions folder not found (expected DIR/<character>/<frame>.json)",
                p.display()
            );
        }
    }
    let clips = open_clips(data, Need::Evaluation)?;
    // Reports and saved predictions must not land on the dataset.
    for out in [&args.json, &args.markdown, &args.save_pred]
        .into_iter()
        .flatten()
    {
        refuse_overwriting_inputs(out, &[data])?;
    }
    let protocol = args.protocol();
    let tasks: Vec<(usize, Task)> = clips
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| protocol.tasks(c).into_iter().map(move |t| (ci, t)))
        .collect();
    if tasks.is_empty() {
        anyhow::bail!(
            "{}: no frame to evaluate (keyframe needs ref/ design sheets, consecutive at least two frames)",
            data.display()
        );
    }
    let tasks = match args.shard.shard {
        Some(s) => s.select(tasks),
        None => tasks,
    };
    let engine = match &args.predictions {
        Some(_) => None,
        None => Some(args.engine.load()?),
    };
    let pool = args.jobs.pool()?;
    let pb = progress(tasks.len() as u64, args.quiet, "frames");
    let engine_time = Mutex::new(Duration::ZERO);
    let start = Instant::now();
    let scores: Vec<Result<FrameScore>> = pool.install(|| match (&args.predictions, &engine) {
        (Some(dir), _) => tasks
            .par_iter()
            .map(|(ci, t)| {
                let r = score_file(&clips[*ci], t, dir);
                pb.inc(1);
                r
            })
            .collect(),
        (None, Some(engine)) => engine_scores(
            engine,
            &clips,
            &tasks,
            (&args.line.options(), args.save_pred.as_deref()),
            &engine_time,
            &pb,
        ),
        (None, None) => unreachable!("an engine is loaded without --predictions"),
    });
    pb.finish_and_clear();
    let wall = start.elapsed();
    let mut report = Report::default();
    for s in scores {
        report.frames.push(s?);
    }
    let engine = engine_time.into_inner().unwrap_or_default();
    write_report(args, &report)?;
    if !args.quiet {
        let n = report.frames.len();
        eprintln!(
            "{n} frames in {:.2} s ({:.1} frames/s); engine time {:.2} s summed over threads",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64().max(1e-9),
            engine.as_secs_f64()
        );
    }
    Ok(())
}

/// Prints the tables and writes `--json` / `--markdown`.
fn write_report(args: &EvalArgs, report: &Report) -> Result<()> {
    print_tables(report, &args.title(), &mut std::io::stdout().lock())?;
    let missing = report.overall().missing;
    if missing > 0 {
        eprintln!("warning: {missing} segments had no prediction and were counted wrong");
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &args.markdown {
        let mut buf = Vec::new();
        print_markdown(report, &args.title(), &mut buf)?;
        write_atomic(p, &buf)?;
    }
    Ok(())
}

/// Scores a prediction file; a missing file scores every segment wrong.
fn score_file(clip: &Clip, task: &Task, dir: &Path) -> Result<FrameScore> {
    let f = &clip.frames[task.target];
    let (seg, truth) = load_truth(clip, task.target)?;
    let path = dir.join(&clip.name).join(format!("{}.json", f.name));
    let pred = if path.is_file() {
        ColorTable::open(&path)?
    } else {
        ColorTable::default()
    };
    Ok(score(clip, task.target, &seg, &truth, &pred)?)
}

/// Runs an engine on every task and scores it (also `train`'s validation).
/// `how`: how target line art is prepared, and where to save predictions.
pub(crate) fn engine_scores<E: Engine>(
    engine: &E,
    clips: &[Clip],
    tasks: &[(usize, Task)],
    how: (&LineOptions, Option<&Path>),
    engine_time: &Mutex<Duration>,
    pb: &indicatif::ProgressBar,
) -> Vec<Result<FrameScore>> {
    tasks
        .par_iter()
        .map(|(ci, t)| {
            let r = score_task(engine, &clips[*ci], t, how, engine_time);
            pb.inc(1);
            r
        })
        .collect()
}

fn score_task<E: Engine>(
    engine: &E,
    clip: &Clip,
    task: &Task,
    (line, save): (&LineOptions, Option<&Path>),
    engine_time: &Mutex<Duration>,
) -> Result<FrameScore> {
    let run = run_task(engine, clip, task, line)?;
    *engine_time.lock().expect("not poisoned") += run.engine_time;
    let (seg, truth) = (run.seg, truth_table(clip, task.target)?);
    if let Some(dir) = save {
        let name = &clip.frames[task.target].name;
        let out = dir.join(&clip.name);
        std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
        run.prediction
            .colors
            .save(&out.join(format!("{name}.json")))?;
        let img = dacon_core::render(&seg, &run.prediction.colors, None, RenderOptions::default())?;
        write_rgba_png(&out.join(format!("{name}.png")), &img)?;
    }
    Ok(score(
        clip,
        task.target,
        &seg,
        &truth,
        &run.prediction.colors,
    )?)
}

const COLUMNS: [&str; 7] = [
    "Acc",
    "Acc-Thr",
    "Pix-Acc",
    "Pix-F-Acc",
    "Pix-B-mIoU",
    "Seg-B-mIoU",
    "frames",
];

fn row(s: &Summary) -> [String; 7] {
    let m = &s.metrics;
    [
        format!("{:.4}", m.acc),
        format!("{:.4}", m.acc_thresh),
        format!("{:.4}", m.pix_acc),
        format!("{:.4}", m.pix_fg_acc),
        format!("{:.4}", m.pix_bg_miou),
        format!("{:.4}", m.seg_bg_miou),
        s.frames.to_string(),
    ]
}

fn rows(report: &Report) -> Vec<(String, [String; 7])> {
    let mut out: Vec<(String, [String; 7])> = report
        .per_character()
        .iter()
        .map(|(n, s)| (n.clone(), row(s)))
        .collect();
    out.push(("overall".into(), row(&report.overall())));
    out
}

fn print_tables(report: &Report, title: &str, w: &mut impl std::io::Write) -> Result<()> {
    let rows = rows(report);
    let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(9);
    writeln!(w, "{title}")?;
    write!(w, "{:<name_w$}", "character")?;
    for c in COLUMNS {
        write!(w, "  {c:>10}")?;
    }
    writeln!(w)?;
    for (n, cells) in &rows {
        write!(w, "{n:<name_w$}")?;
        for c in cells {
            write!(w, "  {c:>10}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

fn print_markdown(report: &Report, title: &str, w: &mut impl std::io::Write) -> Result<()> {
    writeln!(w, "**{title}**\n")?;
    writeln!(w, "| character | {} |", COLUMNS.join(" | "))?;
    writeln!(w, "|---|{}", "---:|".repeat(COLUMNS.len()))?;
    for (n, cells) in rows(report) {
        writeln!(w, "| {n} | {} |", cells.join(" | "))?;
    }
    Ok(())
}
