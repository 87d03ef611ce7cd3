//! Reading weight files: PyTorch `.pth` (no pickle code is executed: ZIP
//! checkpoints go through our bounded reader in `pth.rs`, legacy ones
//! through burn's, both parsing the pickle as data) and safetensors, into named f32
//! tensors that [`crate::keymap::load_into`] puts into modules with shape checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::store::pytorch_reader::{DType, PytorchReader};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// One tensor: shape and row-major f32 values.
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// The tensors of a weight file, by name.
#[derive(Debug, Clone)]
pub struct WeightMap {
    path: PathBuf,
    tensors: BTreeMap<String, RawTensor>,
}

/// File format, detected from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `torch.save` file (ZIP or legacy pickle).
    Pytorch,
    /// A safetensors file.
    Safetensors,
}

/// Largest safetensors header we accept (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

impl WeightMap {
    /// Reads every tensor of a `.pth` or `.safetensors` file.
    ///
    /// # Errors
    /// An error naming the file when it cannot be read ([`Error::Read`]), is
    /// of another format ([`Error::UnknownFormat`]), or its contents are
    /// malformed ([`Error::Pth`], [`Error::LegacyPth`],
    /// [`Error::Safetensors`], [`Error::NotFloat`]).
    pub fn open(path: &Path) -> Result<Self> {
        let tensors = match detect(path)? {
            Format::Pytorch => read_pytorch(path)?,
            Format::Safetensors => read_safetensors(path)?,
        };
        Ok(WeightMap {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// A map built in memory (tests, conversions).
    pub fn from_tensors(path: impl Into<PathBuf>, tensors: BTreeMap<String, RawTensor>) -> Self {
        WeightMap {
            path: path.into(),
            tensors,
        }
    }

    /// The file the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a tensor exists.
    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Inserts or replaces a tensor.
    pub fn insert(&mut self, key: String, t: RawTensor) {
        self.tensors.insert(key, t);
    }

    /// Writes every tensor (f32) to a safetensors file, atomically, with
    /// string metadata.
    pub fn save_safetensors(
        &self,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<()> {
        let fail = |source| Error::Safetensors {
            path: path.to_path_buf(),
            source,
        };
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    t.shape.clone(),
                )
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(k, b, s)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map(|v| (k.clone(), v))
                    .map_err(fail)
            })
            .collect::<Result<_>>()?;
        let out = safetensors::serialize(views, Some(metadata)).map_err(fail)?;
        dacon_core::imageio::write_atomic(path, &out)?;
        Ok(())
    }

    /// The string metadata of a safetensors file.
    pub fn safetensors_metadata(path: &Path) -> Result<std::collections::HashMap<String, String>> {
        let bytes = read_file(path)?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|source| {
            Error::Safetensors {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    /// Renames every tensor `k` to `rename(k)`, without copying values.
    pub fn rename_keys(&mut self, rename: impl Fn(&str) -> String) {
        let tensors = std::mem::take(&mut self.tensors);
        self.tensors = tensors.into_iter().map(|(k, t)| (rename(&k), t)).collect();
    }

    /// Mutable access to a tensor (conversions, perturbation checks).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut RawTensor> {
        self.tensors.get_mut(key)
    }

    /// Tensor names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|t| t.shape.as_slice())
    }

    /// The tensor `key`, which must have `expected` shape.
    ///
    /// # Errors
    /// [`Error::MissingKey`] or [`Error::Shape`] naming the key.
    pub fn get(&self, key: &str, expected: &[usize]) -> Result<&RawTensor> {
        let t = self.tensors.get(key).ok_or_else(|| Error::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
            hint: self.hint(),
        })?;
        if t.shape != expected {
            return Err(Error::Shape {
                path: self.path.clone(),
                key: key.to_string(),
                expected: expected.to_vec(),
                actual: t.shape.clone(),
            });
        }
        Ok(t)
    }

    /// A few key names, to tell a user what the file holds instead.
    fn hint(&self) -> String {
        let some: Vec<&str> = self.keys().take(4).collect();
        if some.is_empty() {
            " (the file has no tensors)".into()
        } else {
            format!(
                " (the file has {} tensors, e.g. {})",
                self.tensors.len(),
                some.join(", ")
            )
        }
    }

    /// Removes tensor `key` (shape `expected`) and returns its values; taking
    /// instead of copying keeps large backbones from being held twice.
    pub fn take(&mut self, key: &str, expected: &[usize]) -> Result<Vec<f32>> {
        self.get(key, expected)?;
        Ok(self.tensors.remove(key).map(|t| t.data).unwrap_or_default())
    }
}

/// The shape of `key` if it exists with rank `rank`.
pub fn shape_of(w: &WeightMap, key: &str, rank: usize) -> Option<Vec<usize>> {
    w.shape(key)
        .filter(|s| s.len() == rank)
        .map(<[usize]>::to_vec)
}

/// A tensor on `device` from row-major values.
pub fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Reading a float tensor of any precision back as f32 values.
pub trait Values {
    /// The values, row-major.
    fn values(self) -> Vec<f32>;
}

impl<const D: usize> Values for Tensor<D> {
    fn values(self) -> Vec<f32> {
        self.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a float tensor converts to f32")
    }
}

/// An optional parameter's values (a bias, a norm's shift), or `n` zeros
/// where the module has none: what adding it would do.
pub fn values_or_zeros(param: Option<&Param<Tensor<1>>>, n: usize) -> Vec<f32> {
    param.map_or_else(|| vec![0.0; n], |p| p.val().values())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn detect(path: &Path) -> Result<Format> {
    use std::io::Read;
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(read_error)?;
    let n = f.read(&mut head).map_err(read_error)?;
    // safetensors: an 8-byte little-endian header length, then a JSON
    // object. Checked first: the length's low byte can be 0x80, which is
    // also how a raw pickle starts.
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[..8]);
    if n == 9 && head[8] == b'{' && u64::from_le_bytes(len) <= MAX_HEADER {
        return Ok(Format::Safetensors);
    }
    // A ZIP (torch >= 1.6) or a raw pickle (protocol 2+ starts with 0x80).
    if n >= 2 && (&head[..2] == b"PK" || head[0] == 0x80) {
        return Ok(Format::Pytorch);
    }
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
    })
}

