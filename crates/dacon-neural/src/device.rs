//! Where the neural engine runs: `--device cpu|wgpu[:cpu|:N]|cuda[:N]|auto`.
//!
//! burn picks a device from its compiled backends and the `BURN_DEVICE`
//! variable, and panics on a name it does not know or whose backend is not
//! compiled in. A user's typo must be an error that says what this build
//! can run on, so the choice is parsed here and checked against the
//! features this crate was built with.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A device as a user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA GPU 0 in a build with `cuda`, else the CPU. wgpu is never
    /// picked on its own: on a machine without a GPU its adapter is a
    /// software rasteriser, slower than the CPU backend.
    #[default]
    Auto,
    /// burn's `flex` backend on the CPU (the reference for parity).
    Cpu,
    /// A wgpu adapter (Vulkan, Metal, DX12 or WebGPU).
    Wgpu(WgpuAdapter),
    /// The CUDA GPU of this index.
    Cuda(usize),
}

/// Which wgpu adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgpuAdapter {
    /// wgpu's choice (a high-power GPU first; `CUBECL_WGPU_DEFAULT_DEVICE`
    /// overrides).
    Default,
    /// The discrete GPU of this index.
    Discrete(usize),
    /// A CPU adapter, such as Mesa's lavapipe: the GPU code path on a
    /// machine without a GPU.
    Cpu,
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Device {
            name: s.to_string(),
            why: "expected auto, cpu, wgpu, wgpu:cpu, wgpu:N, cuda or cuda:N".to_string(),
        };
        let lower = s.trim().to_ascii_lowercase();
        let (kind, index) = match lower.split_once(':') {
            Some((k, i)) => (k, Some(i)),
            None => (lower.as_str(), None),
        };
        let number = |i: &str| i.parse::<usize>().ok().filter(|&n| n < 64).ok_or_else(bad);
        Ok(match (kind, index) {
            ("auto", None) => DeviceChoice::Auto,
            ("cpu" | "flex", None) => DeviceChoice::Cpu,
            ("wgpu", None) => DeviceChoice::Wgpu(WgpuAdapter::Default),
            ("wgpu", Some("cpu")) => DeviceChoice::Wgpu(WgpuAdapter::Cpu),
            ("wgpu", Some(i)) => DeviceChoice::Wgpu(WgpuAdapter::Discrete(number(i)?)),
            ("cuda", None) => DeviceChoice::Cuda(0),
            ("cuda", Some(i)) => DeviceChoice::Cuda(number(i)?),
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Wgpu(WgpuAdapter::Default) => f.write_str("wgpu"),
            DeviceChoice::Wgpu(WgpuAdapter::Cpu) => f.write_str("wgpu:cpu"),
            DeviceChoice::Wgpu(WgpuAdapter::Discrete(i)) => write!(f, "wgpu:{i}"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// The GPU backends compiled into this build, for messages and reports.
pub fn compiled_backends() -> &'static [&'static str] {
    &[
        "cpu",
        #[cfg(feature = "wgpu")]
        "wgpu",
        #[cfg(feature = "cuda")]
        "cuda",
    ]
}

impl DeviceChoice {
    /// What `auto` resolves to in this build.
    pub fn resolve(self) -> DeviceChoice {
        match self {
            DeviceChoice::Auto if cfg!(feature = "cuda") => DeviceChoice::Cuda(0),
            DeviceChoice::Auto => DeviceChoice::Cpu,
            other => other,
        }
    }

    /// The burn device.
    ///
    /// # Errors
    /// [`Error::Device`] when this build lacks the backend (it names the
    /// cargo feature to build with).
    pub fn device(self) -> Result<Device> {
        // Unused in a build with every GPU backend.
        #[cfg_attr(all(feature = "wgpu", feature = "cuda"), allow(unused_variables))]
        let missing = |feature: &str| Error::Device {
            name: self.to_string(),
            why: format!(
                "this build has no {feature} backend (it has: {}); rebuild with \
                 `cargo build --release -p dacon-cli --features {feature}`",
                compiled_backends().join(", ")
            ),
        };
        match self.resolve() {
            DeviceChoice::Auto | DeviceChoice::Cpu => Ok(Device::flex()),
            DeviceChoice::Wgpu(adapter) => {
                #[cfg(feature = "wgpu")]
                {
                    use burn::tensor::DeviceKind;
                    let kind = match adapter {
                        WgpuAdapter::Default => DeviceKind::DefaultDevice,
                        WgpuAdapter::Discrete(i) => DeviceKind::DiscreteGpu(i),
                        WgpuAdapter::Cpu => DeviceKind::Cpu,
                    };
                    Ok(Device::wgpu(kind))
                }
                #[cfg(not(feature = "wgpu"))]
                {
                    let _ = adapter;
                    Err(missing("wgpu"))
                }
            }
            DeviceChoice::Cuda(index) => {
                #[cfg(feature = "cuda")]
                {
                    Ok(Device::cuda(index))
                }
                #[cfg(not(feature = "cuda"))]
                {
                    let _ = index;
                    Err(missing("cuda"))
                }
            }
        }
    }
}

/// The device chosen by `DACON_DEVICE` (tests and tools that take no
/// `--device`), `auto` when unset.
///
/// # Errors
/// [`Error::Device`] for a name that does not parse or a backend not built.
pub fn from_env() -> Result<Device> {
    match std::env::var("DACON_DEVICE") {
        Ok(s) if !s.trim().is_empty() => s.parse::<DeviceChoice>()?.device(),
        _ => DeviceChoice::Auto.device(),
    }
}

/// A line naming the device and, for a GPU backend, the adapter it opened
/// (e.g. `wgpu (llvmpipe (LLVM 19.1.7, 256 bits))`). Opens the device.
pub fn describe(device: &Device) -> String {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        if let Some(id) = device.as_dispatch().identity() {
            return format!("{device:?} ({})", id.name);
        }
    }
    format!("{device:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for s in [
            "auto", "cpu", "wgpu", "wgpu:cpu", "wgpu:1", "cuda:0", "cuda:3",
        ] {
            let c: DeviceChoice = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        assert_eq!(
            "CUDA".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!("flex".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
    }

    #[test]
    fn unknown_names_are_errors_that_list_the_choices() {
        for s in [
            "gpu", "cuda:x", "cuda:-1", "wgpu:999", "", "cpu:0", "cuda:0:1",
        ] {
            let e = s.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(e.contains("wgpu:cpu") && e.contains("cuda:N"), "{s}: {e}");
        }
    }

    #[test]
    fn a_backend_not_built_is_an_error_naming_the_feature() {
        if cfg!(feature = "cuda") {
            return;
        }
        let e = DeviceChoice::Cuda(0).device().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
        assert_eq!(DeviceChoice::Auto.resolve(), DeviceChoice::Cpu);
        assert!(DeviceChoice::Cpu.device().is_ok());
    }
}
