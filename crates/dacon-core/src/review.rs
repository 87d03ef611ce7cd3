//! Reviewing a coloured cut: a colourist's corrections, approvals and the
//! export of the finished frames, shared by the server and the command line.
//!
//! Everything lives in one folder, `OUT/corrections/`:
//!
//! ```text
//! <frame>.json    the corrected segments of a frame: {"<segment id>": [r,g,b,a], ...}
//! manifest.json   per frame: version (bumped by every action) and approval
//! actions.jsonl   append-only log, one JSON line per action
//! ```
//!
//! A frame's final colours are the engine's prediction (`OUT/NAME.json`,
//! never overwritten here) overlaid with its corrections. Every action
//! writes the corrections file and the manifest atomically before it is
//! acknowledged, so killing the process loses nothing that was answered.
//! Actions carry the version they were based on; a stale one (two tabs
//! editing one frame) is refused with [`Error::Conflict`] instead of
//! silently overwriting the other edit.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::color_table::{ColorTable, Rgba};
use crate::colorize::{frame_outputs, Export};
use crate::dataset::Clip;
use crate::error::{Error, Result, ResultExt};
use crate::frame::{Frame, LineOptions};
use crate::imageio::{write_atomic, write_rgba_png};
use crate::render::{render, Layer, RenderOptions};

/// File name of the manifest inside the corrections folder.
pub const MANIFEST: &str = "manifest.json";
/// File name of the action log inside the corrections folder.
pub const LOG: &str = "actions.jsonl";

/// Where a frame stands in the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has touched it.
    NotReviewed,
    /// Corrected, not approved yet.
    FixesMade,
    /// Approved: its colours are final and re-colouring leaves it alone.
    Approved,
}

/// The review state of one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FrameReview {
    /// Bumped by every action on the frame.
    pub version: u64,
    /// Whether the colourist approved it.
    pub approved: bool,
    /// Corrected segments and their colours.
    pub corrections: BTreeMap<u32, Rgba>,
}

impl FrameReview {
    /// The frame's status.
    pub fn status(&self) -> Status {
        if self.approved {
            Status::Approved
        } else if self.corrections.is_empty() {
            Status::NotReviewed
        } else {
            Status::FixesMade
        }
    }

