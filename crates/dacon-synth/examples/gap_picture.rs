//! The README's before/after picture of gap closing: one of our drawn
//! frames with short pieces of its outlines erased, coloured by the classic
//! engine from the clean first frame without closing (left: colours flood
//! through the gaps) and with `--close-gaps 8` (right), closings in magenta
//! on the line art in the middle.
//!
//! Run: `cargo run --release -p dacon-synth --example gap_picture -- docs/gaps-before-after.png`

use dacon_core::classic::ClassicEngine;
use dacon_core::gaps::overlay;
use dacon_core::{
    render, ColorTable, Engine, Frame, LineArt, LineOptions, Reference, RenderOptions, Segmentation,
};
use dacon_synth::leak::{cut_gaps, LeakSpec};
use dacon_synth::{draw_cut, CutSpec};
use image::RgbaImage;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or("gaps-before-after.png".into());
    let frames = draw_cut(&CutSpec {
        width: 360,
        height: 300,
        frames: 4,
        seed: 7,
        line_width: 2.0,
        ..CutSpec::default()
    });
    let engine = ClassicEngine::default();
    let ref_art = LineArt::from_rgba(frames[0].line.clone(), true);
    let ref_frame = Frame::from_line_art(ref_art, &LineOptions::default())?;
    let ref_colors = ColorTable::from_image(&ref_frame.seg, &frames[0].gt)?;
    let ref_features = engine.features(&ref_frame)?;
    let refs = [Reference {
        features: &ref_features,
        colors: &ref_colors,
    }];

    let target = &frames[3];
    let orig = Segmentation::from_line_art(&LineArt::from_rgba(target.line.clone(), true))?;
    let table = ColorTable::from_image(&orig, &target.gt)?;
    let spec = LeakSpec {
        per_megapixel: 60.0,
        seed: 5,
        ..LeakSpec::default()
    };
    let (leaky, _) = cut_gaps(&target.line, true, &orig, &table, &spec);
    let leaky = LineArt::from_rgba(leaky, true);
    let mut panels = Vec::new();
    let mut closings = Vec::new();
    for close in [None, Some(8)] {
        let opts = LineOptions {
            threshold: None,
            close_gaps: close,
        };
        let frame = Frame::from_line_art(leaky.clone(), &opts)?;
        let p = engine.predict(&refs, &engine.features(&frame)?)?;
        let mut img = render(&frame.seg, &p.colors, None, RenderOptions::default())?;
        for px in img.pixels_mut() {
            // Transparent background shown white.
            if px.0[3] == 0 {
                px.0 = [255, 255, 255, 255];
            }
        }
        panels.push(img);
        closings = frame.closings;
    }
    panels.insert(1, overlay(&leaky, &closings));
    let (w, h) = (leaky.width(), leaky.height());
    let gap = 6;
    let mut sheet = RgbaImage::from_pixel(3 * w + 2 * gap, h, image::Rgba([255, 255, 255, 255]));
    for (k, p) in panels.iter().enumerate() {
        image::imageops::overlay(&mut sheet, p, i64::from(k as u32 * (w + gap)), 0);
    }
    sheet.save(&out)?;
    println!("{out}: {} closings", closings.len());
    Ok(())
}
