//! The HTTP API without a socket (`tower::ServiceExt::oneshot`): token, Host
//! check, path traversal, body limits, concurrent edits, saves surviving a
//! restart, re-colouring and export.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dacon_core::classic::ClassicEngine;
use dacon_core::colorize::{frame_outputs, ColorizeOptions};
use dacon_core::dataset::{open_clips, Need};
use dacon_neural::AnyEngine;
use dacon_server::{router, App, Config};
use dacon_synth::{write_cut, CutSpec};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Cut {
    _dir: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
}

fn cut() -> Cut {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cut");
    let spec = CutSpec {
        width: 256,
        height: 192,
        frames: 3,
        line_width: 2.0,
        ..CutSpec::default()
    };
    write_cut(&root, &spec).unwrap();
    let out = dir.path().join("out");
    Cut {
        _dir: dir,
        root,
        out,
    }
}

fn config(cut: &Cut, token: Option<&str>) -> Config {
    Config {
        clip: open_clips(&cut.root, Need::Inference).unwrap().remove(0),
        out: cut.out.clone(),
        colorize: ColorizeOptions::default(),
        token: token.map(str::to_owned),
        allowed_hosts: vec!["studio-box".into()],
        any_ip_host: false,
        flag_margin: 0.15,
    }
}

/// A server on `cut`, its frames coloured.
fn app(cut: &Cut, token: Option<&str>) -> Arc<App> {
    let app = App::new(
        config(cut, token),
        AnyEngine::Classic(ClassicEngine::default()),
    )
    .unwrap();
    app.colour_missing().unwrap();
    app.wait_idle();
    assert_eq!(app.job().failed, 0);
    assert!(app.job().error.is_none(), "{:?}", app.job().error);
    app
}

async fn call(app: &Arc<App>, req: Request<Body>) -> (StatusCode, Value) {
    let res = router(app.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "127.0.0.1:8765")
        .body(Body::empty())
        .unwrap()
}

