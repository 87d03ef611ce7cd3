//! Degraded line art for measuring robustness: leaky drawings (short pieces
//! of black line erased, as in unclosed production drawings) and soft ones
//! (anti-aliased at 4x, blurred, noisy, as a brush or a scan gives).
//!
//! Leaky clips keep the original labels and colour tables in `seg/`, so a
//! method is scored on the segments the drawing was meant to have.

use std::path::Path;

use image::{Rgba, RgbaImage};

use dacon_core::dataset::{Clip, Need};
use dacon_core::imageio::{read_picture, write_rgba_png};
use dacon_core::lineart::PixelKind;
use dacon_core::rng::Rng;
use dacon_core::{ColorTable, Error, LineArt, Result, Segmentation};

/// How gaps are cut into line art.
#[derive(Debug, Clone, Copy)]
pub struct LeakSpec {
    /// Gaps per megapixel (at least one per frame).
    pub per_megapixel: f64,
    /// Shortest gap, pixels along the line.
    pub min_gap: u32,
    /// Longest gap, pixels along the line.
    pub max_gap: u32,
    /// Share of gaps cut between regions of different colours (the rest
    /// between regions of one colour).
    pub different_colours: f64,
    /// Seed of the choices.
    pub seed: u64,
}

impl Default for LeakSpec {
    fn default() -> Self {
        LeakSpec {
            per_megapixel: 12.0,
            min_gap: 2,
            max_gap: 7,
            different_colours: 0.7,
            seed: 1,
        }
    }
}

/// One erased piece of line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The line pixel the gap is centred on.
    pub at: [u32; 2],
    /// Its length along the line, pixels.
    pub length: u32,
    /// The two segments it opens into each other.
    pub between: [u32; 2],
}

/// A place a gap can be cut: a line pixel between segments `a` and `b`,
/// the line crossing it along `(nx, ny)` (one of 8 directions).
#[derive(Debug, Clone, Copy)]
struct Site {
    x: i64,
    y: i64,
    nx: i64,
    ny: i64,
    a: u32,
    b: u32,
}

/// Cuts gaps into black lines of `line` (official pixel rule, `has_alpha`)
/// whose segments are `seg` and colours `table`. Erased pixels become paper
/// (transparent, or white without alpha); colour traces are never erased.
/// Returns the leaky line art and the cuts.
pub fn cut_gaps(
    line: &RgbaImage,
    has_alpha: bool,
    seg: &Segmentation,
    table: &ColorTable,
    spec: &LeakSpec,
) -> (RgbaImage, Vec<Cut>) {
    let art = LineArt::from_rgba(line.clone(), has_alpha);
    let kinds = art.kinds();
    let (w, h) = (line.width() as i64, line.height() as i64);
    let is_line = |x: i64, y: i64| {
        x >= 0 && y >= 0 && x < w && y < h && kinds[(y * w + x) as usize] == PixelKind::Line
    };
    let label = |x: i64, y: i64| seg.labels()[(y * w + x) as usize];
    // Sites on a coarse lattice (every 3 px) keep the list short.
    let mut different = Vec::new();
    let mut same = Vec::new();
    for y in (0..h).step_by(3) {
        for x in (0..w).step_by(3) {
            if !is_line(x, y) {
                continue;
            }
            let mut best: Option<(i64, Site)> = None;
            for (nx, ny) in [(1, 0), (0, 1), (1, 1), (1, -1)] {
                let side = |s: i64| -> Option<(i64, u32)> {
                    let mut k = 1;
                    while is_line(x + s * k * nx, y + s * k * ny) {
                        k += 1;
                        if k > 12 {
                            return None;
                        }
                    }
                    let (px, py) = (x + s * k * nx, y + s * k * ny);
                    if px < 0 || py < 0 || px >= w || py >= h {
                        return None;
                    }
                    let l = label(px, py);
                    (l != 0).then_some((k, l))
                };
                let (Some((ka, a)), Some((kb, b))) = (side(-1), side(1)) else {
                    continue;
                };
                if a == b {
                    continue;
                }
                // The crossing closest to the line's normal is the shortest.
                let run = (ka + kb) * if nx != 0 && ny != 0 { 141 } else { 100 };
                if best.is_none_or(|(r, _)| run < r) {
                    best = Some((run, Site { x, y, nx, ny, a, b }));
                }
            }
            if let Some((_, s)) = best {
                if table.get(s.a) != table.get(s.b) {
                    different.push(s);
                } else {
                    same.push(s);
                }
            }
        }
    }
    let mut rng = Rng::new(spec.seed);
    let megapixels = (w * h) as f64 / 1e6;
    let n = ((spec.per_megapixel * megapixels).round() as usize).max(1);
    let mut out = line.clone();
    let paper = if has_alpha {
        [255, 255, 255, 0]
    } else {
        [255, 255, 255, 255]
    };
    let mut cuts: Vec<Cut> = Vec::new();
    let mut tries = 0;
    while cuts.len() < n && tries < n * 50 {
        tries += 1;
        let pool =
            if (rng.unit() < spec.different_colours && !different.is_empty()) || same.is_empty() {
                &different
            } else {
                &same
            };
        if pool.is_empty() {
            break;
        }
        let s = pool[rng.below(pool.len())];
        // Gaps far enough apart that each is its own.
        if cuts.iter().any(|c| {
            (i64::from(c.at[0]) - s.x).pow(2) + (i64::from(c.at[1]) - s.y).pow(2) < 40 * 40
        }) {
            continue;
        }
        let length = spec.min_gap + rng.below((spec.max_gap - spec.min_gap + 1) as usize) as u32;
        erase(&mut out, &kinds, w, h, &s, length, paper);
        cuts.push(Cut {
            at: [s.x as u32, s.y as u32],
            length,
            between: [s.a, s.b],
        });
    }
    (out, cuts)
}

