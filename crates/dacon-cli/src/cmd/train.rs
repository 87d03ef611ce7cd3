//! `dacon train`: the training loop around `dacon_neural::train::Trainer`,
//! in steps: resolve where training starts, load the model, plan the epochs,
//! run them (loading each batch's frames, one Adam step, log, checkpoint),
//! validate after every epoch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use dacon_core::dataset::{open_clips, Clip, Need, TrainPair, TrainSet};
use dacon_core::eval::Report;
use dacon_core::protocol::{Limit, Protocol, Task};
use dacon_core::LineOptions;
use dacon_neural::cache::CacheMode;
use dacon_neural::train::{Adam, TrainFrame, Trainer};
use dacon_neural::weights::WeightMap;
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::batch::progress;
use crate::cmd::eval::ProtocolArg;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data root (character folders).
    #[arg(long, value_name = "ROOT")]
    pub data: PathBuf,
    /// Initial weights: a DACoN checkpoint (`.pth` or ours).
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub init: Option<PathBuf>,
    /// Continue from one of our checkpoints (weights, Adam state, step).
    #[arg(long, value_name = "FILE", conflicts_with = "init")]
    pub resume: Option<PathBuf>,
    /// DINOv2 weights (frozen).
    #[arg(long, value_name = "FILE")]
    pub dino: PathBuf,
    /// Attention heads of the DINOv2 (default: from its width).
    #[arg(long, value_name = "N")]
    pub dino_heads: Option<usize>,
    #[command(flatten)]
    pub device: crate::args::DeviceArg,
    /// Fixed training pairs `CHARACTER:SOURCE:TARGET` (frame names),
    /// repeatable; replaces the random pairing.
    #[arg(long, value_name = "CHAR:SRC:TGT")]
    pub pair: Vec<String>,
    /// Epochs (passes over every target frame).
    #[arg(long, default_value_t = 1)]
    pub epochs: u32,
    /// Stop after this many steps in total.
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Pairs per step [default: 1, or the checkpoint's with --resume].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Adam learning rate (a positive number).
    #[arg(long, default_value_t = 1e-4, value_parser = parse_lr)]
    pub lr: f64,
    /// Seed of the pairing and the order [default: 0, or the checkpoint's
    /// with --resume].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Checkpoint folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Save a checkpoint every N steps (and always at the end of every
    /// epoch and of the run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub save_every: Option<u64>,
    /// Append one JSON line per step (`step`, `loss`, `ce`, `l1`, ...).
    #[arg(long, value_name = "FILE")]
    pub log_jsonl: Option<PathBuf>,
    /// Threads that load (and, without labels, segment) the frames of a
    /// batch in parallel.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=crate::args::MAX_JOBS as i64))]
    pub workers: u32,
    /// Validate after every epoch on this benchmark layout (the `eval`
    /// protocol of --val-protocol); results go to the log and stderr.
    #[arg(long, value_name = "ROOT")]
    pub val_data: Option<PathBuf>,
    /// Validation protocol (consecutive uses clip interval 20, keyframe all
    /// design sheets).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Consecutive)]
    pub val_protocol: ProtocolArg,
    /// Recompute the frozen DINO features every time (to measure the
    /// cache). By default they are kept in memory (float32) for the run.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Size limit of the in-memory feature cache, in MB (a ViT-L frame of
    /// 300 segments takes 1.2 MB); frames beyond it are recomputed.
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    pub cache_memory_mb: u64,
    /// Keep the frozen DINO segment features in this folder (float16, one
    /// small file per frame) instead of memory: later runs, resumes and
    /// other experiments with the same backbone and data skip the backbone
    /// entirely. Entries are keyed by a hash of the backbone weights, the
    /// line art and the labels, so a stale entry is never used.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive learning rate, got {s:?}")),
    }
}

impl TrainArgs {
    /// Where the frozen features are kept.
    fn cache_mode(&self) -> CacheMode {
        match (&self.cache_dir, self.no_cache) {
            (Some(dir), _) => CacheMode::Disk(dir.clone()),
            (None, true) => CacheMode::Off,
            (None, false) => CacheMode::Memory {
                max_bytes: self.cache_memory_mb << 20,
            },
        }
    }

    /// The fixed pairs of `--pair`, if any.
    fn fixed_pairs(&self, set: &TrainSet) -> Result<Vec<TrainPair>> {
        self.pair
            .iter()
            .map(|p| set.pair(p).map_err(|e| anyhow::anyhow!("--pair {e}")))
            .collect()
    }

    fn validation_protocol(&self) -> Protocol {
        match self.val_protocol {
            ProtocolArg::Consecutive => Protocol::consecutive(Limit::Count(20)),
            ProtocolArg::Keyframe => Protocol::keyframe(Limit::Max),
        }
    }
}

/// Where a run starts: initial weights, the step reached, and the order of
/// the data (kept by a resumed run).
struct Start {
    init: PathBuf,
    step: u64,
    order: Order,
}

