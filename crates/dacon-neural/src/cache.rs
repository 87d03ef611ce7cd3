//! The frozen-feature cache of training.
//!
//! DINOv2 is not trained, and a training frame's segments never change, so
//! the segment-pooled raw DINO features of a frame (`[segments, D]`) are the
//! same every time the frame is seen. They are cached rather than the patch
//! map: a few hundred rows instead of `D x 37 x 37`, and the pooling is
//! skipped too.
//!
//! - [`CacheMode::Memory`]: float32, exact, for this run only, up to a size
//!   (a ViT-L frame of 300 segments takes 1.2 MB; beyond the limit frames
//!   are computed every time).
//! - [`CacheMode::Disk`]: one safetensors file per frame in a folder, float16
//!   (relative error <= 2^-11 per value), shared by later runs, resumes and
//!   other experiments with the same backbone. So that a run gives the same
//!   numbers whether its features were read or computed, freshly computed
//!   features are rounded to float16 as well.
//!
//! Entries are named by a hash of everything the features depend on: the
//! backbone's weights, the line art's pixels, the 512x512 labels and the
//! pooling size. A changed frame or another backbone can never hit a stale
//! entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use half::f16;
use xxhash_rust::xxh3::Xxh3;

use crate::dino::Dino;
use crate::error::{Error, Result};
use crate::keymap::for_each_param;

/// Where cached features live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMode {
    /// Recompute the backbone for every use.
    Off,
    /// Keep float32 features in memory for this run, at most `max_bytes`.
    Memory {
        /// Size limit of the stored features.
        max_bytes: u64,
    },
    /// Keep float16 features in files under this folder.
    Disk(PathBuf),
}

/// Cached segment features, with hit and miss counts.
#[derive(Debug)]
pub struct FeatureCache {
    mode: CacheMode,
    backbone: u128,
    memory: Mutex<HashMap<u128, Vec<f32>>>,
    memory_bytes: AtomicU64,
    memory_full: std::sync::atomic::AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hash of a backbone's parameters (official names, shapes and values, in
/// module order): its identity in cache keys.
pub fn fingerprint(backbone: &Dino) -> u128 {
    let mut h = Xxh3::new();
    for_each_param(backbone, |name, t| {
        h.update(name.as_bytes());
        for s in &t.shape {
            h.update(&(*s as u64).to_le_bytes());
        }
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&bytes);
    });
    h.digest128()
}

