//! A bucket grid over segment centroids, so the matcher finds the
//! reference segments near a point in time proportional to what is near,
//! not to the number of segments (#14 item 15: a speckled scan has tens of
//! thousands of segments and a scan over all of them per target segment is
//! quadratic).

/// Segment labels bucketed by the grid cell of their centroid.
#[derive(Debug, Clone)]
pub(crate) struct CentroidGrid {
    /// Side of a cell in pixels.
    cell: f64,
    gw: usize,
    gh: usize,
    /// `items[start[c]..start[c + 1]]` are the labels in cell `c`, ascending.
    start: Vec<u32>,
    items: Vec<u32>,
}

impl CentroidGrid {
    /// Buckets labels `1..centroid.len()` of a `w` x `h` canvas. Cells hold
    /// about one segment each on average (at least 4 px wide), so a query
    /// touches few empty cells and few far segments.
    pub(crate) fn new(centroid: &[[f64; 2]], w: usize, h: usize) -> Self {
        let count = centroid.len().saturating_sub(1).max(1);
        let cell = ((w * h) as f64 / count as f64).sqrt().max(4.0);
        let gw = ((w as f64 / cell).ceil() as usize).max(1);
        let gh = ((h as f64 / cell).ceil() as usize).max(1);
        let mut grid = CentroidGrid {
            cell,
            gw,
            gh,
            start: vec![0; gw * gh + 1],
            items: Vec::with_capacity(count),
        };
        let cells: Vec<usize> = centroid.iter().skip(1).map(|&c| grid.cell_of(c)).collect();
        // Counting sort by cell; labels stay ascending within a cell.
        for &c in &cells {
            grid.start[c + 1] += 1;
        }
        for c in 0..gw * gh {
            grid.start[c + 1] += grid.start[c];
        }
        let mut next: Vec<u32> = grid.start[..gw * gh].to_vec();
        grid.items = vec![0; cells.len()];
        for (i, &c) in cells.iter().enumerate() {
            grid.items[next[c] as usize] = i as u32 + 1;
            next[c] += 1;
        }
        grid
    }

    /// Cell column (or row) of coordinate `v`, clamped into the grid.
    #[inline]
    fn index(&self, v: f64, n: usize) -> usize {
        ((v / self.cell).floor().max(0.0) as usize).min(n - 1)
    }

    #[inline]
    fn cell_of(&self, p: [f64; 2]) -> usize {
        self.index(p[1], self.gh) * self.gw + self.index(p[0], self.gw)
    }

    #[inline]
    fn cell_items(&self, cx: usize, cy: usize) -> &[u32] {
        let c = cy * self.gw + cx;
        &self.items[self.start[c] as usize..self.start[c + 1] as usize]
    }

    /// Calls `f` with every label whose centroid may lie within `radius` of
    /// `p` (a superset: whole cells of the enclosing box; the caller checks
    /// the distance).
    pub(crate) fn near(&self, p: [f64; 2], radius: f64, mut f: impl FnMut(u32)) {
        if !(p[0] + radius >= 0.0 && p[1] + radius >= 0.0) {
            return;
        }
        let (x0, x1) = (
            self.index(p[0] - radius, self.gw),
            self.index(p[0] + radius, self.gw),
        );
        let (y0, y1) = (
            self.index(p[1] - radius, self.gh),
            self.index(p[1] + radius, self.gh),
        );
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                for &l in self.cell_items(cx, cy) {
                    f(l);
                }
            }
        }
    }

    /// The label whose centroid is nearest to `p` (ties to the smaller
    /// label), searching rings of cells outwards until no farther ring can
    /// hold anything nearer.
    pub(crate) fn nearest(&self, p: [f64; 2], centroid: &[[f64; 2]]) -> Option<u32> {
        let (px, py) = (self.index(p[0], self.gw), self.index(p[1], self.gh));
        let mut best: Option<(f64, u32)> = None;
        let rings = self.gw.max(self.gh);
        for k in 0..rings {
            let (x0, x1) = (px.saturating_sub(k), (px + k).min(self.gw - 1));
            let (y0, y1) = (py.saturating_sub(k), (py + k).min(self.gh - 1));
            for cy in y0..=y1 {
                for cx in x0..=x1 {
                    // Only the ring itself: inner cells were seen before.
                    if cx.abs_diff(px) != k && cy.abs_diff(py) != k {
                        continue;
                    }
                    for &l in self.cell_items(cx, cy) {
                        let c = centroid[l as usize];
                        let d2 = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
                        if best.is_none_or(|(bd, bl)| d2 < bd || (d2 == bd && l < bl)) {
                            best = Some((d2, l));
                        }
                    }
                }
            }
            // Everything in ring k + 1 is at least k cells away from `p`
            // (also when `p` lies off the grid and was clamped onto it).
            let reach = k as f64 * self.cell;
            if best.is_some_and(|(d2, _)| d2 <= reach * reach) {
                break;
            }
        }
        best.map(|(_, l)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize, side: f64) -> Vec<[f64; 2]> {
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * side
        };
        (0..=n).map(|_| [next(), next()]).collect()
    }

    #[test]
    fn near_finds_every_point_within_the_radius() {
        let c = points(500, 200.0);
        let g = CentroidGrid::new(&c, 200, 200);
        for (q, r) in [
            ([50.0, 60.0], 13.0),
            ([-5.0, 199.0], 30.0),
            ([100.0, 100.0], 0.5),
        ] {
            let mut found = Vec::new();
            g.near(q, r, |l| found.push(l));
            for (l, p) in c.iter().enumerate().skip(1) {
                let d2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
                if d2 <= r * r {
                    assert!(found.contains(&(l as u32)), "{l} missed near {q:?}");
                }
            }
        }
    }

    #[test]
    fn nearest_agrees_with_a_full_scan() {
        let c = points(300, 100.0);
        let g = CentroidGrid::new(&c, 100, 100);
        for q in [
            [0.0, 0.0],
            [50.0, 50.0],
            [-40.0, 130.0],
            [99.0, 1.0],
            [300.0, -300.0],
        ] {
            let full = (1..c.len())
                .min_by(|&a, &b| {
                    let da = (q[0] - c[a][0]).powi(2) + (q[1] - c[a][1]).powi(2);
                    let db = (q[0] - c[b][0]).powi(2) + (q[1] - c[b][1]).powi(2);
                    da.total_cmp(&db)
                })
                .map(|l| l as u32);
            assert_eq!(g.nearest(q, &c), full, "at {q:?}");
        }
    }
}
