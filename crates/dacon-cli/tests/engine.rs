//! `dacon example`, `dacon colorize` and `dacon eval` end to end.

use std::os::unix::fs::MetadataExt;

use crate::util::*;

fn example(d: &std::path::Path, frames: &str) {
    dacon(
        d,
        &[
            "example",
            "--out",
            "cut",
            "--frames",
            frames,
            "--width",
            "320",
            "--height",
            "240",
            "--line-width",
            "2",
        ],
    )
    .ok();
}

#[test]
fn colorize_propagates_through_a_cut_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d, "5");
    let r = dacon(
        d,
        &["colorize", "cut", "--propagate", "--out", "pred", "-q"],
    )
    .ok();
    let out = r.stdout();
    assert!(out.contains("5 frames coloured"), "{out}");
    // The accuracy line is computed against the cut's own paintings.
    let acc: f64 = out
        .split("Acc-Thresh ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"));
    assert!(acc > 0.85, "{out}");
    for f in [
        "0004.png",
        "0004.json",
        "0004.confidence.json",
        "review.json",
    ] {
        assert!(d.join("pred").join(f).is_file(), "{f} missing");
    }
    // Official prediction JSON: segment id -> RGBA.
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("pred/0004.json")).unwrap()).unwrap();
    assert_eq!(t["1"].as_array().unwrap().len(), 4);
    // Resume: nothing is rewritten. Outputs are replaced by rename, so a
    // rewritten file gets a new inode (mtimes can be too coarse to tell).
    let files = ["0004.png", "0004.json", "0004.confidence.json"];
    let ids = || files.map(|f| std::fs::metadata(d.join("pred").join(f)).unwrap().ino());
    let before = ids();
    // Frame -> its flagged segments, in order.
    let review = || -> Vec<(String, Vec<u64>)> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("pred/review.json")).unwrap())
                .unwrap();
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, rows)| {
                let ids = rows.as_array().unwrap().iter();
                (
                    k.clone(),
                    ids.map(|r| r["segment"].as_u64().unwrap()).collect(),
                )
            })
            .collect()
    };
    let review_before = review();
    assert_eq!(review_before.len(), 5, "{review_before:?}");
    // A run killed before frame 0002 was complete (its image is written
    // last): the next run colours that frame again and keeps the others.
    std::fs::remove_file(d.join("pred/0002.png")).unwrap();
    dacon(
        d,
        &["colorize", "cut", "--propagate", "--out", "pred", "-q"],
    )
    .ok();
    assert_eq!(before, ids());
    // The review list still covers every frame, resumed ones included.
    assert_eq!(review(), review_before);
}

#[test]
fn colorize_without_references_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d, "2");
    std::fs::remove_dir_all(d.join("cut/ref")).unwrap();
    let r = dacon(d, &["colorize", "cut"]).fails();
    assert!(r.stderr().contains("ref/line"), "{}", r.stderr());
}

#[test]
fn eval_scores_the_classic_engine_and_prediction_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d, "4");
    let r = dacon(
        d,
        &[
            "eval",
            "--data",
            "cut",
            "--protocol",
            "consecutive",
            "--json",
            "e.json",
            "--save-pred",
            "preds",
            "-q",
        ],
    )
    .ok();
    assert!(r.stdout().contains("overall"), "{}", r.stdout());
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("e.json")).unwrap()).unwrap();
    assert_eq!(j["overall"]["frames"], 3);
    for k in ["acc", "acc_thresh", "pix_acc", "pix_fg_acc", "pix_bg_miou"] {
        let v = j["per_character"]["cut"][k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    // The saved predictions scored as a prediction folder give the same
    // numbers as the engine run.
    dacon(
        d,
        &[
            "eval",
            "--data",
            "cut",
            "--protocol",
            "consecutive",
            "--predictions",
            "preds",
            "--json",
            "p.json",
            "-q",
        ],
    )
    .ok();
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("p.json")).unwrap()).unwrap();
    assert_eq!(p["overall"], j["overall"]);
    // A missing folder is an error; an empty one scores 0 and says so.
    let r = dacon(d, &["eval", "--data", "cut", "--predictions", "nowhere"]).fails();
    assert!(r.stderr().contains("nowhere"), "{}", r.stderr());
    std::fs::create_dir(d.join("empty")).unwrap();
    let r = dacon(
        d,
        &[
            "eval",
            "--data",
            "cut",
            "--predictions",
            "empty",
            "--json",
            "z.json",
        ],
    )
    .ok();
    assert!(r.stderr().contains("no prediction"), "{}", r.stderr());
    let z: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("z.json")).unwrap()).unwrap();
    assert_eq!(z["overall"]["acc"], 0.0);
}

