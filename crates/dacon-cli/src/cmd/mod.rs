//! One module per subcommand; each turns its arguments into library calls.

mod colorize;
mod colors;
mod eval;
mod example;
mod render;
mod segment;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Segment(a) => segment::run(&a),
        Command::Colors(a) => colors::run(&a),
        Command::Render(a) => render::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Colorize(a) => colorize::run(&a),
        Command::Example(a) => example::run(&a),
    }
    .map(|()| ExitCode::SUCCESS)
}
