//! `dacon`: paint-bucket colorization of anime line art.
//!
//! Parses the command line, runs the command, prints the error chain once and
//! exits: 0 success, 1 ran but a check failed, 2 error.

mod args;
mod batch;
mod cmd;
mod inputs;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("dacon: {}", dacon_core::error::chain(err.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
