//! Gap closing, soft-line preparation and layered export on our own drawn
//! frames, checked against the drawings' own segments and paintings, and
//! the `.ora` read back with an independent ZIP reader.

use std::io::Read;

use dacon_core::colorize::{gaps_json, Export};
use dacon_core::export::{Layers, ORA_LAYERS};
use dacon_core::frame::Threshold;
use dacon_core::lineart::PixelKind;
use dacon_core::{ColorTable, Frame, LineArt, LineOptions, Segmentation};
use dacon_synth::leak::{cut_gaps, soften, LeakSpec, SoftSpec};
use dacon_synth::{draw_cut, CutSpec, DrawnFrame};
use image::RgbaImage;

fn drawn(width: u32, height: u32, line_width: f64) -> DrawnFrame {
    draw_cut(&CutSpec {
        width,
        height,
        frames: 1,
        line_width,
        ..CutSpec::default()
    })
    .remove(0)
}

fn closing(px: u32) -> LineOptions {
    LineOptions {
        threshold: None,
        close_gaps: Some(px),
    }
}

/// Original segments (> 10 px) that some segment of `seg` covers for more
/// than half, being itself mostly that segment.
fn recovered(orig: &Segmentation, seg: &Segmentation) -> (usize, usize) {
    let map = orig.majority_of(seg).unwrap();
    let (counts, theirs) = (orig.pixel_counts(), seg.pixel_counts());
    let filled = seg.filled_labels();
    let mut overlap = vec![0u64; counts.len()];
    for (&a, &b) in orig.labels().iter().zip(&filled) {
        if a != 0 && b == map[a as usize] {
            overlap[a as usize] += 1;
        }
    }
    let big: Vec<usize> = (1..counts.len()).filter(|&i| counts[i] > 10).collect();
    let found = big
        .iter()
        .filter(|&&i| {
            let b = map[i] as usize;
            b != 0 && overlap[i] * 2 > counts[i] && overlap[i] * 2 > theirs[b]
        })
        .count();
    (found, big.len())
}

#[test]
fn closing_restores_the_segments_of_a_leaky_drawing() {
    let f = drawn(768, 576, 3.0);
    let art = LineArt::from_rgba(f.line.clone(), true);
    let orig = Segmentation::from_line_art(&art).unwrap();
    let table = ColorTable::from_image(&orig, &f.gt).unwrap();
    let spec = LeakSpec {
        per_megapixel: 25.0,
        ..LeakSpec::default()
    };
    let (leaky, cuts) = cut_gaps(&f.line, true, &orig, &table, &spec);
    assert_eq!(cuts.len(), 11);
    let leaky = LineArt::from_rgba(leaky, true);
    let open = Frame::from_line_art(leaky.clone(), &LineOptions::default()).unwrap();
    let closed = Frame::from_line_art(leaky, &closing(8)).unwrap();
    let (lost, total) = recovered(&orig, &open.seg);
    let (found, _) = recovered(&orig, &closed.seg);
    assert!(lost + 8 <= total, "the gaps merge segments: {lost}/{total}");
    assert!(found + 1 >= total, "closing recovers them: {found}/{total}");
    assert!(closed.closings.len() >= cuts.len());
    // Closings are invisible: no closing pixel is a line, and every pixel
    // that was paper in the leaky art is still a segment pixel.
    assert!(closed
        .seg
        .labels()
        .iter()
        .zip(closed.art.kinds())
        .all(|(&l, k)| k != PixelKind::Fill || l != 0));
}

#[test]
fn closing_leaves_clean_art_and_colour_traces_alone() {
    let f = drawn(768, 576, 3.0);
    let art = LineArt::from_rgba(f.line.clone(), true);
    let plain = Frame::from_line_art(art.clone(), &LineOptions::default()).unwrap();
    let closed = Frame::from_line_art(art.clone(), &closing(8)).unwrap();
    let (found, total) = recovered(&plain.seg, &closed.seg);
    assert!(found + 2 >= total, "{found}/{total}");
    // No closing pixel lies on a colour trace, and no trace pixel is a line.
    let kinds = art.kinds();
    for c in &closed.closings {
        for [x, y] in c.path() {
            let k = kinds[(y * art.width() + x) as usize];
            assert!(!matches!(k, PixelKind::Trace(_)), "{c:?} crosses a trace");
        }
    }
    for (k, &l) in kinds.iter().zip(closed.seg.labels()) {
        if matches!(k, PixelKind::Trace(_)) {
            assert_ne!(l, 0, "a trace pixel turned into a line");
        }
    }
    // Off means the official segmentation, exactly.
    let off = Frame::from_line_art(art, &closing(0)).unwrap();
    assert_eq!(off.seg, plain.seg);
    assert!(off.closings.is_empty());
}

#[test]
fn gaps_json_lists_every_closing() {
    let f = drawn(384, 288, 3.0);
    let orig = Segmentation::from_line_art(&LineArt::from_rgba(f.line.clone(), true)).unwrap();
    let table = ColorTable::from_image(&orig, &f.gt).unwrap();
    let (leaky, _) = cut_gaps(&f.line, true, &orig, &table, &LeakSpec::default());
    let frame = Frame::from_line_art(LineArt::from_rgba(leaky, true), &closing(8)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&gaps_json(&frame, 8)).unwrap();
    assert_eq!(v["close_gaps"], 8);
    assert_eq!(v["width"], 384);
    let list = v["closings"].as_array().unwrap();
    assert_eq!(list.len(), frame.closings.len());
    for (j, c) in list.iter().zip(&frame.closings) {
        assert_eq!(j["from"][0], c.from[0]);
        assert_eq!(j["to"][1], c.to[1]);
        assert!(j["gap"].as_f64().unwrap() > 0.0);
        assert!(j["width"].as_f64().unwrap() >= 1.0);
    }
}

