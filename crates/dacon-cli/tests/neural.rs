//! The neural engine through the CLI, on the parity clips and tiny weights.

use crate::util::*;

/// Copies a read-only parity clip into a writable temp folder.
fn copy_clip(src: &std::path::Path, dst: &std::path::Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_clip(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

#[test]
fn colorize_with_dacon_reproduces_the_official_prediction() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for ch in ["charA", "charB"] {
        let clip = d.join(ch);
        std::fs::create_dir_all(&clip).unwrap();
        copy_clip(&v.join("clips").join(ch), &clip);
        for ver in ["v1_0", "v1_1"] {
            let out = d.join(format!("{ch}-{ver}"));
            dacon(
                d,
                &[
                    "colorize",
                    clip.to_str().unwrap(),
                    "--engine",
                    "dacon",
                    "--checkpoint",
                    v.join(format!("dacon_tiny_{ver}.pth")).to_str().unwrap(),
                    "--dino",
                    v.join("dinov2_tiny_pretrain.pth").to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "-q",
                ],
            )
            .ok();
            let got: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("target.json")).unwrap())
                    .unwrap();
            // The official rendered prediction, read back per segment.
            let seg = image::open(v.join(format!("expected/seg/{ch}/seg/target.png")))
                .unwrap()
                .to_rgb8();
            let pred = image::open(v.join(format!("expected/{ch}_{ver}_pred.png")))
                .unwrap()
                .to_rgba8();
            for (p, s) in pred.pixels().zip(seg.pixels()) {
                let label =
                    (u32::from(s.0[0]) << 16) | (u32::from(s.0[1]) << 8) | u32::from(s.0[2]);
                if label == 0 {
                    continue;
                }
                assert_eq!(
                    got[label.to_string()],
                    serde_json::json!(p.0),
                    "{ch} {ver} segment {label}"
                );
            }
            // And the rendered image is the official one, pixel for pixel.
            let ours = image::open(out.join("target.png")).unwrap().to_rgba8();
            assert!(ours == pred, "{ch} {ver}: rendered prediction differs");
        }
    }
}

#[test]
fn weights_check_names_each_file() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = dacon(
        tmp.path(),
        &[
            "weights",
            "check",
            v.join("dacon_tiny_v1_0.pth").to_str().unwrap(),
            v.join("dinov2_tiny_reg4_518.pth").to_str().unwrap(),
            v.join("hf_dinov2_tiny/model.safetensors").to_str().unwrap(),
        ],
    )
    .ok();
    let out = r.stdout();
    assert!(
        out.contains("DACoN v1.0 checkpoint: feature size 16"),
        "{out}"
    );
    assert!(out.contains("4 register tokens"), "{out}");
    assert!(out.contains("Hugging Face layout"), "{out}");
}

#[test]
fn engine_errors_say_what_to_do() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example_cut(d);
    let r = dacon(d, &["colorize", "cut", "--engine", "dacon"]).fails();
    assert!(r.stderr().contains("--checkpoint"), "{}", r.stderr());
    // A backbone given as the checkpoint: the message names the file.
    let dino = v.join("dinov2_tiny_pretrain.pth");
    let r = dacon(
        d,
        &[
            "colorize",
            "cut",
            "--checkpoint",
            dino.to_str().unwrap(),
            "--dino",
            dino.to_str().unwrap(),
        ],
    )
    .fails();
    assert!(
        r.stderr().contains("not a DACoN checkpoint"),
        "{}",
        r.stderr()
    );
    std::fs::write(d.join("junk.pth"), b"junk").unwrap();
    let r = dacon(d, &["weights", "check", "junk.pth"]).fails();
    assert!(r.stderr().contains("junk.pth"), "{}", r.stderr());
}

#[test]
fn crafted_checkpoints_are_refused_without_a_crash() {
    // Issue 14: each of these once panicked, ran out of memory or
    // overflowed the stack in `weights check` (and every command loading
    // weights); now each is a clear error naming the file and the reason.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let files = [
        (
            "stride.pth",
            dacon_testkit::pth::huge_stride(),
            "outside its storage",
        ),
        ("memo.pth", dacon_testkit::pth::memo_bomb(70), "memo"),
        (
            "deep.pth",
            dacon_testkit::pth::deep_nesting(200_000),
            "deeper than",
        ),
    ];
    for (name, bytes, why) in files {
        std::fs::write(d.join(name), bytes).unwrap();
        let r = dacon(d, &["weights", "check", name]).fails();
        let err = r.stderr();
        assert!(err.contains(name) && err.contains(why), "{name}: {err}");
        assert!(err.contains("cannot read the PyTorch checkpoint"), "{err}");
    }
}

fn example_cut(d: &std::path::Path) {
    dacon(
        d,
        &[
            "example", "--out", "cut", "--frames", "2", "--width", "128", "--height", "96",
        ],
    )
    .ok();
}

/// A minimal hub endpoint on loopback: serves `files` (path -> bytes) with
/// the headers the hub client reads (etag, x-repo-commit, Content-Range).
/// Handles at most `max` connections, then stops.
fn serve(files: Vec<(String, Vec<u8>)>, max: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(r) = lower.strip_prefix("range: bytes=") {
                    let (a, b) = r.trim().split_once('-').unwrap();
                    range = Some((a.parse::<usize>().unwrap(), b.parse::<usize>().ok()));
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let Some((_, body)) = files.iter().find(|(p, _)| *p == path) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let total = body.len();
            let (start, end) = match range {
                Some((a, b)) => (a, b.map_or(total - 1, |b| b.min(total - 1))),
                None => (0, total - 1),
            };
            let part = &body[start..=end];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{total}\r\netag: \"e{total}\"\r\nx-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(part);
        }
    });
    format!("http://{addr}")
}

#[test]
fn weights_fetch_downloads_from_the_endpoint() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let files = ["config.json", "model.safetensors"]
        .iter()
        .map(|f| {
            (
                format!("/facebook/dinov2-small/resolve/main/{f}"),
                std::fs::read(v.join("hf_dinov2_tiny").join(f)).unwrap(),
            )
        })
        .collect();
    let endpoint = serve(files, 16);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dacon"))
        .current_dir(d)
        .env("HF_ENDPOINT", &endpoint)
        .args(["weights", "fetch", "dinov2-small", "--cache", "cache"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .trim()
        .strip_prefix("dinov2-small: ")
        .unwrap()
        .to_string();
    // The file arrived intact and is usable as --dino.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(v.join("hf_dinov2_tiny/model.safetensors")).unwrap()
    );
    let r = dacon(d, &["weights", "check", &path]).ok();
    assert!(r.stdout().contains("Hugging Face layout"), "{}", r.stdout());
}

#[test]
fn weights_fetch_without_network_says_what_to_do() {
    // A port nothing listens on: the request is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dacon"))
        .current_dir(tmp.path())
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .args(["weights", "fetch", "dinov2-base", "--cache", "cache"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--dino") && err.contains("dinov2-base"),
        "{err}"
    );
}
