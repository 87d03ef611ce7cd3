//! Global alignment of two frames by chamfer matching of their line
//! drawings, and the smooth displacement field that refines it.
//!
//! Why chamfer matching: line art has no texture, but its lines are the same
//! drawing moved, rotated, scaled and bent; the mean distance from one
//! frame's line pixels to the other's nearest line pixel is smooth in the
//! transform parameters and robust to lines that appear or vanish (distances
//! are truncated), so a pattern search on a coarse distance transform finds
//! the similarity transform in a few milliseconds.

/// Line pixels of a frame at reduced resolution, with their distance map.
#[derive(Debug, Clone)]
pub(crate) struct LineMap {
    /// Full-resolution pixels per cell.
    scale: f64,
    w: usize,
    h: usize,
    /// Distance (in cells) to the nearest line cell.
    dist: Vec<f32>,
    /// Line cell centres in full-resolution coordinates (subsampled).
    pub(crate) points: Vec<[f64; 2]>,
    /// Centroid and RMS radius of the line cells (full resolution).
    pub(crate) centroid: [f64; 2],
    pub(crate) radius: f64,
}

/// Distances beyond this many cells count as a miss.
const TRUNCATE: f32 = 6.0;
/// Distance charged for a point mapped off the other frame's canvas: half
/// a miss, because its line may well be there, unseen (a figure walking in
/// or out, a canvas that grew). Charged in full, the search preferred
/// turning and shrinking the figure so that more of it lands on the canvas,
/// on the wrong lines: `enter` consecutive Acc-Thresh .891 -> .935 (another
/// seed .877 -> .938) with half; presets' means (w1 / w3 / keyframe) .9281 /
/// .9620 / .8707 -> .9339 / .9626 / .8757, other seed .9218 / .9484 / .8585
/// -> .9290 / .9516 / .8564. Keyframes of `enter` (a reference that shows a
/// sliver of the figure) move either way with this value: 2.0 and 3.5 lost
/// 5 points there.
const OUTSIDE: f32 = TRUNCATE / 2.0;
/// Starts of the global search that are refined.
const REFINED_STARTS: usize = 6;
/// At most this many sample points per map.
const MAX_POINTS: usize = 6000;

impl LineMap {
    /// Builds the map from a full-resolution line mask (max-pooled so thin
    /// lines survive) with at most `max_side` cells along the longer side.
    pub(crate) fn new(mask: &[bool], width: usize, height: usize, max_side: usize) -> Self {
        let f = width.max(height).div_ceil(max_side).max(1);
        let (w, h) = (width.div_ceil(f), height.div_ceil(f));
        let mut line = vec![false; w * h];
        for y in 0..height {
            let row = &mask[y * width..(y + 1) * width];
            let cy = y / f;
            for (x, &m) in row.iter().enumerate() {
                if m {
                    line[cy * w + x / f] = true;
                }
            }
        }
        let dist = chamfer_distance(&line, w, h);
        let cells: Vec<usize> = (0..w * h).filter(|&i| line[i]).collect();
        let scale = f as f64;
        let centre = |i: usize| {
            [
                ((i % w) as f64 + 0.5) * scale - 0.5,
                ((i / w) as f64 + 0.5) * scale - 0.5,
            ]
        };
        let n = cells.len().max(1) as f64;
        let mut c = [0.0, 0.0];
        for &i in &cells {
            let p = centre(i);
            c[0] += p[0] / n;
            c[1] += p[1] / n;
        }
        let mut r2 = 0.0;
        for &i in &cells {
            let p = centre(i);
            r2 += ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)) / n;
        }
        let step = cells.len().div_ceil(MAX_POINTS).max(1);
        let points = cells.iter().step_by(step).map(|&i| centre(i)).collect();
        LineMap {
            scale,
            w,
            h,
            dist,
            points,
            centroid: c,
            radius: r2.sqrt().max(1.0),
        }
    }

    /// Truncated distance (cells) at a full-resolution point.
    #[inline]
    fn distance_at(&self, p: [f64; 2]) -> f32 {
        let x = ((p[0] + 0.5) / self.scale).floor();
        let y = ((p[1] + 0.5) / self.scale).floor();
        if x < 0.0 || y < 0.0 || x >= self.w as f64 || y >= self.h as f64 {
            return OUTSIDE;
        }
        self.dist[y as usize * self.w + x as usize].min(TRUNCATE)
    }

    /// Mean truncated distance of `from`'s points mapped by `t` into `self`.
    fn cost(&self, from: &LineMap, t: &Similarity) -> f64 {
        // The search evaluates this a few thousand times per frame pair:
        // one matrix, not a sine and an exponential per point.
        let m = t.matrix();
        let mut s = 0.0f64;
        for &p in &from.points {
            let q = [
                m[0] * p[0] + m[1] * p[1] + m[2],
                m[3] * p[0] + m[4] * p[1] + m[5],
            ];
            s += f64::from(self.distance_at(q));
        }
        s / from.points.len().max(1) as f64
    }

    /// Whether a full-resolution point lies within 1.5 cells of a line.
    #[inline]
    pub(crate) fn near_line(&self, p: [f64; 2]) -> bool {
        self.distance_at(p) <= 1.5
    }

    /// Fraction of `from`'s points that land within 1.5 cells of a line.
    pub(crate) fn hit_rate(&self, from: &LineMap, warp: &Warp) -> f64 {
        let hits = from
            .points
            .iter()
            .filter(|&&p| self.distance_at(warp.apply(p)) <= 1.5)
            .count();
        hits as f64 / from.points.len().max(1) as f64
    }
}