impl Start {
    fn resolve(args: &TrainArgs) -> Result<Start> {
        let (init, step, meta) = match (&args.resume, &args.init) {
            (Some(r), _) => {
                let meta = Trainer::checkpoint_info(r)
                    .with_context(|| {
                        format!(
                            "{}: --resume needs one of our .safetensors checkpoints",
                            r.display()
                        )
                    })?
                    .unwrap_or_default();
                let step: u64 =
                    meta.get("step")
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
        Ok(Start { init, step, order })
    }
}

/// The pairs of every epoch and the number of steps.
struct Plan {
    fixed: Option<Vec<TrainPair>>,
    seed: u64,
    batch: usize,
    steps_per_epoch: u64,
    total_steps: u64,
}

impl Plan {
    fn new(set: &TrainSet, args: &TrainArgs, order: &Order) -> Result<Plan> {
        let fixed = if args.pair.is_empty() {
            None
        } else {
            Some(args.fixed_pairs(set)?)
        };
        let batch = order.batch as usize;
        let per_epoch = fixed
            .as_ref()
            .map_or_else(|| set.epoch_pairs(order.seed, 0).len(), Vec::len);
        let steps_per_epoch = per_epoch.div_ceil(batch) as u64;
        let all = steps_per_epoch * u64::from(args.epochs.max(1));
        Ok(Plan {
            fixed,
            seed: order.seed,
            batch,
            steps_per_epoch,
            total_steps: args.max_steps.unwrap_or(all).min(all),
        })
    }

    fn pairs(&self, set: &TrainSet, epoch: u32) -> Vec<TrainPair> {
        match &self.fixed {
            Some(p) => p.clone(),
            None => set.epoch_pairs(self.seed, epoch),
        }
    }
}

/// (character, frame name).
type FrameId = (String, String);

/// A run in progress.
struct TrainRun<'a> {
    args: &'a TrainArgs,
    set: &'a TrainSet,
    trainer: Trainer,
    order: Order,
    plan: Plan,
    adam: Adam,
    log: Option<File>,
    validation: Option<Vec<Clip>>,
    /// The current batch's frames.
    frames: HashMap<FrameId, TrainFrame>,
    loaders: rayon::ThreadPool,
    pb: ProgressBar,
    started: Instant,
    start_step: u64,
    done_pairs: u64,
    /// The epoch under way.
    epoch: u32,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let set = TrainSet::open(&args.data)?;
    let start = Start::resolve(args)?;
    let device = args.device.open()?;
    let dino = WeightMap::open(&args.dino)?;
    let mut trainer = Trainer::load(
        WeightMap::open(&start.init)?,
        dino,
        args.dino_heads,
        &device,
    )
    .context("loading the model")?;
    trainer.step = start.step;
    trainer.set_cache(args.cache_mode())?;
    if let Some(o) = &args.out {
        std::fs::create_dir_all(o).with_context(|| format!("{}", o.display()))?;
    }
    let log = match &args.log_jsonl {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let validation = match &args.val_data {
        Some(root) => Some(
            open_clips(root, Need::Evaluation)
                .with_context(|| format!("{}: validation data", root.display()))?,
        ),
        None => None,
    };
    let plan = Plan::new(&set, args, &start.order)?;
    let pb = progress(plan.total_steps, args.quiet, "steps");
    pb.set_position(start.step.min(plan.total_steps));
    let mut run = TrainRun {
        args,
        set: &set,
        trainer,
        order: start.order,
        plan,
        adam: Adam::new(args.lr),
        log,
        validation,
        frames: HashMap::new(),
        loaders: rayon::ThreadPoolBuilder::new()
            .num_threads(args.workers as usize)
            .build()
            .context("starting the loader threads")?,
        pb,
        started: Instant::now(),
        start_step: start.step,
        done_pairs: 0,
        epoch: 0,
    };
    for epoch in 0..args.epochs.max(1) {
        if epoch > 0 {
            // The end of the previous epoch: checkpoint and validation.
            run.end_of_epoch(epoch - 1, false)?;
        }
        if !run.epoch(epoch)? {
            break;
        }
    }
    run.finish()
}

impl TrainRun<'_> {
    /// The steps of one epoch; `false` once the run's last step is done.
    fn epoch(&mut self, epoch: u32) -> Result<bool> {
        self.epoch = epoch;
        let pairs = self.plan.pairs(self.set, epoch);
        for (b, chunk) in pairs.chunks(self.plan.batch).enumerate() {
            let global = u64::from(epoch) * self.plan.steps_per_epoch + b as u64;
            if global < self.start_step {
                continue; // done before the checkpoint we resumed from
            }
            if self.trainer.step >= self.plan.total_steps {
                return Ok(false);
            }
            self.step(epoch, chunk)?;
        }
        Ok(true)
    }

    /// Loads the frames of a batch that are not loaded yet, in parallel.
    /// Only this batch's frames stay loaded: a training set does not fit in
    /// memory, and the frozen features worth keeping are in the cache.
    fn load_batch(&mut self, chunk: &[TrainPair]) -> Result<()> {
        let needed: BTreeSet<FrameId> = chunk
            .iter()
            .flat_map(|p| {
                [
                    (p.character.clone(), p.source.clone()),
                    (p.character.clone(), p.target.clone()),
                ]
            })
            .collect();
        self.frames.retain(|k, _| needed.contains(k));
        let missing: Vec<&FrameId> = needed
            .iter()
            .filter(|k| !self.frames.contains_key(*k))
            .collect();
        let set = self.set;
        let loaded: Vec<Result<(FrameId, TrainFrame)>> = self.loaders.install(|| {
            missing
                .par_iter()
                .map(|&k| {
                    let p = set.load(&k.0, &k.1, &LineOptions::default())?;
                    Ok((
                        k.clone(),
                        TrainFrame::new(p.frame.art, &p.frame.seg, p.colors),
                    ))
                })
                .collect()
        });
        for l in loaded {
            let (k, f) = l?;
            self.frames.insert(k, f);
        }
        Ok(())
    }

    fn step(&mut self, epoch: u32, chunk: &[TrainPair]) -> Result<()> {
        self.load_batch(chunk)?;
        let frame = |ch: &String, f: &String| &self.frames[&(ch.clone(), f.clone())];
        let pairs: Vec<(&TrainFrame, &TrainFrame)> = chunk
            .iter()
            .map(|p| {
                (
                    frame(&p.character, &p.source),
                    frame(&p.character, &p.target),
                )
            })
            .collect();
        let t0 = Instant::now();
        let loss = self.trainer.train_step(&pairs, self.adam)?;
        let step = self.trainer.step;
        let (hits, misses) = self.trainer.cache.stats();
        let line = serde_json::json!({
            "step": step,
            "epoch": epoch,
            "loss": loss.loss,
            "ce": loss.ce,
            "l1": loss.l1,
            "lr": self.args.lr,
            "pairs": chunk.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "seconds": t0.elapsed().as_secs_f64(),
            "features_computed": misses,
            "features_cached": hits,
        });
        if let Some(f) = self.log.as_mut() {
            writeln!(f, "{line}").context("writing the log")?;
        }
        if !loss.loss.is_finite() {
            bail!(
                "step {step}: the loss is not finite ({}); lower --lr or check the data, then --resume from the last checkpoint",
                loss.loss
            );
        }
        let secs = self.started.elapsed().as_secs_f64();
        self.done_pairs += chunk.len() as u64;
        self.pb.set_message(format!(
            "loss {:.4}, {:.3} pairs/s",
            loss.loss,
            self.done_pairs as f64 / secs.max(1e-9)
        ));
        self.pb.inc(1);
        if let (Some(o), Some(every)) = (&self.args.out, self.args.save_every) {
            if step % every == 0 {
                save(&self.trainer, o, self.args, &self.order)?;
            }
        }
        Ok(())
    }

    /// Checkpoint (unless the run's final one follows) and validation.
    fn end_of_epoch(&mut self, epoch: u32, last: bool) -> Result<()> {
        if let (Some(o), false) = (&self.args.out, last) {
            save(&self.trainer, o, self.args, &self.order)?;
        }
        if let Some(v) = &self.validation {
            validate(&self.trainer, v, self.args, epoch, self.log.as_mut())?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.pb.finish_and_clear();
        self.end_of_epoch(self.epoch, true)?;
        if let Some(o) = &self.args.out {
            let p = save(&self.trainer, o, self.args, &self.order)?;
            println!("checkpoint: {}", p.display());
        }
        if self.trainer.cache.memory_full() {
            eprintln!(
                "note: the in-memory feature cache reached --cache-memory-mb ({} MB); later frames were recomputed every time. --cache-dir keeps all of them on disk.",
                self.args.cache_memory_mb
            );
        }
        if !self.args.quiet {
            let n = self.trainer.step - self.start_step;
            let secs = self.started.elapsed().as_secs_f64();
            let (hits, misses) = self.trainer.cache.stats();
            eprintln!(
                "{n} steps, {} pairs in {secs:.1} s ({:.3} pairs/s); backbone features: {hits} from the cache, {misses} computed",
                self.done_pairs,
                self.done_pairs as f64 / secs.max(1e-9)
            );
        }
        Ok(())
    }
}

/// Scores the current weights on the validation clips and logs the result.
fn validate(
    trainer: &Trainer,
    clips: &[Clip],
    args: &TrainArgs,
    epoch: u32,
    log: Option<&mut File>,
) -> Result<()> {
    let protocol = args.validation_protocol();
    let tasks: Vec<(usize, Task)> = clips
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| protocol.tasks(c).into_iter().map(move |t| (ci, t)))
        .collect();
    let engine = trainer.engine()?;
    let pb = progress(tasks.len() as u64, true, "frames");
    let time = std::sync::Mutex::new(std::time::Duration::ZERO);
    let mut report = Report::default();
    for s in crate::cmd::eval::engine_scores(
        &engine,
        clips,
        &tasks,
        (&LineOptions::default(), None),
        &time,
        &pb,
    ) {
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