fn read_pytorch(path: &Path) -> Result<BTreeMap<String, RawTensor>> {
    let bytes = read_file(path)?;
    if crate::pth::is_zip(&bytes) {
        return crate::pth::read(&bytes).map_err(|source| Error::Pth {
            path: path.to_path_buf(),
            source,
        });
    }
    drop(bytes);
    // Legacy (pre-1.6) checkpoints: burn's reader.
    let legacy = |source| Error::LegacyPth {
        path: path.to_path_buf(),
        source,
    };
    let reader = PytorchReader::new(path).map_err(legacy)?;
    let mut out = BTreeMap::new();
    for (name, t) in reader.into_tensors() {
        let bytes = t.read().map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let data = to_f32(&bytes, t.dtype()).ok_or_else(|| Error::NotFloat {
            path: path.to_path_buf(),
            key: name.clone(),
            dtype: format!("{:?}", t.dtype()),
        })?;
        out.insert(
            name,
            RawTensor {
                shape: t.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Values of a little-endian buffer of `dtype`, as f32; `None` for
/// non-float types.
fn to_f32(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

fn read_safetensors(path: &Path) -> Result<BTreeMap<String, RawTensor>> {
    let bytes = read_file(path)?;
    // The safetensors crate checks the header length against the buffer.
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
            path: path.to_path_buf(),
            source,
        })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let not_float = || Error::NotFloat {
            path: path.to_path_buf(),
            key: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        };
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F64 => DType::F64,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            _ => return Err(not_float()),
        };
        let data = to_f32(view.data(), dtype).ok_or_else(not_float)?;
        out.insert(
            name,
            RawTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        let h = |bits: u16| to_f32(&bits.to_le_bytes(), DType::F16).unwrap()[0];
        assert_eq!(h(0x3c00), 1.0);
        assert_eq!(h(0xc000), -2.0);
        assert_eq!(h(0x0001), 2f32.powi(-24));
        assert!(h(0x7c00).is_infinite());
        let b = |bits: u16| to_f32(&bits.to_le_bytes(), DType::BF16).unwrap()[0];
        assert_eq!(b(0x3f80), 1.0);
    }

    #[test]
    fn garbage_is_a_read_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.pth");
        std::fs::write(&p, b"hello world, not weights").unwrap();
        let e = WeightMap::open(&p).unwrap_err();
        assert!(matches!(e, Error::UnknownFormat { .. }), "{e:?}");
        assert!(e.to_string().contains("w.pth"), "{e}");
        std::fs::write(&p, [0x80u8, 2, 3]).unwrap();
        assert!(WeightMap::open(&p).is_err());
    }
}
