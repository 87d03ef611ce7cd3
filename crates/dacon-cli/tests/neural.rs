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

fn example_cut(d: &std::path::Path) {
    dacon(
        d,
        &[
            "example", "--out", "cut", "--frames", "2", "--width", "128", "--height", "96",
        ],
    )
    .ok();
}
