//! Painting segments with their colours.

use image::RgbaImage;

use crate::color_table::{ColorTable, Rgba};
use crate::error::Result;
use crate::export::{as_ink, over};
use crate::lineart::LineArt;
use crate::segment::Segmentation;

/// Which image to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer {
    /// The official output: every segment filled, line pixels (label 0)
    /// opaque black. Byte-identical to the official colorizer.
    #[default]
    Full,
    /// Fills only, line pixels transparent: composite it under the original
    /// line layer. Colour-trace lines carry their region's colour.
    Fill,
}

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// The image to produce.
    pub layer: Layer,
    /// Fill under the lines with the colour of the nearest segment and draw
    /// the original line pixels over the fills (alpha-composited; ink on
    /// white paper is first unmixed from the white), so that anti-aliased,
    /// scanned and coloured lines look as drawn. Needs the line art as
    /// drawn ([`crate::Frame::drawn`]).
    pub keep_lines: bool,
}

const LINE_BLACK: Rgba = [0, 0, 0, 255];
const CLEAR: Rgba = [0, 0, 0, 0];

/// Renders `seg` coloured by `table`.
///
/// # Errors
/// [`crate::Error::MissingColor`] when a segment has no colour,
/// [`crate::Error::SizeMismatch`] when `line` differs in size.
///
/// # Panics
/// If `opts.keep_lines` is set without `line`.
pub fn render(
    seg: &Segmentation,
    table: &ColorTable,
    line: Option<&LineArt>,
    opts: RenderOptions,
) -> Result<RgbaImage> {
    table.check_covers(seg)?;
    assert!(
        !opts.keep_lines || line.is_some(),
        "keep_lines needs the line art"
    );
    if let Some(l) = line {
        seg.check_size(l.width(), l.height())?;
    }
    let mut lut: Vec<Rgba> = Vec::with_capacity(seg.count() as usize + 1);
    lut.push(match opts.layer {
        Layer::Full => LINE_BLACK,
        Layer::Fill => CLEAR,
    });
    lut.extend((1..=seg.count()).map(|id| table.get(id).unwrap_or(CLEAR)));

    let labels = if opts.keep_lines {
        seg.filled_labels()
    } else {
        seg.labels().to_vec()
    };
    let mut out = Vec::with_capacity(labels.len() * 4);
    for &l in &labels {
        out.extend_from_slice(&lut[l as usize]);
    }
    let mut img = RgbaImage::from_raw(seg.width(), seg.height(), out)
        .expect("buffer has width * height pixels");
    if opts.keep_lines {
        let line = line.expect("checked above");
        for (dst, src) in img.pixels_mut().zip(line.rgba().pixels()) {
            dst.0 = over(as_ink(line, src.0), dst.0);
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba as Px;

    fn setup() -> (Segmentation, ColorTable, LineArt) {
        let seg = Segmentation::from_labels(4, 1, vec![1, 0, 0, 2]);
        let table = ColorTable::from_colors([[10, 20, 30, 255], [255, 255, 255, 0]]);
        let mut img = RgbaImage::new(4, 1);
        img.put_pixel(0, 0, Px([255, 255, 255, 0]));
        img.put_pixel(1, 0, Px([0, 0, 0, 128]));
        img.put_pixel(2, 0, Px([0, 0, 0, 255]));
        img.put_pixel(3, 0, Px([255, 255, 255, 0]));
        (seg, table, LineArt::from_rgba(img, true))
    }

    #[test]
    fn full_layer_paints_lines_black() {
        let (seg, table, _) = setup();
        let img = render(&seg, &table, None, RenderOptions::default()).unwrap();
        let px: Vec<_> = img.pixels().map(|p| p.0).collect();
        assert_eq!(
            px,
            vec![
                [10, 20, 30, 255],
                LINE_BLACK,
                LINE_BLACK,
                [255, 255, 255, 0]
            ]
        );
    }

    #[test]
    fn fill_layer_leaves_lines_clear() {
        let (seg, table, _) = setup();
        let opts = RenderOptions {
            layer: Layer::Fill,
            keep_lines: false,
        };
        let img = render(&seg, &table, None, opts).unwrap();
        assert_eq!(img.get_pixel(1, 0).0, CLEAR);
    }

    #[test]
    fn keep_lines_composites_antialiased_ink_over_fill() {
        let (seg, table, line) = setup();
        let opts = RenderOptions {
            layer: Layer::Full,
            keep_lines: true,
        };
        let img = render(&seg, &table, Some(&line), opts).unwrap();
        // Half-transparent black over the fill that reached under the line.
        assert_eq!(img.get_pixel(1, 0).0, [5, 10, 15, 255]);
        assert_eq!(img.get_pixel(2, 0).0, LINE_BLACK);
    }

    #[test]
    fn missing_colour_is_an_error() {
        let (seg, _, _) = setup();
        let table = ColorTable::from_colors([[1, 1, 1, 255]]);
        assert!(matches!(
            render(&seg, &table, None, RenderOptions::default()),
            Err(crate::Error::MissingColor { segment: 2 })
        ));
    }
}
