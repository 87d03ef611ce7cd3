//! `classic`: the weight-free engine. It colours a target frame from any
//! number of coloured references using only what line art carries.
//!
//! For every reference:
//! 1. **Global alignment** ([`align`]): a similarity transform (rotation,
//!    scale, translation) found by chamfer matching of the two line drawings
//!    at reduced resolution. Frames of one cut move, turn and zoom, and
//!    canvases may differ; chamfer matching needs no texture.
//! 2. **Segment correspondence**: every target pixel is mapped into the
//!    reference and votes for the reference segment under it; a candidate's
//!    score is the overlap IoU of the two segments (areas corrected for the
//!    zoom), or, when that is weak, the agreement of their positions and
//!    sizes. IoU naturally prefers a small pupil over the large iris around
//!    it, which plain overlap does not.
//! 3. **Local refinement**: confidently matched segment pairs (mutual best,
//!    IoU ≥ 0.5) give displacement anchors; a smooth field interpolated from
//!    them (Gaussian weights) bends the warp, so parts that moved on their
//!    own (an arm, hair) and elastic drawing changes line up, and matching is
//!    redone. Two rounds.
//!
//! References are then combined per colour: each reference's best score for
//! a colour, weighted by how well that reference aligned (the fraction of
//! target lines that land on its lines), summed over references. So sheets
//! showing other poses count less, and references that agree reinforce each
//! other. The confidence of a segment is its combined best score and its
//! margin over the best other colour.

mod align;

use std::convert::Infallible;

use crate::matcher::{Confidence, Frame, Matcher, Prediction, Reference};
use crate::palette::{ColorTable, Rgba};

use align::{fit_similarity, LineMap, Warp};

/// Tunable parameters of the classic engine.
#[derive(Debug, Clone)]
pub struct ClassicConfig {
    /// Longest side of the coarse line map used for global alignment.
    pub align_side: usize,
    /// Rounds of local refinement from matched segments.
    pub refine_rounds: usize,
    /// IoU from which a mutual match becomes a refinement anchor.
    pub anchor_iou: f64,
}

impl Default for ClassicConfig {
    fn default() -> Self {
        ClassicConfig {
            align_side: 320,
            refine_rounds: 2,
            anchor_iou: 0.5,
        }
    }
}

/// The weight-free matcher.
#[derive(Debug, Clone, Default)]
pub struct ClassicMatcher {
    config: ClassicConfig,
}

impl ClassicMatcher {
    /// A matcher with the given parameters.
    pub fn new(config: ClassicConfig) -> Self {
        ClassicMatcher { config }
    }
}

/// What the classic engine keeps of a frame.
#[derive(Debug, Clone)]
pub struct ClassicFeatures {
    w: usize,
    h: usize,
    labels: Vec<u32>,
    filled: Vec<u32>,
    count: usize,
    area: Vec<f64>,
    centroid: Vec<[f64; 2]>,
    lines: LineMap,
}

impl ClassicFeatures {
    fn new(frame: &Frame, align_side: usize) -> Self {
        let seg = &frame.seg;
        let (w, h) = (seg.width() as usize, seg.height() as usize);
        let count = seg.count() as usize;
        let mut area = vec![0.0f64; count + 1];
        let mut sum = vec![[0.0f64; 2]; count + 1];
        for (i, &l) in seg.labels().iter().enumerate() {
            let l = l as usize;
            area[l] += 1.0;
            sum[l][0] += (i % w) as f64;
            sum[l][1] += (i / w) as f64;
        }
        let centroid = sum
            .iter()
            .zip(&area)
            .map(|(s, &a)| [s[0] / a.max(1.0), s[1] / a.max(1.0)])
            .collect();
        let mask: Vec<bool> = seg.labels().iter().map(|&l| l == 0).collect();
        ClassicFeatures {
            w,
            h,
            labels: seg.labels().to_vec(),
            filled: seg.filled_labels(),
            count,
            area,
            centroid,
            lines: LineMap::new(&mask, w, h, align_side),
        }
    }

