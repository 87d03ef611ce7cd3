//! Line art: which pixels are lines, and which lines are colour traces.

use std::path::Path;

use image::RgbaImage;

use crate::error::{Error, Result, ResultExt};
use crate::imageio::{read_picture, Picture};

/// What a pixel of line art is, by the official rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelKind {
    /// Not a line: part of a closed region.
    Fill,
    /// A line that separates regions and stays a line (label 0).
    Line,
    /// An opaque coloured line (shadow or highlight boundary), merged into a
    /// neighbouring region; the value is the packed `R<<16 | G<<8 | B`.
    Trace(u32),
}

/// A line-art frame.
///
/// Line pixels follow the official DACoN/BasicPBC rule: with alpha, any pixel
/// with alpha > 0; without alpha, any pixel with a channel below 255. Pure
/// black opaque line pixels are lines; other opaque line pixels are colour
/// traces; translucent line pixels stay lines.
#[derive(Debug, Clone)]
pub struct LineArt {
    rgba: RgbaImage,
    has_alpha: bool,
}

impl LineArt {
    /// Reads line art from a PNG, TGA or TIFF file.
    ///
    /// # Errors
    /// The file's I/O or decode error, or [`Error::EmptyLineArt`] when the
    /// image has no line pixel at all (a blank or fully coloured frame is
    /// almost always the wrong file).
    pub fn open(path: &Path) -> Result<Self> {
        let art = Self::read(path)?;
        art.check_not_empty().at(path)?;
        Ok(art)
    }

    /// Reads line art without checking that it has lines and regions: a
    /// scan is all "line" by the official rule until it is binarised.
    ///
    /// # Errors
    /// The file's I/O or decode error.
    pub fn read(path: &Path) -> Result<Self> {
        let Picture { rgba, has_alpha } = read_picture(path)?;
        Ok(LineArt { rgba, has_alpha })
    }

    /// Wraps decoded pixels; `has_alpha` selects the line rule.
    pub fn from_rgba(rgba: RgbaImage, has_alpha: bool) -> Self {
        LineArt { rgba, has_alpha }
    }

    /// Fails with [`Error::EmptyLineArt`] when there is no line pixel, or no
    /// pixel that is not a line.
    pub fn check_not_empty(&self) -> Result<()> {
        let n = self.rgba.pixels().filter(|p| self.is_line_px(p.0)).count();
        let reason = if n == 0 {
            "no line pixels (transparent or white everywhere); is this the line layer?"
        } else if n == self.rgba.pixels().len() {
            "every pixel is a line pixel, so there is no region to fill; if the background is opaque white, check the file has the expected alpha"
        } else {
            return Ok(());
        };
        Err(Error::EmptyLineArt { reason })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.rgba.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.rgba.height()
    }

    /// The pixels as drawn.
    pub fn rgba(&self) -> &RgbaImage {
        &self.rgba
    }

    /// Whether the source had an alpha channel.
    pub fn has_alpha(&self) -> bool {
        self.has_alpha
    }

    #[inline]
    fn is_line_px(&self, p: [u8; 4]) -> bool {
        if self.has_alpha {
            p[3] > 0
        } else {
            p[0] < 255 || p[1] < 255 || p[2] < 255
        }
    }

    /// Classifies pixel `p` by the official rule.
    #[inline]
    pub fn kind_of(&self, p: [u8; 4]) -> PixelKind {
        if !self.is_line_px(p) {
            PixelKind::Fill
        } else if p[3] == 255 && (p[0] | p[1] | p[2]) != 0 {
            PixelKind::Trace(pack_rgb(p))
        } else {
            PixelKind::Line
        }
    }

    /// Classifies every pixel, row-major.
    pub fn kinds(&self) -> Vec<PixelKind> {
        self.rgba.pixels().map(|p| self.kind_of(p.0)).collect()
    }

