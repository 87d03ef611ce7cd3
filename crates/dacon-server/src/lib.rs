//! `dacon serve`: the review-and-correct station where a colourist finishes
//! a coloured cut in the browser.
//!
//! [`App::new`] opens a cut and its output folder, [`router`] is the whole
//! HTTP surface (the page, built into the binary, and the JSON API it uses),
//! [`serve`] runs it until a shutdown signal. The logic lives in
//! `dacon-core` ([`dacon_core::review`], [`dacon_core::colorize`]); the
//! handlers here only translate HTTP to those calls.
//!
//! Safety of a server on a studio network: every request's `Host` must name
//! this machine by IP address, `localhost` or an allowed name (no DNS
//! rebinding); with a token every API call must carry it; files are served
//! only from inside the cut and output folders ([`guard`]); every body is
//! limited in size.
#![warn(missing_docs)]

mod api;
mod assets;
mod error;
pub mod guard;
mod job;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dacon_core::colorize::ColorizeOptions;
use dacon_core::dataset::Clip;
use dacon_core::review::Review;
use dacon_core::{ColorTable, Frame, Rgba};
use dacon_neural::AnyEngine;

pub use api::router;
pub use error::ApiError;
pub use job::{Event, JobState};

/// Largest request body accepted: a fix of every segment of a big frame fits
/// many times.
pub const BODY_LIMIT: usize = 1 << 20;

/// How a cut is served.
#[derive(Debug, Clone)]
pub struct Config {
    /// The cut (`line/` + `ref/`).
    pub clip: Clip,
    /// Its output folder; corrections go to `OUT/corrections`.
    pub out: PathBuf,
    /// How frames are coloured (`propagate` is always on: re-colouring from
    /// a frame passes its corrections on).
    pub colorize: ColorizeOptions,
    /// Required on every API call when set.
    pub token: Option<String>,
    /// Host names accepted in the `Host` header besides IP addresses and
    /// `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Accept `Host` headers naming any IP address (the server listens
    /// beyond the loopback interface); otherwise only loopback addresses.
    pub any_ip_host: bool,
    /// Segments whose confidence margin is below this are flagged.
    pub flag_margin: f32,
}

/// A frame loaded for the page: its segments and its line layer.
pub(crate) struct Loaded {
    pub frame: Frame,
    /// The labels, run-length encoded for the page.
    pub labels: axum::body::Bytes,
    /// The line layer (lines over transparency) as PNG.
    pub lines_png: axum::body::Bytes,
}

/// The server's state: configuration, engine, review, caches and the
/// background job.
pub struct App {
    cfg: Config,
    engine: Arc<AnyEngine>,
    review: Mutex<Review>,
    cache: Mutex<HashMap<(bool, String), Arc<Loaded>>>,
    sheets: Vec<(String, ColorTable)>,
    roots: [PathBuf; 2],
    jobs: job::Jobs,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("clip", &self.cfg.clip.dir)
            .field("out", &self.cfg.out)
            .finish_non_exhaustive()
    }
}

/// Frames kept loaded; a cut longer than this reloads as the colourist
/// moves on.
const CACHE_FRAMES: usize = 24;

impl App {
    /// Opens the cut: creates the output folder, reads the review state and
    /// the design sheets' colours (blocking work).
    ///
    /// # Errors
    /// The output folder is an input folder or cannot be created; a sheet or
    /// the review state cannot be read.
    pub fn new(mut cfg: Config, engine: AnyEngine) -> dacon_core::Result<Arc<App>> {
        cfg.colorize.propagate = true;
        dacon_core::colorize::check_out_dir(&cfg.clip, &cfg.out)?;
        std::fs::create_dir_all(&cfg.out).map_err(|e| dacon_core::Error::io(&cfg.out, e))?;
        let corrections = cfg.out.join("corrections");
        cfg.colorize.corrections = Some(corrections.clone());
        let review = Review::open(
            &corrections,
            cfg.clip.frames.iter().map(|f| f.name.as_str()),
        )?;
        let mut sheets = Vec::new();
        for r in &cfg.clip.refs {
            let frame = Frame::open(&r.line, &cfg.colorize.line)?;
            let colors = match &r.gt {
                Some(gt) => ColorTable::from_painted(&frame.seg, gt)?,
                None => ColorTable::default(),
            };
            sheets.push((r.name.clone(), colors));
        }
        let canon = |p: &Path| p.canonicalize().map_err(|e| dacon_core::Error::io(p, e));
        let roots = [canon(&cfg.clip.dir)?, canon(&cfg.out)?];
        Ok(Arc::new(App {
            cfg,
            engine: Arc::new(engine),
            review: Mutex::new(review),
            cache: Mutex::new(HashMap::new()),
            sheets,
            roots,
            jobs: job::Jobs::new(),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Colours the frames not done yet, in the background (what `dacon
    /// serve` does at start; progress goes to the page).
    pub fn colour_missing(self: &Arc<Self>) -> Result<(), ApiError> {
        job::start(self, None)
    }

    /// The state of the background job.
    pub fn job(&self) -> JobState {
        self.jobs.state()
    }

    /// Waits until no background job runs.
    pub fn wait_idle(&self) {
        self.jobs.wait_idle();
    }

    /// Tells open event streams to end (shutdown).
    pub fn close_streams(&self) {
        self.jobs.close();
    }

    fn review(&self) -> std::sync::MutexGuard<'_, Review> {
        // A panic while holding the lock cannot leave the review half
        // changed: every action replaces the frame's state in one step.
        self.review.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frame (or sheet) `name`, loaded once.
    fn loaded(&self, sheet: bool, name: &str) -> Result<Arc<Loaded>, ApiError> {
        let key = (sheet, name.to_owned());
        if let Some(l) = self.lock_cache().get(&key) {
            return Ok(l.clone());
        }
        let files = if sheet {
            &self.cfg.clip.refs
        } else {
            &self.cfg.clip.frames
        };
        let f = files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no frame named {name:?} in this cut")))?;
        let frame = Frame::open(&f.line, &self.cfg.colorize.line)?;
        let labels = api::encode_labels(&frame.seg);
        let lines_png = api::lines_png(&frame)?;
        let loaded = Arc::new(Loaded {
            frame,
            labels,
            lines_png,
        });
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_FRAMES {
            cache.clear();
        }
        cache.insert(key, loaded.clone());
        Ok(loaded)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<(bool, String), Arc<Loaded>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Colours of the design sheets, counted by segments: the palette.
    fn palette(&self) -> Vec<(Rgba, usize)> {
        let mut counts: HashMap<Rgba, usize> = HashMap::new();
        for (_, t) in &self.sheets {
            for c in t.entries().iter().flatten() {
                *counts.entry(*c).or_default() += 1;
            }
        }
        let mut v: Vec<(Rgba, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// A random token for `--listen` without `--token`: 128 bits from the
/// operating system.
pub fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // Each RandomState is keyed from the OS's randomness.
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (their writes included) and ends the event
/// streams.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = app.clone();
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            streams.close_streams();
        })
        .await
}
