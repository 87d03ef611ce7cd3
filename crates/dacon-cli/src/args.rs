//! The command line: the top-level parser, and the option groups several
//! commands share, each with the one conversion into the library's types
//! (raw flags become validated options before any work starts). Each
//! command's own arguments live beside it in `cmd/`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dacon_core::classic::ClassicEngine;
use dacon_core::colorize::Export;
use dacon_core::frame::Threshold;
use dacon_core::{Layer, LineOptions, RenderOptions};
use dacon_neural::{AnyEngine, DaconEngine, Device, DeviceChoice};

use crate::cmd;

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
    Segment(cmd::segment::SegmentArgs),
    /// Build a colour table: the most frequent colour of a painted frame in
    /// each segment.
    ///
    /// Writes the official JSON table `{"1": [r, g, b, a], ...}`.
    ///
    /// Example: dacon colors gt/0000.png seg/0000.png --out seg/0000.json
    Colors(cmd::colors::ColorsArgs),
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
    Render(cmd::render::RenderArgs),
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
    Eval(cmd::eval::EvalArgs),
    /// Colour line art from coloured references (the main job).
    ///
    /// Works on the official inference layout: `DIR/line/*.png` are the
    /// frames to colour, `DIR/ref/line/*.png` + `DIR/ref/gt/*.png` the
    /// coloured references (design sheets or key frames); DIR may also be a
    /// parent of several such folders. Writes, per frame, `NAME.png` (fills
    /// and black lines), `NAME.json` (segment id -> RGBA, official format)
    /// and `NAME.confidence.json` (similarity, margin and the reference
    /// segment each colour came from), plus `review.json`: the least
    /// confident segments of every frame, for a painter to check first.
    /// Output goes to `DIR/pred/` unless `--out` is given.
    ///
    /// With `--propagate`, frames are coloured in order and each finished
    /// frame joins the references (the last `--window` of them): the
    /// consecutive-frame workflow. Frames already done are skipped (resume);
    /// `--force` redoes them. When `DIR/gt/NAME.png` exists the accuracy
    /// against it is printed.
    ///
    /// Example: dacon colorize examples/cut01 --propagate --out out/cut01
    Colorize(cmd::colorize::ColorizeArgs),
    /// Review and correct a coloured cut in the browser.
    ///
    /// Colours the cut first where not done yet (with `--propagate`; the page
    /// shows the progress), then serves a page where a colourist checks
    /// every frame: low-confidence segments highlighted, the reference each
    /// colour came from beside the frame, click or drag to fill, undo/redo,
    /// approve, "re-colour from here" (the frames after the current one
    /// that are not approved are coloured again with the corrected frames as
    /// references) and export (`OUT/export/`: official PNG, fill layer, JSON
    /// table, manifest of review status). Every action is saved at once in
    /// `OUT/corrections/` (one JSON table per frame, a manifest and a log);
    /// engine predictions are never overwritten.
    ///
    /// Listens on 127.0.0.1 unless --listen is given; then a token is
    /// required (generated and printed in the address if not given).
    ///
    /// Example: dacon serve examples/cut01 --out out/cut01
    Serve(cmd::serve::ServeArgs),
    /// Draw a synthetic cut (our own procedural character) in the benchmark
    /// layout: line art, paintings, labels, colour tables and a design sheet.
    ///
    /// Useful to try every command without any dataset; the bundled example
    /// `examples/cut01` was made with the defaults.
    ///
    /// Example: dacon example --out /tmp/cut --frames 24 --antialias
    Example(cmd::example::ExampleArgs),
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
    Train(cmd::train::TrainArgs),
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
    Bench(cmd::bench::BenchArgs),
    /// Inspect model weights.
    #[command(subcommand)]
    Weights(cmd::weights::WeightsCommand),
}

/// The most worker threads a command takes: far above any machine's cores,
/// low enough that a typo cannot exhaust the system's threads.
pub const MAX_JOBS: usize = 1024;

/// Worker threads (`-j`), shared by every command that runs in parallel.
#[derive(Debug, Clone, Copy, Args)]
pub struct JobsArg {
    /// Worker threads (default: all cores; at most 1024).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_JOBS as i64))]
    pub jobs: Option<u32>,
}

