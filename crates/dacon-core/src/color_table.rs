//! Colour tables: the colour of every segment, and the official JSON format.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use image::RgbaImage;

use crate::error::{Error, Result, ResultExt};
use crate::imageio::{read_picture, write_atomic};
use crate::segment::Segmentation;

/// An 8-bit RGBA colour.
pub type Rgba = [u8; 4];

/// The background colour of PaintBucket-Character (transparent white).
pub const BACKGROUND: Rgba = [255, 255, 255, 0];

/// The colour of every segment of one frame; entry `i` is segment `i + 1`.
///
/// Entries may be missing when a table comes from a file written by another
/// tool (a prediction that skipped segments); tables built from images are
/// complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColorTable {
    colors: Vec<Option<Rgba>>,
}

impl ColorTable {
    /// A complete table from colours in segment order.
    pub fn from_colors(colors: impl IntoIterator<Item = Rgba>) -> Self {
        ColorTable {
            colors: colors.into_iter().map(Some).collect(),
        }
    }

    /// The most frequent RGBA of `image` inside each segment (ties to the
    /// lexicographically smallest RGBA), as the official colour extractor.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the image and the labels differ in size.
    pub fn from_image(seg: &Segmentation, image: &RgbaImage) -> Result<Self> {
        seg.check_size(image.width(), image.height())?;
        // Nearly every segment is one flat colour, so a short list of
        // (colour, count) per segment beats a hash map; segments with many
        // colours (anti-aliased or textured paint) spill into one.
        const SPILL: usize = 8;
        let n = seg.count() as usize;
        let mut small: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n + 1];
        let mut big: HashMap<(u32, u32), u32> = HashMap::new();
        let mut spilled = vec![false; n + 1];
        let raw: &[u8] = image.as_raw();
        for (&l, px) in seg.labels().iter().zip(raw.chunks_exact(4)) {
            if l == 0 {
                continue;
            }
            let c = u32::from_be_bytes([px[0], px[1], px[2], px[3]]);
            let l = l as usize;
            if spilled[l] {
                *big.entry((l as u32, c)).or_insert(0) += 1;
                continue;
            }
            let list = &mut small[l];
            if let Some(e) = list.iter_mut().find(|e| e.0 == c) {
                e.1 += 1;
            } else if list.len() < SPILL {
                list.push((c, 1));
            } else {
                spilled[l] = true;
                for (c0, k) in list.drain(..) {
                    big.insert((l as u32, c0), k);
                }
                big.insert((l as u32, c), 1);
            }
        }
        let mut best: Vec<Option<(u32, u32)>> = small
            .iter()
            .map(|list| list.iter().copied().reduce(pick))
            .collect();
        for ((l, c), k) in big {
            let b = &mut best[l as usize];
            *b = Some(match *b {
                Some(prev) => pick(prev, (c, k)),
                None => (c, k),
            });
        }
        Ok(ColorTable {
            colors: best
                .into_iter()
                .skip(1)
                .map(|b| b.map(|(c, _)| c.to_be_bytes()))
                .collect(),
        })
    }

    /// Number of entries (the largest segment id covered).
    pub fn len(&self) -> usize {
        self.colors.len()
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.colors.is_empty()
    }

    /// The colour of 1-based segment `id`, if present.
    pub fn get(&self, id: u32) -> Option<Rgba> {
        id.checked_sub(1)
            .and_then(|i| self.colors.get(i as usize))
            .copied()
            .flatten()
    }

    /// Sets the colour of 1-based segment `id`, growing the table as needed.
    ///
    /// # Panics
    /// If `id` is 0 (the line label has no colour).
    pub fn set(&mut self, id: u32, color: Rgba) {
        assert!(id > 0, "segment ids start at 1");
        let i = id as usize - 1;
        if self.colors.len() <= i {
            self.colors.resize(i + 1, None);
        }
        self.colors[i] = Some(color);
    }

    /// Entries in segment order, `None` where missing.
    pub fn entries(&self) -> &[Option<Rgba>] {
        &self.colors
    }

    /// Checks that every segment of `seg` has a colour.
    ///
    /// # Errors
    /// [`Error::MissingColor`] naming the first segment without one.
    pub fn check_covers(&self, seg: &Segmentation) -> Result<()> {
        match (1..=seg.count()).find(|&id| self.get(id).is_none()) {
            Some(segment) => Err(Error::MissingColor { segment }),
            None => Ok(()),
        }
    }

    /// The table in the dataset's JSON layout: `{"1": [r, g, b, a], ...}`,
    /// indented by two spaces as PaintBucket-Character's `seg/*.json` files
    /// (`json.dump(..., indent=2)`), missing entries left out.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(self.colors.len() * 48 + 2);
        s.push('{');
        let mut first = true;
        for (i, c) in self.colors.iter().enumerate() {
            let Some(c) = c else { continue };
            s.push_str(if first { "\n" } else { ",\n" });
            first = false;
            let _ = write!(
                s,
                "  \"{}\": [\n    {},\n    {},\n    {},\n    {}\n  ]",
                i + 1,
                c[0],
                c[1],
                c[2],
                c[3]
            );
        }
        s.push_str(if first { "}" } else { "\n}" });
        s
    }

    /// The table as the official inference writes predictions
    /// (`json.dump` without indent): `{"1": [r, g, b, a], "2": ...}`.
    pub fn to_json_compact(&self) -> String {
        let mut s = String::with_capacity(self.colors.len() * 24 + 2);
        s.push('{');
        let mut first = true;
        for (i, c) in self.colors.iter().enumerate() {
            let Some(c) = c else { continue };
            if !first {
                s.push_str(", ");
            }
            first = false;
            let _ = write!(s, "\"{}\": [{}, {}, {}, {}]", i + 1, c[0], c[1], c[2], c[3]);
        }
        s.push('}');
        s
    }

    /// Parses the official JSON layout. Colours may be `[r,g,b,a]` or
    /// `[r,g,b]` (opaque); keys are 1-based segment ids, in any order.
    ///
    /// # Errors
    /// [`Error::ColorTable`] naming the bad entry.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::ColorTable { reason };
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        let mut table = ColorTable::default();
        for (k, v) in map {
            let id: u32 = k
                .parse()
                .ok()
                .filter(|&id| id > 0 && id <= crate::segment::MAX_LABEL)
                .ok_or_else(|| bad(format!("key {k:?} is not a segment id (1..16777215)")))?;
            let arr = v
                .as_array()
                .filter(|a| a.len() == 3 || a.len() == 4)
                .ok_or_else(|| bad(format!("segment {id}: expected [r, g, b, a]")))?;
            let mut c = [0u8, 0, 0, 255];
            for (slot, x) in c.iter_mut().zip(arr) {
                *slot = x
                    .as_u64()
                    .and_then(|x| u8::try_from(x).ok())
                    .ok_or_else(|| bad(format!("segment {id}: channel {x} is not 0..255")))?;
            }
            table.set(id, c);
        }
        Ok(table)
    }

    /// Reads a JSON table from a file.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).at(path)
    }

    /// The table of a painted frame: the most frequent colour of the image
    /// at `painted` in each segment of `seg` (see [`ColorTable::from_image`]).
    ///
    /// # Errors
    /// The image's read errors, or [`Error::SizeMismatch`], naming the file.
    pub fn from_painted(seg: &Segmentation, painted: &Path) -> Result<Self> {
        let picture = read_picture(painted)?;
        Self::from_image(seg, &picture.rgba).at(painted)
    }

    /// Writes the JSON table atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// The better of two (colour, count) candidates: more pixels, then the
