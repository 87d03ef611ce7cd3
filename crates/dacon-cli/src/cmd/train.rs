use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dacon_core::dataset::{open_clips, Clip, Need};
use dacon_core::eval::Report;
use dacon_core::imageio::read_picture;
use dacon_core::protocol::{Protocol, RefShot, Task};
use dacon_core::{ColorTable, LineArt, Segmentation};
use dacon_neural::cache::CacheMode;
use dacon_neural::train::{Adam, TrainFrame, Trainer};
use dacon_neural::weights::WeightMap;
use dacon_neural::DaconEngine;
use rayon::prelude::*;

use crate::args::{ProtocolArg, TrainArgs};
use crate::batch::progress;

/// (character, frame name).
type FrameId = (String, String);

/// Frames of one character, by name, in order.
struct Character {
    dir: PathBuf,
    frames: Vec<String>,
}

fn characters(root: &Path) -> Result<BTreeMap<String, Character>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(root).with_context(|| format!("{}", root.display()))?;
    for e in entries {
        let dir = e?.path();
        if !dir.join("line").is_dir() {
            continue;
        }
        let frames: Vec<String> = crate::inputs::images_in(&dir.join("line"))?
            .iter()
            .map(|p| crate::inputs::stem(p))
            .collect::<Result<_>>()?;
        if frames.is_empty() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(name, Character { dir, frames });
    }
    if out.is_empty() {
        bail!(
            "{}: no training characters (expected <root>/<character>/line/NNNN.png)",
            root.display()
        );
    }
    Ok(out)
}

/// Loads a frame: the dataset's labels and table when present, otherwise
/// segmentation of the line art and the table of the painted frame.
fn load_frame(c: &Character, name: &str) -> Result<TrainFrame> {
    let line = c.dir.join(format!("line/{name}.png"));
    let art = LineArt::open(&line)?;
    let seg_png = c.dir.join(format!("seg/{name}.png"));
    let table = c.dir.join(format!("json_color/{name}.json"));
    let (seg, colors) = if seg_png.is_file() && table.is_file() {
        (Segmentation::open(&seg_png)?, ColorTable::open(&table)?)
    } else {
        let gt = c.dir.join(format!("gt/{name}.png"));
        let seg = Segmentation::from_line_art(&art)?;
        let pic = read_picture(&gt)
            .with_context(|| format!("{}: painted frame needed for training", gt.display()))?;
        let colors = ColorTable::from_image(&seg, &pic.rgba, &gt.display().to_string())?;
        (seg, colors)
    };
    Ok(TrainFrame::new(art, &seg, colors))
}

