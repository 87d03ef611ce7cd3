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
//!
//! The training split ([`TrainSet`]) keeps its tables in `json_color/`:
//!
//! ```text
//! <root>/<character>/line/NNNN.png        line art
//! <root>/<character>/gt/NNNN.png          painted frame
//! <root>/<character>/seg/NNNN.png         labels        (optional together
//! <root>/<character>/json_color/NNNN.json colour table   with the table)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::color_table::ColorTable;
use crate::error::{Error, Result};
use crate::frame::{Frame, LineOptions};
use crate::imageio::is_image_path;
use crate::rng::Rng;

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
    frames.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.line.cmp(&b.line)));
    // Outputs are named by frame: two files of one name would write over
    // each other's results.
    if let Some(w) = frames.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::layout(
            &w[1].line,
            format!(
                "another frame is named {:?} ({}); rename or remove one",
                w[0].name,
                w[0].line.display()
            ),
        ));
    }
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

/// A painted frame: line art, its segments and the colour of each.
#[derive(Debug, Clone)]
pub struct PaintedFrame {
    /// Line art and segments.
    pub frame: Frame,
    /// The colour of every segment.
    pub colors: ColorTable,
}

/// One character of a training split.
#[derive(Debug, Clone)]
pub struct TrainCharacter {
    /// Its folder.
    pub dir: PathBuf,
    /// Its frames, sorted by name; `table` points into `json_color/`.
    pub frames: Vec<FrameFiles>,
}

/// A training pair: colour `target` from `source`, two frames of one
/// character.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrainPair {
    /// Character name.
    pub character: String,
    /// Source frame name.
    pub source: String,
    /// Target frame name.
    pub target: String,
}

impl std::fmt::Display for TrainPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.character, self.source, self.target)
    }
}

/// The training split of PaintBucket-Character (layout in the module docs).
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// Characters by name.
    pub characters: BTreeMap<String, TrainCharacter>,
}

impl TrainSet {
    /// Lists the characters under `root` (folders with a `line/` that holds
    /// images).
    ///
    /// # Errors
    /// [`Error::Layout`] when there is none.
    pub fn open(root: &Path) -> Result<TrainSet> {
        let mut characters = BTreeMap::new();
        let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
        for e in entries {
            let dir = e.map_err(|e| Error::io(root, e))?.path();
            if !dir.join("line").is_dir() {
                continue;
            }
            let mut frames = frames_in(&dir.join("line"), &dir.join("gt"), &dir.join("seg"))?;
            if frames.is_empty() {
                continue;
            }
            for f in &mut frames {
                let table = dir.join(format!("json_color/{}.json", f.name));
                f.table = table.is_file().then_some(table);
            }
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            characters.insert(name, TrainCharacter { dir, frames });
        }
        if characters.is_empty() {
            return Err(Error::layout(
                root,
                "no training characters (expected <root>/<character>/line/NNNN.png)",
            ));
        }
        Ok(TrainSet { characters })
    }

    /// The frame `name` of `character`: the dataset's labels and table when
    /// both are there, else the line art segmented (with `opts`) and the
    /// table of its painted frame.
    ///
    /// # Errors
    /// [`Error::Layout`] for an unknown character or frame, or one without a
    /// painted frame; read errors naming the file.
    pub fn load(&self, character: &str, name: &str, opts: &LineOptions) -> Result<PaintedFrame> {
        let files = self
            .characters
            .get(character)
            .and_then(|c| c.frames.iter().find(|f| f.name == name))
            .ok_or_else(|| Error::InvalidArgument {
                name: "frame",
                reason: format!("no frame {name} of character {character}"),
            })?;
        if let (Some(seg), Some(table)) = (&files.seg, &files.table) {
            return Ok(PaintedFrame {
                frame: Frame::open_labelled(&files.line, seg, opts)?,
                colors: ColorTable::open(table)?,
            });
        }
        let frame = Frame::open(&files.line, opts)?;
        let painted = files.gt.as_ref().ok_or_else(|| {
            Error::layout(
                &files.line,
                "no painted frame in gt/ (needed for training without seg/ and json_color/)",
            )
        })?;
        let colors = ColorTable::from_painted(&frame.seg, painted)?;
        Ok(PaintedFrame { frame, colors })
    }

