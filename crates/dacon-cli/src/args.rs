//! The command line, as clap derive types. Doc comments are the `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Paint-bucket colorization of anime line art (DACoN, in Rust).
///
/// Line art is split into closed regions (segments); each segment of a target
/// frame takes the colour of the matching segment of coloured references.
/// `colorize` is the main job (weight-free `classic` engine by default, or
/// DACoN with `--checkpoint` and `--dino`); `segment`, `colors` and `render`
/// expose its steps; `eval` scores on PaintBucket-Character; `train` trains.
///
/// Try it without any download: `dacon example --out cut && dacon colorize cut --propagate`.
#[derive(Debug, Parser)]
#[command(
    name = "dacon",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Split line art into segments: writes a label PNG and statistics per frame.
    ///
    /// Line pixels follow the official rule: with alpha, alpha > 0; without,
    /// any channel < 255. Pure black opaque lines separate regions; other
    /// opaque coloured lines (shadow/highlight colour traces) are merged into
    /// a neighbouring region.
    ///
    /// For every input frame `NAME.png`, writes `OUT/NAME.png` (24-bit labels,
    /// label = R<<16 | G<<8 | B, 0 = line) and `OUT/NAME.stats.json` (pixel
    /// count, bounding box and centroid of every segment).
    ///
    /// Example: dacon segment cut01/line --out cut01/seg
    Segment(SegmentArgs),
    /// Build a colour table: the most frequent colour of a painted frame in
    /// each segment.
    ///
    /// Writes the official JSON table `{"1": [r, g, b, a], ...}`.
    ///
    /// Example: dacon colors gt/0000.png seg/0000.png --out seg/0000.json
    Colors(ColorsArgs),
    /// Paint segments with the colours of a table.
    ///
    /// `--layer full` (default) is the official output: fills plus black
    /// lines. `--layer fill` leaves line pixels transparent, to composite
    /// under the line layer. `--keep-lines` fills under the lines and draws
    /// the original line pixels on top, so anti-aliased lines stay smooth.
    ///
    /// LINE, LABELS and TABLE may also be three folders; frames are matched
    /// by name (`LINE/x.png`, `LABELS/x.png`, `TABLE/x.json`).
    ///
    /// Example: dacon render line/0001.png seg/0001.png pred/0001.json --out out
    Render(RenderArgs),
    /// Score colorization on a PaintBucket-Character style benchmark.
    ///
    /// Reads `<root>/<character>/{line,gt,seg}/NNNN.*` and the design sheets
    /// `ref/{line,gt,seg}/NAME.*`, uses the dataset's own labels and colour
    /// tables, and reports the official metrics per character and overall
    /// (frames weighted equally): Acc, Acc-Thresh (segments > 10 px),
    /// Pix-Acc, Pix-F-Acc (non-background), Pix-B-MIoU and its segment
    /// counterpart.
    ///
    /// Score an engine (`--engine classic`) or predictions made by any method
    /// (`--predictions DIR`, official JSON at `DIR/<character>/<frame>.json`;
    /// a missing file or segment counts as wrong and is reported).
    ///
    /// Example: dacon eval --data PaintBucket_Char/test --protocol consecutive
    Eval(EvalArgs),
    /// Colour line art from coloured references (the main job).
    ///
    /// Works on the official inference layout: `DIR/line/*.png` are the
    /// frames to colour, `DIR/ref/line/*.png` + `DIR/ref/gt/*.png` the
    /// coloured references (design sheets or key frames); DIR may also be a
    /// parent of several such folders. Writes, per frame, `NAME.png` (fills
    /// and black lines), `NAME.json` (segment id -> RGBA, official format)
    /// and `NAME.confidence.json`, plus `review.json`: the least confident
    /// segments of every frame, for a painter to check first. Output goes to
    /// `DIR/pred/` unless `--out` is given.
    ///
    /// With `--propagate`, frames are coloured in order and each finished
    /// frame joins the references (the last `--window` of them): the
    /// consecutive-frame workflow. Frames already done are skipped (resume);
    /// `--force` redoes them. When `DIR/gt/NAME.png` exists the accuracy
    /// against it is printed.
    ///
    /// Example: dacon colorize examples/cut01 --propagate --out out/cut01
    Colorize(ColorizeArgs),
    /// Draw a synthetic cut (our own procedural character) in the benchmark
    /// layout: line art, paintings, labels, colour tables and a design sheet.
    ///
    /// Useful to try every command without any dataset; the bundled example
    /// `examples/cut01` was made with the defaults.
    ///
    /// Example: dacon example --out /tmp/cut --frames 24 --antialias
    Example(ExampleArgs),
    /// Train (or fine-tune) DACoN with the official dual loss.
    ///
    /// Data: the PaintBucket-Character train layout
    /// `<root>/<character>/{line,gt,seg,json_color}/NNNN.*`; without `seg`
    /// and `json_color`, frames are segmented and their tables built from
    /// `gt`. Each epoch every frame is a target once, its source drawn from
    /// the frames 0, +-1, +-2 away (wrapped), as the official pairing, with
    /// --seed; `--pair CHAR:SRC:TGT` (repeatable) replaces the pairing.
    /// DINOv2 is frozen: its segment features are computed once per frame
    /// and cached (in memory, or on disk with --cache-dir for later runs);
    /// the U-Net and MLPs are trained with Adam. Checkpoints (safetensors:
    /// model, Adam moments, step) go to --out every --save-every steps, at
    /// every epoch end and at the end; --resume continues from one. Every
    /// step is logged as a JSON line.
    ///
    /// Example: dacon train --data PaintBucket_Char/train --init dacon_v1_1.pth --dino dinov2_vits14_pretrain.pth --epochs 5 --cache-dir cache/vits14 --out runs/a
    Train(TrainArgs),
    /// Measure speed and memory of the whole pipeline on one frame.
    ///
    /// Times every stage (read, segment, features, match, render + write) as
    /// the median of --repeat runs on one thread pool, and reports the
    /// process's peak resident memory. Without --line, a synthetic 1920x1920
    /// frame with ~300 segments is used. For the neural engine without real
    /// weights, --synthetic-model builds random weights of the released
    /// shapes (timings and memory are then real, colours meaningless).
    ///
    /// With --train, measures training instead: seconds per step and pairs
    /// per second with the frozen DINO features recomputed every time, kept
    /// in memory, and read back from a disk cache by a new run (three
    /// synthetic frames paired as the official sampler does, batch 1).
    ///
    /// Example: dacon bench --synthetic-model vits14 --dacon-version v1_1
    ///
    /// Example: dacon bench --train --synthetic-model vitl14 --steps 2
    Bench(BenchArgs),
    /// Inspect model weights.
    #[command(subcommand)]
    Weights(WeightsCommand),
}

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
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
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
    #[arg(long, value_name = "N")]
    pub save_every: Option<u64>,
    /// Append one JSON line per step (`step`, `loss`, `ce`, `l1`, ...).
    #[arg(long, value_name = "FILE")]
    pub log_jsonl: Option<PathBuf>,
    /// Threads that load (and, without labels, segment) the frames of a
    /// batch in parallel.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
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

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SyntheticModel {
    /// ViT-S/14 (width 384, 12 blocks).
    Vits14,
    /// ViT-B/14 (768, 12).
    Vitb14,
    /// ViT-L/14 (1024, 24).
    Vitl14,
}

