//! Turning command-line paths into lists of frames.

use std::collections::HashMap;
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

/// Refuses two frames of one batch with the same name: their outputs
/// (named by frame) would replace each other.
pub fn refuse_duplicate_names(frames: &[PathBuf]) -> Result<()> {
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for f in frames {
        if let Some(first) = seen.insert(stem(f)?, f) {
            bail!(
                "{}: another input has the same name ({}); their outputs would overwrite each other, so process them separately",
                f.display(),
                first.display()
            );
        }
    }
    Ok(())
}

/// Creates the output folder after checking that it is no input folder and
/// lies in none, and removes temporary files left there by killed runs.
pub fn prepare_out_dir(out: &Path, inputs: &[&Path]) -> Result<()> {
    for i in inputs.iter().filter(|i| i.is_dir()) {
        refuse_inside(out, i)?;
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))?;
    dacon_core::imageio::remove_stale_temps(out)?;
    Ok(())
}

/// Fails when `output` is the same file as one of `inputs`, or lies inside
/// an input folder (inputs are never overwritten).
pub fn refuse_overwriting_inputs(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
    let out = out.canonicalize().unwrap_or(out);
    for i in inputs {
        if i.is_dir() {
            refuse_inside(output, i)?;
        } else if i.canonicalize().is_ok_and(|c| c == out) {
            bail!(
                "{}: output would overwrite an input; choose another --out folder",
                output.display()
            );
        }
    }
    Ok(())
}

/// Fails when `path` is the folder `input` or lies inside it.
fn refuse_inside(path: &Path, input: &Path) -> Result<()> {
    let (Some(p), Ok(i)) = (resolved(path), input.canonicalize()) else {
        return Ok(());
    };
    if p.starts_with(&i) {
        bail!(
            "{}: output inside the input folder {}; it would overwrite or mix with the inputs, so choose another --out",
            path.display(),
            input.display()
        );
    }
    Ok(())
}

/// `p` made absolute with symbolic links resolved as far as it exists, so
/// an output folder not created yet compares correctly.
fn resolved(p: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(p).ok()?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while existing.canonicalize().is_err() {
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
    let base = existing.canonicalize().ok()?;
    Some(rest.iter().rev().fold(base, |acc, part| acc.join(part)))
}
