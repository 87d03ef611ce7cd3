//! Gap closing, soft lines and layered export through the binary.

use std::path::Path;

use dacon_synth::leak::{write_leaky_clip, LeakSpec};

use crate::util::*;

/// `boxes()` with a 4-px gap cut into the vertical line between the two
/// halves, so the top-left region floods into the right one.
fn leaky_boxes(d: &Path) {
    let (mut line, gt) = boxes();
    for y in 10..14 {
        line.put_pixel(20, y, image::Rgba(CLEAR));
    }
    save(&line, &d.join("line/f1.png"));
    save(&gt, &d.join("gt/f1.png"));
}

fn segments(d: &Path, stats: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(stats)).unwrap()).unwrap();
    v["segments"].as_u64().unwrap()
}

#[test]
fn segment_closes_a_gap_and_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    leaky_boxes(d);
    dacon(d, &["segment", "line", "--out", "open", "-q"]).ok();
    assert_eq!(segments(d, "open/f1.stats.json"), 3, "the gap leaks");
    assert_eq!(files_in(&d.join("open")), ["f1.png", "f1.stats.json"]);

    dacon(
        d,
        &[
            "segment",
            "line",
            "--out",
            "closed",
            "--close-gaps",
            "8",
            "--gap-overlay",
            "-q",
        ],
    )
    .ok();
    assert_eq!(segments(d, "closed/f1.stats.json"), 4, "closed again");
    assert_eq!(
        files_in(&d.join("closed")),
        ["f1.gaps.json", "f1.gaps.png", "f1.png", "f1.stats.json"]
    );
    let gaps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("closed/f1.gaps.json")).unwrap())
            .unwrap();
    let list = gaps["closings"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{gaps}");
    assert_eq!(list[0]["from"][0], 20);
    assert_eq!(list[0]["to"][0], 20);
    assert!((3.0..=5.0).contains(&list[0]["gap"].as_f64().unwrap()));
    // The closing is invisible: no pixel of the gap is a line (label 0).
    let labels = image::open(d.join("closed/f1.png")).unwrap().to_rgb8();
    for y in 10..14 {
        assert_ne!(labels.get_pixel(20, y).0, [0, 0, 0], "pixel 20,{y}");
    }
    let overlay = image::open(d.join("closed/f1.gaps.png"))
        .unwrap()
        .to_rgba8();
    assert_eq!(overlay.get_pixel(20, 12).0, [255, 0, 200, 255]);
}

#[test]
fn bad_gap_widths_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    leaky_boxes(d);
    for (value, needle) in [
        ("-3", "negative"),
        ("65", "more than the 64"),
        ("x", "gap width"),
    ] {
        let r = dacon(d, &["segment", "line", "--out", "o", "--close-gaps", value]).fails();
        assert_eq!(r.code(), 2);
        assert!(r.stderr().contains(needle), "{value}: {}", r.stderr());
    }
    let r = dacon(d, &["segment", "line", "--out", "o", "--gap-overlay"]).fails();
    assert!(r.stderr().contains("--close-gaps"), "{}", r.stderr());
    assert!(!d.join("o").exists() || files_in(&d.join("o")).is_empty());
    let help = dacon(d, &["colorize", "--help"]).ok().stdout();
    assert!(
        help.contains("--close-gaps <PX>") && help.contains("4-16"),
        "{help}"
    );
    assert!(help.contains("--line-threshold <T|auto>"));
}

#[test]
fn colorize_and_eval_close_the_gaps_of_a_leaky_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dacon(
        d,
        &[
            "example", "--out", "cut", "--frames", "4", "--width", "512", "--height", "384",
        ],
    )
    .ok();
    let spec = LeakSpec {
        per_megapixel: 40.0,
        ..LeakSpec::default()
    };
    let cuts = write_leaky_clip(&d.join("cut"), &d.join("leaky"), &spec).unwrap();
    assert!(cuts.iter().all(|c| c.len() == 8));
    let acc = |out: &str| -> f64 {
        let line = out.lines().find(|l| l.contains("Acc-Thresh")).unwrap();
        line.split("Acc-Thresh ").nth(1).unwrap()[..6]
            .parse()
            .unwrap()
    };
    let open = dacon(
        d,
        &["colorize", "leaky", "--propagate", "--out", "open", "-q"],
    )
    .ok();
    let closed = dacon(
        d,
        &[
            "colorize",
            "leaky",
            "--propagate",
            "--out",
            "closed",
            "-q",
            "--close-gaps",
            "8",
            "--layers",
            "--ora",
        ],
    )
    .ok();
    let (open, closed) = (acc(&open.stdout()), acc(&closed.stdout()));
    assert!(
        closed > open + 0.1 && closed > 0.85,
        "open {open}, closed {closed}"
    );
    let files = files_in(&d.join("closed"));
    for want in [
        "0001.gaps.json",
        "0001.ora",
        "0001.lines.png",
        "0001.traces.png",
        "0001.fills.png",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
    }
    let ora = std::fs::read(d.join("closed/0001.ora")).unwrap();
    assert_eq!(&ora[..4], b"PK\x03\x04");
    assert_eq!(&ora[30..54], b"mimetypeimage/openraster");

    // eval: the same targets re-segmented, scored on the original labels.
    let overall = |out: &str| -> f64 {
        let row = out.lines().find(|l| l.starts_with("overall")).unwrap();
        row.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let args = [
        "eval",
        "--data",
        "leaky",
        "--protocol",
        "consecutive",
        "--clip-interval",
        "max",
        "-q",
    ];
    let given = overall(&dacon(d, &args).ok().stdout());
    let open = overall(
        &dacon(d, &[&args[..], &["--close-gaps", "0"]].concat())
            .ok()
            .stdout(),
    );
    let closed = overall(
        &dacon(d, &[&args[..], &["--close-gaps", "8"]].concat())
            .ok()
            .stdout(),
    );
    assert!(given > 0.9, "the dataset's labels are clean: {given}");
    assert!(closed > open + 0.1, "open {open}, closed {closed}");
}