/// Two-pass 3-4 chamfer distance transform, in cells.
fn chamfer_distance(line: &[bool], w: usize, h: usize) -> Vec<f32> {
    const INF: f32 = 1e9;
    let mut d: Vec<f32> = line.iter().map(|&l| if l { 0.0 } else { INF }).collect();
    let (a, b) = (1.0f32, 1.4f32);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut v = d[i];
            if x > 0 {
                v = v.min(d[i - 1] + a);
            }
            if y > 0 {
                v = v.min(d[i - w] + a);
                if x > 0 {
                    v = v.min(d[i - w - 1] + b);
                }
                if x + 1 < w {
                    v = v.min(d[i - w + 1] + b);
                }
            }
            d[i] = v;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut v = d[i];
            if x + 1 < w {
                v = v.min(d[i + 1] + a);
            }
            if y + 1 < h {
                v = v.min(d[i + w] + a);
                if x + 1 < w {
                    v = v.min(d[i + w + 1] + b);
                }
                if x > 0 {
                    v = v.min(d[i + w - 1] + b);
                }
            }
            d[i] = v;
        }
    }
    d
}

/// `p' = s R(theta) (p - c) + c + t`: target coordinates to reference ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Similarity {
    pub(crate) theta: f64,
    pub(crate) log_scale: f64,
    pub(crate) t: [f64; 2],
    pub(crate) c: [f64; 2],
}

impl Similarity {
    #[inline]
    pub(crate) fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let s = self.log_scale.exp();
        let (sin, cos) = self.theta.sin_cos();
        let (x, y) = (p[0] - self.c[0], p[1] - self.c[1]);
        [
            s * (cos * x - sin * y) + self.c[0] + self.t[0],
            s * (sin * x + cos * y) + self.c[1] + self.t[1],
        ]
    }

    /// The transform as a row-major 2x3 matrix, `[a, -b, tx, b, a, ty]`.
    pub(crate) fn matrix(&self) -> [f64; 6] {
        let s = self.log_scale.exp();
        let (sin, cos) = self.theta.sin_cos();
        let (a, b) = (s * cos, s * sin);
        let c = self.c;
        [
            a,
            -b,
            c[0] + self.t[0] - a * c[0] + b * c[1],
            b,
            a,
            c[1] + self.t[1] - b * c[0] - a * c[1],
        ]
    }

    /// The inverse transform.
    pub(crate) fn inverse(&self) -> Similarity {
        // p = R^-1 (p' - c - t) / s + c, i.e. rotation -theta, scale 1/s about
        // centre c + t, then a shift of -t.
        Similarity {
            theta: -self.theta,
            log_scale: -self.log_scale,
            t: [-self.t[0], -self.t[1]],
            c: [self.c[0] + self.t[0], self.c[1] + self.t[1]],
        }
    }

    /// Area ratio reference/target.
    pub(crate) fn area_scale(&self) -> f64 {
        (2.0 * self.log_scale).exp()
    }

    fn params(&self) -> [f64; 4] {
        [self.theta, self.log_scale, self.t[0], self.t[1]]
    }

    fn with_params(&self, p: [f64; 4]) -> Similarity {
        Similarity {
            theta: p[0],
            log_scale: p[1],
            t: [p[2], p[3]],
            c: self.c,
        }
    }
}

