//! Reading images of any supported format into 8-bit RGBA, and writing PNGs
//! atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageReader, RgbaImage};

use crate::error::{Error, Result};

/// An image decoded to 8-bit RGBA, remembering whether the file had alpha.
///
/// The official line-art rule depends on it: with alpha, a line pixel is any
/// pixel with alpha > 0; without, any pixel with a channel below 255.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The pixels, 16-bit files reduced to 8 bits.
    pub rgba: RgbaImage,
    /// Whether the file carried an alpha channel (palette transparency counts).
    pub has_alpha: bool,
}

/// File extensions treated as images when a folder is scanned.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "tga", "tif", "tiff"];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decodes the image at `path`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened, [`Error::Decode`] when it is
/// damaged, [`Error::UnknownFormat`] when it is not an image, and
/// [`Error::EmptyLineArt`] for a zero-sized image.
pub fn read_picture(path: &Path) -> Result<Picture> {
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    let img = reader.decode().map_err(|source| Error::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::EmptyLineArt {
            reason: "the image has no pixels",
        }
        .with_path(path));
    }
    let has_alpha = img.color().has_alpha();
    Ok(Picture {
        rgba: img.into_rgba8(),
        has_alpha,
    })
}

/// Encodes 8-bit pixels as PNG into memory.
fn encode_png(
    path: &Path,
    data: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(data.len() / 8 + 1024);
    // Fast compression: label and fill images are flat, so they compress well
    // anyway, and encoding dominated the write time with the default level.
    PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, FilterType::Adaptive)
        .write_image(data, width, height, color)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}

/// Writes an RGBA image as PNG, atomically.
pub fn write_rgba_png(path: &Path, img: &RgbaImage) -> Result<()> {
    let bytes = encode_png(
        path,
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgba8,
    )?;
    write_atomic(path, &bytes)
}

/// Writes an 8-bit RGB buffer as PNG, atomically.
pub(crate) fn write_rgb_png(path: &Path, data: &[u8], width: u32, height: u32) -> Result<()> {
    let bytes = encode_png(path, data, width, height, ExtendedColorType::Rgb8)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so a reader (or a resumed batch) never sees a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Removes the temporary files that [`write_atomic`] of a process that no
/// longer runs left in `dir` (a killed job's partial outputs, which would
/// otherwise stay forever). Files of live processes are left alone; where
/// liveness cannot be told (no `/proc`), nothing is removed.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be listed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let proc = Path::new("/proc/self");
    if !proc.exists() {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(pid) = temp_owner(&path) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The process id in a temporary name `.NAME.PID.tmp`.
fn temp_owner(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22 on Linux: this process cannot exist.
        let dead = dir.path().join(".a.png.99999999.tmp");
        let mine = temp_path(&dir.path().join("b.png"));
        let other = dir.path().join("c.tmp");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let n = remove_stale_temps(dir.path()).unwrap();
        assert!(!dead.exists() && mine.exists() && other.exists());
        assert_eq!(n, 1);
        assert_eq!(temp_owner(&mine), Some(std::process::id()));
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn atomic_write_into_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/a.bin");
        assert!(matches!(write_atomic(&p, b"x"), Err(Error::Io { .. })));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        std::fs::write(&p, b"definitely not a png").unwrap();
        assert!(read_picture(&p).is_err());
    }

    #[test]
    fn rgb_png_round_trip_reports_no_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        write_rgb_png(&p, &[1, 2, 3, 4, 5, 6], 2, 1).unwrap();
        let pic = read_picture(&p).unwrap();
        assert!(!pic.has_alpha);
        assert_eq!(pic.rgba.get_pixel(1, 0).0, [4, 5, 6, 255]);
    }
}
