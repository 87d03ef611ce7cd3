//! Closing small gaps in line art, so that one missing piece of line does not
//! flood a region into its neighbour.
//!
//! Real drawings are not always closed, and one gap merges two segments
//! (often a part of the character with the background) so that every colour
//! behind it is wrong. Paint programs offer a "close gap" distance for this
//! (Toon Boom, Krita, Tahoma2D, OpenToonz's tape tool); this module is ours.
//!
//! How: the black lines are thinned to a one-pixel skeleton (Zhang-Suen),
//! short skeleton branches (thinning spurs and the forks thinning leaves at
//! square line ends) are pruned, and every remaining free end of a stroke
//! gets a direction from the last pixels of its skeleton. Then
//!
//! 1. *end to end*: pairs of ends that face each other across at most
//!    `max_gap` pixels of paper are joined, closest pairs first;
//! 2. *end to line*: every other end casts rays along its direction (within
//!    30 degrees) and is joined to the first line it meets within `max_gap`
//!    pixels.
//!
//! A closing never crosses a colour-trace line (the ray stops there) and is
//! never drawn over one. Closings are one-pixel, 8-connected paths: enough
//! to separate 4-connected regions, the official segment rule. They are not
//! ink: [`crate::Segmentation`] gives their pixels the label of a
//! neighbouring segment after segmenting, so they separate segments but are
//! painted like the fills in every output.

use serde::Serialize;

use crate::lineart::PixelKind;

/// The widest gap `close_gaps` accepts: past this, closings join lines that
/// were never meant to meet.
pub const MAX_CLOSE_GAP: u32 = 64;

/// How a closing was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosingKind {
    /// Two free line ends facing each other.
    EndToEnd,
    /// A free line end and the line it points at.
    EndToLine,
}

/// One closing line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Closing {
    /// Where it starts: a pixel on the skeleton of the free end's stroke.
    pub from: [u32; 2],
    /// Where it ends: a line pixel (or the other end's skeleton).
    pub to: [u32; 2],
    /// The length of paper it bridges, in pixels.
    pub gap: f32,
    /// The width of the stroke at the free end, in pixels (the closing
    /// itself is drawn one pixel wide).
    pub width: f32,
    /// End to end or end to line.
    pub kind: ClosingKind,
}