    /// A fixed pair from `CHARACTER:SOURCE:TARGET`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the spec and what is wrong.
    pub fn pair(&self, spec: &str) -> Result<TrainPair> {
        let bad = |reason: String| Error::InvalidArgument {
            name: "pair",
            reason: format!("{spec:?}: {reason}"),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let [ch, s, t] = parts.as_slice() else {
            return Err(bad("expected CHARACTER:SOURCE:TARGET".into()));
        };
        let c = self
            .characters
            .get(*ch)
            .ok_or_else(|| bad(format!("no character {ch}")))?;
        for f in [s, t] {
            if !c.frames.iter().any(|x| x.name == *f) {
                return Err(bad(format!("no frame {f} in {}", c.dir.display())));
            }
        }
        Ok(TrainPair {
            character: ch.to_string(),
            source: s.to_string(),
            target: t.to_string(),
        })
    }

    /// The official pairing for one epoch: every frame is a target once,
    /// its source 0, 1 or 2 frames before or after it (wrapped), the pairs
    /// shuffled; the same `seed` and `epoch` always give the same pairs.
    pub fn epoch_pairs(&self, seed: u64, epoch: u32) -> Vec<TrainPair> {
        let mut rng = Rng::new(seed ^ (u64::from(epoch) << 32));
        let mut pairs = Vec::new();
        for (name, c) in &self.characters {
            let n = c.frames.len() as i64;
            for (i, t) in c.frames.iter().enumerate() {
                let d = rng.below(3) as i64 * if rng.below(2) == 0 { -1 } else { 1 };
                let s = (i as i64 + d).rem_euclid(n) as usize;
                pairs.push(TrainPair {
                    character: name.clone(),
                    source: c.frames[s].name.clone(),
                    target: t.name.clone(),
                });
            }
        }
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, rng.below(i + 1));
        }
        pairs
    }
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
    fn training_pairs_are_official_and_reproducible() {
        let d = tempfile::tempdir().unwrap();
        for (ch, n) in [("a", 5), ("b", 3)] {
            for i in 0..n {
                touch(&d.path().join(format!("{ch}/line/{i:04}.png")));
            }
        }
        touch(&d.path().join("a/json_color/0001.json"));
        let set = TrainSet::open(d.path()).unwrap();
        assert_eq!(set.characters["a"].frames.len(), 5);
        assert!(set.characters["a"].frames[1].table.is_some());
        assert!(set.characters["a"].frames[0].table.is_none());
        let p = set.epoch_pairs(3, 1);
        assert_eq!(p, set.epoch_pairs(3, 1));
        assert_ne!(p, set.epoch_pairs(3, 2));
        // Every frame is a target once; sources lie within 2 (wrapped).
        let mut targets: Vec<String> = p
            .iter()
            .map(|x| format!("{}{}", x.character, x.target))
            .collect();
        targets.sort();
        targets.dedup();
        assert_eq!(targets.len(), 8);
        for x in &p {
            let n = set.characters[&x.character].frames.len() as i64;
            let (s, t): (i64, i64) = (x.source.parse().unwrap(), x.target.parse().unwrap());
            let d = (s - t).rem_euclid(n).min((t - s).rem_euclid(n));
            assert!(d <= 2, "{x}");
        }
        assert_eq!(set.pair("a:0000:0003").unwrap().to_string(), "a:0000:0003");
        for bad in ["a:0000", "c:0000:0001", "b:0000:0004"] {
            assert!(set.pair(bad).is_err(), "{bad}");
        }
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