#[test]
fn eval_of_ground_truth_is_perfect() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d, "3");
    // Lay out the ground-truth tables as a prediction folder.
    std::fs::create_dir_all(d.join("gtpred/cut")).unwrap();
    for f in ["0000", "0001", "0002"] {
        std::fs::copy(
            d.join(format!("cut/seg/{f}.json")),
            d.join(format!("gtpred/cut/{f}.json")),
        )
        .unwrap();
    }
    dacon(
        d,
        &[
            "eval",
            "--data",
            "cut",
            "--predictions",
            "gtpred",
            "--json",
            "g.json",
            "-q",
        ],
    )
    .ok();
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("g.json")).unwrap()).unwrap();
    for k in ["acc", "acc_thresh", "pix_acc", "pix_fg_acc", "pix_bg_miou"] {
        assert_eq!(g["overall"][k], 1.0, "{k}");
    }
}

#[test]
fn eval_names_the_first_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d, "3");
    std::fs::remove_file(d.join("cut/seg/0001.json")).unwrap();
    let r = dacon(d, &["eval", "--data", "cut"]).fails();
    assert!(r.stderr().contains("seg/0001.json"), "{}", r.stderr());
}

#[test]
fn example_presets_draw_their_own_cuts_and_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let small = ["--frames", "4", "--width", "256", "--height", "192"];
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["example", "--out", out];
        args.extend(small);
        args.extend(extra);
        dacon(d, &args).ok();
    };
    run("plain", &[]);
    run("basic", &["--preset", "basic"]);
    run("zoom", &["--preset", "zoom"]);
    // The default is the basic preset, file for file.
    for f in ["line/0003.png", "gt/0003.png", "seg/0003.json"] {
        assert_eq!(
            std::fs::read(d.join("plain").join(f)).unwrap(),
            std::fs::read(d.join("basic").join(f)).unwrap(),
            "{f}"
        );
    }
    // The zoom preset grows the canvas from frame to frame.
    let size = |f: &str| image::image_dimensions(d.join("zoom/line").join(f)).unwrap();
    let (first, last) = (size("0000.png"), size("0003.png"));
    assert!(
        last.0 > first.0 && last.1 > first.1,
        "{first:?} -> {last:?}"
    );
    // The interfaces the checks call work on frames of different sizes.
    for protocol in [
        &[
            "--protocol",
            "consecutive",
            "--clip-interval",
            "max",
            "--refs-window",
            "3",
        ][..],
        &["--protocol", "keyframe", "--ref-shot", "max"][..],
    ] {
        let mut args = vec![
            "eval", "--data", "zoom", "--engine", "classic", "--json", "z.json", "-q",
        ];
        args.extend(protocol);
        dacon(d, &args).ok();
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("z.json")).unwrap()).unwrap();
        let thr = j["overall"]["acc_thresh"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&thr), "{protocol:?}: Acc-Thresh {thr}");
    }
    let r = dacon(d, &["example", "--out", "x", "--preset", "nope"]).fails();
    assert!(r.stderr().contains("limbs"), "{}", r.stderr());
}