impl Closing {
    /// The pixels of the closing path (8-connected, both ends included).
    pub fn path(&self) -> Vec<[u32; 2]> {
        let [x0, y0] = [i64::from(self.from[0]), i64::from(self.from[1])];
        let [x1, y1] = [i64::from(self.to[0]), i64::from(self.to[1])];
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let mut out = Vec::with_capacity((dx - dy) as usize + 1);
        loop {
            out.push([x as u32, y as u32]);
            if x == x1 && y == y1 {
                return out;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Skeleton branches shorter than this (pixels) are pruned before looking
/// for ends: thinning leaves such spurs on bumps of a line and forks at
/// square line ends.
const PRUNE: usize = 6;
/// How far back along the skeleton an end's direction is measured.
const DIRECTION_SPAN: usize = 8;
/// Half-angle of the cone of rays an end casts, and the rays in it.
const RAY_ANGLES_DEG: [f32; 7] = [0.0, -10.0, 10.0, -20.0, 20.0, -30.0, 30.0];

/// A free stroke end on the skeleton.
#[derive(Debug, Clone, Copy)]
struct End {
    x: f32,
    y: f32,
    /// Unit direction out of the stroke.
    dx: f32,
    dy: f32,
    width: f32,
}

/// Finds the closings of gaps up to `max_gap` pixels wide in line art whose
/// pixels are classified as `kinds` (row-major, `width` x `height`).
///
/// # Panics
/// If `kinds.len() != width * height`.
pub fn find_closings(kinds: &[PixelKind], width: u32, height: u32, max_gap: u32) -> Vec<Closing> {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(kinds.len(), w * h, "kinds must hold width * height values");
    if max_gap == 0 || w < 3 || h < 3 {
        return Vec::new();
    }
    let grid = Grid::new(kinds, w, h);
    let (mut skel, mut list) = grid.thin();
    prune(&grid, &mut skel, &list, w + 2);
    list.retain(|&i| skel[i] == 1);
    let ends = find_ends(&grid, &skel, &list);
    let max_gap = max_gap as f32;
    let mut used = vec![false; ends.len()];
    let mut out = join_ends(&grid, &ends, max_gap, &mut used);
    for (i, e) in ends.iter().enumerate() {
        if !used[i] {
            if let Some(c) = cast(&grid, e, max_gap) {
                out.push(c);
            }
        }
    }
    out
}

/// The pixels closings are drawn on: the paper pixels of their paths
/// (row-major indices, sorted, distinct). Line and colour-trace pixels are
/// never included.
pub fn closing_pixels(closings: &[Closing], kinds: &[PixelKind], width: u32) -> Vec<usize> {
    let w = width as usize;
    let mut px: Vec<usize> = closings
        .iter()
        .flat_map(|c| c.path())
        .map(|[x, y]| y as usize * w + x as usize)
        .filter(|&i| kinds.get(i) == Some(&PixelKind::Fill))
        .collect();
    px.sort_unstable();
    px.dedup();
    px
}

/// The line art flattened on white with every closing drawn over it in
/// magenta, three pixels wide so it can be seen, for review.
pub fn overlay(art: &crate::LineArt, closings: &[Closing]) -> image::RgbaImage {
    let (w, h) = (art.width(), art.height());
    let mut img = image::RgbaImage::from_pixel(w, h, image::Rgba([255, 255, 255, 255]));
    for (d, s) in img.pixels_mut().zip(art.rgba().pixels()) {
        d.0 = crate::export::over(crate::export::as_ink(art, s.0), d.0);
    }
    for [x, y] in closings.iter().flat_map(Closing::path) {
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                img.put_pixel(nx, ny, image::Rgba([255, 0, 200, 255]));
            }
        }
    }
    img
}

/// What a pixel of the padded working grid is.
const PAPER: u8 = 0;
const INK: u8 = 1;
const TRACE: u8 = 2;

/// The line art with a one-pixel paper border, so neighbours need no bounds
/// checks.
struct Grid {
    w: usize,
    h: usize,
    /// `(w + 2) * (h + 2)` cells.
    cells: Vec<u8>,
}

impl Grid {
    fn new(kinds: &[PixelKind], w: usize, h: usize) -> Grid {
        let pw = w + 2;
        let mut cells = vec![PAPER; pw * (h + 2)];
        for y in 0..h {
            let row = &kinds[y * w..(y + 1) * w];
            let dst = &mut cells[(y + 1) * pw + 1..(y + 1) * pw + 1 + w];
            for (d, k) in dst.iter_mut().zip(row) {
                *d = match k {
                    PixelKind::Fill => PAPER,
                    PixelKind::Line => INK,
                    PixelKind::Trace(_) => TRACE,
                };
            }
        }
        Grid { w, h, cells }
    }

    /// The cell at image coordinates, `None` outside the image.
    #[inline]
    fn at(&self, x: i64, y: i64) -> Option<u8> {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 {
            return None;
        }
        Some(self.cells[(y as usize + 1) * (self.w + 2) + x as usize + 1])
    }

    /// Zhang-Suen thinning of the ink: a padded grid of 0/1, and the
    /// indices of its skeleton pixels.
    fn thin(&self) -> (Vec<u8>, Vec<usize>) {
        let pw = self.w + 2;
        let mut s: Vec<u8> = self.cells.iter().map(|&c| u8::from(c == INK)).collect();
        let mut live: Vec<usize> = s
            .iter()
            .enumerate()
            .filter_map(|(i, &v)| (v == 1).then_some(i))
            .collect();
        let mut del = Vec::new();
        loop {
            let mut changed = false;
            for pass in 0..2 {
                del.clear();
                for &i in &live {
                    let n = ring(&s, i, pw);
                    let b: u8 = n.iter().sum();
                    if !(2..=6).contains(&b) || transitions(&n) != 1 {
                        continue;
                    }
                    // n = [N, NE, E, SE, S, SW, W, NW]
                    let ok = if pass == 0 {
                        n[0] * n[2] * n[4] == 0 && n[2] * n[4] * n[6] == 0
                    } else {
                        n[0] * n[2] * n[6] == 0 && n[0] * n[4] * n[6] == 0
                    };
                    if ok {
                        del.push(i);
                    }
                }
                for &i in &del {
                    s[i] = 0;
                }
                changed |= !del.is_empty();
                live.retain(|&i| s[i] == 1);
            }
            if !changed {
                return (s, live);
            }
        }
    }
}

/// The eight neighbours of padded index `i`, clockwise from north.
#[inline]
fn ring(s: &[u8], i: usize, pw: usize) -> [u8; 8] {
    [
        s[i - pw],
        s[i - pw + 1],
        s[i + 1],
        s[i + pw + 1],
        s[i + pw],
        s[i + pw - 1],
        s[i - 1],
        s[i - pw - 1],
    ]
}

/// Padded offsets of the ring, in the same order as [`ring`].
#[inline]
fn ring_offsets(pw: usize) -> [isize; 8] {
    let p = pw as isize;
    [-p, -p + 1, 1, p + 1, p, p - 1, -1, -p - 1]
}

/// 0 -> 1 transitions around the ring: 1 for an end or a line, >= 3 at a
/// junction.
#[inline]
fn transitions(n: &[u8; 8]) -> u8 {
    (0..8)
        .map(|k| u8::from(n[k] == 0 && n[(k + 1) % 8] == 1))
        .sum()
}

#[inline]
fn is_end(n: &[u8; 8]) -> bool {
    let b: u8 = n.iter().sum();
    (1..=2).contains(&b) && transitions(n) == 1
}

/// Walks the skeleton from end `start` for at most `max` pixels, stopping
/// before a junction. Returns the pixels walked (start first) and whether it
/// stopped at a junction.
fn walk(s: &[u8], start: usize, pw: usize, max: usize) -> (Vec<usize>, bool) {
    let off = ring_offsets(pw);
    let mut path = vec![start];
    let mut cur = start;
    while path.len() < max {
        let next: Vec<usize> = off
            .iter()
            .map(|&o| cur.wrapping_add_signed(o))
            .filter(|&j| s[j] == 1 && !path.contains(&j))
            .collect();
        // Staircase corners: a pixel next to both this one and the last
        // one is part of the same step, not a branch.
        let prev = path.len().checked_sub(2).map(|k| path[k]);
        let fresh: Vec<usize> = next
            .iter()
            .copied()
            .filter(|&j| prev.is_none_or(|p| !adjacent(j, p, pw)))
            .collect();
        let candidates = if fresh.is_empty() { next } else { fresh };
        match candidates.len() {
            0 => return (path, false),
            1 => {}
            2 if adjacent(candidates[0], candidates[1], pw) => {}
            _ => return (path, true),
        }
        if path.len() > 1 && transitions(&ring(s, cur, pw)) >= 3 {
            return (path, true);
        }
        // Prefer the 4-neighbour of a staircase pair.
        cur = *candidates
            .iter()
            .find(|&&j| {
                let d = j.abs_diff(cur);
                d == 1 || d == pw
            })
            .unwrap_or(&candidates[0]);
        if transitions(&ring(s, cur, pw)) >= 3 {
            return (path, true);
        }
        path.push(cur);
    }
    (path, false)
}

#[inline]
fn adjacent(a: usize, b: usize, pw: usize) -> bool {
    let (ax, ay, bx, by) = (a % pw, a / pw, b % pw, b / pw);
    ax.abs_diff(bx) <= 1 && ay.abs_diff(by) <= 1 && a != b
}

/// Removes skeleton branches that end in a junction and are no longer
/// than half the stroke is wide (plus one): the spurs thinning leaves on
/// bumps and the forks at square ends of thick strokes, never a real stub
/// of a thin line. At most [`PRUNE`] pixels.
fn prune(g: &Grid, s: &mut [u8], skeleton: &[usize], pw: usize) {
    let ends: Vec<usize> = skeleton
        .iter()
        .copied()
        .filter(|&i| is_end(&ring(s, i, pw)))
        .collect();
    let mut cut = Vec::new();
    for e in ends {
        let (path, at_junction) = walk(s, e, pw, PRUNE);
        if !at_junction || path.len() >= PRUNE {
            continue;
        }
        let xy = |j: usize| ((j % pw) as f32 - 1.0, (j / pw) as f32 - 1.0);
        let (ex, ey) = xy(e);
        let (jx, jy) = xy(*path.last().expect("not empty"));
        let (dx, dy) = (ex - jx, ey - jy);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let width = stroke_width(g, jx, jy, -dy / len, dx / len);
        if (path.len() as f32) <= width / 2.0 + 1.0 {
            cut.extend(path);
        }
    }
    for i in cut {
        s[i] = 0;
    }
}

/// The free ends of the pruned skeleton with their directions.
fn find_ends(g: &Grid, s: &[u8], skeleton: &[usize]) -> Vec<End> {
    let pw = g.w + 2;
    let mut ends = Vec::new();
    for &i in skeleton {
        if !is_end(&ring(s, i, pw)) {
            continue;
        }
        let (path, _) = walk(s, i, pw, DIRECTION_SPAN + 1);
        if path.len() < 4 {
            // A dot or a stub: no direction to trust.
            continue;
        }
        let xy = |j: usize| ((j % pw) as f32 - 1.0, (j / pw) as f32 - 1.0);
        let (ex, ey) = xy(i);
        let (bx, by) = xy(*path.last().expect("not empty"));
        let (dx, dy) = (ex - bx, ey - by);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1.0 {
            continue;
        }
        let (dx, dy) = (dx / len, dy / len);
        let (mx, my) = xy(path[path.len() / 2]);
        ends.push(End {
            x: ex,
            y: ey,
            dx,
            dy,
            width: stroke_width(g, mx, my, -dy, dx),
        });
    }
    ends
}

/// The ink run through `(x, y)` along `(nx, ny)`, in pixels.
fn stroke_width(g: &Grid, x: f32, y: f32, nx: f32, ny: f32) -> f32 {
    let mut total = 0.0;
    for sign in [1.0, -1.0] {
        let mut t = 0.5f32;
        while t < 32.0 {
            let (px, py) = (x + sign * t * nx, y + sign * t * ny);
            if g.at(px.round() as i64, py.round() as i64) != Some(INK) {
                break;
            }
            t += 0.5;
        }
        total += t - 0.5;
    }
    (total + 1.0).max(1.0)
}

/// What a straight path from `a` to `b` crosses: the paper length, or
/// `None` when it crosses a colour trace or leaves the image.
fn paper_along(g: &Grid, a: (f32, f32), b: (f32, f32)) -> Option<f32> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    let steps = (len * 2.0).ceil().max(1.0) as usize;
    let mut paper = 0usize;
    for k in 0..=steps {
        let t = k as f32 / steps as f32;
        let (x, y) = (a.0 + t * dx, a.1 + t * dy);
        match g.at(x.round() as i64, y.round() as i64)? {
            TRACE => return None,
            PAPER => paper += 1,
            _ => {}
        }
    }
    Some(paper as f32 * len / (steps + 1) as f32)
}

/// Joins pairs of ends that face each other, closest first.
fn join_ends(g: &Grid, ends: &[End], max_gap: f32, used: &mut [bool]) -> Vec<Closing> {
    // Ends bucketed on a grid as coarse as the longest possible join.
    let reach = max_gap + 2.0 * ends.iter().map(|e| e.width).fold(1.0, f32::max).min(32.0);
    let cell = reach.max(8.0);
    let cols = (g.w as f32 / cell) as usize + 1;
    let rows = (g.h as f32 / cell) as usize + 1;
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); cols * rows];
    let bucket = |e: &End| ((e.x / cell) as usize, (e.y / cell) as usize);
    for (i, e) in ends.iter().enumerate() {
        let (bx, by) = bucket(e);
        buckets[by * cols + bx].push(i);
    }
    let cos_max = 45f32.to_radians().cos();
    let mut pairs: Vec<(f32, usize, usize, f32)> = Vec::new();
    for (i, a) in ends.iter().enumerate() {
        let (bx, by) = bucket(a);
        for ny in by.saturating_sub(1)..=(by + 1).min(rows - 1) {
            for nx in bx.saturating_sub(1)..=(bx + 1).min(cols - 1) {
                for &j in &buckets[ny * cols + nx] {
                    if j <= i {
                        continue;
                    }
                    let b = &ends[j];
                    let (ux, uy) = (b.x - a.x, b.y - a.y);
                    let d = (ux * ux + uy * uy).sqrt();
                    if d < 1.0 || d > max_gap + (a.width + b.width) * 0.5 + 2.0 {
                        continue;
                    }
                    let (ux, uy) = (ux / d, uy / d);
                    let facing_a = a.dx * ux + a.dy * uy;
                    let facing_b = -(b.dx * ux + b.dy * uy);
                    if facing_a < cos_max || facing_b < cos_max {
                        continue;
                    }
                    let Some(paper) = paper_along(g, (a.x, a.y), (b.x, b.y)) else {
                        continue;
                    };
                    if paper == 0.0 || paper > max_gap {
                        continue;
                    }
                    // Straight-on pairs before oblique ones at equal length.
                    let cost = paper * (2.0 - 0.5 * (facing_a + facing_b));
                    pairs.push((cost, i, j, paper));
                }
            }
        }
    }
    pairs.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)).then(p.2.cmp(&q.2)));
    let mut out = Vec::new();
    for (_, i, j, paper) in pairs {
        if used[i] || used[j] {
            continue;
        }
        used[i] = true;
        used[j] = true;
        let (a, b) = (&ends[i], &ends[j]);
        out.push(Closing {
            from: [a.x as u32, a.y as u32],
            to: [b.x as u32, b.y as u32],
            gap: paper,
            width: a.width.max(b.width),
            kind: ClosingKind::EndToEnd,
        });
    }
    out
}

