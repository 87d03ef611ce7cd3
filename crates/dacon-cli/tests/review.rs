//! `dacon colorize --corrections` and `dacon serve` from the command line.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::dacon;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn corrections_are_kept_and_passed_on_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dacon(
        d,
        &[
            "example", "--out", "cut", "--frames", "3", "--width", "256", "--height", "192",
        ],
    )
    .ok();
    dacon(d, &["colorize", "cut", "--out", "out", "--propagate"]).ok();
    let before0 = std::fs::read(d.join("out/0000.json")).unwrap();
    // Repaint every segment of frame 0 with one colour no drawing uses.
    let p0 = read_json(&d.join("out/0000.json"));
    let fixed: serde_json::Map<String, Value> = p0
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), serde_json::json!([3, 33, 133, 255])))
        .collect();
    std::fs::create_dir_all(d.join("out/corrections")).unwrap();
    std::fs::write(
        d.join("out/corrections/0000.json"),
        Value::Object(fixed).to_string(),
    )
    .unwrap();
    dacon(
        d,
        &[
            "colorize",
            "cut",
            "--out",
            "out",
            "--propagate",
            "--corrections",
            "out/corrections",
        ],
    )
    .ok();
    // The engine's prediction of the corrected frame is untouched ...
    assert_eq!(std::fs::read(d.join("out/0000.json")).unwrap(), before0);
    // ... and frame 1 took the corrected colours wherever its source was
    // frame 0 (reference 1: after the one design sheet).
    let p1 = read_json(&d.join("out/0001.json"));
    let conf = read_json(&d.join("out/0001.confidence.json"));
    let refs = read_json(&d.join("out/0001.refs.json"));
    assert_eq!(
        refs[1],
        serde_json::json!({"kind": "frame", "name": "0000"})
    );
    let mut from0 = 0;
    for (id, row) in conf.as_object().unwrap() {
        if row["reference"] == 1 {
            assert_eq!(p1[id], serde_json::json!([3, 33, 133, 255]), "segment {id}");
            from0 += 1;
        }
    }
    assert!(from0 > 0);

    let r = dacon(
        d,
        &[
            "colorize",
            "cut",
            "--out",
            "out",
            "--corrections",
            "nowhere",
        ],
    )
    .fails();
    assert!(r.stderr().contains("nowhere"), "{}", r.stderr());
}

#[test]
fn serve_prints_its_address_and_answers_with_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dacon(
        d,
        &[
            "example", "--out", "cut", "--frames", "2", "--width", "192", "--height", "128",
        ],
    )
    .ok();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dacon"))
        .current_dir(d)
        .args([
            "serve", "cut", "--out", "out", "--port", "0", "--token", "t0k",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("dacon serve: ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/?token=t0k"),
        "{url}"
    );
    let base = url.trim_end_matches("/?token=t0k");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .get(format!("{base}/api/cut"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let mut res = agent
        .get(format!("{base}/api/cut?token=t0k"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let cut: Value = res.body_mut().read_json().unwrap();
    assert_eq!(cut["frames"].as_array().unwrap().len(), 2);
    let page = agent.get(format!("{base}/")).call().unwrap();
    assert_eq!(page.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");

    let r = dacon(d, &["serve", "cut", "--token", ""]).fails();
    assert!(r.stderr().contains("token"), "{}", r.stderr());
}
