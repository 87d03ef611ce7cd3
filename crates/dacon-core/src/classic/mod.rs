//! `classic`: the weight-free engine. It colours a target frame from any
//! number of coloured references using only what line art carries.
//!
//! For every reference:
//! 1. **Global alignment** (module `align`): a similarity transform (rotation,
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

use crate::color_table::{ColorTable, Rgba};
use crate::engine::{Confidence, Engine, Prediction, Reference, Source};
use crate::error::Error;
use crate::frame::Frame;

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
            anchor_iou: 0.6,
        }
    }
}

/// The weight-free engine.
#[derive(Debug, Clone, Default)]
pub struct ClassicEngine {
    config: ClassicConfig,
}

impl ClassicEngine {
    /// An engine with the given parameters.
    pub fn new(config: ClassicConfig) -> Self {
        ClassicEngine { config }
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
    /// Segments cut by the canvas edge: their shape is not their own.
    at_border: Vec<bool>,
    /// Minor/major axis ratio of every segment (second moments), 0..1.
    elongation: Vec<f64>,
    /// Neighbours of every segment across one line, with the length of the
    /// shared boundary, sorted by label.
    adjacency: Vec<Vec<(u32, u32)>>,
    lines: LineMap,
}

impl ClassicFeatures {
    fn new(frame: &Frame, align_side: usize) -> Self {
        let seg = &frame.seg;
        let (w, h) = (seg.width() as usize, seg.height() as usize);
        let count = seg.count() as usize;
        let mut area = vec![0.0f64; count + 1];
        let mut sum = vec![[0.0f64; 2]; count + 1];
        let mut at_border = vec![false; count + 1];
        for (i, &l) in seg.labels().iter().enumerate() {
            let l = l as usize;
            let (x, y) = (i % w, i / w);
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                at_border[l] = true;
            }
            area[l] += 1.0;
            sum[l][0] += (i % w) as f64;
            sum[l][1] += (i / w) as f64;
        }
        let centroid: Vec<[f64; 2]> = sum
            .iter()
            .zip(&area)
            .map(|(s, &a)| [s[0] / a.max(1.0), s[1] / a.max(1.0)])
            .collect();
        let mut second = vec![[0.0f64; 3]; count + 1];
        for (i, &l) in seg.labels().iter().enumerate() {
            let l = l as usize;
            let (dx, dy) = (
                (i % w) as f64 - centroid[l][0],
                (i / w) as f64 - centroid[l][1],
            );
            second[l][0] += dx * dx;
            second[l][1] += dy * dy;
            second[l][2] += dx * dy;
        }
        let elongation = second
            .iter()
            .map(|m| {
                let (a, b, c) = (m[0], m[1], m[2]);
                let root = ((a - b).powi(2) + 4.0 * c * c).sqrt();
                let (l1, l2) = ((a + b + root) / 2.0, (a + b - root) / 2.0);
                if l1 <= 0.0 {
                    1.0
                } else {
                    (l2.max(0.0) / l1).sqrt()
                }
            })
            .collect();
        let filled = seg.filled_labels();
        let adjacency = adjacency(&filled, w, h, count);
        let mask: Vec<bool> = seg.labels().iter().map(|&l| l == 0).collect();
        ClassicFeatures {
            w,
            h,
            labels: seg.labels().to_vec(),
            filled,
            count,
            area,
            centroid,
            at_border,
            elongation,
            adjacency,
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

/// Segment adjacency from labels whose lines were given to the nearest
/// segment: two segments touch where their filled pixels meet.
fn adjacency(filled: &[u32], w: usize, h: usize, count: usize) -> Vec<Vec<(u32, u32)>> {
    let mut adj: Vec<Vec<(u32, u32)>> = vec![Vec::new(); count + 1];
    let mut add = |a: u32, b: u32| {
        for (x, y) in [(a, b), (b, a)] {
            let list = &mut adj[x as usize];
            match list.iter_mut().find(|e| e.0 == y) {
                Some(e) => e.1 += 1,
                None => list.push((y, 1)),
            }
        }
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let a = filled[i];
            if x + 1 < w && filled[i + 1] != a && a != 0 && filled[i + 1] != 0 {
                add(a, filled[i + 1]);
            }
            if y + 1 < h && filled[i + w] != a && a != 0 && filled[i + w] != 0 {
                add(a, filled[i + w]);
            }
        }
    }
    for list in &mut adj {
        list.sort_unstable();
    }
    adj
}

/// Per target segment: candidate reference segments with their scores.
type Scores = Vec<Vec<Candidate>>;

/// A reference segment considered for a target segment.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    label: u32,
    score: f64,
    iou: f64,
    size: f64,
}

impl ClassicEngine {
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
                list.push(Candidate {
                    label: rl as u32,
                    score: iou.max(0.8 * place),
                    iou,
                    size,
                });
            }
            if list.is_empty() {
                // Mapped outside every reference segment: nearest centroid.
                let nearest = (1..=r.count).min_by(|&a, &b| {
                    let da = (c[0] - r.centroid[a][0]).powi(2) + (c[1] - r.centroid[a][1]).powi(2);
                    let db = (c[0] - r.centroid[b][0]).powi(2) + (c[1] - r.centroid[b][1]).powi(2);
                    da.total_cmp(&db)
                });
                if let Some(n) = nearest {
                    list.push(Candidate {
                        label: n as u32,
                        score: 0.0,
                        iou: 0.0,
                        size: 0.0,
                    });
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
        // Only near-identical shapes are trusted: a segment cut in two by an
        // occluding arm has a displaced centroid that is no motion at all.
        let best_t: Vec<Option<Candidate>> = scores
            .iter()
            .map(|l| l.iter().copied().max_by(|a, b| a.iou.total_cmp(&b.iou)))
            .collect();
        let mut best_r: Vec<Option<(usize, f64)>> = vec![None; r.count + 1];
        for (tl, b) in best_t.iter().enumerate().skip(1) {
            if let Some(c) = *b {
                let e = &mut best_r[c.label as usize];
                if e.is_none_or(|(_, iou)| c.iou > iou) {
                    *e = Some((tl, c.iou));
                }
            }
        }
        let mut anchors = Vec::new();
        for (tl, b) in best_t.iter().enumerate().skip(1) {
            let Some(c) = *b else { continue };
            if c.iou < self.config.anchor_iou
                || c.size < 0.75
                || t.area[tl] < 30.0
                || t.at_border[tl]
                || r.at_border[c.label as usize]
            {
                continue;
            }
            if best_r[c.label as usize].map(|(x, _)| x) != Some(tl) {
                continue;
            }
            let w = warp.apply(t.centroid[tl]);
            let rc = r.centroid[c.label as usize];
            anchors.push((
                t.centroid[tl],
                [rc[0] - w[0], rc[1] - w[1]],
                t.area[tl].sqrt() * c.iou,
            ));
        }
        anchors
    }

    /// For target segments without a good candidate (a part that moved on its
    /// own, like a forearm swinging across the body), proposes reference
    /// segments that touch the references of the target segment's
    /// confidently matched neighbours and have a similar size and shape.
    fn add_context_candidates(
        t: &ClassicFeatures,
        r: &ClassicFeatures,
        warp: &Warp,
        scores: &mut Scores,
    ) {
        const CONFIDENT: f64 = 0.5;
        const WEAK: f64 = 0.4;
        let best: Vec<Option<Candidate>> = scores
            .iter()
            .map(|l| l.iter().copied().max_by(|a, b| a.score.total_cmp(&b.score)))
            .collect();
        let zoom = warp.global.area_scale();
        for tl in 1..=t.count {
            if best[tl].is_some_and(|b| b.score >= WEAK) || t.area[tl] < 12.0 {
                continue;
            }
            let anchors: Vec<(u32, f64)> = t.adjacency[tl]
                .iter()
                .filter_map(|&(n, len)| {
                    best[n as usize]
                        .filter(|b| b.score >= CONFIDENT)
                        .map(|b| (b.label, f64::from(len)))
                })
                .collect();
            let total: f64 = anchors.iter().map(|a| a.1).sum();
            if anchors.is_empty() || total <= 0.0 {
                continue;
            }
            let mut proposals = Vec::new();
            for rl in 1..=r.count {
                let touching: f64 = anchors
                    .iter()
                    .filter(|a| r.adjacency[rl].binary_search_by_key(&a.0, |e| e.0).is_ok())
                    .map(|a| a.1)
                    .sum();
                let context = touching / total;
                if context < 0.6 {
                    continue;
                }
                let ar = r.area[rl] / zoom;
                let size = t.area[tl].min(ar) / t.area[tl].max(ar);
                let (et, er) = (t.elongation[tl].max(0.02), r.elongation[rl].max(0.02));
                let shape = (-2.0 * (et / er).ln().abs()).exp();
                let score = 0.7 * context * size.sqrt() * shape;
                if score > best[tl].map_or(0.0, |b| b.score) {
                    proposals.push(Candidate {
                        label: rl as u32,
                        score,
                        iou: 0.0,
                        size,
                    });
                }
            }
            scores[tl].extend(proposals);
        }
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
        // Twice: segments rescued in the first pass anchor their neighbours.
        for _ in 0..2 {
            Self::add_context_candidates(t, r, &warp, &mut scores);
        }
        let quality = r.lines.hit_rate(&t.lines, &warp);
        (scores, quality)
    }
}

/// One colour's support for a target segment, summed over references.
#[derive(Debug, Clone, Copy)]
struct Vote {
    color: Rgba,
    /// Weighted score summed over references.
    total: f64,
    /// The largest single contribution and the reference segment behind it.
    strongest: f64,
    source: Source,
}

impl Engine for ClassicEngine {
    type Features = ClassicFeatures;
    type Error = Error;

