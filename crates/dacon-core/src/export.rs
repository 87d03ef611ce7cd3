//! Layered export for compositing and paint programs: the line layer, the
//! colour-trace layer and the fill layer as separate images, and all three
//! in one OpenRaster (`.ora`) file that Krita, GIMP and MyPaint open.
//!
//! The layers are made so that stacking them (fills, then traces, then
//! lines, each "source over") gives the picture: the fills reach under every
//! line (each line pixel takes the nearest segment's colour), and the line
//! and trace layers hold the pixels as drawn, anti-aliasing included. Line
//! art without alpha (ink on white paper) is turned into ink with alpha
//! (the white unmixed), so the layers composite over any fill.
//!
//! OpenRaster (spec version 0.0.6, baseline): a ZIP whose first entry is the
//! uncompressed `mimetype` (`image/openraster`), then `stack.xml` (first
//! layer on top), the layer PNGs under `data/`, `Thumbnails/thumbnail.png`
//! (at most 256 px) and `mergedimage.png` (the flattened picture). Entries
//! are stored uncompressed: PNGs are compressed already.

use std::path::Path;

use image::RgbaImage;

use crate::color_table::{ColorTable, Rgba};
use crate::error::{Error, Result};
use crate::imageio::write_atomic;
use crate::lineart::{LineArt, PixelKind};
use crate::segment::Segmentation;

/// The separated layers of a coloured frame, all of the frame's size.
#[derive(Debug, Clone)]
pub struct Layers {
    /// Black (and translucent) lines as drawn; transparent elsewhere.
    pub lines: RgbaImage,
    /// Colour-trace lines as drawn; transparent elsewhere.
    pub traces: RgbaImage,
    /// Every segment filled with its colour, reaching under the lines.
    pub fills: RgbaImage,
}

impl Layers {
    /// Splits a coloured frame into layers. `drawn` is the line art as
    /// drawn (its pixels go into the line and trace layers); `prepared` is
    /// the line art the segments were made from (binarised, when it was),
    /// which decides whether a pixel is a line or a trace.
    ///
    /// # Errors
    /// [`Error::MissingColor`] when a segment has no colour,
    /// [`Error::SizeMismatch`] when the images differ in size.
    pub fn new(
        seg: &Segmentation,
        table: &ColorTable,
        drawn: &LineArt,
        prepared: &LineArt,
    ) -> Result<Layers> {
        table.check_covers(seg)?;
        seg.check_size(drawn.width(), drawn.height())?;
        seg.check_size(prepared.width(), prepared.height())?;
        let (w, h) = (seg.width(), seg.height());
        let clear = [0u8; 4];
        let colours: Vec<Rgba> = std::iter::once(clear)
            .chain((1..=seg.count()).map(|id| table.get(id).unwrap_or(clear)))
            .collect();
        let fills: Vec<u8> = seg
            .filled_labels()
            .iter()
            .flat_map(|&l| colours[l as usize])
            .collect();
        let mut lines = RgbaImage::new(w, h);
        let mut traces = RgbaImage::new(w, h);
        for ((src, kind), (l, t)) in drawn
            .rgba()
            .pixels()
            .zip(prepared.rgba().pixels().map(|p| prepared.kind_of(p.0)))
            .zip(lines.pixels_mut().zip(traces.pixels_mut()))
        {
            let ink = as_ink(drawn, src.0);
            if ink[3] == 0 {
                continue;
            }
            let trace = match kind {
                PixelKind::Trace(_) => true,
                PixelKind::Line => false,
                // A soft fringe the binarisation dropped: by its colour.
                PixelKind::Fill => {
                    let [r, g, b, _] = ink;
                    r.max(g).max(b) - r.min(g).min(b) >= 48
                }
            };
            if trace {
                t.0 = ink;
            } else {
                l.0 = ink;
            }
        }
        Ok(Layers {
            lines,
            traces,
            fills: RgbaImage::from_raw(w, h, fills).expect("w * h pixels"),
        })
    }

