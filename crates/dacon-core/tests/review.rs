//! The review loop without a browser: a cut coloured with `propagate`,
//! corrected, approved and coloured again from a frame, then exported.

use std::collections::BTreeMap;
use std::path::Path;

use dacon_core::classic::ClassicEngine;
use dacon_core::colorize::{
    colorize_clip, frame_outputs, read_refs, ColorizeOptions, Export, RefName,
};
use dacon_core::dataset::{open_clips, Clip, Need};
use dacon_core::review::{export, export_paths, final_colors, Review, Status};
use dacon_core::{ColorTable, Engine, Frame, LineOptions, Prediction};
use dacon_synth::{write_cut, CutSpec};

fn cut(dir: &Path) -> Clip {
    let spec = CutSpec {
        width: 384,
        height: 288,
        frames: 4,
        line_width: 2.0,
        ..CutSpec::default()
    };
    write_cut(dir, &spec).unwrap();
    open_clips(dir, Need::Inference).unwrap().remove(0)
}

fn run<E: Engine>(engine: &E, clip: &Clip, out: &Path, opts: &ColorizeOptions) {
    let report = colorize_clip(engine, clip, out, opts, &|_, _| {}).unwrap();
    assert_eq!(report.failed(), 0);
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Every colour of the table mapped to a colour no drawing uses.
fn recoloured(t: &ColorTable) -> ColorTable {
    ColorTable::from_colors(
        t.entries()
            .iter()
            .map(|c| c.map_or([0, 0, 0, 0], |c| [c[0] ^ 1, c[1] ^ 1, c[2] ^ 3, 255])),
    )
}

#[test]
fn corrections_are_kept_passed_on_and_approved_frames_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let clip = cut(&dir.path().join("cut"));
    let out = dir.path().join("out");
    let engine = ClassicEngine::default();
    let mut opts = ColorizeOptions {
        propagate: true,
        ..ColorizeOptions::default()
    };
    run(&engine, &clip, &out, &opts);
    let names: Vec<&str> = clip.frames.iter().map(|f| f.name.as_str()).collect();
    let (f0, f1, f3) = (names[0], names[1], names[3]);
    assert_eq!(
        read_refs(&out, f1).unwrap().unwrap(),
        [
            RefName::Sheet(clip.refs[0].name.clone()),
            RefName::Frame(f0.into())
        ]
    );

    // The colourist repaints every segment of the first frame with colours
    // no drawing uses, and approves the last frame as it is.
    let cdir = out.join("corrections");
    let mut review = Review::open(&cdir, names.iter().copied()).unwrap();
    let [json0, _, _] = frame_outputs(&out, f0);
    let prediction0 = ColorTable::open(&json0).unwrap();
    let fixed0 = recoloured(&prediction0);
    let changes: BTreeMap<u32, Option<[u8; 4]>> = (1..=fixed0.len() as u32)
        .map(|id| (id, fixed0.get(id)))
        .collect();
    review
        .fix(f0, Some(0), &changes, fixed0.len() as u32)
        .unwrap();
    review.set_approved(f3, Some(0), true).unwrap();
    let before0 = read(&json0);
    let [json3, conf3, png3] = frame_outputs(&out, f3);
    let before3 = [read(&json3), read(&conf3), read(&png3)];

    // Re-colour from the first frame on.
    opts.corrections = Some(cdir.clone());
    opts.redo_after = Some(f0.into());
    run(&engine, &clip, &out, &opts);

    // The prediction of the corrected frame is never overwritten.
    assert_eq!(read(&json0), before0);
    // The approved frame did not change at all.
    assert_eq!([read(&json3), read(&conf3), read(&png3)], before3);
    // Every segment of frame 1 that took its colour from frame 0 has the
    // corrected colour of its source segment.
    let seg1 = Frame::open(&clip.frames[1].line, &LineOptions::default())
        .unwrap()
        .seg;
    let [json1, conf1, _] = frame_outputs(&out, f1);
    let p1 = Prediction::read(&json1, &conf1, seg1.count()).unwrap();
    let from_frame0: Vec<_> = p1
        .confidence
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.source.filter(|s| s.reference == 1).map(|s| (i, s)))
        .collect();
    assert!(
        !from_frame0.is_empty(),
        "no segment of frame 1 came from frame 0"
    );
    for (i, s) in from_frame0 {
        assert_eq!(
            p1.colors.get(i as u32 + 1),
            fixed0.get(s.segment),
            "segment {}",
            i + 1
        );
    }

    // Export: the reviewed colours, both layers, the separate layers and
    // OpenRaster file asked for, and the status of each frame.
    let extra = Export {
        layers: true,
        ora: true,
        gap_overlay: false,
    };
    let entries = export(&clip, &out, &review, &LineOptions::default(), &extra, None).unwrap();
    for name in [format!("{f0}.fills.png"), format!("{f0}.ora")] {
        let rel = format!("export/{name}");
        assert!(entries[0].files.contains(&rel), "{rel} not listed");
        assert!(out.join(&rel).is_file(), "{rel} not written");
    }
    let ora = std::fs::read(out.join(format!("export/{f0}.ora"))).unwrap();
    assert_eq!(&ora[..2], b"PK");
    let fills = image::open(out.join(format!("export/{f0}.fills.png")))
        .unwrap()
        .into_rgba8();
    let statuses: Vec<Status> = entries.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            Status::FixesMade,
            Status::NotReviewed,
            Status::NotReviewed,
            Status::Approved
        ]
    );
    let [png, fill, table] = export_paths(&out, f0);
    assert_eq!(ColorTable::open(&table).unwrap(), fixed0);
    assert_eq!(
        final_colors(&out, f0, &review).unwrap(),
        ColorTable::open(&table).unwrap()
    );
    let (png, fill) = (
        image::open(png).unwrap().into_rgba8(),
        image::open(fill).unwrap().into_rgba8(),
    );
    let seg0 = Frame::open(&clip.frames[0].line, &LineOptions::default())
        .unwrap()
        .seg;
    for (i, &l) in seg0.labels().iter().enumerate() {
        let (x, y) = (i as u32 % seg0.width(), i as u32 / seg0.width());
        let (p, f) = (png.get_pixel(x, y).0, fill.get_pixel(x, y).0);
        if l == 0 {
            assert_eq!((p, f[3]), ([0, 0, 0, 255], 0));
        } else {
            assert_eq!(p, fixed0.get(l).unwrap());
            assert_eq!(f, p);
            assert_eq!(fills.get_pixel(x, y).0, p);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("export/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["frames"][3]["status"], "approved");
    assert_eq!(manifest["frames"][0]["corrected"], fixed0.len());
}

#[test]
fn export_of_a_frame_not_coloured_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let clip = cut(&dir.path().join("cut"));
    let out = dir.path().join("out");
    let review = Review::open(&out.join("corrections"), ["0000"]).unwrap();
    let none = Export::default();
    let e = export(&clip, &out, &review, &LineOptions::default(), &none, None).unwrap_err();
    assert!(e.to_string().contains("not coloured yet"), "{e}");
    let e = export(
        &clip,
        &out,
        &review,
        &LineOptions::default(),
        &none,
        Some(&["nope".to_string()]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}
