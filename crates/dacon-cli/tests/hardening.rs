//! Careless paths, killed jobs and absurd options: each case once made
//! dacon overwrite an input, lose work, hide a failure or hang.

use image::{Rgba, RgbaImage};

use crate::util::*;

fn cut(d: &std::path::Path, frames: &str) {
    dacon(
        d,
        &[
            "example",
            "--out",
            "cut",
            "--frames",
            frames,
            "--width",
            "256",
            "--height",
            "192",
            "--line-width",
            "2",
        ],
    )
    .ok();
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn colorize_refuses_to_write_into_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cut(d, "2");
    let before = snapshot(&d.join("cut"));
    for out in [
        "cut/gt",
        "cut/line",
        "cut/ref/gt",
        "cut/ref/line",
        "cut/gt/new",
    ] {
        let r = dacon(d, &["colorize", "cut", "--out", out, "-q"]).fails();
        assert_eq!(r.code(), 2);
        assert!(r.stderr().contains("input folder"), "{out}: {}", r.stderr());
    }
    assert!(snapshot(&d.join("cut")) == before, "an input changed");
}

#[test]
fn segment_refuses_an_output_folder_that_is_another_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("a/x.png"));
    save(&line, &d.join("b/y.png"));
    let before = snapshot(d);
    let r = dacon(d, &["segment", "a", "b", "--out", "b"]).fails();
    assert!(r.stderr().contains("input folder"), "{}", r.stderr());
    let r = dacon(d, &["segment", "a", "--out", "a/seg"]).fails();
    assert!(r.stderr().contains("input folder"), "{}", r.stderr());
    assert!(snapshot(d) == before, "an input changed");
}

#[test]
fn eval_reports_never_land_on_the_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cut(d, "3");
    let before = snapshot(&d.join("cut"));
    for flag in ["--json", "--markdown"] {
        let r = dacon(
            d,
            &[
                "eval",
                "--data",
                "cut",
                "--protocol",
                "consecutive",
                flag,
                "cut/seg/0001.json",
            ],
        )
        .fails();
        assert!(r.stderr().contains("input folder"), "{}", r.stderr());
    }
    assert!(snapshot(&d.join("cut")) == before, "the dataset changed");
}

#[test]
fn frames_with_the_same_name_are_refused_not_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("a/0000.png"));
    save(&line, &d.join("b/0000.png"));
    let r = dacon(d, &["segment", "a", "b", "--out", "seg"]).fails();
    assert!(r.stderr().contains("same name"), "{}", r.stderr());
    assert!(files_in(&d.join("seg")).is_empty());
    // Two files of one frame in a clip: 0001.png and 0001.tif.
    cut(d, "2");
    save(&line, &d.join("cut/line/0001.tif"));
    let r = dacon(d, &["colorize", "cut", "-q"]).fails();
    assert!(
        r.stderr().contains("another frame is named"),
        "{}",
        r.stderr()
    );
}

#[test]
fn temporary_files_of_killed_runs_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line/a.png"));
    std::fs::create_dir_all(d.join("seg")).unwrap();
    // What a run killed while writing leaves behind (no process has this id).
    std::fs::write(d.join("seg/.a.stats.json.99999999.tmp"), vec![0; 4096]).unwrap();
    dacon(d, &["segment", "line", "--out", "seg"]).ok();
    assert_eq!(files_in(&d.join("seg")), ["a.png", "a.stats.json"]);
}

#[test]
fn a_failed_frame_says_which_and_why_even_when_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cut(d, "3");
    std::fs::write(d.join("cut/line/0001.png"), b"not a png").unwrap();
    for extra in [&[][..], &["-q"][..]] {
        let mut args = vec!["colorize", "cut", "--force"];
        args.extend_from_slice(extra);
        let r = dacon(d, &args).fails();
        let err = r.stderr();
        assert!(err.contains("0001.png: cannot decode image"), "{err}");
        assert!(err.contains("1 of 3 frames failed"), "{err}");
    }
}

