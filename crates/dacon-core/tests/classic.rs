//! The weight-free engine on our own procedurally drawn cuts, scored against
//! the drawings' own paintings.

use dacon_core::classic::ClassicEngine;
use dacon_core::metrics::score_frame;
use dacon_core::{ColorTable, Engine, Frame, LineArt, Prediction, Reference, Segmentation};
use dacon_synth::{draw_cut, CutSpec, DrawnFrame};
use image::{Rgba, RgbaImage};

fn prepare(f: &DrawnFrame) -> (Frame, ColorTable) {
    let art = LineArt::from_rgba(f.line.clone(), true);
    let seg = Segmentation::from_line_art(&art).unwrap();
    let table = ColorTable::from_image(&seg, &f.gt).unwrap();
    (Frame::new(art, seg), table)
}

fn colorize(refs: &[&DrawnFrame], target: &DrawnFrame) -> (Prediction, f64, Frame, ColorTable) {
    let m = ClassicEngine::default();
    let refs: Vec<(Frame, ColorTable)> = refs.iter().map(|r| prepare(r)).collect();
    let feats: Vec<_> = refs.iter().map(|(f, _)| m.features(f).unwrap()).collect();
    let references: Vec<_> = feats
        .iter()
        .zip(&refs)
        .map(|(features, (_, colors))| Reference { features, colors })
        .collect();
    let (tf, truth) = prepare(target);
    let p = m.predict(&references, &m.features(&tf).unwrap()).unwrap();
    let (metrics, _) = score_frame(&tf.seg, &truth, &p.colors).unwrap();
    (p, metrics.acc_thresh, tf, truth)
}

fn spec(seed: u64) -> CutSpec {
    CutSpec {
        width: 384,
        height: 288,
        frames: 6,
        seed,
        line_width: 2.0,
        ..CutSpec::default()
    }
}

#[test]
fn consecutive_frames_are_coloured_correctly() {
    let mut accs = Vec::new();
    for seed in [1, 2] {
        let cut = draw_cut(&spec(seed));
        for i in 1..cut.len() {
            accs.push(colorize(&[&cut[i - 1]], &cut[i]).1);
        }
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    // Measured 0.98 at full size; the drawing has a mouth that opens and
    // blinks that no reference can colour, so 1.0 is out of reach.
    assert!(mean >= 0.9, "mean Acc-Thresh {mean:.3}: {accs:?}");
}

/// The same drawing placed on a larger canvas at an offset.
fn on_bigger_canvas(f: &DrawnFrame, dx: u32, dy: u32) -> DrawnFrame {
    let grow = |img: &RgbaImage| {
        let mut out = RgbaImage::from_pixel(
            img.width() + 90,
            img.height() + 50,
            Rgba([255, 255, 255, 0]),
        );
        image::imageops::overlay(&mut out, img, i64::from(dx), i64::from(dy));
        out
    };
    DrawnFrame {
        line: grow(&f.line),
        gt: grow(&f.gt),
    }
}

#[test]
fn canvases_of_different_sizes_are_aligned() {
    let cut = draw_cut(&spec(3));
    let moved = on_bigger_canvas(&cut[2], 60, 30);
    let (_, acc, _, _) = colorize(&[&cut[1]], &moved);
    assert!(acc >= 0.9, "Acc-Thresh {acc:.3}");
}

#[test]
fn an_unrelated_reference_does_not_spoil_a_good_one() {
    let cut = draw_cut(&spec(4));
    let other = draw_cut(&CutSpec {
        seed: 99,
        frames: 6,
        ..spec(99)
    });
    let (_, alone, _, _) = colorize(&[&cut[2]], &cut[3]);
    let (_, with_other, _, _) = colorize(&[&other[5], &cut[2]], &cut[3]);
    assert!(with_other >= alone - 0.05, "{with_other:.3} vs {alone:.3}");
}

#[test]
fn confidence_is_lower_on_mistakes() {
    // Keyframe-like: far-apart frames give enough mistakes to compare.
    let cut = draw_cut(&CutSpec {
        frames: 12,
        motion: 1.5,
        ..spec(5)
    });
    let (p, _, tf, truth) = colorize(&[&cut[0]], &cut[11]);
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for id in 1..=tf.seg.count() {
        let m = p.confidence[id as usize - 1].margin;
        if p.colors.get(id) == truth.get(id) {
            right.push(m);
        } else {
            wrong.push(m);
        }
    }
    assert!(!wrong.is_empty() && !right.is_empty());
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&wrong) < mean(&right),
        "wrong {:.3} vs right {:.3}",
        mean(&wrong),
        mean(&right)
    );
    // The review list starts with a mistake.
    let first = p.review(1)[0].0;
    assert_ne!(p.colors.get(first), truth.get(first));
}

#[test]
fn a_speckled_frame_of_tens_of_thousands_of_segments_colours_itself() {
    // A checkerboard of 1-px lines, every other pixel its own segment (like
    // a noisy scan), coloured from itself with a distinct colour per
    // segment: a matcher that compares all pairs of segments takes minutes
    // here (#14 item 15); every segment must find itself.
    let side = 200;
    let img = RgbaImage::from_fn(side, side, |x, y| {
        Rgba(if (x + y) % 2 == 0 {
            [0, 0, 0, 255]
        } else {
            [255, 255, 255, 0]
        })
    });
    let art = LineArt::from_rgba(img, true);
    let seg = Segmentation::from_line_art(&art).unwrap();
    let frame = Frame::new(art, seg);
    let n = frame.seg.count();
    assert_eq!(n, side * side / 2);
    let colors = ColorTable::from_colors((1..=n).map(|i| {
        let b = i.to_be_bytes();
        [b[1], b[2], b[3], 255]
    }));
    let m = ClassicEngine::default();
    let features = m.features(&frame).unwrap();
    let refs = [Reference {
        features: &features,
        colors: &colors,
    }];
    let p = m.predict(&refs, &features).unwrap();
    let wrong = (1..=n)
        .filter(|&i| p.colors.get(i) != colors.get(i))
        .count();
    assert_eq!(wrong, 0, "{wrong} of {n} specks miscoloured");
}
