//! Splitting a job across machines: shard `I/N` of a list takes every
//! `N`-th item from item `I` (0-based), in the list's sorted order, so N
//! workers of a scheduler (a Kubernetes Indexed Job, a Slurm job array) that
//! list the same inputs cover each item exactly once, with at most one item
//! of difference between them. Outputs already complete are resumed, so a
//! rerun of a shard is idempotent; [`Manifest`] records what each shard did.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::imageio::write_atomic;

/// The most shards a job may be split into.
pub const MAX_SHARDS: u32 = 100_000;

/// Part `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, `0..count`.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// The whole job as one part.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether the item at `position` of the sorted list belongs here.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }

    /// The items of `items` (already in their sorted order) in this shard.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.takes(*i))
            .map(|(_, t)| t)
            .collect()
    }

    /// The manifest's file name: `manifest-I-of-N.json`.
    pub fn manifest_name(&self) -> String {
        format!("manifest-{}-of-{}.json", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("expected I/N with 0 <= I < N <= {MAX_SHARDS}, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What happened to one item of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The item (a cut, a frame).
    pub name: String,
    /// `done` (computed now), `resumed` (complete before) or `failed`.
    pub status: String,
    /// Frames finished, for items that are cuts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frames: Option<usize>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The record of one shard's run, rewritten atomically after every item so
/// that a killed worker leaves an accurate account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The command that ran.
    pub command: String,
    /// `I/N`.
    pub shard: String,
    /// Items assigned to this shard, in order.
    pub assigned: Vec<String>,
    /// Items finished so far.
    pub items: Vec<ManifestItem>,
    /// Whether every assigned item was attempted.
    pub complete: bool,
}

impl Manifest {
    /// An empty record for `assigned` items.
    pub fn new(command: &str, shard: Shard, assigned: Vec<String>) -> Self {
        Manifest {
            command: command.into(),
            shard: shard.to_string(),
            assigned,
            items: Vec::new(),
            complete: false,
        }
    }

    /// Writes the manifest to `path`, atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(path, text.as_bytes())
    }

    /// Reads a manifest.
    ///
    /// # Errors
    /// Read errors, or [`Error::Layout`] when it is not a manifest.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::layout(path, format!("not a manifest: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once() {
        let items: Vec<usize> = (0..23).collect();
        for n in [1, 2, 3, 7, 23, 40] {
            let mut seen = Vec::new();
            let mut sizes = Vec::new();
            for i in 0..n {
                let part = Shard { index: i, count: n }.select(items.clone());
                sizes.push(part.len());
                seen.extend(part);
            }
            seen.sort_unstable();
            assert_eq!(seen, items, "{n} shards");
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} shards: {sizes:?}");
        }
    }

    #[test]
    fn parse_and_print() {
        assert_eq!("3/8".parse(), Ok(Shard { index: 3, count: 8 }));
        assert_eq!(Shard { index: 3, count: 8 }.to_string(), "3/8");
        for bad in ["8/8", "1/0", "-1/2", "a/b", "3", "0/100001", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("colorize", Shard::ALL, vec!["a".into()]);
        m.items.push(ManifestItem {
            name: "a".into(),
            status: "done".into(),
            frames: Some(3),
            error: None,
        });
        let p = d.path().join(Shard::ALL.manifest_name());
        m.save(&p).unwrap();
        assert_eq!(Manifest::open(&p).unwrap(), m);
        assert!(p.ends_with("manifest-0-of-1.json"));
    }
}