#[test]
fn too_many_segments_names_the_file_and_says_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A checkerboard of 1-pixel lines: every other pixel is its own
    // segment, 17.1M of them, past the 16.7M a label image holds.
    let side = 5850;
    let img = RgbaImage::from_fn(side, side, |x, y| {
        Rgba(if (x + y) % 2 == 0 {
            [0, 0, 0, 255]
        } else {
            [255, 255, 255, 0]
        })
    });
    save(&img, &d.join("speckle.png"));
    let r = dacon(d, &["segment", "speckle.png", "--out", "seg"]).fails();
    let err = r.stderr();
    assert!(err.contains("speckle.png"), "{err}");
    assert!(err.contains("segments exceed"), "{err}");
    assert_eq!(err.matches("segments exceed").count(), 1, "{err}");
    assert!(files_in(&d.join("seg")).is_empty());
}

#[test]
fn absurd_numbers_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for args in [
        &["example", "--out", "x", "--motion", "NaN"][..],
        &["example", "--out", "x", "--motion", "inf"][..],
        &["example", "--out", "x", "--motion", "1e308"][..],
        &["example", "--out", "x", "--line-width=-1"][..],
        &["segment", "x.png", "--out", "s", "--jobs", "100000"][..],
        &["segment", "x.png", "--out", "s", "--jobs", "0"][..],
        &[
            "train", "--data", "t", "--init", "i", "--dino", "d", "--lr", "NaN",
        ][..],
        &[
            "train", "--data", "t", "--init", "i", "--dino", "d", "--lr=-1",
        ][..],
    ] {
        let r = dacon(d, args).fails();
        assert_eq!(r.code(), 2, "{args:?}");
        assert!(
            r.stderr().contains("invalid value"),
            "{args:?}: {}",
            r.stderr()
        );
    }
    assert!(!d.join("x").exists(), "example wrote frames");
}

