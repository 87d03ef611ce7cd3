//! Segment average pooling of feature maps, with the official semantics of
//! both DACoN versions, without any `[segments x H x W]` tensor.
//!
//! Official rule: with a pooling size `P`, the kernel is `k = max(1, H // P)`;
//! one-hot segment masks are max-pooled by `k` (floor mode), so a pooled
//! cell belongs to every segment with a pixel in its `k x k` block; the
//! feature map is resized bilinearly (align_corners=False) to the pooled
//! grid unless it already has that size; a segment's feature is the mean of
//! the resized map over its cells (zero for a segment with no cell). v1.0
//! pools at the label resolution (`P` = label size, `k = 1`); v1.1 at 512.
//!
//! Bilinear resizing is linear, so the mean over a segment's cells equals a
//! weighted sum of the *original* feature cells, with weights from the
//! transposed interpolation taps. Each segment accumulates those weights
//! over the small window of feature cells it touches; the full-size resized
//! map (1024 channels x 1920 x 1920 for ViT-L at v1.0) never exists.

use dacon_core::Segmentation;

use crate::resize::bilinear_taps;

/// Which segments every pooled cell belongs to, and how many cells each
/// segment has.
#[derive(Debug, Clone)]
pub struct PoolGrid {
    /// Pooled grid height and width.
    pub height: usize,
    /// Pooled grid width.
    pub width: usize,
    /// Cell indices, grouped by segment (segment `s` owns
    /// `cells[starts[s]..starts[s + 1]]`).
    cells: Vec<u32>,
    /// Start of every segment's run in `cells` (`segments + 1` entries).
    starts: Vec<usize>,
}