/// Symmetric chamfer cost of `t` (target → reference).
fn symmetric_cost(target: &LineMap, reference: &LineMap, t: &Similarity) -> f64 {
    reference.cost(target, t) + target.cost(reference, &t.inverse())
}

/// Spacing of the rotations the global search starts from, over the whole
/// circle: a figure that tumbles or lies down turns far past any small-angle
/// window (starts within +-24 degrees found 34-56 degrees for true turns of
/// 46-103 on the `tumble` preset; keyframe Acc-Thresh .85 -> .96 with the
/// whole circle).
const START_STEP_DEG: i32 = 12;

/// Cost (in cells of mean chamfer distance) added to a fit turned by
/// `theta`, `TURN_PRIOR * (1 - cos theta)`: half a cell at 90 degrees, one
/// at 180. With starts all round the circle, a frame that shows little of
/// the figure (a walk out of the canvas) can fit a half-turn about as well as
/// the upright pose; drawn cuts rarely turn that far, so near-ties go to the
/// smaller turn. 0.5 against 0 and 1: keyframe means .8684 / .8706 / .8693
/// over the presets.
const TURN_PRIOR: f64 = 0.5;

fn turn_prior(s: &Similarity) -> f64 {
    TURN_PRIOR * (1.0 - s.theta.cos())
}

/// Finds the similarity transform that lays `target`'s lines onto
/// `reference`'s: multi-start pattern search on the symmetric chamfer cost.
pub(crate) fn fit_similarity(target: &LineMap, reference: &LineMap) -> (Similarity, f64) {
    let c = target.centroid;
    let shift = [reference.centroid[0] - c[0], reference.centroid[1] - c[1]];
    let spread = (reference.radius / target.radius).ln().clamp(-0.7, 0.7);
    let mut starts = Vec::new();
    for log_scale in [0.0, spread] {
        for k in -180 / START_STEP_DEG + 1..=180 / START_STEP_DEG {
            let deg = f64::from(k * START_STEP_DEG);
            for t in [shift, [0.0, 0.0]] {
                starts.push(Similarity {
                    theta: deg.to_radians(),
                    log_scale,
                    t,
                    c,
                });
            }
        }
    }
    let cell = reference.scale.max(target.scale);
    // Rank the starts by their cost and refine the most promising few: the
    // cost surface is smooth within +-6 degrees of a start (half the start
    // spacing), so a start near the answer is already among the cheapest.
    let mut ranked: Vec<(f64, Similarity)> = starts
        .into_iter()
        .map(|s| (symmetric_cost(target, reference, &s) + turn_prior(&s), s))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(Similarity, f64, f64)> = None;
    for (_, s) in ranked.into_iter().take(REFINED_STARTS) {
        let (fit, cost) = pattern_search(target, reference, s, cell);
        let judged = cost + turn_prior(&fit);
        if best.as_ref().is_none_or(|b| judged < b.2) {
            best = Some((fit, cost, judged));
        }
    }
    let (fit, cost, _) = best.expect("at least one start");
    (fit, cost)
}

