//! Segmentation of line art into closed regions, and label images.
//!
//! The rule is the official one (the parity vectors are its specification):
//! regions are the 4-connected components of non-line pixels, numbered 1..N in
//! raster order of their first pixel. Then, for each distinct colour-trace RGB
//! value in ascending order, each 8-connected component of that colour (raster
//! order) joins the most frequent non-zero label in its 3x3-dilated footprint
//! (ties to the smallest label, no label to a new one, max + 1). The label image
//! is updated as components are merged, so a trace may join a region through a
//! trace merged before it. Black and translucent lines stay 0.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gaps::{closing_pixels, find_closings, Closing};
use crate::imageio::{read_picture, write_rgb_png};
use crate::lineart::{LineArt, PixelKind};

/// The largest label a 24-bit label PNG can store.
pub const MAX_LABEL: u32 = 0x00ff_ffff;

/// A label image: 0 marks line pixels, 1..=`count` the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    width: u32,
    height: u32,
    labels: Vec<u32>,
    count: u32,
}

/// Statistics of one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentStats {
    /// The 1-based label.
    pub id: u32,
    /// Number of pixels.
    pub pixels: u64,
    /// Inclusive bounding box `[x_min, y_min, x_max, y_max]`.
    pub bbox: [u32; 4],
    /// Mean pixel position `[x, y]` (pixel centres at integer coordinates).
    pub centroid: [f64; 2],
}

impl Segmentation {
    /// Segments line art by the official rule.
    ///
    /// # Errors
    /// [`Error::TooManySegments`] past [`MAX_LABEL`].
    pub fn from_line_art(art: &LineArt) -> Result<Self> {
        Self::from_kinds(&art.kinds(), art.width(), art.height())
    }

    /// Segments line art after closing its gaps up to `max_gap` pixels wide
    /// (see [`crate::gaps`]); returns the closings too.
    ///
    /// The closings separate segments like lines, then each closing pixel
    /// takes the label of a neighbouring segment (the smallest among its
    /// 4-neighbours, ring by ring), so no closing pixel is a line (label 0)
    /// and every output paints it with a fill. `max_gap == 0` segments as
    /// [`Segmentation::from_line_art`].
    ///
    /// # Errors
    /// As [`Segmentation::from_line_art`].
    pub fn from_line_art_closing(art: &LineArt, max_gap: u32) -> Result<(Self, Vec<Closing>)> {
        let (w, h) = (art.width(), art.height());
        let mut kinds = art.kinds();
        let closings = find_closings(&kinds, w, h, max_gap);
        if closings.is_empty() {
            return Ok((Self::from_kinds(&kinds, w, h)?, closings));
        }
        let pixels = closing_pixels(&closings, &kinds, w);
        for &i in &pixels {
            kinds[i] = PixelKind::Line;
        }
        let mut seg = Self::from_kinds(&kinds, w, h)?;
        seg.label_from_neighbours(pixels);
        Ok((seg, closings))
    }

    /// Gives the unlabelled `pixels` the smallest label among their
    /// 4-neighbours, ring by ring from the labelled ones, so the result
    /// does not depend on the order of `pixels`.
    fn label_from_neighbours(&mut self, mut pixels: Vec<usize>) {
        let (w, h) = (self.width as usize, self.height as usize);
        loop {
            let assigned: Vec<(usize, u32)> = pixels
                .iter()
                .filter_map(|&i| {
                    neighbours4(i, w, h)
                        .map(|j| self.labels[j])
                        .filter(|&l| l != 0)
                        .min()
                        .map(|l| (i, l))
                })
                .collect();
            if assigned.is_empty() {
                return;
            }
            for &(i, l) in &assigned {
                self.labels[i] = l;
            }
            pixels.retain(|&i| self.labels[i] == 0);
        }
    }

