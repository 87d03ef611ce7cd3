//! Turning command-line paths into lists of frames.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dacon_core::imageio::is_image_path;

/// Expands files and folders (non-recursive) into image files, sorted by
/// name within each folder. A folder without images is an error, as is a
/// missing path.
pub fn collect_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
        if meta.is_dir() {
            let found = images_in(p)?;
            if found.is_empty() {
                bail!(
                    "{}: no images in this folder (expected .png, .tga, .tif or .tiff files)",
                    p.display()
                );
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The image files directly inside `dir`, sorted by name.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry.with_context(|| format!("{}", dir.display()))?.path();
        if path.is_file() && is_image_path(&path) && !is_hidden(&path) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// The file stem as a string (frame name).
pub fn stem(p: &Path) -> Result<String> {
    p.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{}: file name is not valid UTF-8", p.display()))
}

/// Creates the output folder and refuses outputs that would replace an input.
pub fn prepare_out_dir(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))
}

/// Fails when `output` is the same file as one of `inputs` (inputs are never
/// overwritten).
pub fn refuse_overwriting_inputs(output: &Path, inputs: &[&Path]) -> Result<()> {
    let Ok(out) = output.canonicalize() else {
        return Ok(()); // does not exist yet, so it is no input
    };
    for i in inputs {
        if i.canonicalize().is_ok_and(|c| c == out) {
            bail!(
                "{}: output would overwrite an input; choose another --out folder",
                output.display()
            );
        }
    }
    Ok(())
}
