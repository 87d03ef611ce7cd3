//! Scores the classic engine on every preset of our drawn cuts (hard and
//! anti-aliased outlines) and, when present, on the shared warp set
//! (`../shared/data/warpbench-dev`, read in place, never copied into the
//! repository), under the protocols `dacon eval` runs:
//! `consecutive --clip-interval max` with `--refs-window 1` and `3`, and
//! `keyframe --ref-shot max`.
//!
//! Besides Acc and Acc-Thresh it reports how honest the margins are: the
//! share of wrong segments (over 10 px) that fall in the least-confident
//! 20% of each frame's segments, the part of the review list a colourist
//! reads first.
//!
//! Run: `cargo run --release -p dacon-synth --example presets [WORK_DIR
//! [FILTER [SEED [WxH [MOTION]]]]]` (FILTER keeps the sets whose name
//! contains it; cuts already written to WORK_DIR are reused, so give each
//! SEED, size and MOTION its own WORK_DIR; an empty SEED or WxH keeps the
//! default). Another SEED draws other motions of every preset: a check that
//! a change did not just fit the default cuts. MOTION scales how far parts
//! move between frames (default 1): real cels drawn on twos or threes move
//! further than our default cuts. FILTER `timing`
//! instead times one 1920x1080 frame of each preset coloured from three
//! references (features of all four frames and matching, one thread), the
//! budget #11 sets at 2 s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dacon_core::classic::ClassicEngine;
use dacon_core::dataset::{Clip, Need};
use dacon_core::eval::{run_task, score, truth_table, Report};
use dacon_core::metrics::SMALL_SEGMENT_PIXELS;
use dacon_core::protocol::{Limit, Protocol};
use dacon_core::{ColorTable, Engine, Frame, LineArt, LineOptions, Reference, Segmentation};
use dacon_synth::{draw_cut, write_cut, CutSpec, Preset};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> R<()> {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("dacon-presets"));
    let filter = std::env::args().nth(2).unwrap_or_default();
    if filter == "timing" {
        return timing();
    }
    let mut base = CutSpec {
        frames: 10,
        ..CutSpec::default()
    };
    if let Some(seed) = std::env::args().nth(3).filter(|s| !s.is_empty()) {
        base.seed = seed.parse()?;
    }
    if let Some(size) = std::env::args().nth(4).filter(|s| !s.is_empty()) {
        let (w, h) = size.split_once('x').ok_or("size is WxH, e.g. 1920x1080")?;
        (base.width, base.height) = (w.parse()?, h.parse()?);
        // Outlines as thick, relative to the figure, as at 576 rows.
        base.line_width *= f64::from(base.height) / 576.0;
    }
    if let Some(motion) = std::env::args().nth(5) {
        base.motion = motion.parse()?;
    }
    let mut sets: Vec<(String, PathBuf)> = Vec::new();
    for preset in Preset::ALL {
        for antialias in [false, true] {
            let name = format!("{}{}", preset.name(), if antialias { "-aa" } else { "" });
            let dir = work.join(&name);
            if name.contains(&filter) && !dir.join("seg").is_dir() {
                write_cut(
                    &dir,
                    &CutSpec {
                        antialias,
                        preset,
                        ..base.clone()
                    },
                )?;
            }
            sets.push((name, dir));
        }
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/warpbench-dev");
    for ch in ["laughing_girl", "smoke_explosion"] {
        let dir = shared.join(ch);
        if dir.is_dir() {
            sets.push((format!("warp {ch}"), dir));
        } else {
            eprintln!("SKIPPED warp {ch}: {} absent", dir.display());
        }
    }
    let protocols = [
        ("consecutive w1", Protocol::consecutive(Limit::Max)),
        (
            "consecutive w3",
            Protocol::Consecutive {
                clip_interval: Limit::Max,
                window: 3,
                next: false,
            },
        ),
        ("keyframe max", Protocol::keyframe(Limit::Max)),
    ];
    let engine = ClassicEngine::default();
    println!("| set | segments/frame | protocol | Acc | Acc-Thresh | errors in low-margin 20% | s/task |");
    println!("|---|---|---|---:|---:|---:|---:|");
    let mut means = vec![(0.0, 0.0, 0usize); protocols.len()];
    for (name, dir) in sets.iter().filter(|s| s.0.contains(&filter)) {
        let clip = Clip::open(dir, Need::Evaluation)?;
        let mut counts = Vec::new();
        for (pi, (pname, protocol)) in protocols.iter().enumerate() {
            let mut report = Report::default();
            let (mut errors, mut flagged) = (0usize, 0usize);
            let t0 = Instant::now();
            let tasks = protocol.tasks(&clip);
            for task in &tasks {
                let run = run_task(&engine, &clip, task, &LineOptions::default())?;
                let truth = truth_table(&clip, task.target)?;
                let pred = &run.prediction.colors;
                report
                    .frames
                    .push(score(&clip, task.target, &run.seg, &truth, pred)?);
                if pi == 0 {
                    counts.push(run.seg.count());
                }
                // Segments ranked least-confident first, as the review list
                // shows them.
                let sizes = run.seg.pixel_counts();
                let mut ranked: Vec<u32> = (1..=run.seg.count())
                    .filter(|&l| sizes[l as usize] > SMALL_SEGMENT_PIXELS)
                    .collect();
                ranked.sort_by(|&a, &b| {
                    let m = |l: u32| run.prediction.confidence[l as usize - 1].margin;
                    m(a).total_cmp(&m(b)).then(a.cmp(&b))
                });
                let low = ranked.len().div_ceil(5);
                for (rank, &l) in ranked.iter().enumerate() {
                    if pred.get(l) != truth.get(l) {
                        errors += 1;
                        flagged += usize::from(rank < low);
                    }
                }
            }
            let m = report.overall().metrics;
            let honest = if errors == 0 {
                "no error".to_string()
            } else {
                format!("{:.2} of {errors}", flagged as f64 / errors as f64)
            };
            let (lo, hi) = (
                counts.iter().min().copied().unwrap_or(0),
                counts.iter().max().copied().unwrap_or(0),
            );
            println!(
                "| {name} | {lo}-{hi} | {pname} | {:.4} | {:.4} | {honest} | {:.2} |",
                m.acc,
                m.acc_thresh,
                t0.elapsed().as_secs_f64() / tasks.len().max(1) as f64
            );
            if !name.starts_with("warp") {
                means[pi].0 += m.acc;
                means[pi].1 += m.acc_thresh;
                means[pi].2 += 1;
            }
        }
    }
    for ((pname, _), (acc, thr, n)) in protocols.iter().zip(means) {
        if n > 0 {
            println!(
                "| mean of {n} drawn sets | | {pname} | {:.4} | {:.4} | | |",
                acc / n as f64,
                thr / n as f64
            );
        }
    }
    Ok(())
}

