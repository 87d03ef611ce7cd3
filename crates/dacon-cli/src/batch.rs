//! Running one job per frame in parallel, with a progress bar and per-frame
//! error reports (`path: problem`) that do not stop the batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::args::BatchArgs;

/// What a job did.
pub enum Outcome {
    /// Outputs written.
    Done,
    /// Outputs already complete; nothing to do.
    Skipped,
}

/// Counts of a finished batch.
#[derive(Debug, Default)]
pub struct Summary {
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Summary {
    /// Prints the one-line summary on stderr (unless quiet).
    pub fn report(&self, what: &str, quiet: bool) {
        if !quiet && self.total() > 1 {
            eprintln!(
                "{what}: {} done, {} skipped (already complete; --force to redo), {} failed",
                self.done, self.skipped, self.failed
            );
        }
    }

    /// Error when any job failed (exit code 2 through main).
    pub fn into_result(self) -> Result<()> {
        if self.failed > 0 {
            anyhow::bail!("{} of {} frames failed", self.failed, self.total());
        }
        Ok(())
    }

    fn total(&self) -> usize {
        self.done + self.skipped + self.failed
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal or when
/// `quiet` is set.
pub fn progress(len: u64, quiet: bool, unit: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let pb = ProgressBar::with_draw_target(Some(len), target);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:32}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
    );
    pb.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Runs `work` on every item on `opts.jobs` threads.
pub fn run<T, F>(
    items: &[T],
    name: impl Fn(&T) -> String + Sync,
    opts: &BatchArgs,
    work: F,
) -> Result<Summary>
where
    T: Sync,
    F: Fn(&T) -> Result<Outcome> + Sync,
{
    // A single frame reports its error as the command's error: one line.
    if let [item] = items {
        return Ok(match work(item)? {
            Outcome::Done => Summary {
                done: 1,
                ..Summary::default()
            },
            Outcome::Skipped => Summary {
                skipped: 1,
                ..Summary::default()
            },
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.unwrap_or(0))
        .build()?;
    let pb = progress(items.len() as u64, opts.quiet, "frames");
    let done = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    pool.install(|| {
        items.par_iter().for_each(|item| {
            match work(item) {
                Ok(Outcome::Done) => done.fetch_add(1, Ordering::Relaxed),
                Ok(Outcome::Skipped) => skipped.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    // Library errors usually name their file already.
                    let (n, e) = (name(item), format!("{e:#}"));
                    let msg = if e.contains(&n) {
                        e
                    } else {
                        format!("{n}: {e}")
                    };
                    if pb.is_hidden() {
                        eprintln!("{msg}");
                    } else {
                        pb.println(msg);
                    }
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            pb.inc(1);
        })
    });
    pb.finish_and_clear();
    Ok(Summary {
        done: done.into_inner(),
        skipped: skipped.into_inner(),
        failed: failed.into_inner(),
    })
}