impl PoolGrid {
    /// The pooled grid of `seg` for pooling size `pool` (`[H, W]`).
    pub fn new(seg: &Segmentation, pool: [usize; 2]) -> PoolGrid {
        let (h, w) = (seg.height() as usize, seg.width() as usize);
        let kh = (h / pool[0]).max(1);
        let kw = (w / pool[1]).max(1);
        let (oh, ow) = (h / kh, w / kw);
        let labels = seg.labels();
        let mut members: Vec<(u32, u32)> = Vec::with_capacity(oh * ow + oh * ow / 8);
        let mut block: Vec<u32> = Vec::with_capacity(kh * kw);
        for cy in 0..oh {
            for cx in 0..ow {
                let cell = (cy * ow + cx) as u32;
                if kh == 1 && kw == 1 {
                    let l = labels[cy * w + cx];
                    if l != 0 {
                        members.push((l - 1, cell));
                    }
                    continue;
                }
                block.clear();
                for y in cy * kh..(cy + 1) * kh {
                    for &l in &labels[y * w + cx * kw..y * w + (cx + 1) * kw] {
                        if l != 0 && !block.contains(&l) {
                            block.push(l);
                        }
                    }
                }
                members.extend(block.iter().map(|&l| (l - 1, cell)));
            }
        }
        members.sort_unstable();
        let n = seg.count() as usize;
        let mut starts = vec![0usize; n + 1];
        for &(s, _) in &members {
            starts[s as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        PoolGrid {
            height: oh,
            width: ow,
            cells: members.into_iter().map(|(_, c)| c).collect(),
            starts,
        }
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.starts.len() - 1
    }

    /// The pooling as a dense matrix `[segments, fh * fw]` (row `s` holds
    /// the weights of segment `s` over the feature cells, divided by its
    /// cell count), so that pooling is one differentiable matrix product in
    /// training, where label maps are 512x512.
    pub fn dense_weights(&self, fh: usize, fw: usize) -> Vec<f32> {
        let ty = bilinear_taps(fh, self.height);
        let tx = bilinear_taps(fw, self.width);
        let n = self.segments();
        let mut out = vec![0f64; n * fh * fw];
        for s in 0..n {
            let cells = &self.cells[self.starts[s]..self.starts[s + 1]];
            let row = &mut out[s * fh * fw..(s + 1) * fh * fw];
            let inv = 1.0 / cells.len().max(1) as f64;
            for &c in cells {
                let (y, x) = (c as usize / self.width, c as usize % self.width);
                let (i0, i1, a0, a1) = ty[y];
                let (j0, j1, b0, b1) = tx[x];
                row[i0 * fw + j0] += f64::from(a0 * b0) * inv;
                row[i0 * fw + j1] += f64::from(a0 * b1) * inv;
                row[i1 * fw + j0] += f64::from(a1 * b0) * inv;
                row[i1 * fw + j1] += f64::from(a1 * b1) * inv;
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    /// Mean feature of every segment: `[segments, channels]`, row-major.
    ///
    /// `features` is `[channels, fh, fw]`, row-major.
    pub fn pool(&self, features: &[f32], channels: usize, fh: usize, fw: usize) -> Vec<f32> {
        assert_eq!(
            features.len(),
            channels * fh * fw,
            "features must be [channels, fh, fw]"
        );
        let ty = bilinear_taps(fh, self.height);
        let tx = bilinear_taps(fw, self.width);
        let n = self.segments();
        let mut out = vec![0f32; n * channels];
        let mut window: Vec<f64> = Vec::new();
        let mut acc = vec![0f64; channels];
        for s in 0..n {
            let cells = &self.cells[self.starts[s]..self.starts[s + 1]];
            if cells.is_empty() {
                continue; // official: mask sum clamped, feature 0
            }
            // The feature-grid window the segment's taps touch.
            let (mut i_lo, mut i_hi, mut j_lo, mut j_hi) = (usize::MAX, 0, usize::MAX, 0);
            for &c in cells {
                let (y, x) = (c as usize / self.width, c as usize % self.width);
                i_lo = i_lo.min(ty[y].0);
                i_hi = i_hi.max(ty[y].1);
                j_lo = j_lo.min(tx[x].0);
                j_hi = j_hi.max(tx[x].1);
            }
            let (wh, ww) = (i_hi - i_lo + 1, j_hi - j_lo + 1);
            window.clear();
            window.resize(wh * ww, 0.0);
            for &c in cells {
                let (y, x) = (c as usize / self.width, c as usize % self.width);
                let (i0, i1, a0, a1) = ty[y];
                let (j0, j1, b0, b1) = tx[x];
                let (i0, i1, j0, j1) = (i0 - i_lo, i1 - i_lo, j0 - j_lo, j1 - j_lo);
                window[i0 * ww + j0] += f64::from(a0 * b0);
                window[i0 * ww + j1] += f64::from(a0 * b1);
                window[i1 * ww + j0] += f64::from(a1 * b0);
                window[i1 * ww + j1] += f64::from(a1 * b1);
            }
            acc.iter_mut().for_each(|a| *a = 0.0);
            for wi in 0..wh {
                for wj in 0..ww {
                    let wt = window[wi * ww + wj];
                    if wt == 0.0 {
                        continue;
                    }
                    let at = (i_lo + wi) * fw + (j_lo + wj);
                    for (ch, a) in acc.iter_mut().enumerate() {
                        *a += wt * f64::from(features[ch * fh * fw + at]);
                    }
                }
            }
            let count = cells.len() as f64;
            for (o, a) in out[s * channels..(s + 1) * channels].iter_mut().zip(&acc) {
                *o = (a / count) as f32;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resize::bilinear;

    /// The direct (official) computation on a small case.
    fn direct(
        seg: &Segmentation,
        pool: [usize; 2],
        f: &[f32],
        c: usize,
        fh: usize,
        fw: usize,
    ) -> Vec<f32> {
        let (h, w) = (seg.height() as usize, seg.width() as usize);
        let kh = (h / pool[0]).max(1);
        let kw = (w / pool[1]).max(1);
        let (oh, ow) = (h / kh, w / kw);
        let up = if (oh, ow) == (fh, fw) {
            f.to_vec()
        } else {
            bilinear(f, c, fh, fw, oh, ow)
        };
        let n = seg.count() as usize;
        let mut out = vec![0f32; n * c];
        for s in 1..=n as u32 {
            let mut cnt = 0.0f64;
            let mut acc = vec![0f64; c];
            for cy in 0..oh {
                for cx in 0..ow {
                    let hit = (cy * kh..(cy + 1) * kh).any(|y| {
                        (cx * kw..(cx + 1) * kw).any(|x| seg.label_at(x as u32, y as u32) == s)
                    });
                    if hit {
                        cnt += 1.0;
                        for ch in 0..c {
                            acc[ch] += f64::from(up[ch * oh * ow + cy * ow + cx]);
                        }
                    }
                }
            }
            for ch in 0..c {
                out[(s as usize - 1) * c + ch] = if cnt > 0.0 {
                    (acc[ch] / cnt) as f32
                } else {
                    0.0
                };
            }
        }
        out
    }

    fn sample() -> (Segmentation, Vec<f32>) {
        let (w, h) = (13u32, 10u32);
        let labels: Vec<u32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if x == 6 {
                    0
                } else if y < 4 {
                    1 + u32::from(x > 6)
                } else {
                    3 + (x + y) % 3
                }
            })
            .collect();
        let seg = Segmentation::from_labels(w, h, labels);
        let f: Vec<f32> = (0..2 * 5 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        (seg, f)
    }

    #[test]
    fn matches_the_direct_computation_at_full_resolution() {
        let (seg, f) = sample();
        let grid = PoolGrid::new(&seg, [10, 13]);
        let got = grid.pool(&f, 2, 5, 4);
        let want = direct(&seg, [10, 13], &f, 2, 5, 4);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn dense_weights_pool_the_same() {
        let (seg, f) = sample();
        let grid = PoolGrid::new(&seg, [5, 6]);
        let w = grid.dense_weights(5, 4);
        let pooled = grid.pool(&f, 2, 5, 4);
        for s in 0..grid.segments() {
            for ch in 0..2 {
                let v: f32 = (0..20).map(|i| w[s * 20 + i] * f[ch * 20 + i]).sum();
                assert!((v - pooled[s * 2 + ch]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn matches_the_direct_computation_with_max_pooled_masks() {
        let (seg, f) = sample();
        // k = 2 in both directions: cells shared by several segments.
        let grid = PoolGrid::new(&seg, [5, 6]);
        assert_eq!((grid.height, grid.width), (5, 6));
        let got = grid.pool(&f, 2, 5, 4);
        let want = direct(&seg, [5, 6], &f, 2, 5, 4);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
