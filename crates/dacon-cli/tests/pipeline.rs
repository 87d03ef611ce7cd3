use crate::util::*;

#[test]
fn segment_colors_render_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, gt) = boxes();
    save(&line, &d.join("line/f1.png"));
    save(&gt, &d.join("gt/f1.png"));

    dacon(d, &["segment", "line", "--out", "seg", "-q"]).ok();
    assert_eq!(files_in(&d.join("seg")), ["f1.png", "f1.stats.json"]);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("seg/f1.stats.json")).unwrap())
            .unwrap();
    // Outside, top-left, right, bottom-left; the red trace ties between the
    // two left regions and joins the smaller label (top-left).
    assert_eq!(stats["segments"], 4);

    dacon(d, &["colors", "gt/f1.png", "seg/f1.png", "--out", "t.json"]).ok();
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("t.json")).unwrap()).unwrap();
    assert_eq!(table["1"], serde_json::json!(CLEAR));

    dacon(
        d,
        &[
            "render",
            "line/f1.png",
            "seg/f1.png",
            "t.json",
            "--out",
            "out",
        ],
    )
    .ok();
    let out = image::open(d.join("out/f1.png")).unwrap().to_rgba8();
    // Every non-line pixel gets the most frequent colour of its segment, and
    // black lines stay black: on this drawing that reproduces the painting
    // except the trace row, which takes its region's colour.
    for (x, y, p) in out.enumerate_pixels() {
        let want = gt.get_pixel(x, y).0;
        if y == 15 && (6..20).contains(&x) {
            continue;
        }
        assert_eq!(p.0, want, "pixel {x},{y}");
    }

    dacon(
        d,
        &[
            "render",
            "line/f1.png",
            "seg/f1.png",
            "t.json",
            "--out",
            "fill",
            "--layer",
            "fill",
        ],
    )
    .ok();
    let fill = image::open(d.join("fill/f1.png")).unwrap().to_rgba8();
    assert_eq!(fill.get_pixel(5, 5).0, [0, 0, 0, 0]);
}

#[test]
fn second_run_skips_and_force_redoes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line/a.png"));
    save(&line, &d.join("line/b.png"));
    let r = dacon(d, &["segment", "line", "--out", "seg"]).ok();
    assert!(r.stderr().contains("2 done, 0 skipped"), "{}", r.stderr());
    // Remove one frame's statistics: that frame is incomplete and redone.
    std::fs::remove_file(d.join("seg/b.stats.json")).unwrap();
    let r = dacon(d, &["segment", "line", "--out", "seg"]).ok();
    assert!(r.stderr().contains("1 done, 1 skipped"), "{}", r.stderr());
    let r = dacon(d, &["segment", "line", "--out", "seg", "--force"]).ok();
    assert!(r.stderr().contains("2 done, 0 skipped"), "{}", r.stderr());
}

#[test]
fn inputs_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, _) = boxes();
    save(&line, &d.join("line/a.png"));
    let before = std::fs::read(d.join("line/a.png")).unwrap();
    let r = dacon(d, &["segment", "line/a.png", "--out", "line", "--force"]).fails();
    assert!(r.stderr().contains("overwrite an input"), "{}", r.stderr());
    assert_eq!(std::fs::read(d.join("line/a.png")).unwrap(), before);
}

#[test]
fn line_threshold_binarises_antialiased_art() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // RGB (no alpha) black-on-white with a grey anti-aliased edge: by the
    // official rule the grey is a colour trace; binarised it is a line.
    let mut img = image::RgbImage::from_pixel(9, 3, image::Rgb([255, 255, 255]));
    for y in 0..3 {
        img.put_pixel(4, y, image::Rgb([0, 0, 0]));
        img.put_pixel(5, y, image::Rgb([120, 120, 120]));
        img.put_pixel(6, y, image::Rgb([250, 250, 250]));
    }
    img.save(d.join("aa.png")).unwrap();
    dacon(d, &["segment", "aa.png", "--out", "plain", "-q"]).ok();
    dacon(
        d,
        &[
            "segment",
            "aa.png",
            "--out",
            "bin",
            "-q",
            "--line-threshold",
            "64",
        ],
    )
    .ok();
    let count = |p: &str| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(p)).unwrap()).unwrap();
        v["segments"].as_u64().unwrap()
    };
    // Official: the grey column is a trace with no labelled neighbour (a new
    // segment); the near-white one then ties and joins the smaller label.
    // Binarised: grey becomes a black line, near-white background.
    assert_eq!(count("plain/aa.stats.json"), 3);
    assert_eq!(count("bin/aa.stats.json"), 2);
    let plain = image::open(d.join("plain/aa.png")).unwrap().to_rgb8();
    let bin = image::open(d.join("bin/aa.png")).unwrap().to_rgb8();
    assert_ne!(plain.get_pixel(5, 0), &image::Rgb([0, 0, 0]));
    assert_eq!(bin.get_pixel(5, 0), &image::Rgb([0, 0, 0]));
}

#[test]
fn help_explains_each_command() {
    let tmp = tempfile::tempdir().unwrap();
    let r = dacon(tmp.path(), &["--help"]).ok();
    for c in ["segment", "colors", "render"] {
        assert!(r.stdout().contains(c));
    }
    let r = dacon(tmp.path(), &["segment", "--help"]).ok();
    assert!(r.stdout().contains("Example"));
}