#[test]
fn shards_cover_every_cut_and_frame_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (name, seed) in [("c1", "1"), ("c2", "2"), ("c3", "3")] {
        dacon(
            d,
            &[
                "example",
                "--out",
                &format!("cuts/{name}"),
                "--frames",
                "2",
                "--width",
                "192",
                "--height",
                "144",
                "--line-width",
                "2",
                "--seed",
                seed,
            ],
        )
        .ok();
    }
    // Cuts: two workers of a job array.
    for i in ["0/2", "1/2"] {
        dacon(
            d,
            &["colorize", "cuts", "--out", "pred", "--shard", i, "-q"],
        )
        .ok();
    }
    let mut assigned = Vec::new();
    for i in 0..2 {
        let m: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join(format!("pred/manifest-{i}-of-2.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(m["complete"], true);
        for item in m["items"].as_array().unwrap() {
            assert_eq!(item["status"], "done");
            assert_eq!(item["frames"], 2);
        }
        assigned.extend(
            m["assigned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    assigned.sort();
    assert_eq!(assigned, ["c1", "c2", "c3"]);
    for c in ["c1", "c2", "c3"] {
        assert!(d.join(format!("pred/{c}/0001.png")).is_file(), "{c}");
    }
    // A rerun of a worker is idempotent: nothing is coloured again.
    let before = snapshot(&d.join("pred/c1"));
    let shard_of_c1 = if d.join("pred/c1").is_dir() {
        "0/2"
    } else {
        "1/2"
    };
    dacon(
        d,
        &[
            "colorize",
            "cuts",
            "--out",
            "pred",
            "--shard",
            shard_of_c1,
            "-q",
        ],
    )
    .ok();
    assert!(snapshot(&d.join("pred/c1")) == before);

    // Frames: three workers segment five frames.
    let (line, _) = boxes();
    for i in 0..5 {
        save(&line, &d.join(format!("line/{i}.png")));
    }
    for i in 0..3 {
        dacon(
            d,
            &[
                "segment",
                "line",
                "--out",
                "seg",
                "--shard",
                &format!("{i}/3"),
                "-q",
            ],
        )
        .ok();
    }
    let mut names = files_in(&d.join("seg"));
    names.retain(|n| n.ends_with(".stats.json"));
    assert_eq!(names.len(), 5, "{names:?}");

    // Evaluation: the merged shard reports equal the whole.
    let eval = |extra: &[&str]| {
        let mut a = vec!["eval", "--data", "cuts", "--protocol", "consecutive", "-q"];
        a.extend_from_slice(extra);
        dacon(d, &a).ok()
    };
    eval(&["--json", "all.json"]);
    eval(&["--shard", "0/2", "--json", "s0.json"]);
    eval(&["--shard", "1/2", "--json", "s1.json"]);
    dacon(
        d,
        &[
            "eval",
            "--merge",
            "s0.json",
            "s1.json",
            "--json",
            "merged.json",
        ],
    )
    .ok();
    let overall = |f: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(f)).unwrap()).unwrap();
        v["overall"].clone()
    };
    // Equal up to the last digits: the per-frame figures went through JSON,
    // whose parser is not correctly rounded in the last bit.
    let (merged, all) = (overall("merged.json"), overall("all.json"));
    for (k, v) in all.as_object().unwrap() {
        let (a, b) = (v.as_f64().unwrap(), merged[k].as_f64().unwrap());
        assert!((a - b).abs() < 1e-12, "{k}: {a} vs {b}");
    }
    // A report merged twice scores frames twice: refused.
    let r = dacon(d, &["eval", "--merge", "s0.json", "s0.json"]).fails();
    assert!(r.stderr().contains("scored twice"), "{}", r.stderr());
}

#[test]
fn bench_checkerboard_colours_every_speck_of_itself() {
    let tmp = tempfile::tempdir().unwrap();
    // 64 x 64 with 1-px lines on the even diagonals: every white pixel is
    // its own 4-connected segment, 2048 of them.
    let out = dacon(
        tmp.path(),
        &[
            "bench",
            "--checkerboard",
            "--size",
            "64",
            "--repeat",
            "1",
            "--jobs",
            "1",
        ],
    )
    .ok()
    .stdout();
    assert!(out.contains("2048 segments"), "{out}");
    assert!(out.contains("self-match  2048/2048 segments"), "{out}");
    // A checkerboard has no cells to choose.
    let r = dacon(tmp.path(), &["bench", "--checkerboard", "--cells", "5"]).fails();
    assert!(r.stderr().contains("--cells"), "{}", r.stderr());
}

#[test]
fn bench_colours_a_frame_from_the_references_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    cut(d, "4");
    let out = dacon(
        d,
        &[
            "bench",
            "--line",
            "cut/line/0003.png",
            "--ref",
            "cut/line/0000.png",
            "--ref",
            "cut/line/0001.png",
            "--ref",
            "cut/line/0002.png",
            "--repeat",
            "1",
        ],
    )
    .ok()
    .stdout();
    assert!(out.contains("3 reference(s)"), "{out}");
    assert!(out.contains("whole frame"), "{out}");
    // Other frames are no self-match to count.
    assert!(!out.contains("self-match"), "{out}");
    // A reference that is not there is named.
    let r = dacon(
        d,
        &[
            "bench",
            "--line",
            "cut/line/0003.png",
            "--ref",
            "cut/line/nope.png",
        ],
    )
    .fails();
    assert!(r.stderr().contains("nope.png"), "{}", r.stderr());
}

#[test]
fn a_hostile_legacy_checkpoint_is_refused_with_each_reason_once() {
    // A pre-1.6 `torch.save` file (a bare pickle, read by burn's reader):
    // 200,000 nested lists. Refused without a crash, and burn's message,
    // which repeats its cause, is printed once.
    let tmp = tempfile::tempdir().unwrap();
    let n = 200_000;
    let mut pickle = vec![0x80, 0x02];
    pickle.extend(std::iter::repeat_n(b'(', n));
    pickle.push(b']');
    pickle.extend(std::iter::repeat_n(b'l', n));
    pickle.push(b'.');
    std::fs::write(tmp.path().join("deep.pth"), pickle).unwrap();
    let r = dacon(tmp.path(), &["weights", "check", "deep.pth"]).fails();
    let err = r.stderr();
    assert!(err.contains("deep.pth"), "{err}");
    assert_eq!(err.matches("nesting exceeds").count(), 1, "{err}");
}