impl JobsArg {
    /// A thread pool of the requested size.
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        let n = self.jobs.map_or(0, |j| j as usize);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .with_context(|| format!("cannot start {n} worker threads; ask for fewer with -j"))
    }
}

/// Splitting the job across workers, shared by `segment`, `colorize` and
/// `eval`.
#[derive(Debug, Clone, Copy, Args)]
pub struct ShardArg {
    /// Do only part I of N of the job (0-based; e.g. `--shard
    /// $JOB_COMPLETION_INDEX/8` in a Kubernetes Indexed Job or
    /// `--shard $SLURM_ARRAY_TASK_ID/8` in a Slurm array): every N-th item
    /// of the sorted list from item I, so N workers cover everything once.
    /// Writes `manifest-I-of-N.json` beside the outputs. Reruns resume.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<dacon_core::shard::Shard>,
}

/// Options shared by commands that process many frames.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Recompute frames whose outputs already exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// No progress bar or summary; errors are still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// How line art is read, shared by every command that segments it.
#[derive(Debug, Args)]
pub struct LineArgs {
    /// Binarise anti-aliased or scanned line art first: `auto` picks the
    /// level per frame (Otsu) and keeps faint thin strokes closed, the
    /// right choice for brush, pencil or scanned lines; a number T makes
    /// pixels with ink (alpha, or 255 - darkest channel without alpha)
    /// below T background. The rest becomes opaque lines (greys to black,
    /// colours to trace lines). Off by default (official rule: every
    /// non-white or non-transparent pixel is a line).
    #[arg(long, value_name = "T|auto", value_parser = parse_threshold)]
    pub line_threshold: Option<Threshold>,
    /// Close gaps in the line art up to PX pixels wide before segmenting,
    /// so an unclosed line does not flood one region into its neighbour.
    /// Free line ends are joined to facing ends or to the line they point
    /// at; closing lines separate segments but are painted with a
    /// neighbouring fill (invisible), and never cross colour-trace lines.
    /// A good value is a little over the widest gap you see, typically
    /// 4-16 (0 = off, the default, exactly the official segmentation; at
    /// most 64). Writes NAME.gaps.json beside each frame's output where the
    /// command writes per-frame files.
    #[arg(long, value_name = "PX", value_parser = parse_close_gaps, allow_hyphen_values = true)]
    pub close_gaps: Option<u32>,
}

/// Review output of gap closing, for commands that write per-frame files.
#[derive(Debug, Args)]
pub struct GapOverlayArg {
    /// With --close-gaps: also write `NAME.gaps.png`, the line art with
    /// every closing drawn over it in magenta, to review what was closed.
    #[arg(long, requires = "close_gaps")]
    pub gap_overlay: bool,
}

/// `auto` or an ink level 1-255.
pub fn parse_threshold(s: &str) -> std::result::Result<Threshold, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(Threshold::Auto);
    }
    match s.parse::<u8>() {
        Ok(t) if t > 0 => Ok(Threshold::Ink(t)),
        _ => Err(format!(
            "expected `auto` or an ink level from 1 to 255, got {s:?}"
        )),
    }
}

/// A gap width 0..=64 pixels, with a clear word for negative or absurd ones.
fn parse_close_gaps(s: &str) -> std::result::Result<u32, String> {
    let max = dacon_core::gaps::MAX_CLOSE_GAP;
    match s.trim().parse::<i64>() {
        Ok(v) if v < 0 => Err(format!(
            "{v} is negative: give the widest gap to close in pixels (4-16 is typical, 0 = off)"
        )),
        Ok(v) if v > i64::from(max) => Err(format!(
            "{v} px is more than the {max} px gap closing allows; closings that long join lines never meant to meet (4-16 is typical)"
        )),
        Ok(v) => Ok(v as u32),
        Err(_) => Err(format!("expected a gap width in pixels (0 to {max}), got {s:?}")),
    }
}