/// The direction of the black line through `(x, y)`: the principal axis of
/// the line pixels within 6 px connected to it (the crossing direction of
/// the site is only one of 4 and would cut slanted lines too long).
fn line_direction(kinds: &[PixelKind], w: i64, h: i64, x: i64, y: i64) -> Option<(f64, f64)> {
    let mut stack = vec![(x, y)];
    let mut seen = std::collections::HashSet::from([(x, y)]);
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy, mut n) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    while let Some((px, py)) = stack.pop() {
        let (dx, dy) = ((px - x) as f64, (py - y) as f64);
        sx += dx;
        sy += dy;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
        n += 1.0;
        for (ox, oy) in [
            (1, 0),
            (-1, 0),
            (0, 1),
            (0, -1),
            (1, 1),
            (1, -1),
            (-1, 1),
            (-1, -1),
        ] {
            let (qx, qy) = (px + ox, py + oy);
            if qx >= 0
                && qy >= 0
                && qx < w
                && qy < h
                && (qx - x).pow(2) + (qy - y).pow(2) <= 36
                && kinds[(qy * w + qx) as usize] == PixelKind::Line
                && seen.insert((qx, qy))
            {
                stack.push((qx, qy));
            }
        }
    }
    if n < 3.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (cxx, cyy, cxy) = (sxx / n - mx * mx, syy / n - my * my, sxy / n - mx * my);
    let angle = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
    Some((angle.cos(), angle.sin()))
}

/// Erases the black line through site `s` over `length` pixels along it:
/// every line pixel within the band, connected to the site inside it.
fn erase(
    img: &mut RgbaImage,
    kinds: &[PixelKind],
    w: i64,
    h: i64,
    s: &Site,
    length: u32,
    paper: [u8; 4],
) {
    let (tx, ty) = line_direction(kinds, w, h, s.x, s.y).unwrap_or_else(|| {
        let norm = ((s.nx * s.nx + s.ny * s.ny) as f64).sqrt();
        (-s.ny as f64 / norm, s.nx as f64 / norm)
    });
    let (nx, ny) = (ty, -tx);
    let half = f64::from(length) / 2.0;
    let inside = |x: i64, y: i64| {
        let (dx, dy) = ((x - s.x) as f64, (y - s.y) as f64);
        let along = dx * tx + dy * ty;
        along >= -half && along < half && (dx * nx + dy * ny).abs() <= 14.0
    };
    let mut stack = vec![(s.x, s.y)];
    let mut seen = std::collections::HashSet::new();
    seen.insert((s.x, s.y));
    while let Some((x, y)) = stack.pop() {
        img.put_pixel(x as u32, y as u32, Rgba(paper));
        for (dx, dy) in [
            (1, 0),
            (-1, 0),
            (0, 1),
            (0, -1),
            (1, 1),
            (1, -1),
            (-1, 1),
            (-1, -1),
        ] {
            let (px, py) = (x + dx, y + dy);
            if px >= 0
                && py >= 0
                && px < w
                && py < h
                && kinds[(py * w + px) as usize] == PixelKind::Line
                && inside(px, py)
                && seen.insert((px, py))
            {
                stack.push((px, py));
            }
        }
    }
}