/// smaller RGBA (packed big-endian, so numeric order is lexicographic).
#[inline]
fn pick(a: (u32, u32), b: (u32, u32)) -> (u32, u32) {
    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba as Px;

    #[test]
    fn most_frequent_with_lexicographic_ties() {
        let seg = Segmentation::from_labels(6, 1, vec![1, 1, 1, 0, 2, 2]);
        let mut img = RgbaImage::new(6, 1);
        let cols = [
            [9, 9, 9, 255],
            [1, 2, 3, 255],
            [9, 9, 9, 255],
            [0, 0, 0, 255],
            [5, 0, 0, 255],
            [4, 9, 9, 255],
        ];
        for (x, c) in cols.iter().enumerate() {
            img.put_pixel(x as u32, 0, Px(*c));
        }
        let t = ColorTable::from_image(&seg, &img).unwrap();
        assert_eq!(t.get(1), Some([9, 9, 9, 255]));
        assert_eq!(t.get(2), Some([4, 9, 9, 255]));
    }

    #[test]
    fn many_colours_spill_without_changing_the_answer() {
        let n = 40u32;
        let seg = Segmentation::from_labels(n, 1, vec![1; n as usize]);
        let mut img = RgbaImage::new(n, 1);
        for x in 0..n {
            // Colour 30 appears twice, everything else once.
            let v = if x == 35 { 30 } else { x as u8 };
            img.put_pixel(x, 0, Px([v, 0, 0, 255]));
        }
        let t = ColorTable::from_image(&seg, &img).unwrap();
        assert_eq!(t.get(1), Some([30, 0, 0, 255]));
    }

    #[test]
    fn json_round_trip_matches_python_indent_2() {
        let t = ColorTable::from_colors([[255, 255, 255, 0], [1, 2, 3, 255]]);
        let s = t.to_json();
        assert_eq!(
            s,
            "{\n  \"1\": [\n    255,\n    255,\n    255,\n    0\n  ],\n  \"2\": [\n    1,\n    2,\n    3,\n    255\n  ]\n}"
        );
        assert_eq!(ColorTable::from_json(&s).unwrap(), t);
        assert_eq!(
            t.to_json_compact(),
            r#"{"1": [255, 255, 255, 0], "2": [1, 2, 3, 255]}"#
        );
        let compact = ColorTable::from_json(r#"{"2": [1, 2, 3], "1": [255,255,255,0]}"#).unwrap();
        assert_eq!(compact, t);
    }

    #[test]
    fn bad_json_is_an_error() {
        for s in [
            "[]",
            "{\"0\": [1,2,3,4]}",
            "{\"x\": [1,2,3,4]}",
            "{\"1\": [1,2]}",
            "{\"1\": [1,2,3,256]}",
            "{\"1\": [1,2,3,-1]}",
            "{",
        ] {
            assert!(
                matches!(ColorTable::from_json(s), Err(Error::ColorTable { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn size_mismatch_is_reported() {
        let seg = Segmentation::from_labels(2, 1, vec![1, 1]);
        let img = RgbaImage::new(3, 1);
        assert!(matches!(
            ColorTable::from_image(&seg, &img),
            Err(Error::SizeMismatch { .. })
        ));
    }
}
