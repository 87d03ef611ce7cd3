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
    if matches!(&cli.command, args::Command::Train(_))
        || matches!(&cli.command, args::Command::Bench(b) if b.train)
    {
        reuse_training_memory();
    }
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

/// A training step allocates and frees the same few GB of maps every step
/// (a U-Net layer's input, output and gradients, 67-134 MB each at 512x512),
/// and blocks that large are always mapped afresh, so every step faulted in
/// and zeroed them again: a quarter of the U-Net's time in the kernel's
/// page clearing. Served from the heap and kept there, the next step reuses
/// them. One arena: a thread's own arena maps large blocks whatever the
/// settings, and the step runs on the rayon pool. `dacon bench --train
/// --synthetic-model vits14` (2-core AVX-512 Xeon): 25.7 -> 23.2 s a step
/// with cached features, peak resident memory unchanged (5.0 GB). Inference
/// keeps mapping them: it would gain 2% and hold 55 MB more.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reuse_training_memory() {
    // SAFETY: mallopt only sets allocator parameters; it runs before any
    // other thread exists (the command has only been parsed).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn reuse_training_memory() {}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
