//! Colouring in the background (the first colouring, "re-colour from
//! here") and the events the page follows.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use axum::http::StatusCode;
use dacon_core::colorize::{colorize_clip, FrameStatus};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::App;

/// Progress of the background job.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobState {
    /// Counts the jobs of this server (0: none yet), so that a client can
    /// order the states it hears of.
    pub id: u64,
    /// Whether it runs.
    pub running: bool,
    /// Frames after this one are coloured again (`None`: the frames not
    /// coloured yet).
    pub from: Option<String>,
    /// Frames handled so far.
    pub done: usize,
    /// Frames of the cut.
    pub total: usize,
    /// Frames that failed.
    pub failed: usize,
    /// Why the last job stopped, when it failed.
    pub error: Option<String>,
}

/// What the page is told as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The job's progress.
    Job(JobState),
    /// A frame changed: coloured again, or reviewed (version).
    Frame {
        /// The frame.
        name: String,
        /// Its review version.
        version: u64,
    },
}

pub(crate) struct Jobs {
    state: Mutex<JobState>,
    idle: Condvar,
    tx: broadcast::Sender<Event>,
    closed: watch::Sender<bool>,
}

impl Jobs {
    pub fn new() -> Self {
        Jobs {
            state: Mutex::new(JobState::default()),
            idle: Condvar::new(),
            tx: broadcast::channel(256).0,
            closed: watch::channel(false).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> JobState {
        self.lock().clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Tells every open page (no page open is fine).
    pub fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    pub fn wait_idle(&self) {
        let mut s = self.lock();
        while s.running {
            s = self.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn update(&self, f: impl FnOnce(&mut JobState)) {
        let snapshot = {
            let mut s = self.lock();
            f(&mut s);
            s.clone()
        };
        if !snapshot.running {
            self.idle.notify_all();
        }
        self.send(Event::Job(snapshot));
    }
}

/// Starts colouring: the frames not done yet (`from` = `None`), or the
/// frames after `from` that are not approved, again.
///
/// # Errors
/// 409 while another job runs.
pub(crate) fn start(app: &Arc<App>, from: Option<String>) -> Result<(), ApiError> {
    let total = app.cfg.clip.frames.len();
    {
        let mut s = app.jobs.lock();
        if s.running {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "colouring is already running; wait for it to finish",
            ));
        }
        *s = JobState {
            id: s.id + 1,
            running: true,
            from: from.clone(),
            done: 0,
            total,
            failed: 0,
            error: None,
        };
    }
    app.jobs.send(Event::Job(app.jobs.state()));
    let app = app.clone();
    std::thread::spawn(move || {
        let mut opts = app.cfg.colorize.clone();
        opts.redo_after = from;
        // A panic (an engine bug) must still end the job, or the page would
        // wait for it forever and no other job could start.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            colorize_clip(&*app.engine, &app.cfg.clip, &app.cfg.out, &opts, &|f, r| {
                let failed = usize::from(r.is_err());
                app.jobs.update(|s| {
                    s.done += 1;
                    s.failed += failed;
                });
                if let Ok(r) = r {
                    if r.status == FrameStatus::Coloured {
                        let version = app.review().frame(&f.name).map_or(0, |s| s.version);
                        app.jobs.send(Event::Frame {
                            name: f.name.clone(),
                            version,
                        });
                    }
                }
            })
        }));
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("colouring stopped on an internal error".to_owned()),
        };
        app.jobs.update(|s| {
            s.running = false;
            s.error = error;
        });
    });
    Ok(())
}
