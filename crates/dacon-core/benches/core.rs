//! Benchmarks of the model-free pipeline: segmentation, colour table and
//! segment statistics of one frame, one stage per group.
//!
//! Frames: a synthetic 1920x1920 frame (Voronoi cells with black lines,
//! ~300 segments, colour-trace lines) always; the real 1600x1600
//! `laughing_girl/0000` of `../shared/data/warpbench-dev` when present.
//! Run: `cargo bench -p dacon-core --bench core`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use dacon_core::classic::ClassicEngine;
use dacon_core::imageio::read_picture;
use dacon_core::{ColorTable, Engine, Frame, LineArt, Reference, Segmentation};
use image::RgbaImage;

fn voronoi_frame(size: u32, n: usize, shift: (i64, i64)) -> (LineArt, RgbaImage) {
    let f = dacon_synth::voronoi_frame(size, n, shift);
    (LineArt::from_rgba(f.line, true), f.gt)
}

fn bench_frame(c: &mut Criterion, name: &str, art: &LineArt, gt: &RgbaImage) {
    let seg = Segmentation::from_line_art(art).unwrap();
    eprintln!(
        "{name}: {}x{}, {} segments",
        seg.width(),
        seg.height(),
        seg.count()
    );
    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g.bench_function("segment", |b| {
        b.iter(|| Segmentation::from_line_art(black_box(art)).unwrap())
    });
    g.bench_function("color_table", |b| {
        b.iter(|| ColorTable::from_image(black_box(&seg), black_box(gt)).unwrap())
    });
    g.bench_function("stats", |b| b.iter(|| black_box(&seg).stats()));
    g.bench_function("all_three", |b| {
        b.iter(|| {
            let s = Segmentation::from_line_art(black_box(art)).unwrap();
            let t = ColorTable::from_image(&s, black_box(gt)).unwrap();
            (s.stats(), t)
        })
    });
    g.finish();
}

/// The classic engine colouring `target` from one reference: features of
/// the target, then matching (reference features are computed once per cut).
fn bench_classic(
    c: &mut Criterion,
    name: &str,
    reference: (&LineArt, &RgbaImage),
    target: &LineArt,
) {
    let m = ClassicEngine::default();
    let seg = Segmentation::from_line_art(reference.0).unwrap();
    let colors = ColorTable::from_image(&seg, reference.1).unwrap();
    let rf = m.features(&Frame::new(reference.0.clone(), seg)).unwrap();
    let target = Frame::new(target.clone(), Segmentation::from_line_art(target).unwrap());
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.bench_function("classic_features", |b| {
        b.iter(|| m.features(black_box(&target)).unwrap())
    });
    let tf = m.features(&target).unwrap();
    let refs = [Reference {
        features: &rf,
        colors: &colors,
    }];
    g.bench_function("classic_predict", |b| {
        b.iter(|| m.predict(black_box(&refs), black_box(&tf)).unwrap())
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (art, gt) = voronoi_frame(1920, 300, (0, 0));
    bench_frame(c, "synthetic_1920", &art, &gt);
    let (moved, _) = voronoi_frame(1920, 300, (6, -4));
    bench_classic(c, "synthetic_1920", (&art, &gt), &moved);
    if let Some(real) = dacon_testkit::shared("data/warpbench-dev/laughing_girl") {
        let art = LineArt::open(&real.join("line/0000.png")).unwrap();
        let gt = read_picture(&real.join("gt/0000.png")).unwrap().rgba;
        bench_frame(c, "laughing_girl_1600", &art, &gt);
        let next = LineArt::open(&real.join("line/0001.png")).unwrap();
        bench_classic(c, "laughing_girl_1600", (&art, &gt), &next);
    }
}

criterion_group!(core, benches);
criterion_main!(core);