/// Writes a leaky copy of the clip at `src` (benchmark layout with `seg/`)
/// to `dst`: `line/` with gaps cut, `gt/` and `seg/` (the original labels
/// and colour tables) as they were, `ref/` clean. Returns the cuts per
/// frame. Frame `k` is cut with seed `spec.seed + k`.
///
/// # Errors
/// Layout, read and write errors naming the file.
pub fn write_leaky_clip(src: &Path, dst: &Path, spec: &LeakSpec) -> Result<Vec<Vec<Cut>>> {
    let clip = Clip::open(src, Need::Evaluation)?;
    let line_dir = dst.join("line");
    std::fs::create_dir_all(&line_dir).map_err(|e| Error::io(&line_dir, e))?;
    let mut all = Vec::new();
    for (k, f) in clip.frames.iter().enumerate() {
        let pic = read_picture(&f.line)?;
        let seg_path = f.seg.as_ref().expect("checked by Need::Evaluation");
        let table_path = f.table.as_ref().expect("checked by Need::Evaluation");
        let seg = Segmentation::open(seg_path)?;
        let table = ColorTable::open(table_path)?;
        let spec = LeakSpec {
            seed: spec.seed + k as u64,
            ..*spec
        };
        let (leaky, cuts) = cut_gaps(&pic.rgba, pic.has_alpha, &seg, &table, &spec);
        write_rgba_png(&dst.join("line").join(format!("{}.png", f.name)), &leaky)?;
        copy(seg_path, &dst.join("seg").join(format!("{}.png", f.name)))?;
        copy(
            table_path,
            &dst.join("seg").join(format!("{}.json", f.name)),
        )?;
        if let Some(gt) = &f.gt {
            let ext = gt.extension().and_then(|e| e.to_str()).unwrap_or("png");
            copy(gt, &dst.join("gt").join(format!("{}.{ext}", f.name)))?;
        }
        all.push(cuts);
    }
    for r in &clip.refs {
        for (p, sub) in [
            (Some(&r.line), "line"),
            (r.gt.as_ref(), "gt"),
            (r.seg.as_ref(), "seg"),
            (r.table.as_ref(), "seg"),
        ] {
            if let Some(p) = p {
                let name = p.file_name().expect("a file");
                copy(p, &dst.join("ref").join(sub).join(name))?;
            }
        }
    }
    Ok(all)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    Ok(())
}

/// How line art is softened.
#[derive(Debug, Clone, Copy)]
pub struct SoftSpec {
    /// Gaussian blur after the 4x downsampling, sigma in pixels.
    pub blur: f64,
    /// Gaussian noise on every channel, standard deviation in levels.
    pub noise: f64,
    /// Flatten on white paper (a scan, no alpha) instead of keeping alpha.
    pub on_paper: bool,
    /// Seed of the noise.
    pub seed: u64,
}

/// Anti-aliases line art drawn at 4x (`big`, with alpha) down to 1x by a
/// 4x4 box filter (premultiplied), then blurs and adds noise: what a brush
/// or a scanner gives. Returns the image and whether it has alpha.
///
/// # Panics
/// If `big`'s size is not a multiple of 4.
pub fn soften(big: &RgbaImage, spec: &SoftSpec) -> (RgbaImage, bool) {
    assert!(
        big.width() % 4 == 0 && big.height() % 4 == 0,
        "big must be drawn at 4x"
    );
    let (w, h) = (big.width() / 4, big.height() / 4);
    // Premultiplied float planes.
    let n = (w * h) as usize;
    let mut planes = vec![[0f64; 4]; n];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f64; 4];
            for sy in 0..4 {
                for sx in 0..4 {
                    let p = big.get_pixel(x * 4 + sx, y * 4 + sy).0;
                    let a = f64::from(p[3]) / 255.0;
                    for c in 0..3 {
                        acc[c] += f64::from(p[c]) * a;
                    }
                    acc[3] += a;
                }
            }
            planes[(y * w + x) as usize] = acc.map(|v| v / 16.0);
        }
    }
    if spec.blur > 0.0 {
        planes = blur(&planes, w as usize, h as usize, spec.blur);
    }
    let mut rng = Rng::new(spec.seed);
    let mut gauss = move || {
        // Box-Muller.
        let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut out = RgbaImage::new(w, h);
    for (i, p) in out.pixels_mut().enumerate() {
        let [r, g, b, a] = planes[i];
        let px = if spec.on_paper {
            // Ink over white: c = premultiplied + (1 - a) * 255.
            let mut c = |v: f64| v + (1.0 - a) * 255.0 + spec.noise * gauss();
            [c(r), c(g), c(b), 255.0]
        } else {
            let un = |v: f64| if a > 1e-6 { v / a } else { 255.0 };
            let noisy_a = if a > 0.0 {
                a * 255.0 + spec.noise * gauss()
            } else {
                0.0
            };
            [un(r), un(g), un(b), noisy_a]
        };
        p.0 = px.map(|v| v.round().clamp(0.0, 255.0) as u8);
    }
    (out, !spec.on_paper)
}

