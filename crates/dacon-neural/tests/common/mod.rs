#![allow(dead_code, unused_imports)] // Each test binary uses a subset of these helpers.

//! Shared helpers of the parity tests.

use std::path::Path;

pub use dacon_testkit::vectors;

/// The device under test: `DACON_DEVICE` (`wgpu:cpu` runs the GPU code on
/// a software adapter such as lavapipe), the CPU when unset.
pub fn device() -> dacon_neural::Device {
    dacon_neural::device::from_env()
        .unwrap_or_else(|e| panic!("DACON_DEVICE names no device of this build: {e}"))
}

/// Expected tensors of the official code, any dtype, as f64.
pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn open(v: &Path) -> Self {
        Expected {
            bytes: std::fs::read(v.join("expected/tensors.safetensors")).unwrap(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        st.names().into_iter().map(str::to_owned).collect()
    }

    pub fn get(&self, name: &str) -> (Vec<usize>, Vec<f64>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("no expected tensor {name}"));
        let data = match t.dtype() {
            safetensors::Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            safetensors::Dtype::I64 => t
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            d => panic!("unexpected dtype {d:?}"),
        };
        (t.shape().to_vec(), data)
    }
}

/// Largest absolute difference, with a length check.
pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).abs())
        .fold(0.0, f64::max)
}
