//! `dacon bench --train`: training throughput with and without the
//! frozen-feature cache.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use dacon_core::{ColorTable, LineArt, Segmentation};
use dacon_neural::cache::CacheMode;
use dacon_neural::train::{Adam, TrainFrame, Trainer};
use dacon_neural::weights::WeightMap;
use dacon_synth::voronoi_frame;

use super::bench::{peak_rss_mib, time, BenchArgs};

/// Pairs of distinct frames of a three-frame clip (offsets +-1, +-2 wrapped),
/// every frame a source and a target. Offset-0 pairs, which the sampler also
/// draws, cost one U-Net pass instead of two and are left out so that every
/// step measures the same work.
const PAIRS: [(usize, usize); 6] = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)];

pub fn run(args: &BenchArgs) -> Result<()> {
    let device = args.engine.device.open()?;
    println!("device: {}", dacon_neural::device::describe(&device));
    let (trainer, what) = match (args.synthetic_model, &args.engine) {
        (Some(m), _) => {
            let (dino, head) = m.configs(args.dacon_version);
            (
                Trainer::new(
                    (dino.init(&device), dino),
                    (head.init(&device), head),
                    &device,
                ),
                format!("random weights of the released shapes ({m:?})"),
            )
        }
        (
            None,
            crate::args::EngineArgs {
                checkpoint: Some(c),
                dino: Some(d),
                ..
            },
        ) => (
            Trainer::load(
                WeightMap::open(c)?,
                WeightMap::open(d)?,
                args.engine.dino_heads,
                &device,
            ),
            format!("{} + {}", c.display(), d.display()),
        ),
        _ => bail!("bench --train needs --synthetic-model, or --checkpoint and --dino"),
    };
    let mut trainer = trainer.context("loading the model")?;
    let frames: Vec<TrainFrame> = [(0, 0), (6, 3), (12, 6)]
        .into_iter()
        .map(|shift| {
            let f = voronoi_frame(args.size, args.cells as usize, shift);
            let art = LineArt::from_rgba(f.line, true);
            let seg = Segmentation::from_line_art(&art)?;
            let colors = ColorTable::from_image(&seg, &f.gt)?;
            Ok(TrainFrame::new(art, &seg, colors))
        })
        .collect::<Result<_>>()?;
    let adam = Adam::new(1e-4);
    let n = args.steps;
    let mut next = 0usize;
    // The next pair's step; `time` gives the median of several.
    let mut step = |trainer: &mut Trainer| -> Result<()> {
        let (s, t) = PAIRS[next % PAIRS.len()];
        next += 1;
        let loss = trainer.train_step(&[(&frames[s], &frames[t])], adam)?;
        if !loss.loss.is_finite() {
            bail!("the loss is not finite ({})", loss.loss);
        }
        Ok(())
    };
    println!(
        "training, {what}: DACoN {:?}, U-Net {:?}, DINO width {}, batch 1, {} threads, median of {n} steps",
        trainer.config.version,
        trainer.config.unet.hidden,
        trainer.config.dino_dim,
        rayon::current_num_threads()
    );
    let report = |name: &str, t: Duration| {
        let s = t.as_secs_f64();
        println!("  {name:<44} {s:>8.2} s/step  {:>8.4} pairs/s", 1.0 / s);
    };

    let (unet, loss) = time(n, || Ok(trainer.unet_pass(2)))?;
    if !loss.is_finite() {
        bail!("the U-Net's loss is not finite ({loss})");
    }
    println!(
        "  {:<44} {:>8.2} s",
        "U-Net forward + backward, 2 images",
        unet.as_secs_f64()
    );

    trainer.set_cache(CacheMode::Off)?;
    let (off, ()) = time(n, || step(&mut trainer))?;
    report("backbone run on both frames of every pair", off);

    trainer.set_cache(CacheMode::Memory {
        max_bytes: u64::MAX,
    })?;
    // Two steps see all three frames once: the first epoch's cost.
    let (cold, ()) = time(2, || step(&mut trainer))?;
    let (warm, ()) = time(n, || step(&mut trainer))?;
    report("memory cache (f32), frames not yet seen", cold);
    report("memory cache (f32), every later step", warm);

    let dir = std::env::temp_dir().join(format!("dacon-bench-cache-{}", std::process::id()));
    let disk = (|| {
        trainer.set_cache(CacheMode::Disk(dir.clone()))?;
        time(2, || step(&mut trainer))?;
        // A new cache on the same folder: a later run or a resume.
        trainer.set_cache(CacheMode::Disk(dir.clone()))?;
        Ok::<_, anyhow::Error>(time(n, || step(&mut trainer))?.0)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let disk = disk?;
    let (hits, misses) = trainer.cache.stats();
    if misses > 0 {
        bail!("the disk cache missed {misses} of {} reads", hits + misses);
    }
    report("disk cache (f16) read by a new run", disk);
    let ratio = |t: Duration| off.as_secs_f64() / t.as_secs_f64();
    println!(
        "  backbone share of an uncached step: {:.1} s; speed-up of every epoch after the first: {:.2}x (memory), {:.2}x (disk)",
        (off.as_secs_f64() - warm.as_secs_f64()).max(0.0),
        ratio(warm),
        ratio(disk)
    );
    match peak_rss_mib() {
        Some(p) => println!("  peak RSS {p:.1} MiB"),
        None => println!("  peak RSS unavailable on this system"),
    }
    Ok(())
}