    /// Segments pixels already classified (row-major, `width` x `height`).
    fn from_kinds(kinds: &[PixelKind], width: u32, height: u32) -> Result<Self> {
        let (w, h) = (width as usize, height as usize);
        let mut labels = vec![0u32; w * h];
        let mut next: u64 = 1;
        let mut stack: Vec<usize> = Vec::new();

        for start in 0..w * h {
            if kinds[start] != PixelKind::Fill || labels[start] != 0 {
                continue;
            }
            if next > u64::from(MAX_LABEL) {
                return Err(Error::TooManySegments { count: next });
            }
            let id = next as u32;
            next += 1;
            labels[start] = id;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % w, i / w);
                let mut visit = |j: usize| {
                    if labels[j] == 0 && kinds[j] == PixelKind::Fill {
                        labels[j] = id;
                        stack.push(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < w {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - w);
                }
                if y + 1 < h {
                    visit(i + w);
                }
            }
        }
        let mut max_label = (next - 1) as u32;
        merge_traces(kinds, w, h, &mut labels, &mut max_label)?;
        Ok(Segmentation {
            width: w as u32,
            height: h as u32,
            labels,
            count: max_label,
        })
    }

    /// Builds a segmentation from raw labels, renumbering the distinct non-zero
    /// labels to 1..L in ascending order (as the official data loader does).
    ///
    /// # Panics
    /// If `labels.len() != width * height`.
    pub fn from_labels(width: u32, height: u32, mut labels: Vec<u32>) -> Self {
        assert_eq!(
            labels.len(),
            width as usize * height as usize,
            "labels must hold width * height values"
        );
        let max = labels.iter().copied().max().unwrap_or(0);
        let mut present = vec![false; max as usize + 1];
        for &l in &labels {
            present[l as usize] = true;
        }
        let mut map = vec![0u32; max as usize + 1];
        let mut n = 0;
        for (l, p) in present.iter().enumerate().skip(1) {
            if *p {
                n += 1;
                map[l] = n;
            }
        }
        if n != max {
            for l in &mut labels {
                *l = map[*l as usize];
            }
        }
        Segmentation {
            width,
            height,
            labels,
            count: n,
        }
    }

    /// Labels as given, with `count` segments (ids may be absent, e.g.
    /// after resizing); no renumbering.
    ///
    /// # Panics
    /// If `labels.len() != width * height` or a label exceeds `count`.
    pub fn with_count(width: u32, height: u32, labels: Vec<u32>, count: u32) -> Self {
        assert_eq!(
            labels.len(),
            width as usize * height as usize,
            "labels must hold width * height values"
        );
        assert!(
            labels.iter().all(|&l| l <= count),
            "labels must not exceed count"
        );
        Segmentation {
            width,
            height,
            labels,
            count,
        }
    }

    /// Reads a 24-bit label PNG (`label = R<<16 | G<<8 | B`, 0 = line) and
    /// renumbers its labels to 1..L.
    ///
    /// All 24 bits are decoded: the official loader's 8-bit wrap-around (which
    /// loses segments past 255) is not reproduced.
    pub fn open(path: &Path) -> Result<Self> {
        let pic = read_picture(path)?;
        let (w, h) = pic.rgba.dimensions();
        let labels = pic
            .rgba
            .pixels()
            .map(|p| crate::lineart::pack_rgb(p.0))
            .collect();
        Ok(Self::from_labels(w, h, labels))
    }

    /// Writes the 24-bit label PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut data = Vec::with_capacity(self.labels.len() * 3);
        for &l in &self.labels {
            data.extend_from_slice(&[(l >> 16) as u8, (l >> 8) as u8, l as u8]);
        }
        write_rgb_png(path, &data, self.width, self.height)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Fails with [`Error::SizeMismatch`] unless an image of `width` x
    /// `height` covers the same canvas as these labels.
    pub fn check_size(&self, width: u32, height: u32) -> Result<()> {
        if (width, height) == (self.width, self.height) {
            Ok(())
        } else {
            Err(Error::SizeMismatch {
                expected: [self.width, self.height],
                actual: [width, height],
            })
        }
    }