fn pattern_search(
    target: &LineMap,
    reference: &LineMap,
    start: Similarity,
    cell: f64,
) -> (Similarity, f64) {
    let mut cur = start;
    let mut cost = symmetric_cost(target, reference, &cur);
    let mut step = [4f64.to_radians(), 0.04, 4.0 * cell, 4.0 * cell];
    let min_step = [0.1f64.to_radians(), 0.002, 0.25 * cell, 0.25 * cell];
    for _ in 0..200 {
        let mut improved = false;
        for k in 0..4 {
            for sign in [1.0, -1.0] {
                let mut p = cur.params();
                p[k] += sign * step[k];
                p[1] = p[1].clamp(-0.9, 0.9);
                let cand = cur.with_params(p);
                let c = symmetric_cost(target, reference, &cand);
                if c < cost - 1e-9 {
                    cur = cand;
                    cost = c;
                    improved = true;
                    break;
                }
            }
        }
        if !improved {
            let mut all_min = true;
            for k in 0..4 {
                step[k] *= 0.5;
                all_min &= step[k] < min_step[k];
            }
            if all_min {
                break;
            }
        }
    }
    (cur, cost)
}

/// A similarity transform plus a smooth displacement field sampled on a
/// grid over the target and interpolated bilinearly.
#[derive(Debug, Clone)]
pub(crate) struct Warp {
    pub(crate) global: Similarity,
    /// `global` as `[a, -b, tx; b, a, ty]`, so points map without
    /// trigonometry.
    matrix: [f64; 6],
    grid_w: usize,
    grid_h: usize,
    /// Target pixels per grid step.
    step: f64,
    field: Vec<[f64; 2]>,
}

impl Warp {
    pub(crate) fn new(global: Similarity, width: usize, height: usize) -> Self {
        let step = (width.max(height) as f64 / 48.0).max(4.0);
        let grid_w = (width as f64 / step).ceil() as usize + 1;
        let grid_h = (height as f64 / step).ceil() as usize + 1;
        Warp {
            global,
            matrix: global.matrix(),
            grid_w,
            grid_h,
            step,
            field: vec![[0.0, 0.0]; grid_w * grid_h],
        }
    }