    /// The layers flattened: fills, then traces, then lines on top.
    pub fn merged(&self) -> RgbaImage {
        let mut out = self.fills.clone();
        for (d, (t, l)) in out
            .pixels_mut()
            .zip(self.traces.pixels().zip(self.lines.pixels()))
        {
            d.0 = over(l.0, over(t.0, d.0));
        }
        out
    }

    /// The OpenRaster file holding the three layers (lines on top, then
    /// traces, then fills), its merged image and thumbnail.
    ///
    /// # Errors
    /// [`Error::Encode`] if a PNG cannot be encoded.
    pub fn to_ora(&self) -> Result<Vec<u8>> {
        let (w, h) = self.fills.dimensions();
        let merged = self.merged();
        let thumb = thumbnail(&merged, 256);
        let stack = format!(
            "<?xml version='1.0' encoding='UTF-8'?>\n\
             <image version=\"0.0.6\" w=\"{w}\" h=\"{h}\" xres=\"72\" yres=\"72\">\n\
             <stack>\n\
             {}\
             </stack>\n\
             </image>\n",
            ORA_LAYERS
                .iter()
                .map(|(name, src)| format!(
                    "<layer name=\"{name}\" src=\"{src}\" x=\"0\" y=\"0\" opacity=\"1.000\" \
                     visibility=\"visible\" composite-op=\"svg:src-over\"/>\n"
                ))
                .collect::<String>()
        );
        let mut zip = ZipWriter::default();
        zip.add("mimetype", b"image/openraster");
        zip.add("stack.xml", stack.as_bytes());
        for ((_, src), img) in ORA_LAYERS
            .iter()
            .zip([&self.lines, &self.traces, &self.fills])
        {
            zip.add(src, &png_bytes(img)?);
        }
        zip.add("Thumbnails/thumbnail.png", &png_bytes(&thumb)?);
        zip.add("mergedimage.png", &png_bytes(&merged)?);
        Ok(zip.finish())
    }

    /// Writes [`Layers::to_ora`] to `path`, atomically.
    ///
    /// # Errors
    /// Encoding and I/O errors naming the file.
    pub fn save_ora(&self, path: &Path) -> Result<()> {
        let bytes = self.to_ora().map_err(|e| e.with_path(path))?;
        write_atomic(path, &bytes)
    }
}

/// The layers of an `.ora`, top first: name and file inside the archive.
pub const ORA_LAYERS: [(&str, &str); 3] = [
    ("lines", "data/lines.png"),
    ("colour traces", "data/traces.png"),
    ("fills", "data/fills.png"),
];

/// A line-art pixel as ink with straight alpha: as it is when the art has
/// alpha; otherwise the white paper unmixed (alpha = 255 - darkest
/// channel), so grey anti-aliasing becomes translucent black.
pub(crate) fn as_ink(art: &LineArt, p: [u8; 4]) -> Rgba {
    if art.kind_of(p) == PixelKind::Fill {
        return [0, 0, 0, 0];
    }
    if art.has_alpha() {
        return p;
    }
    let a = 255 - p[0].min(p[1]).min(p[2]);
    let unmix = |v: u8| {
        let gone = u32::from(255 - v) * 255 / u32::from(a);
        (255 - gone.min(255)) as u8
    };
    [unmix(p[0]), unmix(p[1]), unmix(p[2]), a]
}

/// Porter-Duff "source over" in 8-bit straight alpha.
pub(crate) fn over(src: Rgba, dst: Rgba) -> Rgba {
    let sa = u32::from(src[3]);
    if sa == 255 {
        return src;
    }
    if sa == 0 {
        return dst;
    }
    let da = u32::from(dst[3]);
    let out_a = sa * 255 + da * (255 - sa); // scaled by 255
    let mut o = [0u8; 4];
    for c in 0..3 {
        let v = u32::from(src[c]) * sa * 255 + u32::from(dst[c]) * da * (255 - sa);
        o[c] = ((v + out_a / 2) / out_a) as u8;
    }
    o[3] = ((out_a + 127) / 255) as u8;
    o
}