    /// Number of segments; labels run 1..=count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The labels, row-major.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The label at `(x, y)`.
    ///
    /// # Panics
    /// If the point lies outside the image.
    pub fn label_at(&self, x: u32, y: u32) -> u32 {
        assert!(x < self.width && y < self.height, "point outside the image");
        self.labels[y as usize * self.width as usize + x as usize]
    }

    /// Pixel count of every label, indexed by label (entry 0 counts lines).
    pub fn pixel_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.count as usize + 1];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Labels where every line pixel takes the label of the nearest segment
    /// (breadth-first, 4-neighbour distance), so fills reach under the lines.
    pub fn filled_labels(&self) -> Vec<u32> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut labels = self.labels.clone();
        let mut frontier: Vec<usize> = (0..w * h)
            .filter(|&i| labels[i] == 0 && neighbours4(i, w, h).any(|j| labels[j] != 0))
            .collect();
        let mut next = Vec::new();
        while !frontier.is_empty() {
            // Assign the whole ring from the previous state so the result does not
            // depend on the scan order within a ring (smallest neighbour wins).
            let assigned: Vec<(usize, u32)> = frontier
                .iter()
                .filter(|&&i| labels[i] == 0)
                .filter_map(|&i| {
                    neighbours4(i, w, h)
                        .map(|j| labels[j])
                        .filter(|&l| l != 0)
                        .min()
                        .map(|l| (i, l))
                })
                .collect();
            for &(i, l) in &assigned {
                labels[i] = l;
            }
            next.clear();
            for &(i, _) in &assigned {
                next.extend(neighbours4(i, w, h).filter(|&j| labels[j] == 0));
            }
            next.sort_unstable();
            next.dedup();
            std::mem::swap(&mut frontier, &mut next);
        }
        labels
    }

    /// For every segment of `self`, the segment of `other` (same canvas)
    /// that covers most of its pixels, with `other`'s line pixels counted
    /// as their nearest segment (ties to the smaller label); indexed by
    /// label, entry 0 unused. How a result made on one segmentation is
    /// carried over to another (e.g. scored on a dataset's own labels).
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the canvases differ.
    pub fn majority_of(&self, other: &Segmentation) -> Result<Vec<u32>> {
        other.check_size(self.width, self.height)?;
        let filled = other.filled_labels();
        let mut pairs: std::collections::HashMap<(u32, u32), u64> = Default::default();
        // Runs of one pair are long (segments are areas): count them whole.
        let mut run: Option<((u32, u32), u64)> = None;
        for (&a, &b) in self.labels.iter().zip(&filled) {
            if a == 0 {
                continue;
            }
            match &mut run {
                Some((p, n)) if *p == (a, b) => *n += 1,
                _ => {
                    if let Some((p, n)) = run.replace(((a, b), 1)) {
                        *pairs.entry(p).or_insert(0) += n;
                    }
                }
            }
        }
        if let Some((p, n)) = run {
            *pairs.entry(p).or_insert(0) += n;
        }
        let mut best = vec![(0u64, 0u32); self.count as usize + 1];
        for ((a, b), n) in pairs {
            let e = &mut best[a as usize];
            if n > e.0 || (n == e.0 && b < e.1) {
                *e = (n, b);
            }
        }
        Ok(best.into_iter().map(|(_, b)| b).collect())
    }

    /// Per-segment statistics, ordered by label.
    pub fn stats(&self) -> Vec<SegmentStats> {
        let n = self.count as usize + 1;
        let mut acc = vec![(0u64, u32::MAX, u32::MAX, 0u32, 0u32, 0u64, 0u64); n];
        let w = self.width as usize;
        for (row, chunk) in self.labels.chunks_exact(w).enumerate() {
            let y = row as u32;
            for (x, &l) in chunk.iter().enumerate() {
                let x = x as u32;
                let a = &mut acc[l as usize];
                a.0 += 1;
                a.1 = a.1.min(x);
                a.2 = a.2.min(y);
                a.3 = a.3.max(x);
                a.4 = a.4.max(y);
                a.5 += u64::from(x);
                a.6 += u64::from(y);
            }
        }
        acc.iter()
            .enumerate()
            .skip(1)
            .map(|(id, a)| SegmentStats {
                id: id as u32,
                pixels: a.0,
                bbox: [a.1, a.2, a.3, a.4],
                centroid: [a.5 as f64 / a.0 as f64, a.6 as f64 / a.0 as f64],
            })
            .collect()
    }
}