    /// Target coordinates to reference ones.
    #[inline]
    pub(crate) fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.matrix;
        let g = [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ];
        let d = self.displacement(p);
        [g[0] + d[0], g[1] + d[1]]
    }

    /// `global` alone, without the displacement field.
    #[inline]
    pub(crate) fn apply_global(&self, p: [f64; 2]) -> [f64; 2] {
        let m = &self.matrix;
        [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ]
    }

    #[inline]
    fn displacement(&self, p: [f64; 2]) -> [f64; 2] {
        let gx = (p[0] / self.step).clamp(0.0, (self.grid_w - 1) as f64);
        let gy = (p[1] / self.step).clamp(0.0, (self.grid_h - 1) as f64);
        let (x0, y0) = (gx.floor() as usize, gy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.grid_w - 1), (y0 + 1).min(self.grid_h - 1));
        let (fx, fy) = (gx - x0 as f64, gy - y0 as f64);
        let f = |x: usize, y: usize| self.field[y * self.grid_w + x];
        let (a, b, c, d) = (f(x0, y0), f(x1, y0), f(x0, y1), f(x1, y1));
        let mut out = [0.0; 2];
        for k in 0..2 {
            out[k] =
                (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy;
        }
        out
    }

    /// Adds a correction interpolated from sparse residuals: at each grid
    /// node, the Gaussian-weighted mean of `(position, residual, weight)`
    /// with width `sigma`; far from every anchor the correction fades out.
    pub(crate) fn add_residuals(&mut self, anchors: &[([f64; 2], [f64; 2], f64)], sigma: f64) {
        if anchors.is_empty() {
            return;
        }
        let inv = 1.0 / (2.0 * sigma * sigma);
        // A prior weight so isolated anchors do not drag far regions.
        let prior: f64 = anchors.iter().map(|a| a.2).sum::<f64>() * 1e-3;
        for gy in 0..self.grid_h {
            for gx in 0..self.grid_w {
                let p = [gx as f64 * self.step, gy as f64 * self.step];
                let (mut sx, mut sy, mut sw) = (0.0, 0.0, prior);
                for &(q, r, w) in anchors {
                    let d2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
                    let k = w * (-d2 * inv).exp();
                    sx += k * r[0];
                    sy += k * r[1];
                    sw += k;
                }
                let f = &mut self.field[gy * self.grid_w + gx];
                f[0] += sx / sw;
                f[1] += sy / sw;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_mask(w: usize, h: usize, cx: f64, cy: f64, r: f64, bar: bool) -> Vec<bool> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                (d - r).abs() < 1.5 || (bar && (y - cy).abs() < 1.0 && x > cx && x < cx + r * 1.6)
            })
            .collect()
    }

    #[test]
    fn recovers_a_shift_and_scale() {
        let (w, h) = (300, 240);
        let t = ring_mask(w, h, 120.0, 110.0, 50.0, true);
        let r = ring_mask(w, h, 150.0, 120.0, 55.0, true);
        let (mt, mr) = (LineMap::new(&t, w, h, 150), LineMap::new(&r, w, h, 150));
        let (s, _) = fit_similarity(&mt, &mr);
        let p = s.apply([120.0, 110.0]);
        assert!(
            (p[0] - 150.0).abs() < 3.0 && (p[1] - 120.0).abs() < 3.0,
            "{p:?}"
        );
        assert!((s.log_scale.exp() - 1.1).abs() < 0.05, "{s:?}");
    }

    /// Line pixels of an L drawn with thick strokes, turned by `theta`
    /// about `c`: no symmetry, so one rotation fits.
    fn turned_l(w: usize, h: usize, c: [f64; 2], theta: f64) -> Vec<bool> {
        let (sin, cos) = theta.sin_cos();
        let mut mask = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                // Back to the upright frame of the L.
                let (dx, dy) = (x as f64 - c[0], y as f64 - c[1]);
                let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                let stem = u.abs() < 4.0 && (-60.0..60.0).contains(&v);
                let foot = (v - 58.0).abs() < 4.0 && (0.0..40.0).contains(&u);
                let bar = (v + 20.0).abs() < 3.0 && (-25.0..0.0).contains(&u);
                mask[y * w + x] = stem || foot || bar;
            }
        }
        mask
    }

    #[test]
    fn recovers_a_turn_far_past_small_angles() {
        // A figure that tumbles: 100 degrees between the frames.
        let (w, h) = (240, 240);
        let c = [120.0, 120.0];
        for deg in [100.0f64, -150.0] {
            let t = turned_l(w, h, c, 0.0);
            let r = turned_l(w, h, c, deg.to_radians());
            let (mt, mr) = (LineMap::new(&t, w, h, 120), LineMap::new(&r, w, h, 120));
            let (s, _) = fit_similarity(&mt, &mr);
            let err = (s.theta.to_degrees() - deg + 540.0).rem_euclid(360.0) - 180.0;
            assert!(err.abs() < 3.0, "turned {deg}, found {s:?}");
        }
    }

    #[test]
    fn a_figure_walking_off_the_canvas_is_not_shrunk_onto_it() {
        // The reference shows the L moved down until its foot leaves the
        // canvas. Charging the foot a full miss, the fit shrank the L by
        // a quarter (log scale -0.27) to land the foot on the stem.
        let (w, h) = (240, 240);
        let t = turned_l(w, h, [120.0, 120.0], 0.0);
        let r = turned_l(w, h, [120.0, 200.0], 0.0);
        let (mt, mr) = (LineMap::new(&t, w, h, 120), LineMap::new(&r, w, h, 120));
        let (s, _) = fit_similarity(&mt, &mr);
        assert!(s.log_scale.abs() < 0.12 && s.theta.abs() < 0.05, "{s:?}");
        let p = s.apply([120.0, 60.0]);
        assert!(
            (p[0] - 120.0).abs() < 4.0 && (p[1] - 140.0).abs() < 4.0,
            "{p:?}"
        );
    }

    #[test]
    fn warp_matrix_agrees_with_the_similarity() {
        let s = Similarity {
            theta: -0.2,
            log_scale: 0.05,
            t: [3.0, 4.0],
            c: [50.0, 60.0],
        };
        let w = Warp::new(s, 100, 100);
        for p in [[0.0, 0.0], [10.0, 90.0], [77.0, 3.0]] {
            let (a, b) = (w.apply(p), s.apply(p));
            assert!((a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn inverse_undoes_apply() {
        let s = Similarity {
            theta: 0.3,
            log_scale: 0.1,
            t: [5.0, -7.0],
            c: [10.0, 20.0],
        };
        let p = [33.0, -4.0];
        let q = s.inverse().apply(s.apply(p));
        assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9);
    }
}