    /// `prediction` overlaid with the corrections.
    pub fn apply(&self, prediction: &ColorTable) -> ColorTable {
        let mut t = prediction.clone();
        for (&id, &c) in &self.corrections {
            t.set(id, c);
        }
        t
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    frames: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct ManifestEntry {
    version: u64,
    approved: bool,
}

/// A change to one segment: a colour, or `None` to drop the correction (back
/// to the engine's colour; what undo sends).
pub type Change = Option<Rgba>;

/// The corrections and approvals of a cut, backed by its corrections folder.
#[derive(Debug, Clone)]
pub struct Review {
    dir: PathBuf,
    frames: BTreeMap<String, FrameReview>,
}

impl Review {
    /// Reads the corrections folder `dir` (absent: nothing reviewed yet) for
    /// the frames named `frames`. Files of other names are left alone.
    ///
    /// # Errors
    /// A corrections file or the manifest is unreadable or malformed, naming
    /// it; a frame is named like the manifest.
    pub fn open<'a>(dir: &Path, frames: impl IntoIterator<Item = &'a str>) -> Result<Review> {
        let manifest_path = dir.join(MANIFEST);
        let manifest: Manifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::ColorTable {
                    reason: format!("not a review manifest: {e}"),
                })
                .at(&manifest_path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(Error::io(&manifest_path, e)),
        };
        let mut review = Review {
            dir: dir.to_path_buf(),
            frames: BTreeMap::new(),
        };
        for name in frames {
            if format!("{name}.json") == MANIFEST {
                return Err(Error::InvalidArgument {
                    name: "frame name",
                    reason: format!(
                        "{name:?} is reserved for the review manifest; rename the frame"
                    ),
                });
            }
            let path = review.corrections_path(name);
            let corrections = match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let t = ColorTable::from_json(&text).at(&path)?;
                    (1..=t.len() as u32)
                        .filter_map(|id| t.get(id).map(|c| (id, c)))
                        .collect()
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(Error::io(&path, e)),
            };
            let entry = manifest.frames.get(name).copied().unwrap_or_default();
            review.frames.insert(
                name.to_owned(),
                FrameReview {
                    version: entry.version,
                    approved: entry.approved,
                    corrections,
                },
            );
        }
        Ok(review)
    }

    /// The corrections folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/<frame>.json`.
    pub fn corrections_path(&self, frame: &str) -> PathBuf {
        self.dir.join(format!("{frame}.json"))
    }

    /// The state of frame `name`.
    pub fn frame(&self, name: &str) -> Option<&FrameReview> {
        self.frames.get(name)
    }

    /// Every frame's state, by name.
    pub fn frames(&self) -> impl Iterator<Item = (&str, &FrameReview)> {
        self.frames.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The first frame (in name order, the cut's order) with corrections:
    /// the frames after it are the ones its fixes can improve.
    pub fn first_corrected(&self) -> Option<&str> {
        self.frames
            .iter()
            .find(|(_, f)| !f.corrections.is_empty())
            .map(|(k, _)| k.as_str())
    }

    /// Whether frame `name` is approved.
    pub fn is_approved(&self, name: &str) -> bool {
        self.frames.get(name).is_some_and(|f| f.approved)
    }

    fn checked(&self, name: &str, base_version: Option<u64>) -> Result<&FrameReview> {
        let f = self.frames.get(name).ok_or_else(|| Error::UnknownFrame {
            name: name.to_owned(),
        })?;
        if let Some(v) = base_version {
            if v != f.version {
                return Err(Error::Conflict {
                    frame: name.to_owned(),
                    expected: v,
                    current: f.version,
                });
            }
        }
        Ok(f)
    }

    /// Corrects segments of frame `name` (`segments` segments): each change
    /// sets a colour or drops a correction. `base_version` (when given) must
    /// be the frame's current version. Saved before it returns.
    ///
    /// # Errors
    /// [`Error::UnknownFrame`], [`Error::Conflict`], [`Error::Approved`]
    /// (approved frames do not change), [`Error::InvalidArgument`] for a
    /// segment outside `1..=segments`, write errors.
    pub fn fix(
        &mut self,
        name: &str,
        base_version: Option<u64>,
        changes: &BTreeMap<u32, Change>,
        segments: u32,
    ) -> Result<&FrameReview> {
        let current = self.checked(name, base_version)?;
        if current.approved {
            return Err(Error::Approved {
                frame: name.to_owned(),
            });
        }
        if let Some(bad) = changes.keys().find(|&&id| id == 0 || id > segments) {
            return Err(Error::InvalidArgument {
                name: "segment",
                reason: format!("frame {name} has segments 1..={segments}, not {bad}"),
            });
        }
        let mut next = current.clone();
        for (&id, change) in changes {
            match change {
                Some(c) => next.corrections.insert(id, *c),
                None => next.corrections.remove(&id),
            };
        }
        next.version += 1;
        self.commit(name, next, "fix", serde_json::to_value(changes).ok())
    }

    /// Approves frame `name` (or takes the approval back).
    ///
    /// # Errors
    /// [`Error::UnknownFrame`], [`Error::Conflict`], write errors.
    pub fn set_approved(
        &mut self,
        name: &str,
        base_version: Option<u64>,
        approved: bool,
    ) -> Result<&FrameReview> {
        let mut next = self.checked(name, base_version)?.clone();
        next.approved = approved;
        next.version += 1;
        let action = if approved { "approve" } else { "reopen" };
        self.commit(name, next, action, None)
    }

    /// Saves the frame's corrections and the manifest (each atomically),
    /// then logs the action, then makes it the state in memory: an action
    /// that failed to save is not applied.
    fn commit(
        &mut self,
        name: &str,
        next: FrameReview,
        action: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<&FrameReview> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let table = next
            .corrections
            .iter()
            .fold(ColorTable::default(), |mut t, (&id, &c)| {
                t.set(id, c);
                t
            });
        write_atomic(&self.corrections_path(name), table.to_json().as_bytes())?;
        let mut manifest = Manifest::default();
        for (k, v) in &self.frames {
            let v = if k == name { &next } else { v };
            manifest.frames.insert(
                k.clone(),
                ManifestEntry {
                    version: v.version,
                    approved: v.approved,
                },
            );
        }
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
        write_atomic(&self.dir.join(MANIFEST), text.as_bytes())?;
        self.log(name, &next, action, detail)?;
        let slot = self.frames.entry(name.to_owned()).or_default();
        *slot = next;
        Ok(slot)
    }

    fn log(
        &self,
        name: &str,
        state: &FrameReview,
        action: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<()> {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut line = serde_json::json!({
            "time_ms": time_ms,
            "frame": name,
            "action": action,
            "version": state.version,
        });
        if let Some(d) = detail {
            line["changes"] = d;
        }
        let path = self.dir.join(LOG);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // One write per line: appends of whole lines do not interleave.
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| Error::io(&path, e))
    }
}

/// The reviewed colours of every frame of `clip` from its outputs in `out`:
/// the engine's prediction overlaid with the corrections.
///
/// # Errors
/// [`Error::Layout`] when a frame has not been coloured yet; read errors.
pub fn final_colors(out: &Path, name: &str, review: &Review) -> Result<ColorTable> {
    let [json, _, png] = frame_outputs(out, name);
    if !png.is_file() || !json.is_file() {
        return Err(Error::layout(
            &json,
            format!("frame {name} is not coloured yet; colour the cut first"),
        ));
    }
    let prediction = ColorTable::open(&json)?;
    Ok(match review.frame(name) {
        Some(f) => f.apply(&prediction),
        None => prediction,
    })
}

/// The files [`export`] writes per frame, in `OUT/export/`.
pub fn export_paths(out: &Path, name: &str) -> [PathBuf; 3] {
    let dir = out.join("export");
    [
        dir.join(format!("{name}.png")),
        dir.join(format!("{name}.fill.png")),
        dir.join(format!("{name}.json")),
    ]
}

/// One frame's line in the export manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportEntry {
    /// Frame name.
    pub frame: String,
    /// Its review status.
    pub status: Status,
    /// How many segments the colourist corrected.
    pub corrected: usize,
    /// Files written, relative to the output folder.
    pub files: Vec<String>,
}

