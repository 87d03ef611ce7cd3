//! Reading weight files: PyTorch `.pth` (no pickle code is executed: burn's
//! reader parses the pickle stream as data) and safetensors, into named f32
//! tensors that the model builders take by name with shape checks.

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
    /// [`Error::Read`] naming the file when it cannot be read or parsed.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |message: String| Error::Read {
            path: path.to_path_buf(),
            message,
        };
        let format = detect(path).map_err(|e| fail(e.to_string()))?;
        let tensors = match format {
            Format::Pytorch => read_pytorch(path).map_err(fail)?,
            Format::Safetensors => read_safetensors(path).map_err(fail)?,
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
        let fail = |message: String| Error::Read {
            path: path.to_path_buf(),
            message,
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
                    .map_err(|e| fail(e.to_string()))
            })
            .collect::<Result<_>>()?;
        let out = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
        dacon_core::imageio::write_atomic(path, &out)?;
        Ok(())
    }

    /// The string metadata of a safetensors file.
    pub fn safetensors_metadata(path: &Path) -> Result<std::collections::HashMap<String, String>> {
        let bytes = std::fs::read(path).map_err(|e| Error::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(meta.metadata().clone().unwrap_or_default())
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
        Ok(self.tensors.remove(key).expect("checked above").data)
    }

    /// A tensor of rank `D` from `key` with shape `expected`.
    pub fn tensor<const D: usize>(
        &mut self,
        key: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let data = self.take(key, &expected)?;
        Ok(tensor(data, expected, device))
    }

    /// A parameter of rank `D` from `key` with shape `expected`.
    pub fn param<const D: usize>(
        &mut self,
        key: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Param<Tensor<D>>> {
        Ok(Param::from_tensor(self.tensor(key, expected, device)?))
    }

    /// A `[out, in]` PyTorch linear weight as burn's `[in, out]` parameter.
    pub fn linear_weight(
        &mut self,
        key: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Param<Tensor<2>>> {
        Ok(Param::from_tensor(
            self.tensor(key, [d_out, d_in], device)?.transpose(),
        ))
    }
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

fn detect(path: &Path) -> std::io::Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    // safetensors: an 8-byte little-endian header length, then a JSON
    // object. Checked first: the length's low byte can be 0x80, which is
    // also how a raw pickle starts.
    let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if n == 9 && head[8] == b'{' && len <= MAX_HEADER {
        return Ok(Format::Safetensors);
    }
    // A ZIP (torch >= 1.6) or a raw pickle (protocol 2+ starts with 0x80).
    if n >= 2 && (&head[..2] == b"PK" || head[0] == 0x80) {
        return Ok(Format::Pytorch);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "not a PyTorch (.pth) or safetensors file",
    ))
}

fn read_pytorch(path: &Path) -> Result<BTreeMap<String, RawTensor>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if crate::pth::is_zip(&bytes) {
        return Ok(crate::pth::read(&bytes)?
            .into_iter()
            .map(|(k, t)| {
                (
                    k,
                    RawTensor {
                        shape: t.shape,
                        data: t.data,
                    },
                )
            })
            .collect());
    }
    drop(bytes);
    // Legacy (pre-1.6) checkpoints: burn's reader.
    let reader = PytorchReader::new(path).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, t) in reader.into_tensors() {
        let bytes = t.read().map_err(|e| e.to_string())?;
        let data = to_f32(&bytes, t.dtype()).ok_or_else(|| {
            format!(
                "tensor {name:?} has type {:?}; only float tensors are weights",
                t.dtype()
            )
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

fn to_f32(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_ne_bytes([c[0], c[1]])))
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_ne_bytes([c[0], c[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// IEEE half to single precision.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

fn read_safetensors(path: &Path) -> Result<BTreeMap<String, RawTensor>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() < 8 {
        return Err("file too short for safetensors".into());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header > MAX_HEADER || header + 8 > meta.len() {
        return Err(format!(
            "safetensors header of {header} bytes does not fit the file"
        ));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F64 => DType::F64,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(format!(
                    "tensor {name:?} has type {other:?}; only float tensors are weights"
                ))
            }
        };
        // safetensors is little-endian; so is every platform we build for.
        let data = to_f32(view.data(), dtype).ok_or("unsupported type")?;
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
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn garbage_is_a_read_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.pth");
        std::fs::write(&p, b"hello world, not weights").unwrap();
        let e = WeightMap::open(&p).unwrap_err();
        assert!(e.to_string().contains("w.pth"), "{e}");
        std::fs::write(&p, [0x80u8, 2, 3]).unwrap();
        assert!(WeightMap::open(&p).is_err());
    }
}
