//! Folder layouts of the PaintBucket-Character benchmark and of inference.
//!
//! A *clip* is one character folder:
//!
//! ```text
//! <clip>/line/NNNN.png            target line art
//! <clip>/gt/NNNN.png              painted frames (evaluation, consecutive refs)
//! <clip>/seg/NNNN.png, .json      labels and ground-truth colour tables
//! <clip>/ref/{line,gt,seg}/NAME.* design sheets (keyframe references)
//! ```
//!
//! Evaluation needs `seg/` for every frame and sheet (the dataset's own
//! segmentation is used, never re-computed); inference needs only `line/`
//! and, for references, `ref/line` + `ref/gt`. Other folders
//! (`line_anno`, `shadow`, `colorbook.yml`, ...) are ignored.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::imageio::is_image_path;

/// One frame or design sheet of a clip; paths are `None` where the file is
/// absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameFiles {
    /// Frame name (file stem), e.g. `0007`.
    pub name: String,
    /// Line art.
    pub line: PathBuf,
    /// Painted frame.
    pub gt: Option<PathBuf>,
    /// Label PNG.
    pub seg: Option<PathBuf>,
    /// Colour table JSON beside the labels.
    pub table: Option<PathBuf>,
}

/// One character folder.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Folder name.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Frames, sorted by name.
    pub frames: Vec<FrameFiles>,
    /// Design sheets, sorted by name.
    pub refs: Vec<FrameFiles>,
}

/// What a clip must provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Labels and tables for frames and sheets (the evaluation protocol).
    Evaluation,
    /// Line art only; sheets need their painted frames (colorization).
    Inference,
}

impl Clip {
    /// Reads the layout of one character folder.
    ///
    /// # Errors
    /// [`Error::Layout`] naming the first missing folder or file.
    pub fn open(dir: &Path, need: Need) -> Result<Clip> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let line_dir = dir.join("line");
        if !line_dir.is_dir() {
            return Err(Error::layout(
                &line_dir,
                "missing folder (expected <clip>/line/*.png)",
            ));
        }
        let frames = frames_in(&line_dir, &dir.join("gt"), &dir.join("seg"))?;
        if frames.is_empty() {
            return Err(Error::layout(&line_dir, "no line-art images"));
        }
        let ref_dir = dir.join("ref");
        let refs = if ref_dir.join("line").is_dir() {
            frames_in(
                &ref_dir.join("line"),
                &ref_dir.join("gt"),
                &ref_dir.join("seg"),
            )?
        } else {
            Vec::new()
        };
        let clip = Clip {
            name,
            dir: dir.to_path_buf(),
            frames,
            refs,
        };
        clip.check(need)?;
        Ok(clip)
    }

    fn check(&self, need: Need) -> Result<()> {
        let want = |f: &FrameFiles, what: &str, p: &Option<PathBuf>, folder: &Path| match p {
            Some(_) => Ok(()),
            None => Err(Error::layout(
                &folder.join(format!("{}.{what}", f.name)),
                format!("missing (needed for frame {} of {})", f.name, self.name),
            )),
        };
        match need {
            Need::Evaluation => {
                for f in &self.frames {
                    want(f, "png", &f.seg, &self.dir.join("seg"))?;
                    want(f, "json", &f.table, &self.dir.join("seg"))?;
                }
                for f in &self.refs {
                    want(f, "png", &f.seg, &self.dir.join("ref/seg"))?;
                    want(f, "json", &f.table, &self.dir.join("ref/seg"))?;
                }
            }
            Need::Inference => {
                for f in &self.refs {
                    want(f, "png", &f.gt, &self.dir.join("ref/gt"))?;
                }
            }
        }
        Ok(())
    }
}

/// Frames named by the images in `line_dir`, with their companions.
fn frames_in(line_dir: &Path, gt_dir: &Path, seg_dir: &Path) -> Result<Vec<FrameFiles>> {
    let mut frames = Vec::new();
    let entries = std::fs::read_dir(line_dir).map_err(|e| Error::io(line_dir, e))?;
    for e in entries {
        let line = e.map_err(|e| Error::io(line_dir, e))?.path();
        if !line.is_file() || !is_image_path(&line) {
            continue;
        }
        let Some(name) = line.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let existing = |p: PathBuf| p.is_file().then_some(p);
        frames.push(FrameFiles {
            gt: find_image(gt_dir, &name),
            seg: existing(seg_dir.join(format!("{name}.png"))),
            table: existing(seg_dir.join(format!("{name}.json"))),
            line,
            name,
        });
    }
    frames.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(frames)
}

/// `dir/name.<any image extension>`, if present.
fn find_image(dir: &Path, name: &str) -> Option<PathBuf> {
    crate::imageio::IMAGE_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// The clips under `root`: `root` itself when it holds `line/`, otherwise
/// each sub-folder that does (sorted by name).
///
/// # Errors
/// [`Error::Layout`] when there is none, or a clip is incomplete.
pub fn open_clips(root: &Path, need: Need) -> Result<Vec<Clip>> {
    if !root.is_dir() {
        return Err(Error::layout(root, "not a folder"));
    }
    if root.join("line").is_dir() {
        return Ok(vec![Clip::open(root, need)?]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("line").is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::layout(
            root,
            "no clip folders (expected <root>/line/ or <root>/<character>/line/)",
        ));
    }
    dirs.iter().map(|d| Clip::open(d, need)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    #[test]
    fn evaluation_layout_and_first_missing_file() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("hero");
        for f in ["0000", "0001"] {
            touch(&c.join(format!("line/{f}.png")));
            touch(&c.join(format!("gt/{f}.png")));
            touch(&c.join(format!("seg/{f}.png")));
            touch(&c.join(format!("seg/{f}.json")));
        }
        touch(&c.join("ref/line/b.png"));
        touch(&c.join("ref/line/a.png"));
        touch(&c.join("ref/seg/a.png"));
        touch(&c.join("ref/seg/a.json"));
        touch(&c.join("ref/seg/b.png"));
        touch(&c.join("line_anno/0000.png"));
        // Sheet b has no table yet.
        let err = open_clips(d.path(), Need::Evaluation).unwrap_err();
        assert!(err.to_string().contains("ref/seg/b.json"), "{err}");
        touch(&c.join("ref/seg/b.json"));
        let clips = open_clips(d.path(), Need::Evaluation).unwrap();
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].name, "hero");
        assert_eq!(clips[0].frames[1].name, "0001");
        let names: Vec<_> = clips[0].refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // The clip folder itself also works as root.
        assert_eq!(open_clips(&c, Need::Evaluation).unwrap().len(), 1);
    }

    #[test]
    fn empty_root_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_clips(d.path(), Need::Inference),
            Err(Error::Layout { .. })
        ));
    }
}
