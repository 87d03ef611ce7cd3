//! Measures gap closing and soft-line preparation with the classic engine.
//!
//! Sets: our own drawn cuts (three seeds) and, when present, the shared
//! warp set (`../shared/data/warpbench-dev`, read in place, never copied
//! into the repository). Each is scored clean and leaky (short pieces of
//! black line erased: 2-7 px gaps, 12 per megapixel, 70% between regions
//! of different colours; references clean), without and with closing, on
//! the original segments: `consecutive` (each frame from the painted
//! previous one, `eval --protocol consecutive --clip-interval max`) and
//! `propagate` (`colorize --propagate` from the design sheet). Then soft
//! versions of our drawings (drawn at 4x, downsampled, blurred, noisy; with
//! alpha and on paper) against their binary originals, and the time gap
//! closing adds to segmenting a 1920x1080 frame.
//!
//! Run: `cargo run --release -p dacon-synth --example gapbench [WORK_DIR [gaps|soft|timing]]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use dacon_core::classic::ClassicEngine;
use dacon_core::colorize::{colorize_clip, ColorizeOptions};
use dacon_core::dataset::{Clip, Need};
use dacon_core::eval::{run_task, score, truth_table, Report};
use dacon_core::frame::Threshold;
use dacon_core::imageio::write_rgba_png;
use dacon_core::protocol::{Limit, Protocol};
use dacon_core::{ColorTable, LineArt, LineOptions, Segmentation};
use dacon_synth::leak::{downsample_binary, soften, write_leaky_clip, LeakSpec, SoftSpec};
use dacon_synth::{draw_cut, write_cut, write_frames, CutSpec};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> R<()> {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("dacon-gapbench"));
    // Optional second argument: one part only (`gaps`, `soft` or `timing`).
    let only = std::env::args().nth(2);
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let _ = std::fs::remove_dir_all(&work);
    let engine = ClassicEngine::default();
    if !part("gaps") {
        if part("soft") {
            soft_lines(&engine, &work)?;
        }
        if part("timing") {
            timing()?;
        }
        return Ok(());
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/warpbench-dev");

    let mut sets: Vec<(String, PathBuf)> = Vec::new();
    for (seed, motion) in [(7u64, 1.0), (21, 1.5), (33, 1.0)] {
        let dir = work.join(format!("own-{seed}"));
        write_cut(
            &dir,
            &CutSpec {
                width: 1024,
                height: 768,
                frames: 8,
                seed,
                motion,
                ..CutSpec::default()
            },
        )?;
        sets.push((format!("own seed {seed}"), dir));
    }
    for ch in ["laughing_girl", "smoke_explosion"] {
        let dir = shared.join(ch);
        if dir.is_dir() {
            sets.push((format!("warp {ch}"), dir));
        } else {
            eprintln!("SKIPPED warp {ch}: {} absent", dir.display());
        }
    }

    println!(
        "| set | line art | closing | consecutive Acc-Thr | propagate Acc-Thr | closings/frame |"
    );
    println!("|---|---|---|---:|---:|---:|");
    for (si, (name, clean)) in sets.iter().enumerate() {
        let leaky = work.join(format!("leaky-{si}"));
        let cuts = write_leaky_clip(clean, &leaky, &LeakSpec::default())?;
        let n_cuts: usize = cuts.iter().map(Vec::len).sum();
        for (art, dir) in [("clean", clean), ("leaky", &leaky)] {
            for close in [None, Some(8)] {
                let line = LineOptions {
                    threshold: None,
                    close_gaps: Some(close.unwrap_or(0)),
                };
                let (cons, prop, closings) =
                    measure(&engine, dir, &line, &work.join(format!("out-{si}")))?;
                println!(
                    "| {name} | {art}{} | {} | {cons:.4} | {prop:.4} | {closings:.1} |",
                    if art == "leaky" {
                        format!(" ({n_cuts} gaps)")
                    } else {
                        String::new()
                    },
                    close.map_or("off".to_string(), |c| format!("{c} px")),
                );
            }
        }
    }

    if part("soft") {
        soft_lines(&engine, &work)?;
    }
    if part("timing") {
        timing()?;
    }
    Ok(())
}