/// `img` shrunk (box filter over premultiplied colour) to fit `max` x `max`.
fn thumbnail(img: &RgbaImage, max: u32) -> RgbaImage {
    let (w, h) = img.dimensions();
    let scale = (w.max(h) as f64 / f64::from(max)).max(1.0);
    let (tw, th) = (
        ((w as f64 / scale).round() as u32).max(1),
        ((h as f64 / scale).round() as u32).max(1),
    );
    RgbaImage::from_fn(tw, th, |tx, ty| {
        let x0 = (tx as f64 * scale) as u32;
        let y0 = (ty as f64 * scale) as u32;
        let x1 = (((tx + 1) as f64 * scale) as u32).clamp(x0 + 1, w);
        let y1 = (((ty + 1) as f64 * scale) as u32).clamp(y0 + 1, h);
        let mut acc = [0u64; 4];
        for y in y0..y1 {
            for x in x0..x1 {
                let p = img.get_pixel(x, y).0;
                let a = u64::from(p[3]);
                for c in 0..3 {
                    acc[c] += u64::from(p[c]) * a;
                }
                acc[3] += a;
            }
        }
        let n = u64::from((x1 - x0) * (y1 - y0));
        if acc[3] == 0 {
            return image::Rgba([0, 0, 0, 0]);
        }
        let c = |k: usize| ((acc[k] + acc[3] / 2) / acc[3]) as u8;
        image::Rgba([c(0), c(1), c(2), ((acc[3] + n / 2) / n) as u8])
    })
}

fn png_bytes(img: &RgbaImage) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    image::DynamicImage::ImageRgba8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .map_err(|source| Error::Encode {
            path: "layer.png".into(),
            source,
        })?;
    Ok(buf)
}

/// A minimal ZIP writer: stored (uncompressed) entries, no extra fields,
/// so `mimetype` sits at offset 30 with its name, as OpenRaster readers
/// that sniff the file expect.
#[derive(Default)]
struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

impl ZipWriter {
    fn add(&mut self, name: &str, data: &[u8]) {
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).expect("layer under 4 GiB");
        let offset = u32::try_from(self.out.len()).expect("archive under 4 GiB");
        // Version 2.0, no flags, stored, DOS time 1980-01-01 00:00.
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&0x21u16.to_le_bytes());
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&size.to_le_bytes());
            buf.extend_from_slice(&size.to_le_bytes());
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
        };
        self.out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut self.out);
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(data);

        self.central
            .extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        self.central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut self.central);
        self.central.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.central.extend_from_slice(&0u16.to_le_bytes()); // disk
        self.central.extend_from_slice(&0u16.to_le_bytes()); // internal
        self.central.extend_from_slice(&0u32.to_le_bytes()); // external
        self.central.extend_from_slice(&offset.to_le_bytes());
        self.central.extend_from_slice(name.as_bytes());
        self.entries += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let at = u32::try_from(self.out.len()).expect("archive under 4 GiB");
        let len = u32::try_from(self.central.len()).expect("directory under 4 GiB");
        self.out.extend_from_slice(&self.central);
        self.out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes());
        self.out.extend_from_slice(&self.entries.to_le_bytes());
        self.out.extend_from_slice(&self.entries.to_le_bytes());
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&at.to_le_bytes());
        self.out.extend_from_slice(&0u16.to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_on_white_becomes_translucent_black() {
        let art = LineArt::from_rgba(RgbaImage::new(1, 1), false);
        assert_eq!(as_ink(&art, [255, 255, 255, 255]), [0, 0, 0, 0]);
        assert_eq!(as_ink(&art, [0, 0, 0, 255]), [0, 0, 0, 255]);
        assert_eq!(as_ink(&art, [128, 128, 128, 255]), [0, 0, 0, 127]);
        // Half-strength red on white unmixes back to full red.
        let [r, g, b, a] = as_ink(&art, [255, 128, 128, 255]);
        assert_eq!((r, a), (255, 127));
        assert!(g <= 2 && b <= 2);
    }

    #[test]
    fn thumbnails_fit_256_and_keep_the_aspect() {
        let t = thumbnail(&RgbaImage::new(1000, 500), 256);
        assert_eq!(t.dimensions(), (256, 128));
        let t = thumbnail(&RgbaImage::new(40, 30), 256);
        assert_eq!(t.dimensions(), (40, 30));
    }
}