    fn features(&self, frame: &Frame) -> Result<ClassicFeatures, Error> {
        Ok(ClassicFeatures::new(frame, self.config.align_side))
    }

    fn predict(
        &self,
        refs: &[Reference<'_, ClassicFeatures>],
        target: &ClassicFeatures,
    ) -> Result<Prediction, Error> {
        if refs.is_empty() {
            return Err(Error::NoReferences);
        }
        let mut votes: Vec<Vec<Vote>> = vec![Vec::new(); target.count + 1];
        let mut total_weight = 0.0;
        for (ri, reference) in refs.iter().enumerate() {
            let (scores, quality) = self.match_reference(target, reference.features);
            let weight = quality.max(1e-3).powi(2);
            total_weight += weight;
            for (tl, cands) in scores.iter().enumerate().skip(1) {
                // Best score (and its segment) per colour within this
                // reference.
                let mut best: Vec<(Rgba, f64, u32)> = Vec::new();
                for cand in cands {
                    let s = cand.score;
                    let Some(c) = reference.colors.get(cand.label) else {
                        continue;
                    };
                    match best.iter_mut().find(|e| e.0 == c) {
                        Some(e) if s > e.1 => *e = (c, s, cand.label),
                        Some(_) => {}
                        None => best.push((c, s, cand.label)),
                    }
                }
                for (color, s, label) in best {
                    let w = weight * s;
                    let source = Source {
                        reference: ri,
                        segment: label,
                    };
                    match votes[tl].iter_mut().find(|e| e.color == color) {
                        Some(e) => {
                            e.total += w;
                            if w > e.strongest {
                                e.strongest = w;
                                e.source = source;
                            }
                        }
                        None => votes[tl].push(Vote {
                            color,
                            total: w,
                            strongest: w,
                            source,
                        }),
                    }
                }
            }
        }
        let mut colors = ColorTable::default();
        let mut confidence = Vec::with_capacity(target.count);
        for (tl, v) in votes.iter_mut().enumerate().skip(1) {
            // Highest score; ties to the smaller RGBA for determinism.
            v.sort_by(|a, b| b.total.total_cmp(&a.total).then(a.color.cmp(&b.color)));
            let second = v.get(1).map_or(0.0, |e| e.total);
            let (color, best, source) = match v.first() {
                Some(e) => (e.color, e.total, Some(e.source)),
                None => ([255, 255, 255, 0], 0.0, None),
            };
            colors.set(tl as u32, color);
            confidence.push(Confidence {
                similarity: (best / total_weight) as f32,
                margin: ((best - second) / total_weight) as f32,
                source,
            });
        }
        Ok(Prediction { colors, confidence })
    }
}
