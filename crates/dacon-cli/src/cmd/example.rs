use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use dacon_synth::{write_cut, CutSpec, Preset};

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
    /// Motion per frame (1 = lively; 0 to 10).
    #[arg(long, default_value_t = 1.0, value_parser = parse_motion)]
    pub motion: f64,
    /// Anti-aliased outlines.
    #[arg(long)]
    pub antialias: bool,
    /// Outline width in pixels (0.5 to 32).
    #[arg(long, default_value_t = 3.0, value_parser = parse_line_width)]
    pub line_width: f64,
    /// Kind of motion: `basic` (the bundled example) or a harder
    /// development set for matchers, where frames differ in segment count:
    /// `limbs` (arms and hands moving on their own, occluding), `turn` (a
    /// large rotation, a head turning aside, near-identical dark tones),
    /// `hands` (fists opening into fingers), `enter` (a figure walking in
    /// across the edge, a ball rolling in and out), `zoom` (the canvas
    /// grows from frame to frame), `redraw` (limbs moving on their own,
    /// every frame redrawn: wobbling lines, fold lines and shadows that
    /// come and go, segment counts differing up to 2x), `tumble` (the
    /// whole figure turning about 12 degrees a frame, 100 over the cut).
    #[arg(long, default_value = "basic", value_parser = preset_parser())]
    pub preset: Preset,
}

/// The names of [`Preset`] as command-line choices (listed in `--help`).
fn preset_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Preset::ALL.map(Preset::name))
        .try_map(|s| s.parse::<Preset>())
}

fn parse_in(s: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("expected a number from {lo} to {hi}, got {s:?}")),
    }
}

fn parse_motion(s: &str) -> Result<f64, String> {
    parse_in(s, 0.0, 10.0)
}

fn parse_line_width(s: &str) -> Result<f64, String> {
    parse_in(s, 0.5, 32.0)
}

pub fn run(args: &ExampleArgs) -> Result<()> {
    let spec = CutSpec {
        width: args.width,
        height: args.height,
        frames: args.frames as usize,
        seed: args.seed,
        line_width: args.line_width,
        antialias: args.antialias,
        motion: args.motion,
        preset: args.preset,
    };
    let n = write_cut(&args.out, &spec)
        .with_context(|| format!("{}: cannot write the example", args.out.display()))?;
    println!("{}: {n} frames", args.out.display());
    Ok(())
}
