//! One module per subcommand: its arguments and the library calls they
//! turn into.

pub mod bench;
mod bench_train;
pub mod colorize;
pub mod colors;
pub mod eval;
pub mod example;
pub mod render;
pub mod segment;
pub mod serve;
pub mod train;
pub mod weights;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let done = match cli.command {
        Command::Weights(w) => return weights::run(&w),
        Command::Segment(a) => segment::run(&a),
        Command::Colors(a) => colors::run(&a),
        Command::Render(a) => render::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Colorize(a) => colorize::run(&a),
        Command::Example(a) => example::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Serve(a) => serve::run(&a),
    };
    done.map(|()| ExitCode::SUCCESS)
}