#[test]
fn auto_threshold_recovers_the_segments_of_soft_lines() {
    let (w, h, lw) = (512, 384, 2.0);
    let binary = drawn(w, h, lw);
    let orig = Segmentation::from_line_art(&LineArt::from_rgba(binary.line, true)).unwrap();
    let big = drawn(w * 4, h * 4, lw * 4.0);
    for on_paper in [false, true] {
        let (soft, alpha) = soften(
            &big.line,
            &SoftSpec {
                blur: 0.7,
                noise: 6.0,
                on_paper,
                seed: 3,
            },
        );
        let art = LineArt::from_rgba(soft, alpha);
        let auto = LineOptions {
            threshold: Some(Threshold::Auto),
            close_gaps: None,
        };
        let frame = Frame::from_line_art(art.clone(), &auto).unwrap();
        let (found, total) = recovered(&orig, &frame.seg);
        let fixed = LineOptions {
            threshold: Some(Threshold::Ink(128)),
            close_gaps: None,
        };
        let (found_fixed, _) = recovered(
            &orig,
            &Frame::from_line_art(art.clone(), &fixed).unwrap().seg,
        );
        assert!(
            found * 10 >= total * 9 && found > found_fixed,
            "paper {on_paper}: auto finds {found}/{total}, threshold 128 {found_fixed}"
        );
        // The drawn soft lines are kept for outputs.
        assert_eq!(frame.drawn().rgba(), art.rgba());
    }
}

#[test]
fn ora_holds_lines_traces_and_fills_in_order() {
    // Soft ink on paper: the layers must unmix it from the white.
    let f = drawn(256, 192, 3.0);
    let art = LineArt::from_rgba(f.line.clone(), true);
    let frame = Frame::from_line_art(art, &LineOptions::default()).unwrap();
    let table = ColorTable::from_image(&frame.seg, &f.gt).unwrap();
    let layers = Layers::new(&frame.seg, &table, frame.drawn(), &frame.art).unwrap();
    let bytes = layers.to_ora().unwrap();

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let first = zip.by_index(0).unwrap();
    assert_eq!(first.name(), "mimetype");
    assert_eq!(first.compression(), zip::CompressionMethod::Stored);
    drop(first);
    assert_eq!(&bytes[30..38], b"mimetype");
    assert_eq!(&bytes[38..54], b"image/openraster");
    let mut read = |name: &str| {
        let mut v = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut v).unwrap();
        v
    };
    let stack = String::from_utf8(read("stack.xml")).unwrap();
    assert!(stack.contains("<image version=\"0.0.6\" w=\"256\" h=\"192\""));
    let order: Vec<usize> = ORA_LAYERS
        .iter()
        .map(|(_, src)| stack.find(&format!("src=\"{src}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "lines on top");
    let png = |v: Vec<u8>| -> RgbaImage { image::load_from_memory(&v).unwrap().to_rgba8() };
    let lines = png(read("data/lines.png"));
    let traces = png(read("data/traces.png"));
    let fills = png(read("data/fills.png"));
    let merged = png(read("mergedimage.png"));
    let thumb = png(read("Thumbnails/thumbnail.png"));
    assert_eq!(thumb.dimensions(), (256, 192));
    let filled = frame.seg.filled_labels();
    for (i, p) in f.line.pixels().enumerate() {
        let (x, y) = (i as u32 % 256, i as u32 / 256);
        let (l, t, fl) = (
            lines.get_pixel(x, y).0,
            traces.get_pixel(x, y).0,
            fills.get_pixel(x, y).0,
        );
        match frame.art.kind_of(p.0) {
            PixelKind::Line => {
                assert_eq!(l, [0, 0, 0, 255]);
                assert_eq!(t[3], 0);
            }
            PixelKind::Trace(_) => {
                assert_eq!(t, p.0);
                assert_eq!(l[3], 0);
            }
            PixelKind::Fill => {
                assert_eq!((l[3], t[3]), (0, 0));
                // Fills are the painting wherever it is not a line.
                assert_eq!(fl, f.gt.get_pixel(x, y).0, "fill at {x},{y}");
                assert_eq!(merged.get_pixel(x, y).0, fl);
            }
        }
        // Fills reach under every line.
        assert_eq!(fl, table.get(filled[i]).unwrap());
    }
}

#[test]
fn export_writes_each_file_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let f = drawn(256, 192, 3.0);
    let orig = Segmentation::from_line_art(&LineArt::from_rgba(f.line.clone(), true)).unwrap();
    let table = ColorTable::from_image(&orig, &f.gt).unwrap();
    let (leaky, _) = cut_gaps(&f.line, true, &orig, &table, &LeakSpec::default());
    let opts = closing(8);
    let frame = Frame::from_line_art(LineArt::from_rgba(leaky, true), &opts).unwrap();
    let colors = ColorTable::from_image(&frame.seg, &f.gt).unwrap();
    let export = Export {
        layers: true,
        ora: true,
        gap_overlay: true,
    };
    export
        .write(dir.path(), "f", &frame, &colors, &opts)
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "f.fills.png",
            "f.gaps.json",
            "f.gaps.png",
            "f.lines.png",
            "f.ora",
            "f.traces.png"
        ]
    );
}