/// The binary original of a frame drawn at 4x: each 4x4 block becomes its
/// most frequent line colour when line pixels cover at least half of it
/// (paper otherwise), and its most frequent paint. Aligned pixel for pixel
/// with [`soften`] of the same drawing.
///
/// # Panics
/// If the size is not a multiple of 4.
pub fn downsample_binary(big: &crate::DrawnFrame) -> crate::DrawnFrame {
    let (bw, bh) = big.line.dimensions();
    assert!(bw % 4 == 0 && bh % 4 == 0, "big must be drawn at 4x");
    let most = |img: &RgbaImage, x: u32, y: u32, keep: &dyn Fn([u8; 4]) -> bool| {
        let mut counts: Vec<([u8; 4], u32)> = Vec::new();
        for sy in 0..4 {
            for sx in 0..4 {
                let p = img.get_pixel(x * 4 + sx, y * 4 + sy).0;
                if !keep(p) {
                    continue;
                }
                match counts.iter_mut().find(|c| c.0 == p) {
                    Some(c) => c.1 += 1,
                    None => counts.push((p, 1)),
                }
            }
        }
        let total: u32 = counts.iter().map(|c| c.1).sum();
        let best = counts.iter().max_by_key(|c| (c.1, c.0)).map(|c| c.0);
        (best, total)
    };
    let line = RgbaImage::from_fn(bw / 4, bh / 4, |x, y| {
        match most(&big.line, x, y, &|p| p[3] > 0) {
            (Some(c), n) if n >= 8 => Rgba(c),
            _ => Rgba([255, 255, 255, 0]),
        }
    });
    let gt = RgbaImage::from_fn(bw / 4, bh / 4, |x, y| {
        Rgba(most(&big.gt, x, y, &|_| true).0.expect("16 samples"))
    });
    crate::DrawnFrame { line, gt }
}

/// Separable Gaussian blur of premultiplied planes.
fn blur(src: &[[f64; 4]], w: usize, h: usize, sigma: f64) -> Vec<[f64; 4]> {
    let r = (sigma * 3.0).ceil() as i64;
    let kernel: Vec<f64> = (-r..=r)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / sum).collect();
    let pass = |src: &[[f64; 4]], horizontal: bool| -> Vec<[f64; 4]> {
        let mut out = vec![[0f64; 4]; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f64; 4];
                for (ki, k) in kernel.iter().enumerate() {
                    let o = ki as i64 - r;
                    let (sx, sy) = if horizontal {
                        ((x as i64 + o).clamp(0, w as i64 - 1) as usize, y)
                    } else {
                        (x, (y as i64 + o).clamp(0, h as i64 - 1) as usize)
                    };
                    let p = src[sy * w + sx];
                    for c in 0..4 {
                        acc[c] += p[c] * k;
                    }
                }
                out[y * w + x] = acc;
            }
        }
        out
    };
    pass(&pass(src, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{draw_cut, CutSpec};

    fn frame() -> (RgbaImage, Segmentation, ColorTable) {
        let spec = CutSpec {
            width: 384,
            height: 288,
            frames: 1,
            ..CutSpec::default()
        };
        let f = draw_cut(&spec).remove(0);
        let seg = Segmentation::from_line_art(&LineArt::from_rgba(f.line.clone(), true)).unwrap();
        let table = ColorTable::from_image(&seg, &f.gt).unwrap();
        (f.line, seg, table)
    }

    #[test]
    fn cut_gaps_merge_segments_and_leave_traces_alone() {
        let (line, seg, table) = frame();
        let spec = LeakSpec {
            per_megapixel: 40.0,
            ..LeakSpec::default()
        };
        let (leaky, cuts) = cut_gaps(&line, true, &seg, &table, &spec);
        assert_eq!(cuts.len(), 4, "40 per megapixel on 0.11 MP");
        let after = Segmentation::from_line_art(&LineArt::from_rgba(leaky.clone(), true)).unwrap();
        assert!(after.count() < seg.count(), "the gaps leak");
        for (a, b) in line.pixels().zip(leaky.pixels()) {
            if a != b {
                assert_eq!(a.0, [0, 0, 0, 255], "only black line pixels are erased");
                assert_eq!(b.0[3], 0);
            }
        }
        for c in &cuts {
            assert!((2..=7).contains(&c.length));
        }
    }

    #[test]
    fn soften_keeps_the_drawing_and_blurs_the_edges() {
        let spec = CutSpec {
            width: 384,
            height: 288,
            frames: 1,
            line_width: 12.0,
            ..CutSpec::default()
        };
        let big = draw_cut(&spec).remove(0).line;
        let (soft, alpha) = soften(
            &big,
            &SoftSpec {
                blur: 0.6,
                noise: 0.0,
                on_paper: true,
                seed: 1,
            },
        );
        assert!(!alpha);
        assert_eq!(soft.dimensions(), (96, 72));
        let greys = soft
            .pixels()
            .filter(|p| (20..235).contains(&p.0[1]) && p.0[0] == p.0[2])
            .count();
        assert!(greys > 50, "anti-aliased edges: {greys}");
    }
}
