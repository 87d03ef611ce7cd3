//! Running one job per frame in parallel, with a progress bar and per-frame
//! error reports (`path: problem`) that do not stop the batch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use dacon_core::shard::{Manifest, ManifestItem, Shard};
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

/// Counts of a finished batch (not `eval::Summary`, which averages scores).
#[derive(Debug, Default)]
pub struct BatchCounts {
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl BatchCounts {
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

/// Prints why one item failed, `path: reason`, each reason once; above the
/// progress bar, or straight to stderr when the bar is hidden (`-q`, or
/// stderr is no terminal), so a failure is never swallowed.
pub fn report_failure(
    pb: &ProgressBar,
    name: &dyn std::fmt::Display,
    err: &(dyn std::error::Error + 'static),
) {
    let mut reasons = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        reasons.push(c.to_string());
        cause = c.source();
    }
    let chain = reasons.join(": ");
    // Library errors usually name their file already.
    let name = name.to_string();
    let msg = if chain.contains(&name) {
        chain
    } else {
        format!("{name}: {chain}")
    };
    if pb.is_hidden() {
        eprintln!("{msg}");
    } else {
        pb.println(msg);
    }
}

/// A shard's manifest, rewritten after every item.
pub struct ManifestLog {
    path: PathBuf,
    manifest: Mutex<Manifest>,
}

impl ManifestLog {
    /// A manifest for `assigned` items at `dir/manifest-I-of-N.json`.
    pub fn start(
        dir: &Path,
        command: &str,
        shard: Shard,
        assigned: Vec<String>,
    ) -> Result<ManifestLog> {
        let log = ManifestLog {
            path: dir.join(shard.manifest_name()),
            manifest: Mutex::new(Manifest::new(command, shard, assigned)),
        };
        log.save()?;
        Ok(log)
    }

    /// Records one finished item.
    pub fn record(&self, item: ManifestItem) -> Result<()> {
        self.manifest.lock().expect("not poisoned").items.push(item);
        self.save()
    }

    /// Marks the shard complete.
    pub fn finish(&self) -> Result<()> {
        self.manifest.lock().expect("not poisoned").complete = true;
        self.save()
    }

    fn save(&self) -> Result<()> {
        let m = self.manifest.lock().expect("not poisoned");
        m.save(&self.path)?;
        Ok(())
    }
}

/// Runs `work` on every item on `opts.jobs` threads.
pub fn run<T, F>(
    items: &[T],
    name: impl Fn(&T) -> String + Sync,
    opts: &BatchArgs,
    work: F,
) -> Result<BatchCounts>
where
    T: Sync,
    F: Fn(&T) -> Result<Outcome> + Sync,
{
    // A single frame reports its error as the command's error: one line.
    if let [item] = items {
        return Ok(match work(item)? {
            Outcome::Done => BatchCounts {
                done: 1,
                ..BatchCounts::default()
            },
            Outcome::Skipped => BatchCounts {
                skipped: 1,
                ..BatchCounts::default()
            },
        });
    }
    let pool = opts.jobs.pool()?;
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
                    report_failure(&pb, &name(item), &*e);
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            pb.inc(1);
        })
    });
    pb.finish_and_clear();
    Ok(BatchCounts {
        done: done.into_inner(),
        skipped: skipped.into_inner(),
        failed: failed.into_inner(),
    })
}