    /// Reference label under reference point `p` (lines count as their
    /// nearest segment), if inside the canvas.
    #[inline]
    fn filled_at(&self, p: [f64; 2]) -> Option<u32> {
        let (x, y) = (p[0].round(), p[1].round());
        if x < 0.0 || y < 0.0 || x >= self.w as f64 || y >= self.h as f64 {
            return None;
        }
        Some(self.filled[y as usize * self.w + x as usize])
    }
}

/// Per target segment: candidate reference segments with their scores.
type Scores = Vec<Vec<(u32, f64)>>;

impl ClassicMatcher {
    /// Overlap counts of every target segment with reference segments.
    fn overlaps(t: &ClassicFeatures, r: &ClassicFeatures, warp: &Warp) -> Vec<Vec<(u32, u32)>> {
        let mut out: Vec<Vec<(u32, u32)>> = vec![Vec::new(); t.count + 1];
        for y in 0..t.h {
            for x in 0..t.w {
                let l = t.labels[y * t.w + x];
                if l == 0 {
                    continue;
                }
                let Some(rl) = r.filled_at(warp.apply([x as f64, y as f64])) else {
                    continue;
                };
                if rl == 0 {
                    continue;
                }
                let list = &mut out[l as usize];
                match list.iter_mut().find(|e| e.0 == rl) {
                    Some(e) => e.1 += 1,
                    None => list.push((rl, 1)),
                }
            }
        }
        out
    }

    /// Candidate scores of every target segment against `r` under `warp`.
    fn scores(t: &ClassicFeatures, r: &ClassicFeatures, warp: &Warp) -> Scores {
        let overlaps = Self::overlaps(t, r, warp);
        let zoom = warp.global.area_scale();
        let mut scores: Scores = vec![Vec::new(); t.count + 1];
        for tl in 1..=t.count {
            let at = t.area[tl];
            let c = warp.apply(t.centroid[tl]);
            let sigma = (0.5 * at.sqrt()).max(4.0);
            let reach2 = (3.0 * sigma).powi(2);
            let list = &mut scores[tl];
            let overlap_of = |rl: usize| {
                overlaps[tl]
                    .iter()
                    .find(|e| e.0 as usize == rl)
                    .map_or(0.0, |e| f64::from(e.1))
            };
            for rl in 1..=r.count {
                let o = overlap_of(rl);
                let rc = r.centroid[rl];
                let d2 = (c[0] - rc[0]).powi(2) + (c[1] - rc[1]).powi(2);
                if o == 0.0 && d2 > reach2 {
                    continue;
                }
                let ar = r.area[rl] / zoom;
                let iou = o / (at + ar - o).max(1.0);
                let size = at.min(ar) / at.max(ar).max(1e-9);
                let place = (-d2 / (2.0 * sigma * sigma)).exp() * size.sqrt();
                list.push((rl as u32, iou.max(0.8 * place)));
            }
            if list.is_empty() {
                // Mapped outside every reference segment: nearest centroid.
                let nearest = (1..=r.count).min_by(|&a, &b| {
                    let da = (c[0] - r.centroid[a][0]).powi(2) + (c[1] - r.centroid[a][1]).powi(2);
                    let db = (c[0] - r.centroid[b][0]).powi(2) + (c[1] - r.centroid[b][1]).powi(2);
                    da.total_cmp(&db)
                });
                if let Some(n) = nearest {
                    list.push((n as u32, 0.0));
                }
            }
        }
        scores
    }