impl FeatureCache {
    /// A cache for the backbone with [`fingerprint`] `backbone`.
    ///
    /// # Errors
    /// [`Error::Write`] when the disk folder cannot be created.
    pub fn new(mode: CacheMode, backbone: u128) -> Result<Self> {
        if let CacheMode::Disk(dir) = &mode {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(FeatureCache {
            mode,
            backbone,
            memory: Mutex::default(),
            memory_bytes: AtomicU64::new(0),
            memory_full: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The backbone fingerprint its keys start from.
    pub fn backbone(&self) -> u128 {
        self.backbone
    }

    /// Its mode.
    pub fn mode(&self) -> &CacheMode {
        &self.mode
    }

    /// Whether the memory cache reached its limit and stopped storing.
    pub fn memory_full(&self) -> bool {
        self.memory_full.load(Ordering::Relaxed)
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The key of a frame: the backbone, then `parts` (the inputs the
    /// features are computed from).
    pub fn key(&self, parts: &[&[u8]]) -> u128 {
        let mut h = Xxh3::new();
        h.update(&self.backbone.to_le_bytes());
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.digest128()
    }

    /// The features under `key`, computed by `compute` when absent.
    ///
    /// # Errors
    /// [`Error::Write`] when a disk entry cannot be written; an unreadable or
    /// corrupt entry is recomputed and replaced.
    pub fn get_or_compute(
        &self,
        key: u128,
        compute: impl FnOnce() -> Vec<f32>,
    ) -> Result<Vec<f32>> {
        match &self.mode {
            CacheMode::Off => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(compute())
            }
            CacheMode::Memory { max_bytes } => {
                if let Some(hit) = self.memory.lock().expect("not poisoned").get(&key) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(hit.clone());
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                let v = compute();
                let size = 4 * v.len() as u64;
                if self.memory_bytes.load(Ordering::Relaxed) + size <= *max_bytes {
                    self.memory_bytes.fetch_add(size, Ordering::Relaxed);
                    self.memory
                        .lock()
                        .expect("not poisoned")
                        .insert(key, v.clone());
                } else {
                    self.memory_full.store(true, Ordering::Relaxed);
                }
                Ok(v)
            }
            CacheMode::Disk(dir) => {
                let path = dir.join(format!("{key:032x}.safetensors"));
                if let Some(v) = read_entry(&path) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(v);
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                let full = compute();
                let half: Vec<f16> = full.iter().map(|&v| f16::from_f32(v)).collect();
                if half.iter().any(|v| !v.is_finite()) {
                    return Ok(full); // beyond float16's range: never cached
                }
                write_entry(&path, &half)?;
                Ok(half.into_iter().map(f32::from).collect())
            }
        }
    }
}

fn read_entry(path: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    let t = st.tensor("features").ok()?;
    if t.dtype() != safetensors::Dtype::F16 {
        return None;
    }
    Some(
        t.data()
            .chunks_exact(2)
            .map(|b| f32::from(f16::from_le_bytes([b[0], b[1]])))
            .collect(),
    )
}

fn write_entry(path: &Path, values: &[f16]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let fail = |source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    };
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![values.len()], &bytes)
            .map_err(fail)?;
    let out = safetensors::serialize([("features", view)], None).map_err(fail)?;
    dacon_core::imageio::write_atomic(path, &out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cache_computes_once() {
        let c = FeatureCache::new(CacheMode::Memory { max_bytes: 8 }, 7).unwrap();
        let k = c.key(&[b"frame"]);
        assert_eq!(c.get_or_compute(k, || vec![0.1, 0.2]).unwrap(), [0.1, 0.2]);
        let again = c
            .get_or_compute(k, || panic!("must not recompute"))
            .unwrap();
        assert_eq!(again, [0.1, 0.2]);
        assert_eq!(c.stats(), (1, 1));
        assert!(!c.memory_full());
        // Over the limit (8 bytes): computed, returned, not kept.
        let k2 = c.key(&[b"other"]);
        assert_eq!(c.get_or_compute(k2, || vec![0.5]).unwrap(), [0.5]);
        assert!(c.memory_full());
        assert_eq!(c.get_or_compute(k2, || vec![0.5]).unwrap(), [0.5]);
        assert_eq!(c.stats(), (1, 3));
    }

    #[test]
    fn keys_depend_on_backbone_and_every_part() {
        let a = FeatureCache::new(CacheMode::Off, 1).unwrap();
        let b = FeatureCache::new(CacheMode::Off, 2).unwrap();
        assert_ne!(a.key(&[b"x"]), b.key(&[b"x"]));
        assert_ne!(a.key(&[b"x", b"y"]), a.key(&[b"xy"]));
        assert_eq!(a.key(&[b"x", b"y"]), a.key(&[b"x", b"y"]));
    }

    #[test]
    fn disk_cache_is_half_precision_and_survives_a_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let values = vec![1.0f32 / 3.0, -2.5, 1e-3];
        let rounded: Vec<f32> = values
            .iter()
            .map(|&v| f32::from(f16::from_f32(v)))
            .collect();
        let first = FeatureCache::new(CacheMode::Disk(dir.path().into()), 3).unwrap();
        let k = first.key(&[b"frame"]);
        // A fresh value is already rounded, so reads and computations agree.
        assert_eq!(first.get_or_compute(k, || values.clone()).unwrap(), rounded);
        let second = FeatureCache::new(CacheMode::Disk(dir.path().into()), 3).unwrap();
        let read = second
            .get_or_compute(k, || panic!("must be on disk"))
            .unwrap();
        assert_eq!(read, rounded);
        for (r, v) in read.iter().zip(&values) {
            assert!((r - v).abs() <= v.abs() * 2f32.powi(-11));
        }
        // A corrupt entry is recomputed, not trusted.
        std::fs::write(dir.path().join(format!("{k:032x}.safetensors")), b"junk").unwrap();
        assert_eq!(
            second.get_or_compute(k, || values.clone()).unwrap(),
            rounded
        );
    }
}