fn post(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("host", "127.0.0.1:8765")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_on_the_api_but_not_on_the_page() {
    let cut = cut();
    let app = app(&cut, Some("s3cret"));
    let (s, body) = call(&app, get("/api/cut")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("token"));
    assert_eq!(
        call(&app, get("/api/cut?token=wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, get("/api/cut?token=s3cret")).await.0,
        StatusCode::OK
    );
    let mut req = get("/api/cut");
    req.headers_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, get("/files/out/0000.png")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The page itself holds no data.
    let res = router(app.clone()).oneshot(get("/")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = router(app.clone())
        .oneshot(get("/assets/main.js"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_must_name_this_machine() {
    let cut = cut();
    let app = app(&cut, None);
    for (host, want) in [
        ("127.0.0.1:8765", StatusCode::OK),
        ("localhost:8765", StatusCode::OK),
        ("[::1]:8765", StatusCode::OK),
        ("studio-box:8765", StatusCode::OK),
        ("evil.example:8765", StatusCode::FORBIDDEN),
        ("192.168.1.20:8765", StatusCode::FORBIDDEN),
    ] {
        let req = Request::get("/api/cut")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        let (s, body) = call(&app, req).await;
        assert_eq!(s, want, "{host}: {body}");
        if s != StatusCode::OK {
            assert!(body["error"].is_string());
        }
    }
    let req = Request::get("/api/cut").body(Body::empty()).unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_cut_and_output_are_refused() {
    let cut = cut();
    let app = app(&cut, None);
    // Beside the cut and output folders.
    let secret = cut.root.parent().unwrap().join("secret.json");
    std::fs::write(&secret, "{}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, cut.out.join("link.json")).unwrap();
    let (s, _) = call(&app, get("/files/out/0000.png")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        call(&app, get("/files/cut/line/0000.png")).await.0,
        StatusCode::OK
    );
    for uri in [
        "/files/out/../secret.json",
        "/files/out/%2e%2e/secret.json",
        "/files/out/..%2fsecret.json",
        "/files/out/%2E%2E%2Fsecret.json",
        "/files/cut/line/../../secret.json",
        "/files/out/%2ftmp%2fsecret.json",
        "/files/out//etc/passwd",
        "/files/out/.%2f0000.png",
        "/files/out/..%5csecret.json",
        "/files/out/link.json",
    ] {
        let (s, body) = call(&app, get(uri)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}: {body}");
        assert!(body["error"].as_str().unwrap().contains("outside"), "{uri}");
    }
    let (s, _) = call(&app, get(&format!("/files/out/{}", secret.display()))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        call(&app, get("/files/etc/passwd")).await.0,
        StatusCode::NOT_FOUND
    );
    for uri in [
        "/api/frames/..%2f..%2fsecret",
        "/api/frames/%2e%2e",
        "/api/sheets/..%2Fline%2F0000",
        "/assets/..%2fCargo.toml",
    ] {
        let (s, body) = call(&app, get(uri)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_bodies_are_refused_as_json() {
    let cut = cut();
    let app = app(&cut, None);
    let huge = json!({ "changes": {}, "pad": "x".repeat(2 << 20) });
    let (s, body) = call(&app, post("/api/frames/0000/fix", &huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].is_string());
    let req = Request::post("/api/frames/0000/fix")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (s, body) = call(&app, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
    let bad = [
        json!({ "changes": { "1": [1, 2] } }),
        json!({ "changes": { "x": [1, 2, 3, 4] } }),
        json!({ "changes": {}, "extra": 1 }),
    ];
    for b in bad {
        let (s, body) = call(&app, post("/api/frames/0000/fix", &b)).await;
        assert!(s.is_client_error(), "{b}: {s}");
        assert!(body["error"].is_string());
    }
    let (s, body) = call(
        &app,
        post(
            "/api/frames/0000/fix",
            &json!({ "changes": { "100000": [1, 2, 3, 255] } }),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = call(&app, get("/no/such/thing")).await;
    assert_eq!(
        (s, body["error"].is_string()),
        (StatusCode::NOT_FOUND, true)
    );
}

fn corrections(out: &Path, frame: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("corrections/{frame}.json"))).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_editors_of_one_frame_conflict_instead_of_losing_an_edit() {
    let cut = cut();
    let app = app(&cut, None);
    let (s, frame) = call(&app, get("/api/frames/0001")).await;
    assert_eq!(s, StatusCode::OK);
    let v = frame["version"].as_u64().unwrap();
    // Both tabs start from the same version.
    let a = json!({ "base_version": v, "changes": { "2": [1, 2, 3, 255] } });
    let b = json!({ "base_version": v, "changes": { "2": [9, 9, 9, 255] } });
    let (sa, ra) = call(&app, post("/api/frames/0001/fix", &a)).await;
    assert_eq!(sa, StatusCode::OK, "{ra}");
    assert_eq!(ra["version"], v + 1);
    let (sb, rb) = call(&app, post("/api/frames/0001/fix", &b)).await;
    assert_eq!(sb, StatusCode::CONFLICT, "{rb}");
    assert!(rb["error"].as_str().unwrap().contains("changed"));
    assert_eq!(rb["current"]["corrections"]["2"], json!([1, 2, 3, 255]));
    assert_eq!(corrections(&cut.out, "0001")["2"], json!([1, 2, 3, 255]));

    // Many edits at once, each on the version it read: exactly one wins.
    let v = v + 1;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let b = json!({ "base_version": v, "changes": { "3": [i, 0, 0, 255] } });
            call(&app, post("/api/frames/0001/fix", &b)).await.0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            s => assert_eq!(s, StatusCode::CONFLICT),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_survive_a_restart_and_predictions_are_never_overwritten() {
    let cut = cut();
    let [json0, _, _] = frame_outputs(&cut.out, "0001");
    let prediction = {
        let app = app(&cut, None);
        let prediction = std::fs::read(&json0).unwrap();
        let fix = json!({ "base_version": 0, "changes": { "1": [10, 20, 30, 255], "2": [1, 1, 1, 255] } });
        assert_eq!(
            call(&app, post("/api/frames/0001/fix", &fix)).await.0,
            StatusCode::OK
        );
        let undo = json!({ "base_version": 1, "changes": { "2": null } });
        assert_eq!(
            call(&app, post("/api/frames/0001/fix", &undo)).await.0,
            StatusCode::OK
        );
        let approve = json!({ "base_version": 2 });
        assert_eq!(
            call(&app, post("/api/frames/0001/approve", &approve))
                .await
                .0,
            StatusCode::OK
        );
        let late = json!({ "changes": { "1": [0, 0, 0, 255] } });
        assert_eq!(
            call(&app, post("/api/frames/0001/fix", &late)).await.0,
            StatusCode::CONFLICT
        );
        prediction
    };
    // A new server on the same folders (the old one is gone).
    let app = app(&cut, None);
    let (s, f) = call(&app, get("/api/frames/0001")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["version"], 3);
    assert_eq!(f["approved"], true);
    assert_eq!(f["status"], "approved");
    assert_eq!(f["corrections"], json!({ "1": [10, 20, 30, 255] }));
    assert_eq!(std::fs::read(&json0).unwrap(), prediction);
    let log = std::fs::read_to_string(cut.out.join("corrections/actions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    let (_, c) = call(&app, get("/api/cut")).await;
    assert_eq!(c["frames"][1]["status"], "approved");
    assert_eq!(c["frames"][0]["status"], "not_reviewed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recolour_from_a_frame_and_export_the_cut() {
    let cut = cut();
    let app = app(&cut, None);
    let (_, f0) = call(&app, get("/api/frames/0000")).await;
    let segments = f0["segments"].as_u64().unwrap();
    // Repaint the whole first frame with one new colour.
    let all: serde_json::Map<String, Value> = (1..=segments)
        .map(|id| (id.to_string(), json!([7, 77, 177, 255])))
        .collect();
    let fix = json!({ "base_version": 0, "changes": all });
    assert_eq!(
        call(&app, post("/api/frames/0000/fix", &fix)).await.0,
        StatusCode::OK
    );
    let approve = json!({ "approved": true });
    assert_eq!(
        call(&app, post("/api/frames/0002/approve", &approve))
            .await
            .0,
        StatusCode::OK
    );
    let [json2, _, _] = frame_outputs(&cut.out, "0002");
    let before2 = std::fs::read(&json2).unwrap();

    let (s, body) = call(&app, post("/api/recolor", &json!({ "from": "0000" }))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    app.wait_idle();
    assert!(app.job().error.is_none());
    // Frame 1's segments that came from frame 0 now carry the new colour.
    let (_, f1) = call(&app, get("/api/frames/0001")).await;
    let refs = f1["references"].as_array().unwrap();
    let frame0 = refs
        .iter()
        .position(|r| r == &json!({"kind": "frame", "name": "0000"}))
        .unwrap();
    let mut from0 = 0;
    for (i, c) in f1["confidence"].as_array().unwrap().iter().enumerate() {
        if c["source"]["reference"] == frame0 {
            assert_eq!(
                f1["prediction"][i],
                json!([7, 77, 177, 255]),
                "segment {}",
                i + 1
            );
            from0 += 1;
        }
    }
    assert!(from0 > 0);
    assert_eq!(
        std::fs::read(&json2).unwrap(),
        before2,
        "approved frame changed"
    );

    let (s, body) = call(&app, post("/api/recolor", &json!({ "from": "nope" }))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    let (s, body) = call(&app, post("/api/export", &json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for name in ["0000", "0001", "0002"] {
        for file in [
            format!("{name}.png"),
            format!("{name}.fill.png"),
            format!("{name}.json"),
        ] {
            assert!(cut.out.join("export").join(&file).is_file(), "{file}");
        }
    }
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(cut.out.join("export/0000.json")).unwrap())
            .unwrap();
    assert_eq!(table["1"], json!([7, 77, 177, 255]));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(cut.out.join("export/manifest.json")).unwrap(),
    )
    .unwrap();
    let statuses: Vec<&str> = manifest["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["fixes_made", "not_reviewed", "approved"]);
    let (s, _) = call(&app, get("/files/out/export/0000.fill.png")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_for_the_page() {
    let cut = cut();
    let app = app(&cut, None);
    let res = router(app.clone())
        .oneshot(get("/api/frames/0000/labels"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&bytes[..4], b"DLB1");
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let (w, h) = (word(4), word(8));
    assert_eq!((w, h), (256, 192));
    // The runs cover the frame exactly and decode to its labels.
    let frame = dacon_core::Frame::open(
        &cut.root.join("line/0000.png"),
        &dacon_core::LineOptions::default(),
    )
    .unwrap();
    let mut decoded = Vec::new();
    for pair in bytes[16..].chunks_exact(8) {
        let l = u32::from_le_bytes(pair[..4].try_into().unwrap());
        let n = u32::from_le_bytes(pair[4..].try_into().unwrap());
        decoded.extend(std::iter::repeat_n(l, n as usize));
    }
    assert_eq!(decoded, frame.seg.labels());
    let res = router(app.clone())
        .oneshot(get("/api/sheets/0000/lines.png"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (s, sheet) = call(&app, get("/api/sheets/0000")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(sheet["colors"].as_array().unwrap().len() > 1);
}