    /// Binarises anti-aliased line art in place.
    ///
    /// A pixel's ink is its alpha (images with alpha) or `255 - min(R,G,B)`
    /// (without). Pixels with ink below `threshold` become background; the
    /// others become opaque: near-grey ones (channel spread < 48) pure black
    /// lines, coloured ones colour traces of their own RGB. Afterwards the
    /// image follows the official rule exactly.
    ///
    /// # Panics
    /// If `threshold` is 0 (every pixel would be a line).
    pub fn binarize(&mut self, threshold: u8) {
        assert!(threshold > 0, "threshold must be at least 1");
        let has_alpha = self.has_alpha;
        for p in self.rgba.pixels_mut() {
            let [r, g, b, a] = p.0;
            let ink = if has_alpha { a } else { 255 - r.min(g).min(b) };
            let spread = r.max(g).max(b) - r.min(g).min(b);
            p.0 = if ink < threshold {
                if has_alpha {
                    [255, 255, 255, 0]
                } else {
                    [255, 255, 255, 255]
                }
            } else if spread < 48 {
                [0, 0, 0, 255]
            } else {
                [r, g, b, 255]
            };
        }
    }
}

impl LineArt {
    /// How much ink pixel `p` carries: its alpha (images with alpha) or
    /// `255 - min(R,G,B)` (without).
    #[inline]
    pub fn ink_of(&self, p: [u8; 4]) -> u8 {
        if self.has_alpha {
            p[3]
        } else {
            255 - p[0].min(p[1]).min(p[2])
        }
    }

    /// Reads an image whose alpha channel is opaque everywhere as ink on
    /// paper (the rule for images without alpha): a scan saved as RGBA has
    /// its ink in the colours, not in the alpha.
    pub fn read_opaque_as_paper(&mut self) {
        if self.has_alpha && self.rgba.pixels().all(|p| p.0[3] == 255) {
            self.has_alpha = false;
        }
    }

    /// An ink threshold that separates lines from paper: Otsu's threshold of
    /// the ink histogram (the level that best splits it into two classes),
    /// kept within 32..=224 so a nearly blank frame still gets a sane one.
    pub fn auto_threshold(&self) -> u8 {
        let mut hist = [0u64; 256];
        for p in self.rgba.pixels() {
            hist[usize::from(self.ink_of(p.0))] += 1;
        }
        otsu(&hist).clamp(32, 224)
    }

    /// Binarises anti-aliased or scanned line art at an automatic threshold
    /// ([`LineArt::auto_threshold`]) and returns it.
    ///
    /// Unlike [`LineArt::binarize`], a thin or faint stroke is kept closed:
    /// a pixel under the threshold stays a line when it is on the ridge of
    /// a stroke (at least as inky as both neighbours across some direction,
    /// and clearly inkier than one of them), has at least a third of the
    /// threshold's ink, and connects through such pixels to a pixel above
    /// the threshold. Colour is judged relative to the ink, so the pale
    /// fringe of a coloured trace stays a trace, and each connected trace
    /// stroke takes the colour of its inkiest pixel instead of one colour
    /// per fringe shade. An image whose alpha is opaque everywhere is read
    /// as ink on paper. Afterwards the image follows the official rule.
    pub fn binarize_auto(&mut self) -> u8 {
        self.read_opaque_as_paper();
        let t = self.auto_threshold();
        let (w, h) = (self.width() as usize, self.height() as usize);
        let ink: Vec<u8> = self.rgba.pixels().map(|p| self.ink_of(p.0)).collect();
        let low = (t / 3).max(16);
        let ridge = |i: usize| -> bool {
            let (x, y) = (i % w, i / w);
            if x == 0 || y == 0 || x + 1 >= w || y + 1 >= h {
                return false;
            }
            let v = ink[i];
            [(1, 0), (0, 1), (1, 1), (1, -1isize)]
                .iter()
                .any(|&(dx, dy): &(usize, isize)| {
                    let a = ink[(y as isize + dy) as usize * w + x + dx];
                    let b = ink[(y as isize - dy) as usize * w + x - dx];
                    v >= a && v >= b && v >= a.min(b).saturating_add(low / 2)
                })
        };
        // 0 paper, 1 candidate (faint ridge), 2 line.
        let mut state: Vec<u8> = ink
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v >= t {
                    2
                } else if v >= low && ridge(i) {
                    1
                } else {
                    0
                }
            })
            .collect();
        let mut stack: Vec<usize> = (0..w * h).filter(|&i| state[i] == 2).collect();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if state[j] == 1 {
                        state[j] = 2;
                        stack.push(j);
                    }
                }
            }
        }
        let coloured = |p: [u8; 4], ink: u8| {
            let spread = p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2]);
            spread >= 48 || (spread >= 24 && u16::from(spread) * 2 >= u16::from(ink))
        };
        let paper = if self.has_alpha {
            [255, 255, 255, 0]
        } else {
            [255, 255, 255, 255]
        };
        let mut colour_of: Vec<Option<[u8; 4]>> = vec![None; w * h];
        for (i, p) in self.rgba.pixels_mut().enumerate() {
            if state[i] != 2 {
                p.0 = paper;
            } else if coloured(p.0, ink[i]) {
                colour_of[i] = Some([p.0[0], p.0[1], p.0[2], 255]);
            } else {
                p.0 = [0, 0, 0, 255];
            }
        }
        // One colour per connected trace stroke: its inkiest pixel's.
        let mut seen = vec![false; w * h];
        let mut comp = Vec::new();
        for start in 0..w * h {
            if colour_of[start].is_none() || seen[start] {
                continue;
            }
            comp.clear();
            seen[start] = true;
            stack.push(start);
            while let Some(i) = stack.pop() {
                comp.push(i);
                let (x, y) = (i % w, i / w);
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        let j = ny * w + nx;
                        if colour_of[j].is_some() && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            let best = *comp
                .iter()
                .max_by_key(|&&i| (ink[i], std::cmp::Reverse(i)))
                .expect("component is not empty");
            let c = colour_of[best].expect("a trace pixel");
            for &i in &comp {
                self.rgba.as_mut()[i * 4..i * 4 + 4].copy_from_slice(&c);
            }
        }
        t
    }
}