fn neighbours4(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

/// Merges colour-trace lines into neighbouring regions (see the module docs).
fn merge_traces(
    kinds: &[PixelKind],
    w: usize,
    h: usize,
    labels: &mut [u32],
    max_label: &mut u32,
) -> Result<()> {
    // (colour, pixel index) sorted: colours ascending, pixels in raster order.
    let mut traces: Vec<(u32, u32)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match k {
            PixelKind::Trace(c) => Some((*c, i as u32)),
            _ => None,
        })
        .collect();
    if traces.is_empty() {
        return Ok(());
    }
    traces.sort_unstable();

    // `done` marks trace pixels already put in a component; `stamp` marks the
    // footprint pixels of the component being measured so each counts once.
    let mut done = vec![false; w * h];
    let mut stamp = vec![0u32; w * h];
    let mut comp_id = 0u32;
    let mut component: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut votes: Vec<(u32, u32)> = Vec::new();

    for &(colour, start) in &traces {
        let start = start as usize;
        if done[start] {
            continue;
        }
        component.clear();
        done[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            component.push(i);
            for j in neighbours8(i, w, h) {
                if !done[j] && kinds[j] == PixelKind::Trace(colour) {
                    done[j] = true;
                    stack.push(j);
                }
            }
        }

        comp_id += 1;
        votes.clear();
        for &i in &component {
            for j in std::iter::once(i).chain(neighbours8(i, w, h)) {
                if stamp[j] == comp_id {
                    continue;
                }
                stamp[j] = comp_id;
                let l = labels[j];
                if l != 0 {
                    match votes.iter_mut().find(|v| v.0 == l) {
                        Some(v) => v.1 += 1,
                        None => votes.push((l, 1)),
                    }
                }
            }
        }
        // Most votes, then smallest label.
        let target = match votes
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        {
            Some(&(l, _)) => l,
            None => {
                if *max_label >= MAX_LABEL {
                    return Err(Error::TooManySegments {
                        count: u64::from(*max_label) + 1,
                    });
                }
                *max_label += 1;
                *max_label
            }
        };
        for &i in &component {
            labels[i] = target;
        }
    }
    Ok(())
}