/// Casts the rays of one end; the nearest line hit within `max_gap` of
/// paper (oblique rays count a little longer) closes it.
fn cast(g: &Grid, e: &End, max_gap: f32) -> Option<Closing> {
    let mut best: Option<(f32, [u32; 2], f32)> = None;
    // The ray must leave the stroke it starts in through its tip.
    let inside_max = e.width + 2.0;
    for deg in RAY_ANGLES_DEG {
        let (s, c) = deg.to_radians().sin_cos();
        let (dx, dy) = (c * e.dx - s * e.dy, s * e.dx + c * e.dy);
        let mut t = 0.5f32;
        let mut left_at: Option<f32> = None;
        loop {
            let (x, y) = (e.x + t * dx, e.y + t * dy);
            let (px, py) = (x.round() as i64, y.round() as i64);
            let Some(cell) = g.at(px, py) else { break };
            if cell == TRACE {
                break;
            }
            match left_at {
                None if cell == PAPER => left_at = Some(t),
                None if t > inside_max => break,
                Some(l) if cell == INK => {
                    let paper = t - l;
                    let cost = paper * (1.0 + deg.abs() / 60.0);
                    if best.is_none_or(|b| cost < b.0) {
                        best = Some((cost, [px as u32, py as u32], paper));
                    }
                    break;
                }
                Some(l) if t - l > max_gap => break,
                _ => {}
            }
            t += 0.5;
        }
    }
    let (_, to, paper) = best?;
    let c = Closing {
        from: [e.x as u32, e.y as u32],
        to,
        gap: paper,
        width: e.width,
        kind: ClosingKind::EndToLine,
    };
    // The drawn path must not touch a colour trace either.
    let clean = c
        .path()
        .iter()
        .all(|&[x, y]| g.at(i64::from(x), i64::from(y)) != Some(TRACE));
    clean.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds from text: '.' paper, '#' line, 't' colour trace.
    fn kinds(rows: &[&str]) -> (Vec<PixelKind>, u32, u32) {
        let k = rows
            .iter()
            .flat_map(|r| r.chars())
            .map(|c| match c {
                '.' => PixelKind::Fill,
                '#' => PixelKind::Line,
                't' => PixelKind::Trace(0xff0000),
                _ => panic!("bad test char"),
            })
            .collect();
        (k, rows[0].len() as u32, rows.len() as u32)
    }

    /// A w x h canvas with a 3-px thick box outline, cut by `gap` pixels of
    /// paper in the middle of its top side.
    fn broken_box(w: usize, h: usize, gap: usize) -> Vec<String> {
        let mut rows = vec![vec!['.'; w]; h];
        for (y, row) in rows.iter_mut().enumerate() {
            for (x, c) in row.iter_mut().enumerate() {
                let inside = (4..w - 4).contains(&x) && (4..h - 4).contains(&y);
                let edge = x < 7 || x >= w - 7 || y < 7 || y >= h - 7;
                if inside && edge {
                    *c = '#';
                }
            }
        }
        let mid = w / 2 - gap / 2;
        for row in rows.iter_mut().take(7).skip(4) {
            for c in row.iter_mut().skip(mid).take(gap) {
                *c = '.';
            }
        }
        rows.into_iter().map(|r| r.into_iter().collect()).collect()
    }

    fn regions(k: &[PixelKind], w: u32, h: u32, closings: &[Closing]) -> u32 {
        let mut k = k.to_vec();
        for i in closing_pixels(closings, &k, w) {
            k[i] = PixelKind::Line;
        }
        let mut img = image::RgbaImage::new(w, h);
        for (p, kind) in img.pixels_mut().zip(&k) {
            p.0 = match kind {
                PixelKind::Fill => [255, 255, 255, 0],
                PixelKind::Line => [0, 0, 0, 255],
                PixelKind::Trace(_) => [255, 0, 0, 255],
            };
        }
        crate::Segmentation::from_line_art(&crate::LineArt::from_rgba(img, true))
            .unwrap()
            .count()
    }

    #[test]
    fn a_gap_in_a_box_is_closed_end_to_end() {
        for gap in [2, 4, 7] {
            let rows = broken_box(40, 30, gap);
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            let (k, w, h) = kinds(&rows);
            assert_eq!(regions(&k, w, h, &[]), 1, "leaks before closing");
            let c = find_closings(&k, w, h, 8);
            assert_eq!(c.len(), 1, "gap {gap}: {c:?}");
            assert_eq!(c[0].kind, ClosingKind::EndToEnd);
            assert!((c[0].gap - gap as f32).abs() <= 1.5, "{c:?}");
            assert!((2.0..=4.0).contains(&c[0].width), "{c:?}");
            assert_eq!(regions(&k, w, h, &c), 2, "gap {gap} closed");
        }
    }

    #[test]
    fn gaps_wider_than_the_limit_stay_open() {
        let rows = broken_box(40, 30, 7);
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let (k, w, h) = kinds(&rows);
        assert!(find_closings(&k, w, h, 5).is_empty());
    }

    #[test]
    fn a_line_ending_short_of_another_is_joined_to_it() {
        // A vertical wall and a 2-px stroke stopping 5 px short of it.
        let art = [
            ".................",
            "............#....",
            "............#....",
            "............#....",
            "............#....",
            "#######.....#....",
            "#######.....#....",
            "............#....",
            "............#....",
            "............#....",
        ];
        let (k, w, h) = kinds(&art);
        let c = find_closings(&k, w, h, 8);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, ClosingKind::EndToLine);
        assert_eq!(c[0].to[0], 12);
        assert!((4.0..=6.0).contains(&c[0].gap), "{c:?}");
    }

    #[test]
    fn never_closes_across_a_colour_trace() {
        let art = [
            ".................",
            "..........t.#....",
            "..........t.#....",
            "..........t.#....",
            "..........t.#....",
            "#######...t.#....",
            "#######...t.#....",
            "..........t.#....",
            "..........t.#....",
            "..........t.#....",
        ];
        let (k, w, h) = kinds(&art);
        assert!(find_closings(&k, w, h, 8).is_empty());
    }

    #[test]
    fn closed_line_art_and_empty_canvases_get_no_closing() {
        let rows = broken_box(40, 30, 0);
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let (k, w, h) = kinds(&rows);
        assert!(find_closings(&k, w, h, 16).is_empty());
        let (k, w, h) = kinds(&["......", "......", "......"]);
        assert!(find_closings(&k, w, h, 16).is_empty());
    }

    #[test]
    fn paths_are_8_connected_and_include_both_ends() {
        let c = Closing {
            from: [1, 1],
            to: [6, 3],
            gap: 0.0,
            width: 1.0,
            kind: ClosingKind::EndToLine,
        };
        let p = c.path();
        assert_eq!(p[0], [1, 1]);
        assert_eq!(*p.last().unwrap(), [6, 3]);
        for w in p.windows(2) {
            assert!(w[0][0].abs_diff(w[1][0]) <= 1 && w[0][1].abs_diff(w[1][1]) <= 1);
        }
    }
}
