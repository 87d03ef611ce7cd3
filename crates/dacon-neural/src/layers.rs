//! Small layers shared by the models, built from loaded weights.

use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, PaddingConfig2d};
use burn::tensor::Device;

use crate::error::Result;
use crate::weights::WeightMap;

/// `prefix.weight` `[out, in]` and `prefix.bias` as a burn linear layer.
pub fn linear(
    w: &mut WeightMap,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear> {
    Ok(Linear {
        weight: w.linear_weight(&format!("{prefix}.weight"), d_in, d_out, device)?,
        bias: Some(w.param(&format!("{prefix}.bias"), [d_out], device)?),
    })
}

/// A PyTorch `nn.LayerNorm` (`weight`, `bias`).
pub fn layer_norm(
    w: &mut WeightMap,
    prefix: &str,
    dim: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm> {
    let mut norm = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    norm.gamma = w.param(&format!("{prefix}.weight"), [dim], device)?;
    norm.beta = Some(w.param(&format!("{prefix}.bias"), [dim], device)?);
    Ok(norm)
}

/// A PyTorch `nn.Conv2d` with bias, square kernel, given stride and padding.
pub fn conv2d(
    w: &mut WeightMap,
    prefix: &str,
    [c_out, c_in, k]: [usize; 3],
    stride: usize,
    padding: usize,
    device: &Device,
) -> Result<Conv2d> {
    Ok(Conv2d {
        weight: w.param(&format!("{prefix}.weight"), [c_out, c_in, k, k], device)?,
        bias: Some(w.param(&format!("{prefix}.bias"), [c_out], device)?),
        stride: [stride, stride],
        kernel_size: [k, k],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(padding, padding, padding, padding),
    })
}

/// The shape of `key` if it exists with rank `rank`.
pub fn shape_of(w: &WeightMap, key: &str, rank: usize) -> Option<Vec<usize>> {
    w.shape(key)
        .filter(|s| s.len() == rank)
        .map(<[usize]>::to_vec)
}