    /// Mutual-best confident matches as displacement anchors.
    fn anchors(
        &self,
        t: &ClassicFeatures,
        r: &ClassicFeatures,
        warp: &Warp,
        scores: &Scores,
    ) -> Vec<([f64; 2], [f64; 2], f64)> {
        let best_t: Vec<Option<(u32, f64)>> = scores
            .iter()
            .map(|l| l.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)))
            .collect();
        let mut best_r: Vec<Option<(u32, f64)>> = vec![None; r.count + 1];
        for (tl, b) in best_t.iter().enumerate().skip(1) {
            if let Some((rl, s)) = *b {
                let e = &mut best_r[rl as usize];
                if e.is_none_or(|(_, es)| s > es) {
                    *e = Some((tl as u32, s));
                }
            }
        }
        let mut anchors = Vec::new();
        for (tl, b) in best_t.iter().enumerate().skip(1) {
            let Some((rl, s)) = *b else { continue };
            if s < self.config.anchor_iou || t.area[tl] < 30.0 {
                continue;
            }
            if best_r[rl as usize].map(|(x, _)| x as usize) != Some(tl) {
                continue;
            }
            let c = t.centroid[tl];
            let w = warp.apply(c);
            let rc = r.centroid[rl as usize];
            anchors.push((c, [rc[0] - w[0], rc[1] - w[1]], t.area[tl].sqrt() * s));
        }
        anchors
    }

    /// Aligns `t` to `r` and scores; returns scores and alignment quality.
    fn match_reference(&self, t: &ClassicFeatures, r: &ClassicFeatures) -> (Scores, f64) {
        let (sim, _) = fit_similarity(&t.lines, &r.lines);
        let mut warp = Warp::new(sim, t.w, t.h);
        let side = t.w.max(t.h) as f64;
        let mut scores = Self::scores(t, r, &warp);
        for round in 0..self.config.refine_rounds {
            let anchors = self.anchors(t, r, &warp, &scores);
            let sigma = side * if round == 0 { 0.08 } else { 0.04 };
            warp.add_residuals(&anchors, sigma);
            scores = Self::scores(t, r, &warp);
        }
        let quality = r.lines.hit_rate(&t.lines, &warp);
        (scores, quality)
    }
}

impl Matcher for ClassicMatcher {
    type Features = ClassicFeatures;
    type Error = Infallible;

    fn features(&self, frame: &Frame) -> Result<ClassicFeatures, Infallible> {
        Ok(ClassicFeatures::new(frame, self.config.align_side))
    }

    fn predict(
        &self,
        refs: &[Reference<'_, ClassicFeatures>],
        target: &ClassicFeatures,
    ) -> Result<Prediction, Infallible> {
        assert!(!refs.is_empty(), "predict needs at least one reference");
        // Per target segment: (colour, weighted score sum).
        let mut votes: Vec<Vec<(Rgba, f64)>> = vec![Vec::new(); target.count + 1];
        let mut total_weight = 0.0;
        for reference in refs {
            let (scores, quality) = self.match_reference(target, reference.features);
            let weight = quality.max(1e-3).powi(2);
            total_weight += weight;
            for (tl, cands) in scores.iter().enumerate().skip(1) {
                // Best score per colour within this reference.
                let mut best: Vec<(Rgba, f64)> = Vec::new();
                for &(rl, s) in cands {
                    let Some(c) = reference.colors.get(rl) else {
                        continue;
                    };
                    match best.iter_mut().find(|e| e.0 == c) {
                        Some(e) => e.1 = e.1.max(s),
                        None => best.push((c, s)),
                    }
                }
                for (c, s) in best {
                    match votes[tl].iter_mut().find(|e| e.0 == c) {
                        Some(e) => e.1 += weight * s,
                        None => votes[tl].push((c, weight * s)),
                    }
                }
            }
        }
        let mut colors = ColorTable::default();
        let mut confidence = Vec::with_capacity(target.count);
        for (tl, v) in votes.iter_mut().enumerate().skip(1) {
            // Highest score; ties to the smaller RGBA for determinism.
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let (color, best) = v.first().copied().unwrap_or(([255, 255, 255, 0], 0.0));
            let second = v.get(1).map_or(0.0, |e| e.1);
            colors.set(tl as u32, color);
            confidence.push(Confidence {
                similarity: (best / total_weight) as f32,
                margin: ((best - second) / total_weight) as f32,
            });
        }
        Ok(Prediction { colors, confidence })
    }
}
