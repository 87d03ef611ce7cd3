use anyhow::Result;
use dacon_core::{imageio::read_picture, ColorTable, Segmentation};

use crate::args::ColorsArgs;
use crate::inputs::refuse_overwriting_inputs;

pub fn run(args: &ColorsArgs) -> Result<()> {
    refuse_overwriting_inputs(&args.out, &[&args.colored, &args.labels])?;
    let seg = Segmentation::open(&args.labels)?;
    let colored = read_picture(&args.colored)?;
    let table = ColorTable::from_image(&seg, &colored.rgba, &args.colored.display().to_string())?;
    table.save(&args.out)?;
    Ok(())
}
