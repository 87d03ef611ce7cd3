//! The page in a real headless Chromium (WebDriver through `chromedriver`),
//! against the real server on 127.0.0.1: open a cut, fix a segment by
//! clicking it, re-colour, approve, export, and check the files on disk.
//!
//! Without a browser the test prints `SKIPPED`; with
//! `DACON_REQUIRE_BROWSER=1` (CI) a missing browser fails. On failure a
//! screenshot is saved to `target/browser-failure.png`.
//!
//! `DACON_REVIEW_REPORT=1` also runs the measurements of the README: a full
//! review of `examples/cut01` by a colourist who knows the right colours
//! (clicks counted), page load and fix round trip on 1920x1080 frames, and
//! (with `DACON_SCREENSHOT=FILE`) the screenshot.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dacon_core::classic::ClassicEngine;
use dacon_core::colorize::ColorizeOptions;
use dacon_core::dataset::{open_clips, Need};
use dacon_core::review::final_colors;
use dacon_core::{ColorTable, Frame, LineOptions, Rgba};
use dacon_neural::AnyEngine;
use dacon_server::{App, Config};
use serde_json::{json, Value};

const REQUIRE: &str = "DACON_REQUIRE_BROWSER";

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver and the browser, or `None` after printing `SKIPPED`.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let driver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| on_path(&["chromedriver"]));
    let chrome = std::env::var_os("CHROME")
        .map(PathBuf::from)
        .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]));
    match (driver, chrome) {
        (Some(d), Some(c)) => Some((d, c)),
        _ => {
            let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "no chromium/chromedriver found but {REQUIRE} is set (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: no chromium + chromedriver on PATH (set {REQUIRE}=1 to require them)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session: just the handful of commands the tests use.
struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Driver {
    fn start(driver: &Path, chrome: &Path, width: u32, height: u32) -> Driver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let root = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        while agent.get(format!("{root}/status")).call().is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut d = Driver {
            child,
            base: root.clone(),
            agent,
        };
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--hide-scrollbars",
                         "--force-device-scale-factor=1"]
            }
        }}});
        let v = d.cmd("POST", "/session", Some(caps));
        let id = v["sessionId"].as_str().expect("session id").to_owned();
        d.base = format!("{root}/session/{id}");
        d
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("POST", b) => self
                .agent
                .post(&url)
                .send_json(b.unwrap_or_else(|| json!({}))),
            ("DELETE", _) => self.agent.delete(&url).call(),
            _ => self.agent.get(&url).call(),
        };
        let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = res
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_json()
            .unwrap();
        let value = v["value"].clone();
        if let Some(err) = value.get("error") {
            panic!("{method} {path}: {err} {}", value["message"]);
        }
        value
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `expr` (a JavaScript expression) until it is truthy.
    fn wait(&self, expr: &str, what: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.exec(&format!("return {expr};"), json!([]));
            if !(v.is_null() || v == json!(false)) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pointer(&self, x: f64, y: f64, click: bool) {
        let mut actions = vec![
            json!({ "type": "pointerMove", "duration": 0, "x": x.round() as i64, "y": y.round() as i64, "origin": "viewport" }),
        ];
        if click {
            actions.push(json!({ "type": "pointerDown", "button": 0 }));
            actions.push(json!({ "type": "pointerUp", "button": 0 }));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "pointer", "id": "mouse",
                "parameters": { "pointerType": "mouse" }, "actions": actions }] })),
        );
    }

    fn click(&self, css: &str) {
        let el = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_owned();
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    fn screenshot(&self, path: &Path) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(v.as_str().expect("base64 screenshot"));
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// The real server on 127.0.0.1 (its own runtime, in a thread).
struct Server {
    url: String,
    app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(cut: &Path, out: &Path) -> Server {
        let cfg = Config {
            clip: open_clips(cut, Need::Inference).unwrap().remove(0),
            out: out.to_path_buf(),
            colorize: ColorizeOptions::default(),
            token: Some("browser-test".into()),
            allowed_hosts: Vec::new(),
            any_ip_host: false,
            flag_margin: 0.15,
        };
        let app = App::new(cfg, AnyEngine::Classic(ClassicEngine::default())).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!(
            "http://{}/?token=browser-test",
            listener.local_addr().unwrap()
        );
        app.colour_missing().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        let thread = std::thread::spawn(move || {
            rt.block_on(dacon_server::serve(listener, served, async {
                let _ = rx.await;
            }))
            .unwrap();
        });
        Server {
            url,
            app,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.app.wait_idle();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `f`; on a panic saves a screenshot first.
fn with_screenshot(d: &Driver, f: impl FnOnce()) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-failure.png");
        d.screenshot(&shot);
        eprintln!("screenshot of the failure: {}", shot.display());
        std::panic::resume_unwind(e);
    }
}

fn cut01() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cut01")
}

const READY: &str = "window.__dacon && __dacon.ready && __dacon.idle() && __dacon.cut().every(f => f.coloured) && __dacon.frame().coloured";

/// The painted truth of a frame of cut01.
fn truth(cut: &Path, name: &str) -> (Frame, ColorTable) {
    let frame = Frame::open(
        &cut.join(format!("line/{name}.png")),
        &LineOptions::default(),
    )
    .unwrap();
    let t = ColorTable::from_painted(&frame.seg, &cut.join(format!("gt/{name}.png"))).unwrap();
    (frame, t)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn click_segment(d: &Driver, id: u32) {
    let p = d.exec("return __dacon.pointOf(arguments[0]);", json!([id]));
    let xy = d.exec(
        "return __dacon.clientPoint(arguments[0], arguments[1]);",
        json!([p[0], p[1]]),
    );
    d.pointer(xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap(), true);
}

fn pick_swatch(d: &Driver, c: Rgba) -> bool {
    let css = format!(
        "#palette button[data-color=\"{},{},{},{}\"]",
        c[0], c[1], c[2], c[3]
    );
    let there = d.exec(
        "return !!document.querySelector(arguments[0]);",
        json!([css]),
    );
    if there == json!(true) {
        d.click(&css);
    }
    there == json!(true)
}

#[test]
fn review_a_cut_in_the_browser() {
    let Some((driver, chrome)) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cut = cut01();
    let server = Server::start(&cut, &out);
    let d = Driver::start(&driver, &chrome, 1600, 1000);
    with_screenshot(&d, || {
        d.goto(&server.url);
        d.wait(READY, "the cut to be coloured and shown");
        let frame = d.exec("return __dacon.frame();", json!([]));
        let name = frame["name"].as_str().unwrap().to_owned();
        assert_eq!(name, "0000");

        // Fix a segment by clicking it: give segment 2 a colour it does not
        // have, from the palette.
        let prediction = ColorTable::open(&out.join(format!("{name}.json"))).unwrap();
        let palette = d.exec(
            "return [...document.querySelectorAll('#palette button')].map(b => b.dataset.color.split(',').map(Number));",
            json!([]),
        );
        let have = prediction.get(2).unwrap();
        let color: Rgba = palette
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let v: Vec<u8> = c
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u8)
                    .collect();
                [v[0], v[1], v[2], v[3]]
            })
            .find(|c| *c != have)
            .unwrap();
        assert!(pick_swatch(&d, color));
        click_segment(&d, 2);
        d.wait(
            "__dacon.idle() && __dacon.frame().version === 1",
            "the fix to be saved",
        );
        let saved = read_json(&out.join(format!("corrections/{name}.json")));
        assert_eq!(saved, json!({ "2": color }));
        // The prediction stays the engine's.
        assert_eq!(
            ColorTable::open(&out.join(format!("{name}.json"))).unwrap(),
            prediction
        );

        // Undo and redo through the keyboard.
        d.exec("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'z', ctrlKey: true, bubbles: true}));", json!([]));
        d.wait("__dacon.idle() && __dacon.frame().version === 2", "undo");
        assert_eq!(
            read_json(&out.join(format!("corrections/{name}.json"))),
            json!({})
        );
        d.exec("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'y', ctrlKey: true, bubbles: true}));", json!([]));
        d.wait("__dacon.idle() && __dacon.frame().version === 3", "redo");
        assert_eq!(
            read_json(&out.join(format!("corrections/{name}.json"))),
            json!({ "2": color })
        );

        // Re-colour from here: the next frames are coloured again.
        let next = out.join("0001.json");
        let before = std::fs::metadata(&next).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        d.click("#recolor");
        d.wait(
            "__dacon.idle() && !document.querySelector('#recolor').disabled",
            "re-colouring",
        );
        server.app.wait_idle();
        assert!(std::fs::metadata(&next).unwrap().modified().unwrap() > before);

        // Approve every frame (the page moves on to the next one itself).
        let frames = server.app.config().clip.frames.len();
        for _ in 0..frames {
            d.click("#approve");
            d.wait("__dacon.idle()", "approval");
        }
        d.wait(
            "__dacon.cut().every(f => f.approved)",
            "every frame approved",
        );
        let manifest = read_json(&out.join("corrections/manifest.json"));
        assert_eq!(
            manifest["frames"]
                .as_object()
                .unwrap()
                .values()
                .filter(|f| f["approved"] == true)
                .count(),
            frames
        );

        // Export the cut.
        d.click("#export-cut");
        d.wait(
            "document.querySelectorAll('#exports a').length > 0",
            "the export",
        );
        let export = read_json(&out.join("export/manifest.json"));
        let rows = export["frames"].as_array().unwrap();
        assert_eq!(rows.len(), frames);
        assert!(rows.iter().all(|r| r["status"] == "approved"));
        for f in &server.app.config().clip.frames {
            for suffix in [".png", ".fill.png", ".json"] {
                assert!(out.join(format!("export/{}{suffix}", f.name)).is_file());
            }
        }
        assert_eq!(read_json(&out.join("export/0000.json"))["2"], json!(color));
        // The download link works with the token.
        let href = d.exec(
            "return document.querySelector('#exports a').href;",
            json!([]),
        );
        let mut res = ureq::get(href.as_str().unwrap()).call().unwrap();
        let mut png = Vec::new();
        res.body_mut().as_reader().read_to_end(&mut png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    });
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The figures of the README (run with `DACON_REVIEW_REPORT=1`).
#[test]
fn review_report() {
    if std::env::var_os("DACON_REVIEW_REPORT").is_none() {
        eprintln!("SKIPPED: set DACON_REVIEW_REPORT=1 for the review figures");
        return;
    }
    let Some((driver, chrome)) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cut = cut01();
    let out = dir.path().join("cut01");
    let server = Server::start(&cut, &out);
    let d = Driver::start(&driver, &chrome, 1600, 1000);
    with_screenshot(&d, || {
        d.goto(&server.url);
        d.wait(READY, "the cut");
        let names: Vec<String> = server
            .app
            .config()
            .clip
            .frames
            .iter()
            .map(|f| f.name.clone())
            .collect();
        if let Some(shot) = std::env::var_os("DACON_SCREENSHOT") {
            // A frame with flagged segments, one hovered: the reference it
            // came from shows beside it.
            d.click(&format!("#strip button[data-frame=\"{}\"]", names[3]));
            d.wait(
                &format!("__dacon.frame().name === '{}' && __dacon.idle()", names[3]),
                "frame",
            );
            // The least confident segment big enough to see.
            let (frame, _) = truth(&cut, &names[3]);
            let conf = read_json(&out.join(format!("{}.confidence.json", names[3])));
            let stats = frame.seg.stats();
            let id = (1..=frame.seg.count())
                .filter(|&id| stats[id as usize - 1].pixels > 400)
                .min_by(|a, b| {
                    let m = |id: &u32| conf[id.to_string()]["margin"].as_f64().unwrap_or(0.0);
                    m(a).total_cmp(&m(b))
                })
                .unwrap();
            let p = d.exec("return __dacon.pointOf(arguments[0]);", json!([id]));
            let xy = d.exec(
                "return __dacon.clientPoint(arguments[0], arguments[1]);",
                json!([p[0], p[1]]),
            );
            d.pointer(xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap(), false);
            std::thread::sleep(Duration::from_millis(500));
            d.screenshot(Path::new(&shot));
            eprintln!("screenshot: {}", PathBuf::from(&shot).display());
            d.click(&format!("#strip button[data-frame=\"{}\"]", names[0]));
            d.wait(
                &format!("__dacon.frame().name === '{}' && __dacon.idle()", names[0]),
                "frame",
            );
        }

        // A colourist who knows the right colours: per frame, pick each
        // wrong colour's swatch once and click its segments, re-colour from
        // the frame when something was fixed, approve (the page moves on).
        let mut clicks = BTreeMap::<&str, usize>::new();
        let mut segments_total = 0;
        let mut wrong_at_first_sight = 0;
        let mut current: Option<Rgba> = None;
        for (k, name) in names.iter().enumerate() {
            d.wait(
                &format!("__dacon.frame().name === '{name}' && __dacon.idle()"),
                "the frame",
            );
            let (frame, truth) = truth(&cut, name);
            let review = dacon_core::review::Review::open(
                &out.join("corrections"),
                names.iter().map(String::as_str),
            )
            .unwrap();
            let colors = final_colors(&out, name, &review).unwrap();
            segments_total += frame.seg.count() as usize;
            let mut by_color: BTreeMap<Rgba, Vec<u32>> = BTreeMap::new();
            for id in 1..=frame.seg.count() {
                let want = truth.get(id).unwrap();
                if colors.get(id) != Some(want) {
                    by_color.entry(want).or_default().push(id);
                }
            }
            let wrong: usize = by_color.values().map(Vec::len).sum();
            wrong_at_first_sight += wrong;
            for (c, ids) in &by_color {
                if current != Some(*c) {
                    if !pick_swatch(&d, *c) {
                        // Not in the references: the colourist enters it
                        // once (then it is a swatch).
                        assert_eq!(c[3], 255, "only opaque colours can be entered");
                        let hex = format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
                        d.exec(
                            "const i = document.getElementById('custom'); i.value = arguments[0]; i.dispatchEvent(new Event('change'));",
                            json!([hex]),
                        );
                        *clicks.entry("colour entered").or_default() += 1;
                    } else {
                        *clicks.entry("palette").or_default() += 1;
                    }
                    current = Some(*c);
                }
                for &id in ids {
                    click_segment(&d, id);
                    *clicks.entry("segment").or_default() += 1;
                }
            }
            d.wait("__dacon.idle()", "fixes saved");
            if wrong > 0 && k + 1 < names.len() {
                d.click("#recolor");
                *clicks.entry("re-colour").or_default() += 1;
                d.wait(
                    "__dacon.idle() && !document.querySelector('#recolor').disabled",
                    "re-colouring",
                );
                server.app.wait_idle();
                d.wait("__dacon.idle()", "reload");
            }
            d.click("#approve");
            *clicks.entry("approve").or_default() += 1;
            eprintln!(
                "frame {name}: {wrong} segments wrong when reached, of {}",
                frame.seg.count()
            );
        }
        d.wait(
            "__dacon.idle() && __dacon.cut().every(f => f.approved)",
            "all approved",
        );
        d.click("#export-cut");
        *clicks.entry("export").or_default() += 1;
        d.wait(
            "document.querySelectorAll('#exports a').length > 0",
            "the export",
        );
        // The export is the painted truth, frame by frame.
        for name in &names {
            let (_, truth) = truth(&cut, name);
            let exported = ColorTable::open(&out.join(format!("export/{name}.json"))).unwrap();
            assert_eq!(exported, truth, "frame {name}");
        }
        let total: usize = clicks.values().sum();
        println!(
            "REPORT cut01: {} frames, {segments_total} segments (hand painting: {segments_total} clicks); \
             review to an exported, fully approved cut: {total} clicks {clicks:?}; \
             {wrong_at_first_sight} segments were wrong when their frame was reached",
            names.len()
        );
    });
    drop(d);
    drop(server);

    // Timing on 1920x1080 frames.
    let big = dir.path().join("big");
    let spec = dacon_synth::CutSpec {
        width: 1920,
        height: 1080,
        frames: 3,
        ..dacon_synth::CutSpec::default()
    };
    dacon_synth::write_cut(&big, &spec).unwrap();
    let out = dir.path().join("big-out");
    let server = Server::start(&big, &out);
    server.app.wait_idle();
    let d = Driver::start(&driver, &chrome, 1920, 1200);
    with_screenshot(&d, || {
        let mut loads = Vec::new();
        for _ in 0..7 {
            d.goto(&server.url);
            d.wait(READY, "the 1920x1080 cut");
            loads.push(
                d.exec("return __dacon.timing.load;", json!([]))
                    .as_f64()
                    .unwrap(),
            );
        }
        let segments = d
            .exec("return __dacon.frame().segments;", json!([]))
            .as_u64()
            .unwrap() as u32;
        let palette = d.exec(
            "return document.querySelectorAll('#palette button').length;",
            json!([]),
        );
        for i in 0..11u32 {
            let swatch = (i % palette.as_u64().unwrap().min(9) as u32) + 1;
            d.exec(
                "document.dispatchEvent(new KeyboardEvent('keydown', {key: String(arguments[0]), bubbles: true}));",
                json!([swatch]),
            );
            click_segment(&d, 1 + (i * 7) % segments);
            d.wait("__dacon.idle()", "the fix");
        }
        let fixes = d.exec("return __dacon.timing.fixes;", json!([]));
        let mut repaint: Vec<f64> = fixes
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["repaint_ms"].as_f64().unwrap())
            .collect();
        let mut saved: Vec<f64> = fixes
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["saved_ms"].as_f64().unwrap())
            .collect();
        println!(
            "REPORT 1920x1080 ({segments} segments): page load median {:.0} ms of {} loads {loads:?}; \
             fix: repaint median {:.1} ms, saved (round trip) median {:.1} ms of {} fixes",
            median(&mut loads.clone()),
            loads.len(),
            median(&mut repaint),
            median(&mut saved),
            saved.len()
        );
    });
}
