//! One module per subcommand; each turns its arguments into library calls.

mod bench;
mod bench_train;
mod colorize;
mod colors;
pub(crate) mod eval;
mod example;
mod render;
mod segment;
mod train;
mod weights;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Weights(w) = &cli.command {
        return weights::run(w);
    }
    match cli.command {
        Command::Weights(_) => unreachable!("handled above"),
        Command::Segment(a) => segment::run(&a),
        Command::Colors(a) => colors::run(&a),
        Command::Render(a) => render::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Colorize(a) => colorize::run(&a),
        Command::Example(a) => example::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Train(a) => train::run(&a),
    }
    .map(|()| ExitCode::SUCCESS)
}