/// Mean Acc-Thresh of the consecutive protocol and of propagation, and the
/// closings per frame.
fn measure(
    engine: &ClassicEngine,
    dir: &Path,
    line: &LineOptions,
    out: &Path,
) -> R<(f64, f64, f64)> {
    let clip = Clip::open(dir, Need::Evaluation)?;
    let mut report = Report::default();
    for t in Protocol::consecutive(Limit::Max).tasks(&clip) {
        let run = run_task(engine, &clip, &t, line)?;
        let truth = truth_table(&clip, t.target)?;
        report.frames.push(score(
            &clip,
            t.target,
            &run.seg,
            &truth,
            &run.prediction.colors,
        )?);
    }
    let cons = report.overall().metrics.acc_thresh;
    let _ = std::fs::remove_dir_all(out);
    let opts = ColorizeOptions {
        line: *line,
        propagate: true,
        force: true,
        ..ColorizeOptions::default()
    };
    let cut = colorize_clip(engine, &clip, out, &opts, &|_, _| {})?;
    let prop = cut.score().map_or(f64::NAN, |(_, m)| m.acc_thresh);
    let mut closings = 0usize;
    for f in &clip.frames {
        closings += dacon_core::Frame::open(&f.line, line)?.closings.len();
    }
    Ok((cons, prop, closings as f64 / clip.frames.len() as f64))
}

/// Soft versions of our drawings against their binary originals.
fn soft_lines(engine: &ClassicEngine, work: &Path) -> R<()> {
    println!();
    println!("| drawing | line art | preparation | segments found / original | consecutive Acc-Thr | propagate Acc-Thr |");
    println!("|---|---|---|---:|---:|---:|");
    for seed in [7u64, 21] {
        let spec = CutSpec {
            width: 1024,
            height: 768,
            frames: 6,
            seed,
            line_width: 2.0,
            ..CutSpec::default()
        };
        // Drawn once at 4x: the binary original and the soft versions are
        // both made from it, so they align pixel for pixel.
        let big = draw_cut(&CutSpec {
            width: spec.width * 4,
            height: spec.height * 4,
            line_width: spec.line_width * 4.0,
            ..spec.clone()
        });
        let binary = work.join(format!("soft-{seed}-binary"));
        let originals: Vec<_> = big.iter().map(downsample_binary).collect();
        write_frames(&binary, &originals)?;
        for (kind, on_paper) in [("brush (alpha)", false), ("scan (paper)", true)] {
            let dir = work.join(format!("soft-{seed}-{on_paper}"));
            copy_tree(&binary, &dir)?;
            for (i, f) in big.iter().enumerate() {
                let (soft, _) = soften(
                    &f.line,
                    &SoftSpec {
                        blur: 0.7,
                        noise: 6.0,
                        on_paper,
                        seed: seed * 100 + i as u64,
                    },
                );
                write_rgba_png(&dir.join(format!("line/{i:04}.png")), &soft)?;
                if i == 0 {
                    write_rgba_png(&dir.join("ref/line/0000.png"), &soft)?;
                }
            }
            for (label, threshold) in [
                ("official rule", None),
                ("--line-threshold 128", Some(Threshold::Ink(128))),
                ("--line-threshold auto", Some(Threshold::Auto)),
            ] {
                let line = LineOptions {
                    threshold,
                    close_gaps: Some(0),
                };
                let found = segments_found(&dir, &line)?;
                let (cons, prop, _) = match measure(engine, &dir, &line, &work.join("soft-out")) {
                    Ok(m) => m,
                    Err(e) => {
                        println!("| seed {seed} | {kind} | {label} | {found} | failed: {e} | |");
                        continue;
                    }
                };
                println!("| seed {seed} | {kind} | {label} | {found} | {cons:.4} | {prop:.4} |");
            }
        }
        let line = LineOptions {
            threshold: None,
            close_gaps: Some(0),
        };
        let (cons, prop, _) = measure(engine, &binary, &line, &work.join("soft-out"))?;
        println!("| seed {seed} | binary original | official rule | all | {cons:.4} | {prop:.4} |");
    }
    Ok(())
}