/// Times colouring frame 3 of a 1920x1080 cut from frames 0-2.
fn timing() -> R<()> {
    let engine = ClassicEngine::default();
    println!("| preset | segments | features + match, 4 frames, 3 refs (s) |");
    println!("|---|---:|---:|");
    for preset in Preset::ALL {
        let cut = draw_cut(&CutSpec {
            width: 1920,
            height: 1080,
            frames: 4,
            line_width: 4.0,
            preset,
            ..CutSpec::default()
        });
        let mut frames = Vec::new();
        for f in &cut {
            let art = LineArt::from_rgba(f.line.clone(), true);
            let seg = Segmentation::from_line_art(&art)?;
            let table = ColorTable::from_image(&seg, &f.gt)?;
            frames.push((Frame::new(art, seg), table));
        }
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t0 = Instant::now();
            let features: Vec<_> = frames
                .iter()
                .map(|(f, _)| engine.features(f))
                .collect::<Result<_, _>>()?;
            let refs: Vec<Reference<'_, _>> = features[..3]
                .iter()
                .zip(&frames)
                .map(|(features, (_, colors))| Reference { features, colors })
                .collect();
            engine.predict(&refs, &features[3])?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "| {} | {} | {best:.2} |",
            preset.name(),
            frames[3].0.seg.count()
        );
    }
    Ok(())
}
