use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use dacon_core::{ColorTable, Segmentation};

use crate::inputs::refuse_overwriting_inputs;

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

pub fn run(args: &ColorsArgs) -> Result<()> {
    refuse_overwriting_inputs(&args.out, &[&args.colored, &args.labels])?;
    let seg = Segmentation::open(&args.labels)?;
    ColorTable::from_painted(&seg, &args.colored)?.save(&args.out)?;
    Ok(())
}