impl LineArgs {
    /// The library's options.
    pub fn options(&self) -> LineOptions {
        LineOptions {
            threshold: self.line_threshold,
            close_gaps: self.close_gaps,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LayerArg {
    /// Fills and opaque black lines (the official output).
    Full,
    /// Fills only; lines transparent.
    Fill,
}

/// Which image to write, shared by `render` and `colorize`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Which image to write.
    #[arg(long, value_enum, default_value_t = LayerArg::Full)]
    pub layer: LayerArg,
    /// Fill under the lines and draw the original line pixels over the
    /// fills: anti-aliased, scanned or brush lines stay as drawn (with
    /// --line-threshold, the lines before binarising).
    #[arg(long)]
    pub keep_lines: bool,
    /// Also write the layers as separate images: `NAME.lines.png` (black
    /// lines as drawn), `NAME.traces.png` (colour-trace lines) and
    /// `NAME.fills.png` (fills reaching under the lines); stacked in that
    /// order (fills at the bottom) they give the picture.
    #[arg(long)]
    pub layers: bool,
    /// Also write `NAME.ora`: an OpenRaster file with the lines, colour
    /// traces and fills as separate layers (Krita, GIMP, MyPaint).
    #[arg(long)]
    pub ora: bool,
}

impl OutputArgs {
    /// The library's render options.
    pub fn options(&self) -> RenderOptions {
        RenderOptions {
            layer: match self.layer {
                LayerArg::Full => Layer::Full,
                LayerArg::Fill => Layer::Fill,
            },
            keep_lines: self.keep_lines,
        }
    }

    /// The extra files asked for (`gap_overlay` from the line options).
    pub fn export(&self, gap_overlay: bool) -> Export {
        Export {
            layers: self.layers,
            ora: self.ora,
            gap_overlay,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum EngineArg {
    /// The weight-free engine (no downloads).
    Classic,
    /// DACoN: DINOv2 + U-Net (needs --checkpoint and --dino).
    Dacon,
}

/// Engine choice, shared by `colorize`, `eval` and `bench`.
#[derive(Debug, Args)]
pub struct EngineArgs {
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
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Where the neural engine runs, shared by every command that runs it.
#[derive(Debug, Clone, Args)]
pub struct DeviceArg {
    /// Device of the neural engine: `cpu`, `wgpu` (`wgpu:cpu` a software
    /// adapter such as lavapipe, `wgpu:N` the N-th discrete GPU), `cuda` or
    /// `cuda:N`. `auto` is CUDA GPU 0 in a build with the `cuda` feature,
    /// else the CPU. GPU backends need a build with `--features wgpu|cuda`.
    #[arg(
        long,
        value_name = "DEVICE",
        env = "DACON_DEVICE",
        default_value = "auto"
    )]
    pub device: DeviceChoice,
}

impl DeviceArg {
    /// The burn device, with an error naming what this build can run on.
    pub fn open(&self) -> Result<Device> {
        Ok(self.device.device()?)
    }
}

impl EngineArgs {
    /// The engine asked for, after checking the options fit together.
    pub fn kind(&self) -> Result<EngineArg> {
        let kind = self.engine.unwrap_or(if self.checkpoint.is_some() {
            EngineArg::Dacon
        } else {
            EngineArg::Classic
        });
        if kind == EngineArg::Classic && (self.checkpoint.is_some() || self.dino.is_some()) {
            bail!("--checkpoint and --dino belong to --engine dacon; drop them or choose it");
        }
        Ok(kind)
    }

    /// Validates the options and loads the weights.
    pub fn load(&self) -> Result<AnyEngine> {
        match self.kind()? {
            EngineArg::Classic => Ok(AnyEngine::Classic(ClassicEngine::default())),
            EngineArg::Dacon => {
                let (Some(ckpt), Some(dino)) = (&self.checkpoint, &self.dino) else {
                    bail!(
                        "--engine dacon needs --checkpoint (dacon_v1_1.pth) and --dino (e.g. dinov2_vits14_pretrain.pth); \
                         without weights, use the default classic engine"
                    );
                };
                let device = self.device.open()?;
                let engine = DaconEngine::load(ckpt, dino, self.dino_heads, &device)
                    .context("loading the DACoN engine")?;
                Ok(AnyEngine::Dacon(Box::new(engine)))
            }
        }
    }

    /// The engine in words, for report titles.
    pub fn describe(&self) -> String {
        match (self.kind(), &self.checkpoint) {
            (Ok(EngineArg::Dacon), Some(c)) => format!("engine dacon {}", c.display()),
            (Ok(EngineArg::Dacon), None) => "engine dacon".into(),
            _ => "engine classic".into(),
        }
    }
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
