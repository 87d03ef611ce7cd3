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
    keep_freed_memory();
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

/// glibc's allocator hands blocks of a few MB back to the kernel when they
/// are freed and maps fresh pages, zeroed one fault at a time, for the next:
/// the CPU inference allocates and frees such blocks (a layer's weights, a
/// layer's activations) all the time, and these faults cost a ViT-S forward
/// 15% (395k page faults over 8 forwards against 68k; 0.66 -> 0.57 s).
/// Blocks below 32 MiB now come from the heap and freed memory stays with
/// the process up to 256 MiB; the peak resident memory does not change.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets two allocator parameters; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