/// xorshift: small, seeded, the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// (character, source, target) of every step of epoch `epoch`.
fn epoch_pairs(
    chars: &BTreeMap<String, Character>,
    args: &TrainArgs,
    seed: u64,
    epoch: u32,
) -> Result<Vec<(String, String, String)>> {
    if !args.pair.is_empty() {
        return args
            .pair
            .iter()
            .map(|p| {
                let parts: Vec<&str> = p.split(':').collect();
                let [ch, s, t] = parts.as_slice() else {
                    bail!("--pair {p:?}: expected CHARACTER:SOURCE:TARGET");
                };
                let c = chars
                    .get(*ch)
                    .with_context(|| format!("--pair {p:?}: no character {ch}"))?;
                for f in [s, t] {
                    if !c.frames.iter().any(|x| x == f) {
                        bail!("--pair {p:?}: no frame {f} in {}", c.dir.display());
                    }
                }
                Ok((ch.to_string(), s.to_string(), t.to_string()))
            })
            .collect();
    }
    // The official pairing: source = target +- {0, 1, 2}, wrapped.
    let mut rng = Rng::new(seed ^ (u64::from(epoch) << 32));
    let mut pairs = Vec::new();
    for (name, c) in chars {
        let n = c.frames.len() as i64;
        for (i, t) in c.frames.iter().enumerate() {
            let d = rng.below(3) as i64 * if rng.below(2) == 0 { -1 } else { 1 };
            let s = (i as i64 + d).rem_euclid(n) as usize;
            pairs.push((name.clone(), c.frames[s].clone(), t.clone()));
        }
    }
    for i in (1..pairs.len()).rev() {
        pairs.swap(i, rng.below(i + 1));
    }
    Ok(pairs)
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let chars = characters(&args.data)?;
    let device = dacon_neural::Device::default();
    let dino = WeightMap::open(&args.dino)?;
    let (init_path, start_step, meta) = match (&args.resume, &args.init) {
        (Some(r), _) => {
            let meta = Trainer::checkpoint_info(r)
                .with_context(|| {
                    format!(
                        "{}: --resume needs one of our .safetensors checkpoints",
                        r.display()
                    )
                })?
                .unwrap_or_default();
            let step: u64 = meta
                .get("step")
                .and_then(|s| s.parse().ok())
                .with_context(|| {
                    format!(
                        "{}: no training step in the metadata (not a `dacon train` checkpoint)",
                        r.display()
                    )
                })?;
            (r.clone(), step, meta)
        }
        (None, Some(i)) => (i.clone(), 0, BTreeMap::new()),
        (None, None) => bail!("give --init (a DACoN checkpoint) or --resume"),
    };
    let order = Order {
        seed: agreed("--seed", args.seed, &meta, "seed", 0)?,
        batch: agreed("--batch-size", args.batch_size, &meta, "batch_size", 1)?,
    };
    let mut trainer = Trainer::load(WeightMap::open(&init_path)?, dino, args.dino_heads, &device)
        .context("loading the model")?;
    trainer.step = start_step;
    trainer.set_cache(match (&args.cache_dir, args.no_cache) {
        (Some(dir), _) => CacheMode::Disk(dir.clone()),
        (None, true) => CacheMode::Off,
        (None, false) => CacheMode::Memory {
            max_bytes: args.cache_memory_mb << 20,
        },
    })?;
    if let Some(o) = &args.out {
        std::fs::create_dir_all(o).with_context(|| format!("{}", o.display()))?;
    }
    let mut log = match &args.log_jsonl {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let batch = order.batch as usize;
    let steps_per_epoch = epoch_pairs(&chars, args, order.seed, 0)?
        .len()
        .div_ceil(batch) as u64;
    let total_steps = args
        .max_steps
        .unwrap_or(steps_per_epoch * u64::from(args.epochs))
        .min(steps_per_epoch * u64::from(args.epochs).max(1));
    let pb = progress(total_steps, args.quiet, "steps");
    pb.set_position(start_step.min(total_steps));
    let mut frames: HashMap<FrameId, TrainFrame> = HashMap::new();
    let adam = Adam::new(args.lr);
    let started = Instant::now();
    let mut step = start_step;
    let mut done_pairs = 0u64;
    let validation = match &args.val_data {
        Some(root) => Some(
            open_clips(root, Need::Evaluation)
                .with_context(|| format!("{}: validation data", root.display()))?,
        ),
        None => None,
    };
    let mut last_epoch = 0;
    let loaders = rayon::ThreadPoolBuilder::new()
        .num_threads(args.workers as usize)
        .build()?;
    'epochs: for epoch in 0..args.epochs.max(1) {
        if epoch > last_epoch {
            // The end of the previous epoch: checkpoint and validation.
            if let Some(o) = &args.out {
                save(&trainer, o, args, &order)?;
            }
            if let Some(v) = &validation {
                validate(&trainer, v, args, last_epoch, log.as_mut())?;
            }
            last_epoch = epoch;
        }
        let pairs = epoch_pairs(&chars, args, order.seed, epoch)?;
        for (b, chunk) in pairs.chunks(batch).enumerate() {
            let global = u64::from(epoch) * steps_per_epoch + b as u64;
            if global < start_step {
                continue; // done before the checkpoint we resumed from
            }
            if step >= total_steps {
                break 'epochs;
            }
            // Only this batch's frames stay loaded (a training set does not
            // fit in memory; the frozen features are what is worth keeping,
            // and the cache does). The missing ones load in parallel.
            let needed: BTreeSet<FrameId> = chunk
                .iter()
                .flat_map(|(ch, s, t)| [(ch.clone(), s.clone()), (ch.clone(), t.clone())])
                .collect();
            frames.retain(|k, _| needed.contains(k));
            let missing: Vec<&FrameId> =
                needed.iter().filter(|k| !frames.contains_key(*k)).collect();
            let loaded: Vec<Result<(FrameId, TrainFrame)>> = loaders.install(|| {
                missing
                    .par_iter()
                    .map(|&k| Ok((k.clone(), load_frame(&chars[&k.0], &k.1)?)))
                    .collect()
            });
            for l in loaded {
                let (k, f) = l?;
                frames.insert(k, f);
            }
            let frame = |ch: &String, f: &String| &frames[&(ch.clone(), f.clone())];
            let refs: Vec<(&TrainFrame, &TrainFrame)> = chunk
                .iter()
                .map(|(ch, s, t)| (frame(ch, s), frame(ch, t)))
                .collect();
            let t0 = Instant::now();
            let loss = trainer.train_step(&refs, adam)?;
            step = trainer.step;
            let (hits, misses) = trainer.cache.stats();
            let line = serde_json::json!({
                "step": step,
                "epoch": epoch,
                "loss": loss.loss,
                "ce": loss.ce,
                "l1": loss.l1,
                "lr": args.lr,
                "pairs": chunk.iter().map(|(c, s, t)| format!("{c}:{s}:{t}")).collect::<Vec<_>>(),
                "seconds": t0.elapsed().as_secs_f64(),
                "features_computed": misses,
                "features_cached": hits,
            });
            if let Some(f) = log.as_mut() {
                writeln!(f, "{line}").context("writing the log")?;
            }
            let secs = started.elapsed().as_secs_f64();
            done_pairs += chunk.len() as u64;
            pb.set_message(format!(
                "loss {:.4}, {:.3} pairs/s",
                loss.loss,
                done_pairs as f64 / secs.max(1e-9)
            ));
            pb.inc(1);
            if let (Some(o), Some(every)) = (&args.out, args.save_every) {
                if step % every == 0 {
                    save(&trainer, o, args, &order)?;
                }
            }
        }
    }
    pb.finish_and_clear();
    if let Some(v) = &validation {
        validate(&trainer, v, args, last_epoch, log.as_mut())?;
    }
    if let Some(o) = &args.out {
        let p = save(&trainer, o, args, &order)?;
        println!("checkpoint: {}", p.display());
    }
    if trainer.cache.memory_full() {
        eprintln!(
            "note: the in-memory feature cache reached --cache-memory-mb ({} MB); later frames were recomputed every time. --cache-dir keeps all of them on disk.",
            args.cache_memory_mb
        );
    }
    if !args.quiet {
        let n = step - start_step;
        let secs = started.elapsed().as_secs_f64();
        let (hits, misses) = trainer.cache.stats();
        eprintln!(
            "{n} steps, {done_pairs} pairs in {secs:.1} s ({:.3} pairs/s); backbone features: {hits} from the cache, {misses} computed",
            done_pairs as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// Scores the current weights on the validation clips and logs the result.
fn validate(
    trainer: &Trainer,
    clips: &[Clip],
    args: &TrainArgs,
    epoch: u32,
    log: Option<&mut std::fs::File>,
) -> Result<()> {
    let protocol = match args.val_protocol {
        ProtocolArg::Consecutive => Protocol::consecutive(Some(20)),
        ProtocolArg::Keyframe => Protocol::keyframe(RefShot::Max),
    };
    let tasks: Vec<(usize, Task)> = clips
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| protocol.tasks(c).into_iter().map(move |t| (ci, t)))
        .collect();
    let engine = DaconEngine::from_weights(
        trainer.params.clone(),
        WeightMap::open(&args.dino)?,
        args.dino_heads,
        &dacon_neural::Device::default(),
    )?;
    let pb = progress(tasks.len() as u64, true, "frames");
    let time = std::sync::Mutex::new(std::time::Duration::ZERO);
    let mut report = Report::default();
    for s in crate::cmd::eval::engine_scores(&engine, clips, &tasks, None, &time, &pb) {
        report.frames.push(s?);
    }
    let overall = report.overall();
    if !args.quiet {
        eprintln!(
            "validation after epoch {epoch}: Acc {:.4}, Acc-Thresh {:.4} over {} frames",
            overall.metrics.acc, overall.metrics.acc_thresh, overall.frames
        );
    }
    if let Some(f) = log {
        let line =
            serde_json::json!({ "epoch": epoch, "step": trainer.step, "validation": overall });
        writeln!(f, "{line}").context("writing the log")?;
    }
    Ok(())
}

/// What fixes the order of the data: a resumed run must keep it.
struct Order {
    seed: u64,
    batch: u32,
}

/// The value of `flag`: as given, else the resumed checkpoint's, else
/// `default`; a given value that differs from the checkpoint's is refused,
/// since the data order (and the step count per epoch) would change.
fn agreed<T>(
    flag: &str,
    given: Option<T>,
    meta: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T>
where
    T: std::str::FromStr + PartialEq + std::fmt::Display + Copy,
{
    let stored = meta.get(key).and_then(|s| s.parse::<T>().ok());
    match (given, stored) {
        (Some(g), Some(s)) if g != s => bail!(
            "{flag} {g} differs from the checkpoint's {s}: the order of the data would change; drop {flag} to continue the run as it was"
        ),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Ok(default),
    }
}

fn save(trainer: &Trainer, out: &Path, args: &TrainArgs, order: &Order) -> Result<PathBuf> {
    let meta = BTreeMap::from([
        ("seed".to_string(), order.seed.to_string()),
        ("batch_size".to_string(), order.batch.to_string()),
        ("lr".to_string(), args.lr.to_string()),
    ]);
    let path = out.join(format!("step-{:06}.safetensors", trainer.step));
    trainer.save(&path, meta.clone())?;
    trainer.save(&out.join("last.safetensors"), meta)?;
    Ok(path)
}