/// Otsu's threshold of a 256-bin histogram: the first level of the upper
/// class that maximises the between-class variance.
fn otsu(hist: &[u64; 256]) -> u8 {
    let total: u64 = hist.iter().sum();
    let sum: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * n as f64)
        .sum();
    let (mut w0, mut sum0) = (0u64, 0.0f64);
    let (mut best, mut best_t) = (-1.0f64, 128u8);
    for (t, &n) in hist.iter().enumerate().take(255) {
        w0 += n;
        sum0 += t as f64 * n as f64;
        let w1 = total - w0;
        if w0 == 0 || w1 == 0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0 as f64, (sum - sum0) / w1 as f64);
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = (t + 1) as u8;
        }
    }
    best_t
}

/// Packs the RGB channels as `R<<16 | G<<8 | B`.
#[inline]
pub fn pack_rgb(p: [u8; 4]) -> u32 {
    (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn art(pixels: &[[u8; 4]], has_alpha: bool) -> LineArt {
        let mut img = RgbaImage::new(pixels.len() as u32, 1);
        for (i, p) in pixels.iter().enumerate() {
            img.put_pixel(i as u32, 0, Rgba(*p));
        }
        LineArt::from_rgba(img, has_alpha)
    }

    #[test]
    fn alpha_rule() {
        let a = art(
            &[
                [255, 255, 255, 0],
                [0, 0, 0, 255],
                [10, 0, 0, 255],
                [0, 0, 0, 10],
                [200, 0, 0, 128],
                [0, 0, 0, 0],
            ],
            true,
        );
        let k = a.kinds();
        assert_eq!(
            k,
            vec![
                PixelKind::Fill,
                PixelKind::Line,
                PixelKind::Trace(10 << 16),
                PixelKind::Line,
                PixelKind::Line,
                PixelKind::Fill
            ]
        );
    }

    #[test]
    fn no_alpha_rule() {
        let a = art(
            &[[255, 255, 255, 255], [0, 0, 0, 255], [255, 254, 255, 255]],
            false,
        );
        assert_eq!(
            a.kinds(),
            vec![PixelKind::Fill, PixelKind::Line, PixelKind::Trace(0xfffeff)]
        );
    }

    #[test]
    fn binarize_snaps_grey_to_black_and_drops_faint_ink() {
        let mut a = art(
            &[
                [255, 255, 255, 255],
                [250, 250, 250, 255],
                [100, 100, 100, 255],
                [255, 0, 0, 255],
            ],
            false,
        );
        a.binarize(128);
        assert_eq!(
            a.kinds(),
            vec![
                PixelKind::Fill,
                PixelKind::Fill,
                PixelKind::Line,
                PixelKind::Trace(0xff0000)
            ]
        );
    }

    #[test]
    fn empty_line_art_is_refused() {
        let a = art(&[[255, 255, 255, 0], [255, 255, 255, 0]], true);
        assert!(matches!(
            a.check_not_empty(),
            Err(Error::EmptyLineArt { .. })
        ));
        let a = art(&[[0, 0, 0, 255]], true);
        assert!(a.check_not_empty().is_err());
    }
}