/// Exports the reviewed frames `names` of `clip` (all when `None`) into
/// `OUT/export/`: per frame the official image (`NAME.png`), the fill layer
/// (`NAME.fill.png`, lines transparent) and the JSON table (`NAME.json`),
/// each atomically, the extra layers `extra` asks for (line, colour-trace and
/// fill layers, OpenRaster), and `OUT/export/manifest.json` with the review
/// status of every frame of the cut.
///
/// # Errors
/// [`Error::UnknownFrame`]; a frame not coloured yet; read and write errors.
pub fn export(
    clip: &Clip,
    out: &Path,
    review: &Review,
    line: &LineOptions,
    extra: &Export,
    names: Option<&[String]>,
) -> Result<Vec<ExportEntry>> {
    if let Some(names) = names {
        if let Some(n) = names
            .iter()
            .find(|n| !clip.frames.iter().any(|f| &f.name == *n))
        {
            return Err(Error::UnknownFrame { name: n.clone() });
        }
    }
    let dir = out.join("export");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut entries = Vec::new();
    for f in &clip.frames {
        let state = review.frame(&f.name).cloned().unwrap_or_default();
        let wanted = names.is_none_or(|n| n.contains(&f.name));
        let mut files = Vec::new();
        if wanted {
            let colors = final_colors(out, &f.name, review)?;
            let frame = Frame::open(&f.line, line)?;
            let [full, fill, json] = export_paths(out, &f.name);
            for (path, layer) in [(&full, Layer::Full), (&fill, Layer::Fill)] {
                let opts = RenderOptions {
                    layer,
                    keep_lines: false,
                };
                let img = render(&frame.seg, &colors, Some(&frame.art), opts).at(&f.line)?;
                write_rgba_png(path, &img)?;
            }
            write_atomic(&json, colors.to_json_compact().as_bytes())?;
            extra.write(&dir, &f.name, &frame, &colors, line)?;
            for p in [full, fill, json] {
                let rel = p.strip_prefix(out).unwrap_or(&p);
                files.push(rel.to_string_lossy().replace('\\', "/"));
            }
            files.extend(
                extra
                    .file_names(&f.name, line)
                    .into_iter()
                    .map(|n| format!("export/{n}")),
            );
        }
        entries.push(ExportEntry {
            frame: f.name.clone(),
            status: state.status(),
            corrected: state.corrections.len(),
            files,
        });
    }
    let text =
        serde_json::to_string_pretty(&serde_json::json!({ "frames": entries })).unwrap_or_default();
    write_atomic(&dir.join("manifest.json"), text.as_bytes())?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(u32, Change)]) -> BTreeMap<u32, Change> {
        list.iter().copied().collect()
    }

    #[test]
    fn fixes_are_saved_versioned_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("corrections");
        let mut r = Review::open(&cdir, ["a", "b"]).unwrap();
        assert_eq!(r.frame("a").unwrap().status(), Status::NotReviewed);
        let red = [255, 0, 0, 255];
        let f = r.fix("a", Some(0), &changes(&[(3, Some(red))]), 5).unwrap();
        assert_eq!(f.version, 1);
        assert_eq!(f.status(), Status::FixesMade);
        // The file is the plain table a colourist (or any tool) can read.
        let text = std::fs::read_to_string(cdir.join("a.json")).unwrap();
        let t = ColorTable::from_json(&text).unwrap();
        assert_eq!(t.get(3), Some(red));
        assert_eq!(t.get(1), None);

        // A second tab still at version 0 is refused, and nothing changes.
        let stale = r.fix("a", Some(0), &changes(&[(3, Some([0, 0, 255, 255]))]), 5);
        assert!(matches!(
            stale,
            Err(Error::Conflict {
                expected: 0,
                current: 1,
                ..
            })
        ));
        r.set_approved("a", Some(1), true).unwrap();
        assert!(matches!(
            r.fix("a", None, &changes(&[(1, Some(red))]), 5),
            Err(Error::Approved { .. })
        ));
        assert!(matches!(
            r.fix("b", None, &changes(&[(6, Some(red))]), 5),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            r.fix("zz", None, &changes(&[(1, Some(red))]), 5),
            Err(Error::UnknownFrame { .. })
        ));

        let back = Review::open(&cdir, ["a", "b"]).unwrap();
        let a = back.frame("a").unwrap();
        assert_eq!((a.version, a.approved), (2, true));
        assert_eq!(a.corrections.get(&3), Some(&red));
        let log = std::fs::read_to_string(cdir.join(LOG)).unwrap();
        let actions: Vec<String> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
            .collect();
        assert_eq!(actions, ["\"fix\"", "\"approve\""]);
    }

    #[test]
    fn undo_drops_a_correction_and_overlay_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Review::open(dir.path(), ["a"]).unwrap();
        let (red, blue) = ([255, 0, 0, 255], [0, 0, 255, 255]);
        r.fix("a", None, &changes(&[(1, Some(red)), (2, Some(blue))]), 3)
            .unwrap();
        let f = r.fix("a", None, &changes(&[(1, None)]), 3).unwrap();
        let prediction = ColorTable::from_colors([[1, 1, 1, 255]; 3]);
        let t = f.apply(&prediction);
        assert_eq!(t.get(1), Some([1, 1, 1, 255]));
        assert_eq!(t.get(2), Some(blue));
        assert_eq!(t.get(3), Some([1, 1, 1, 255]));
    }

    #[test]
    fn damaged_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"1\": [1, 2]}").unwrap();
        let e = Review::open(dir.path(), ["a"]).unwrap_err();
        assert_eq!(e.path(), Some(dir.path().join("a.json").as_path()));
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        std::fs::write(dir.path().join(MANIFEST), "[").unwrap();
        let e = Review::open(dir.path(), ["a"]).unwrap_err();
        assert_eq!(e.path(), Some(dir.path().join(MANIFEST).as_path()));
        std::fs::remove_file(dir.path().join(MANIFEST)).unwrap();
        assert!(matches!(
            Review::open(dir.path(), ["manifest"]),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
