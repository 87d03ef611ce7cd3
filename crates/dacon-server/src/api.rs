//! The HTTP surface: the page and the JSON API it uses. Handlers check and
//! translate; the work is done by `dacon_core` on blocking threads, which
//! finish their writes even when the client goes away.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dacon_core::colorize::{frame_outputs, read_refs};
use dacon_core::review::{self, Change, FrameReview};
use dacon_core::{Frame, Prediction, Rgba, Segmentation};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::{host_allowed, request_token, resolve_inside, token_matches};
use crate::job::{self, Event};
use crate::{assets, App, BODY_LIMIT};

type ApiResult<T> = Result<T, ApiError>;

/// A frame or sheet name from the path; a bad one is a JSON error.
struct Name(String);

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let Path(name) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(Name(name))
    }
}

/// A JSON body; a bad one (malformed, too large) is a JSON error.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Body(v))
    }
}

/// The whole HTTP surface of `app`.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/cut", get(cut))
        .route("/api/frames/{name}", get(frame))
        .route("/api/frames/{name}/labels", get(frame_labels))
        .route("/api/frames/{name}/lines.png", get(frame_lines))
        .route("/api/frames/{name}/fix", post(fix))
        .route("/api/frames/{name}/approve", post(approve))
        .route("/api/sheets/{name}", get(sheet))
        .route("/api/sheets/{name}/labels", get(sheet_labels))
        .route("/api/sheets/{name}/lines.png", get(sheet_lines))
        .route("/api/recolor", post(recolor))
        .route("/api/export", post(export))
        .route("/api/events", get(events))
        .route("/files/{root}/{*path}", get(file))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such page or API call") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
}

async fn check_host(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if host_allowed(&h, app.cfg.any_ip_host, &app.cfg.allowed_hosts) => {
            let mut res = next.run(req).await;
            let headers = res.headers_mut();
            headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            res
        }
        Some(h) => ApiError::forbidden(format!(
            "host {h:?} is not accepted; open the address `dacon serve` printed (or allow the name with --allow-host)"
        ))
        .into_response(),
        None => ApiError::bad_request("no Host header").into_response(),
    }
}

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(token) = &app.cfg.token {
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        if !request_token(auth, req.uri().query()).is_some_and(|g| token_matches(g, token)) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token; open the address with ?token= that `dacon serve` printed",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn index() -> Response {
    asset(Path("index.html".into())).await
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::get(&file) {
        Some((ty, body)) => (
            [
                (CONTENT_TYPE, ty),
                (CACHE_CONTROL, "no-cache"),
                (
                    axum::http::header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'",
                ),
            ],
            body,
        )
            .into_response(),
        None => ApiError::not_found(format!("no file {file:?} in the page")).into_response(),
    }
}

/// Runs blocking work (files, images, the review lock) off the reactor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

fn frame_exists(app: &App, name: &str) -> ApiResult<()> {
    if app.cfg.clip.frames.iter().any(|f| f.name == name) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no frame named {name:?} in this cut"
        )))
    }
}

fn coloured(app: &App, name: &str) -> bool {
    frame_outputs(&app.cfg.out, name)
        .iter()
        .all(|p| p.is_file())
}

/// Segments flagged for review: margin below the threshold (or not a
/// number), not corrected. Read from the sidecar without the segmentation.
fn flagged(app: &App, name: &str, state: &FrameReview) -> usize {
    let [_, conf, _] = frame_outputs(&app.cfg.out, name);
    let Ok(text) = std::fs::read_to_string(conf) else {
        return 0;
    };
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, Value>>(&text) else {
        return 0;
    };
    map.iter()
        .filter(|(id, row)| {
            let low = row["margin"]
                .as_f64()
                .is_none_or(|m| m < f64::from(app.cfg.flag_margin));
            low && !id
                .parse::<u32>()
                .is_ok_and(|id| state.corrections.contains_key(&id))
        })
        .count()
}

fn state_json(state: &FrameReview) -> Value {
    let corrections: BTreeMap<String, Rgba> = state
        .corrections
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    json!({
        "version": state.version,
        "approved": state.approved,
        "status": state.status(),
        "corrections": corrections,
    })
}

