use anyhow::{Context, Result};
use dacon_core::synth::{write_cut, CutSpec};

use crate::args::ExampleArgs;

pub fn run(args: &ExampleArgs) -> Result<()> {
    let spec = CutSpec {
        width: args.width,
        height: args.height,
        frames: args.frames as usize,
        seed: args.seed,
        line_width: args.line_width,
        antialias: args.antialias,
        motion: args.motion,
    };
    let n = write_cut(&args.out, &spec)
        .with_context(|| format!("{}: cannot write the example", args.out.display()))?;
    println!("{}: {n} frames", args.out.display());
    Ok(())
}
