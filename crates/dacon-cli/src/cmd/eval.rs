use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dacon_core::dataset::{open_clips, Clip, FrameFiles, Need};
use dacon_core::eval::{load_truth, score, FrameScore, Report, Summary};
use dacon_core::imageio::{write_atomic, write_rgba_png};
use dacon_core::protocol::{Protocol, RefShot, RefSource, Task};
use dacon_core::{ColorTable, Frame, LineArt, Matcher, Reference, RenderOptions, Segmentation};
use rayon::prelude::*;

use crate::args::{CountOrMax, EvalArgs, ProtocolArg};
use crate::batch::progress;
use crate::engine::Engine;

pub fn run(args: &EvalArgs) -> Result<()> {
    if let Some(p) = &args.predictions {
        if !p.is_dir() {
            anyhow::bail!(
                "{}: predictions folder not found (expected DIR/<character>/<frame>.json)",
                p.display()
            );
        }
    }
    let clips = open_clips(&args.data, Need::Evaluation)?;
    let protocol = protocol(args);
    let tasks: Vec<(usize, Task)> = clips
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| protocol.tasks(c).into_iter().map(move |t| (ci, t)))
        .collect();
    if tasks.is_empty() {
        anyhow::bail!(
            "{}: no frame to evaluate (keyframe needs ref/ design sheets, consecutive at least two frames)",
            args.data.display()
        );
    }
    let engine = match &args.predictions {
        Some(_) => None,
        None => Some(Engine::load(&args.engine)?),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()?;
    let pb = progress(tasks.len() as u64, args.quiet, "frames");
    let engine_time = Mutex::new(Duration::ZERO);
    let start = Instant::now();
    let scores: Vec<Result<FrameScore>> = pool.install(|| match &args.predictions {
        Some(dir) => tasks
            .par_iter()
            .map(|(ci, t)| {
                let r = score_file(&clips[*ci], t, dir);
                pb.inc(1);
                r
            })
            .collect(),
        None => {
            let save = args.save_pred.as_deref();
            match engine.as_ref().expect("loaded above") {
                Engine::Classic(m) => engine_scores(m, &clips, &tasks, save, &engine_time, &pb),
                Engine::Dacon(m) => {
                    engine_scores(m.as_ref(), &clips, &tasks, save, &engine_time, &pb)
                }
            }
        }
    });
    pb.finish_and_clear();
    let wall = start.elapsed();
    let mut report = Report::default();
    for s in scores {
        report.frames.push(s?);
    }
    let engine = engine_time.into_inner().unwrap_or_default();
    print_tables(&report, &protocol_name(args), &mut std::io::stdout().lock())?;
    let missing = report.overall().missing;
    if missing > 0 {
        eprintln!("warning: {missing} segments had no prediction and were counted wrong");
    }
    if !args.quiet {
        let n = report.frames.len();
        eprintln!(
            "{n} frames in {:.2} s ({:.1} frames/s); engine time {:.2} s summed over threads",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64().max(1e-9),
            engine.as_secs_f64()
        );
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &args.markdown {
        let mut buf = Vec::new();
        print_markdown(&report, &protocol_name(args), &mut buf)?;
        write_atomic(p, &buf)?;
    }
    Ok(())
}

fn protocol(args: &EvalArgs) -> Protocol {
    match args.protocol {
        ProtocolArg::Keyframe => Protocol::keyframe(match args.ref_shot {
            CountOrMax::Count(n) => RefShot::Count(n),
            CountOrMax::Max => RefShot::Max,
        }),
        ProtocolArg::Consecutive => Protocol::Consecutive {
            clip_interval: match args.clip_interval {
                CountOrMax::Count(n) => Some(n),
                CountOrMax::Max => None,
            },
            window: args.refs_window as usize,
            next: args.refs_next,
        },
    }
}

fn protocol_name(args: &EvalArgs) -> String {
    let count = |c: CountOrMax| match c {
        CountOrMax::Count(n) => n.to_string(),
        CountOrMax::Max => "max".into(),
    };
    let source = match &args.predictions {
        Some(p) => format!("predictions {}", p.display()),
        None => match (args.engine.engine, &args.engine.checkpoint) {
            (Some(crate::args::EngineArg::Classic), _) | (None, None) => "engine classic".into(),
            (_, Some(c)) => format!("engine dacon {}", c.display()),
            (Some(crate::args::EngineArg::Dacon), None) => "engine dacon".into(),
        },
    };
    match args.protocol {
        ProtocolArg::Keyframe => format!("keyframe, ref-shot {}, {source}", count(args.ref_shot)),
        ProtocolArg::Consecutive => format!(
            "consecutive, clip-interval {}, refs-window {}{}, {source}",
            count(args.clip_interval),
            args.refs_window,
            if args.refs_next { " + next" } else { "" }
        ),
    }
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
pub(crate) fn engine_scores<M: Matcher>(
    matcher: &M,
    clips: &[Clip],
    tasks: &[(usize, Task)],
    save: Option<&Path>,
    engine_time: &Mutex<Duration>,
    pb: &indicatif::ProgressBar,
) -> Vec<Result<FrameScore>> {
    let ctx = EngineRun {
        matcher,
        save,
        engine_time,
    };
    tasks
        .par_iter()
        .map(|(ci, t)| {
            let r = ctx.run(&clips[*ci], t);
            pb.inc(1);
            r
        })
        .collect()
}

struct EngineRun<'a, M> {
    matcher: &'a M,
    save: Option<&'a Path>,
    engine_time: &'a Mutex<Duration>,
}

impl<M: Matcher> EngineRun<'_, M> {
    fn frame(files: &FrameFiles) -> Result<Frame> {
        let seg_path = files
            .seg
            .as_ref()
            .with_context(|| format!("frame {} has no labels", files.name))?;
        let art = LineArt::open(&files.line)?;
        let seg = Segmentation::open(seg_path)?;
        if (art.width(), art.height()) != (seg.width(), seg.height()) {
            anyhow::bail!(
                "{}: size {}x{} differs from its labels {} ({}x{})",
                files.line.display(),
                art.width(),
                art.height(),
                seg_path.display(),
                seg.width(),
                seg.height()
            );
        }
        Ok(Frame { art, seg })
    }

    fn run(&self, clip: &Clip, task: &Task) -> Result<FrameScore> {
        let target = Self::frame(&clip.frames[task.target])?;
        let mut refs = Vec::with_capacity(task.refs.len());
        for r in &task.refs {
            let files = match *r {
                RefSource::Sheet(i) => &clip.refs[i],
                RefSource::Frame(i) => &clip.frames[i],
            };
            let table_path: &PathBuf = files
                .table
                .as_ref()
                .with_context(|| format!("reference {} has no colour table", files.name))?;
            refs.push((Self::frame(files)?, ColorTable::open(table_path)?));
        }
        let t0 = Instant::now();
        let feats = |f: &Frame| self.matcher.features(f).map_err(anyhow::Error::new);
        let target_features = feats(&target)?;
        let ref_features: Vec<M::Features> =
            refs.iter().map(|(f, _)| feats(f)).collect::<Result<_>>()?;
        let references: Vec<Reference<'_, M::Features>> = ref_features
            .iter()
            .zip(&refs)
            .map(|(features, (_, colors))| Reference { features, colors })
            .collect();
        let prediction = self
            .matcher
            .predict(&references, &target_features)
            .map_err(anyhow::Error::new)?;
        *self.engine_time.lock().expect("not poisoned") += t0.elapsed();

        let (seg, truth) = load_truth(clip, task.target)?;
        if let Some(dir) = self.save {
            let name = &clip.frames[task.target].name;
            let out = dir.join(&clip.name);
            std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
            prediction.colors.save(&out.join(format!("{name}.json")))?;
            let img = dacon_core::render(
                &seg,
                &prediction.colors,
                None,
                RenderOptions::default(),
                name,
            )?;
            write_rgba_png(&out.join(format!("{name}.png")), &img)?;
        }
        Ok(score(clip, task.target, &seg, &truth, &prediction.colors)?)
    }
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