async fn cut(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let review = app.review().clone();
        let frames: Vec<Value> = app
            .cfg
            .clip
            .frames
            .iter()
            .map(|f| {
                let state = review.frame(&f.name).cloned().unwrap_or_default();
                let mut v = state_json(&state);
                v["name"] = json!(f.name);
                v["coloured"] = json!(coloured(&app, &f.name));
                v["flagged"] = json!(flagged(&app, &f.name, &state));
                v["corrected"] = json!(state.corrections.len());
                v
            })
            .collect();
        let palette: Vec<Value> = app
            .palette()
            .into_iter()
            .map(|(c, n)| json!({"color": c, "count": n}))
            .collect();
        Ok(Json(json!({
            "name": app.cfg.clip.name,
            "frames": frames,
            "sheets": app.cfg.clip.refs.iter().map(|r| &r.name).collect::<Vec<_>>(),
            "palette": palette,
            "job": app.job(),
            "flag_margin": app.cfg.flag_margin,
        })))
    })
    .await
}

fn frame_json(app: &App, name: &str) -> ApiResult<Value> {
    let loaded = app.loaded(false, name)?;
    let seg = &loaded.frame.seg;
    let state = app.review().frame(name).cloned().unwrap_or_default();
    let is_coloured = coloured(app, name);
    let (prediction, confidence) = if is_coloured {
        let [json, conf, _] = frame_outputs(&app.cfg.out, name);
        let p = Prediction::read(&json, &conf, seg.count())?;
        (p.colors.entries().to_vec(), p.confidence)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut v = state_json(&state);
    v["name"] = json!(name);
    v["width"] = json!(seg.width());
    v["height"] = json!(seg.height());
    v["segments"] = json!(seg.count());
    v["coloured"] = json!(is_coloured);
    v["prediction"] = json!(prediction);
    v["confidence"] = json!(confidence);
    v["references"] = json!(read_refs(&app.cfg.out, name)?.unwrap_or_default());
    v["flag_margin"] = json!(app.cfg.flag_margin);
    Ok(v)
}

async fn frame(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Json<Value>> {
    blocking(move || frame_json(&app, &name).map(Json)).await
}

async fn sheet(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Json<Value>> {
    blocking(move || {
        let loaded = app.loaded(true, &name)?;
        let seg = &loaded.frame.seg;
        let colors = app
            .sheets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.entries().to_vec())
            .unwrap_or_default();
        Ok(Json(json!({
            "name": name,
            "width": seg.width(),
            "height": seg.height(),
            "segments": seg.count(),
            "colors": colors,
        })))
    })
    .await
}

fn binary(ty: &'static str, body: Bytes) -> Response {
    ([(CONTENT_TYPE, ty), (CACHE_CONTROL, "max-age=3600")], body).into_response()
}

async fn layer(app: Arc<App>, sheet: bool, name: String, lines: bool) -> ApiResult<Response> {
    blocking(move || {
        let l = app.loaded(sheet, &name)?;
        Ok(if lines {
            binary("image/png", l.lines_png.clone())
        } else {
            binary("application/octet-stream", l.labels.clone())
        })
    })
    .await
}

async fn frame_labels(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Response> {
    layer(app, false, name, false).await
}

async fn frame_lines(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Response> {
    layer(app, false, name, true).await
}

async fn sheet_labels(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Response> {
    layer(app, true, name, false).await
}

async fn sheet_lines(State(app): State<Arc<App>>, Name(name): Name) -> ApiResult<Response> {
    layer(app, true, name, true).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixBody {
    /// The version the edit was made on; absent skips the check.
    base_version: Option<u64>,
    /// Segment id -> colour, or `null` to go back to the engine's colour.
    changes: BTreeMap<u32, Change>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    base_version: Option<u64>,
    #[serde(default = "yes")]
    approved: bool,
}

fn yes() -> bool {
    true
}

/// A review action; a conflict answers with the frame's current state so
/// the page can show it.
fn act(
    app: &App,
    name: &str,
    f: impl FnOnce(&mut dacon_core::review::Review) -> dacon_core::Result<FrameReview>,
) -> ApiResult<Json<Value>> {
    let mut review = app.review();
    match f(&mut review) {
        Ok(state) => {
            drop(review);
            app.jobs.send(Event::Frame {
                name: name.to_owned(),
                version: state.version,
            });
            Ok(Json(state_json(&state)))
        }
        Err(e) => {
            let current = review.frame(name).map(state_json);
            let err = ApiError::from(e);
            Err(match current {
                Some(c) if err.status() == StatusCode::CONFLICT => err.with_current(c),
                _ => err,
            })
        }
    }
}

async fn fix(
    State(app): State<Arc<App>>,
    Name(name): Name,
    Body(body): Body<FixBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        frame_exists(&app, &name)?;
        let segments = app.loaded(false, &name)?.frame.seg.count();
        act(&app, &name, |r| {
            r.fix(&name, body.base_version, &body.changes, segments)
                .cloned()
        })
    })
    .await
}

async fn approve(
    State(app): State<Arc<App>>,
    Name(name): Name,
    Body(body): Body<ApproveBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        frame_exists(&app, &name)?;
        act(&app, &name, |r| {
            r.set_approved(&name, body.base_version, body.approved)
                .cloned()
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecolorBody {
    /// Frames after this one are coloured again.
    from: String,
}

async fn recolor(
    State(app): State<Arc<App>>,
    Body(body): Body<RecolorBody>,
) -> ApiResult<Response> {
    frame_exists(&app, &body.from)?;
    job::start(&app, Some(body.from))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": app.job() }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    /// Frames to export (all when absent).
    frames: Option<Vec<String>>,
}

async fn export(
    State(app): State<Arc<App>>,
    Body(body): Body<ExportBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let review = app.review().clone();
        let entries = review::export(
            &app.cfg.clip,
            &app.cfg.out,
            &review,
            &app.cfg.colorize.line,
            &app.cfg.colorize.export,
            body.frames.as_deref(),
        )?;
        Ok(Json(
            json!({ "frames": entries, "manifest": "export/manifest.json" }),
        ))
    })
    .await
}

async fn events(
    State(app): State<Arc<App>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let start = (app.jobs.subscribe(), app.jobs.closed(), Some(app.job()));
    let stream = futures_util::stream::unfold(start, |(mut rx, mut closed, first)| async move {
        let sse = |e: &Event| SseEvent::default().json_data(e).unwrap_or_default();
        if let Some(state) = first {
            return Some((Ok(sse(&Event::Job(state))), (rx, closed, None)));
        }
        loop {
            if *closed.borrow() {
                return None;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(e) => return Some((Ok(sse(&e)), (rx, closed, None))),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = closed.changed() => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn file(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Response> {
    let Path((root, rel)) = path?;
    blocking(move || {
        let base = match root.as_str() {
            "cut" => &app.roots[0],
            "out" => &app.roots[1],
            _ => {
                return Err(ApiError::not_found(
                    "files are under /files/cut/ or /files/out/",
                ))
            }
        };
        let real = resolve_inside(base, &rel)?;
        if !real.is_file() {
            return Err(ApiError::not_found(format!("no file {rel:?}")));
        }
        let bytes =
            std::fs::read(&real).map_err(|e| ApiError::from(dacon_core::Error::io(&real, e)))?;
        let ty = match real.extension().and_then(|e| e.to_str()) {
            Some("png") => "image/png",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        Ok(binary(ty, Bytes::from(bytes)))
    })
    .await
}

/// The labels for the page: `DLB1`, width, height, segment count, then
/// (label, run length) pairs over the pixels in row order, all u32
/// little-endian. Segments are flat regions, so runs are long.
pub(crate) fn encode_labels(seg: &Segmentation) -> Bytes {
    let labels = seg.labels();
    let mut out = Vec::with_capacity(16 + labels.len() / 4);
    out.extend_from_slice(b"DLB1");
    for v in [seg.width(), seg.height(), seg.count()] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut i = 0;
    while i < labels.len() {
        let l = labels[i];
        let run = labels[i..].iter().take_while(|&&x| x == l).count();
        out.extend_from_slice(&l.to_le_bytes());
        out.extend_from_slice(&(run as u32).to_le_bytes());
        i += run;
    }
    Bytes::from(out)
}

/// The line layer: the line art's line pixels as drawn, everything else
/// transparent, as PNG.
pub(crate) fn lines_png(frame: &Frame) -> ApiResult<Bytes> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let art = &frame.art;
    let mut rgba = Vec::with_capacity(art.rgba().as_raw().len());
    for p in art.rgba().pixels() {
        let p = p.0;
        if art.kind_of(p) == dacon_core::lineart::PixelKind::Fill {
            rgba.extend_from_slice(&[0, 0, 0, 0]);
        } else if art.has_alpha() {
            rgba.extend_from_slice(&p);
        } else {
            rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
        }
    }
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            &rgba,
            art.width(),
            art.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Bytes::from(buf))
}