/// How many original segments (> 10 px) have a segment of the prepared
/// frame covering at least half of them, over all frames.
fn segments_found(dir: &Path, line: &LineOptions) -> R<String> {
    let clip = Clip::open(dir, Need::Evaluation)?;
    let (mut found, mut total) = (0usize, 0usize);
    for f in &clip.frames {
        let orig = Segmentation::open(f.seg.as_ref().expect("seg"))?;
        let Ok(frame) = dacon_core::Frame::open(&f.line, line) else {
            total += orig.count() as usize;
            continue;
        };
        let map = orig.majority_of(&frame.seg)?;
        let counts = orig.pixel_counts();
        let theirs = frame.seg.pixel_counts();
        // Overlap of each original segment with its majority segment.
        let mut overlap = vec![0u64; orig.count() as usize + 1];
        let filled = frame.seg.filled_labels();
        for (&a, &b) in orig.labels().iter().zip(&filled) {
            if a != 0 && b == map[a as usize] {
                overlap[a as usize] += 1;
            }
        }
        for id in 1..=orig.count() as usize {
            if counts[id] <= 10 {
                continue;
            }
            total += 1;
            // Found: most of it in one segment that is mostly it.
            let b = map[id] as usize;
            if b != 0 && overlap[id] * 2 > counts[id] && overlap[id] * 2 > theirs[b] {
                found += 1;
            }
        }
    }
    Ok(format!("{found}/{total}"))
}

/// CPU time of this thread so far, in ms (0 where the kernel does not say).
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

fn copy_tree(from: &Path, to: &Path) -> R<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}

/// Segmenting a 1920x1080 frame with and without closing, median of 15.
fn timing() -> R<()> {
    let spec = CutSpec {
        width: 1920,
        height: 1080,
        frames: 1,
        ..CutSpec::default()
    };
    let f = draw_cut(&spec).remove(0);
    let art = LineArt::from_rgba(f.line.clone(), true);
    let seg = Segmentation::from_line_art(&art)?;
    let table = ColorTable::from_image(&seg, &f.gt)?;
    let (leaky, _) = dacon_synth::leak::cut_gaps(&f.line, true, &seg, &table, &LeakSpec::default());
    let mut frames = vec![
        ("own drawing, clean", art),
        ("own drawing, leaky", LineArt::from_rgba(leaky, true)),
    ];
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/warpbench-dev/laughing_girl/line/0000.png");
    if shared.is_file() {
        // The real frame cropped to 1920x1080 would cut its lines; scale the
        // figure instead: it is 1600x1600 (2.56 MP, 1.23x a 1080p frame).
        frames.push(("warp laughing_girl 1600x1600", LineArt::open(&shared)?));
    }
    println!();
    println!("| frame | segment (ms, wall / cpu) | segment + close 8 | closing adds | closings |");
    println!("|---|---:|---:|---:|---:|");
    for (name, art) in &frames {
        // Wall time (median) and this thread's CPU time (median, from
        // /proc/thread-self/schedstat: on a shared machine the wall time
        // also counts the waits for a core).
        let median = |f: &dyn Fn()| {
            let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..15)
                .map(|_| {
                    let (s, c) = (Instant::now(), cpu_ms());
                    f();
                    (s.elapsed().as_secs_f64() * 1e3, cpu_ms() - c)
                })
                .unzip();
            wall.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            (wall[wall.len() / 2], cpu[cpu.len() / 2])
        };
        let plain = median(&|| {
            Segmentation::from_line_art(art).expect("segments");
        });
        let closed = median(&|| {
            Segmentation::from_line_art_closing(art, 8).expect("segments");
        });
        let n = Segmentation::from_line_art_closing(art, 8)?.1.len();
        println!(
            "| {name} ({}x{}) | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {n} |",
            art.width(),
            art.height(),
            plain.0,
            plain.1,
            closed.0,
            closed.1,
            closed.0 - plain.0,
            closed.1 - plain.1,
        );
    }
    Ok(())
}