impl SyntheticModel {
    /// Width and depth of the backbone.
    pub fn shape(self) -> (usize, usize) {
        match self {
            SyntheticModel::Vits14 => (384, 12),
            SyntheticModel::Vitb14 => (768, 12),
            SyntheticModel::Vitl14 => (1024, 24),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum VersionArg {
    /// DACoN v1.0.
    #[value(name = "v1_0")]
    V1_0,
    /// DACoN v1.1.
    #[value(name = "v1_1")]
    V1_1,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A line-art frame (default: synthetic).
    #[arg(long, value_name = "FILE")]
    pub line: Option<PathBuf>,
    /// Side of the synthetic frame.
    #[arg(long, default_value_t = 1920)]
    pub size: u32,
    /// Cells (segments) of the synthetic frame.
    #[arg(long, default_value_t = 300)]
    pub cells: usize,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Random weights of a released shape instead of --checkpoint/--dino.
    #[arg(long, value_enum, conflicts_with_all = ["checkpoint", "dino"])]
    pub synthetic_model: Option<SyntheticModel>,
    /// DACoN version of the synthetic checkpoint.
    #[arg(long = "dacon-version", value_enum, default_value_t = VersionArg::V1_1)]
    pub dacon_version: VersionArg,
    /// Runs per stage (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Worker threads for the tensor library and the engine.
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Measure training steps (needs --synthetic-model or --checkpoint and
    /// --dino) instead of colouring.
    #[arg(long)]
    pub train: bool,
    /// Timed training steps per cache mode (the median is reported).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), requires = "train")]
    pub steps: u32,
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Say what a weight file is: a DINOv2 backbone (layout, width, depth,
    /// heads, registers) or a DACoN checkpoint (version, sizes), or neither.
    ///
    /// Exit code 1 when the file is neither.
    ///
    /// Example: dacon weights check dacon_v1_1.pth
    Check {
        /// `.pth` or `.safetensors` files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Write random weights with the shapes of the released models (a
    /// DINOv2 and a DACoN checkpoint, safetensors) for benchmarks of any
    /// command without downloads. Results are meaningless colours.
    ///
    /// Example: dacon weights synthetic --model vits14 --out /tmp/w
    Synthetic {
        /// Backbone shape.
        #[arg(long, value_enum, default_value_t = SyntheticModel::Vits14)]
        model: SyntheticModel,
        /// DACoN version of the checkpoint.
        #[arg(long = "dacon-version", value_enum, default_value_t = VersionArg::V1_1)]
        dacon_version: VersionArg,
        /// Output folder.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: PathBuf,
    },
    /// Download DINOv2 weights from the Hugging Face hub into its standard
    /// cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    ///
    /// Names: dinov2-small, dinov2-base, dinov2-large, dinov2-giant, and
    /// dinov2-reg4-{small,base,large,giant} (with registers). The endpoint is
    /// `$HF_ENDPOINT` (default `https://huggingface.co`). Prints the path to
    /// pass as `--dino`. The DACoN checkpoints are not on the hub: download
    /// them from the links in the DACoN repository.
    ///
    /// Example: dacon weights fetch dinov2-small
    Fetch {
        /// Models to download.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Cache folder instead of the standard one.
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
}

/// Options shared by commands that process many frames.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Recompute frames whose outputs already exist.
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar or summary; errors are still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Line-art images (PNG, TGA, TIFF) or folders of them.
    #[arg(required = true, value_name = "LINE")]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Binarise anti-aliased line art first: pixels with ink (alpha, or
    /// 255 - darkest channel without alpha) below T become background, the
    /// rest opaque lines (greys to black). Off by default (official rule).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u8).range(1..))]
    pub line_threshold: Option<u8>,
    #[command(flatten)]
    pub batch: BatchArgs,
}

#[derive(Debug, Args)]
pub struct ColorsArgs {
    /// The painted (ground-truth) frame.
    #[arg(value_name = "COLORED")]
    pub colored: PathBuf,
    /// Its label PNG, from `dacon segment`.
    #[arg(value_name = "LABELS")]
    pub labels: PathBuf,
    /// Where to write the JSON table.
    #[arg(long, short = 'o', value_name = "TABLE.json")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProtocolArg {
    /// Every frame coloured from the character's design sheets.
    Keyframe,
    /// Frame i+1 coloured from the painted frame i.
    Consecutive,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum EngineArg {
    /// The weight-free engine (no downloads).
    Classic,
    /// DACoN: DINOv2 + U-Net (needs --checkpoint and --dino).
    Dacon,
}

/// Engine choice, shared by `colorize` and `eval`.
#[derive(Debug, Args)]
pub struct EngineOpts {
    /// Engine (default: `dacon` when --checkpoint is given, else `classic`).
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// DACoN checkpoint: the released `dacon_v1_0.pth` / `dacon_v1_1.pth`
    /// or our safetensors.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// DINOv2 weights: torch-hub `dinov2_vit*14[_reg4]_pretrain.pth` or
    /// Hugging Face `model.safetensors`.
    #[arg(long, value_name = "FILE")]
    pub dino: Option<PathBuf>,
    /// Attention heads of the DINOv2 (default: from its width, or config.json).
    #[arg(long, value_name = "N")]
    pub dino_heads: Option<usize>,
}

/// A count or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOrMax {
    Count(usize),
    Max,
}

fn parse_count_or_max(s: &str) -> Result<CountOrMax, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(CountOrMax::Max);
    }
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(CountOrMax::Count(n)),
        _ => Err(format!("expected a positive number or `max`, got {s:?}")),
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Benchmark root: character folders, or one character folder.
    #[arg(long, value_name = "ROOT")]
    pub data: PathBuf,
    /// Which protocol.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Keyframe)]
    pub protocol: ProtocolArg,
    /// Keyframe: how many design sheets (first N by name), or `max`.
    #[arg(long, value_name = "N|max", default_value = "max", value_parser = parse_count_or_max)]
    pub ref_shot: CountOrMax,
    /// Consecutive: chunk length (20 for PaintBucket-Character) or `max`
    /// (the whole clip, PaintBucket-Real).
    #[arg(long, value_name = "N|max", default_value = "20", value_parser = parse_count_or_max)]
    pub clip_interval: CountOrMax,
    /// Consecutive: use the K previous painted frames as references
    /// (official: 1).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub refs_window: u32,
    /// Consecutive: also use the following painted frame (not official).
    #[arg(long)]
    pub refs_next: bool,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Score these predictions instead of running an engine.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["engine", "checkpoint"])]
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
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ColorizeArgs {
    /// Clip folders (`line/` + `ref/`), or parents of several.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineOpts,
    /// Output folder (default: `DIR/pred`; with several clips, one
    /// sub-folder per clip).
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Colour frames in order, each finished frame becoming a reference.
    #[arg(long)]
    pub propagate: bool,
    /// With --propagate: how many previous frames stay references.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Segments per frame listed in review.json.
    #[arg(long, default_value_t = 5)]
    pub review: usize,
    /// Which image to write.
    #[arg(long, value_enum, default_value_t = LayerArg::Full)]
    pub layer: LayerArg,
    /// Fill under the lines and draw the original line pixels over the fills.
    #[arg(long)]
    pub keep_lines: bool,
    /// Binarise anti-aliased line art before segmenting (see `segment`).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u8).range(1..))]
    pub line_threshold: Option<u8>,
    #[command(flatten)]
    pub batch: BatchArgs,
}

#[derive(Debug, Args)]
pub struct ExampleArgs {
    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Number of frames.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..1000))]
    pub frames: u32,
    /// Canvas width.
    #[arg(long, default_value_t = 768, value_parser = clap::value_parser!(u32).range(64..8193))]
    pub width: u32,
    /// Canvas height.
    #[arg(long, default_value_t = 576, value_parser = clap::value_parser!(u32).range(64..8193))]
    pub height: u32,
    /// Seed of the motion.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Motion per frame (1 = lively).
    #[arg(long, default_value_t = 1.0)]
    pub motion: f64,
    /// Anti-aliased outlines.
    #[arg(long)]
    pub antialias: bool,
    /// Outline width in pixels.
    #[arg(long, default_value_t = 3.0)]
    pub line_width: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LayerArg {
    /// Fills and opaque black lines (the official output).
    Full,
    /// Fills only; lines transparent.
    Fill,
}

impl LayerArg {
    /// The library's render options for this layer.
    pub fn options(self, keep_lines: bool) -> dacon_core::RenderOptions {
        dacon_core::RenderOptions {
            layer: match self {
                LayerArg::Full => dacon_core::Layer::Full,
                LayerArg::Fill => dacon_core::Layer::Fill,
            },
            keep_lines,
        }
    }
}

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
    /// Which image to write.
    #[arg(long, value_enum, default_value_t = LayerArg::Full)]
    pub layer: LayerArg,
    /// Fill under the lines and draw the original line pixels over the fills.
    #[arg(long)]
    pub keep_lines: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