/// The up to eight neighbours of pixel `i` inside a `w` x `h` image.
#[inline]
fn neighbours8(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = ((i % w) as isize, (i / w) as isize);
    const OFFSETS: [(isize, isize); 8] = [
        (-1, -1),
        (0, -1),
        (1, -1),
        (-1, 0),
        (1, 0),
        (-1, 1),
        (0, 1),
        (1, 1),
    ];
    OFFSETS.iter().filter_map(move |&(dx, dy)| {
        let (nx, ny) = (x + dx, y + dy);
        (nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h)
            .then(|| ny as usize * w + nx as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    /// Draws line art from text: '.' background, '#' black line, letters are
    /// colour traces of distinct colours ('a' < 'b' in packed RGB).
    fn draw(rows: &[&str]) -> LineArt {
        let h = rows.len() as u32;
        let w = rows[0].len() as u32;
        let mut img = RgbaImage::new(w, h);
        for (y, r) in rows.iter().enumerate() {
            for (x, c) in r.chars().enumerate() {
                let p = match c {
                    '.' => [255, 255, 255, 0],
                    '#' => [0, 0, 0, 255],
                    'a' => [10, 0, 0, 255],
                    'b' => [20, 0, 0, 255],
                    _ => panic!("bad test char"),
                };
                img.put_pixel(x as u32, y as u32, Rgba(p));
            }
        }
        LineArt::from_rgba(img, true)
    }

    fn grid(s: &Segmentation) -> Vec<Vec<u32>> {
        s.labels()
            .chunks(s.width() as usize)
            .map(|r| r.to_vec())
            .collect()
    }

    #[test]
    fn regions_are_4_connected_in_raster_order() {
        let s = Segmentation::from_line_art(&draw(&["..#..", "###..", ".#.#.", "#...#"])).unwrap();
        assert_eq!(
            grid(&s),
            vec![
                vec![1, 1, 0, 2, 2],
                vec![0, 0, 0, 2, 2],
                vec![3, 0, 4, 0, 2],
                vec![0, 4, 4, 4, 0],
            ]
        );
        assert_eq!(s.count(), 4);
    }

    #[test]
    fn trace_joins_most_frequent_neighbour_with_ties_to_smallest() {
        // The trace 'a' has 2 footprint pixels of region 1, 1 of region 3 and
        // 4 of region 2.
        let s =
            Segmentation::from_line_art(&draw(&["..a...", "..a...", "##a...", "..#..."])).unwrap();
        let g = grid(&s);
        assert_eq!(g[0][2], 2);
        // A tie between regions 1 and 2 goes to the smaller label.
        let s = Segmentation::from_line_art(&draw(&[".a.", "###"])).unwrap();
        assert_eq!(grid(&s), vec![vec![1, 1, 2], vec![0, 0, 0]]);
    }

    #[test]
    fn isolated_trace_gets_a_new_label_and_chains_update() {
        // 'b' is enclosed by black lines and 'a' only; 'a' is isolated.
        let s =
            Segmentation::from_line_art(&draw(&[".#####", ".#a#b#", ".#####", "......"])).unwrap();
        let g = grid(&s);
        // Region 1 is the whole outside; 'a' (colour processed first) has no
        // labelled neighbour -> new label 2. 'b' likewise -> 3.
        assert_eq!(g[1][2], 2);
        assert_eq!(g[1][4], 3);
        assert_eq!(s.count(), 3);
        // Chain: 'b' touches only the already-merged 'a'.
        let s = Segmentation::from_line_art(&draw(&["####", "#ab#", "####", "...."])).unwrap();
        let g = grid(&s);
        assert_eq!(g[1][1], 2);
        assert_eq!(g[1][2], 2);
    }

    #[test]
    fn trace_components_are_8_connected() {
        let s = Segmentation::from_line_art(&draw(&["a.#.", ".a#.", "###."])).unwrap();
        let g = grid(&s);
        assert_eq!(g[0][0], g[1][1]);
    }

    #[test]
    fn relabel_is_ascending_and_dense() {
        let s = Segmentation::from_labels(3, 1, vec![7, 0, 3]);
        assert_eq!(s.labels(), &[2, 0, 1]);
        assert_eq!(s.count(), 2);
    }

    #[test]
    fn label_png_round_trip_keeps_24_bits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.png");
        let labels: Vec<u32> = (0..600).collect();
        let s = Segmentation::from_labels(600, 1, labels);
        s.save(&p).unwrap();
        let back = Segmentation::open(&p).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.count(), 599);
    }

    #[test]
    fn stats_are_exact() {
        let s = Segmentation::from_labels(3, 2, vec![1, 1, 0, 0, 1, 2]);
        let st = s.stats();
        assert_eq!(st[0].pixels, 3);
        assert_eq!(st[0].bbox, [0, 0, 1, 1]);
        assert_eq!(st[0].centroid, [2.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(st[1].bbox, [2, 1, 2, 1]);
    }
}
