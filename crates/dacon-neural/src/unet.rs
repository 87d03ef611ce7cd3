//! The DACoN U-Net: conv3x3 + InstanceNorm (no affine, eps 1e-5) + ReLU
//! blocks, 2x2 max-pooling, bilinear x2 upsampling (align_corners=True) with
//! a conv block, skip concatenation, and a 1x1 output convolution. Built by
//! [`UNetConfig::init`]; the head loads its weights.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor};

use crate::cpu;
use crate::cpu_train::{self, After};
use crate::error::{Error, Result};
use crate::resize::upsample2x_aligned;
use crate::weights::{shape_of, values_or_zeros, Values, WeightMap};

/// Widths of a U-Net (defaults: the released DACoN);
/// [`UNetConfig::read`] takes them from a checkpoint.
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Encoder widths (the bottleneck is twice the last).
    #[config(default = "vec![64, 128, 256, 512]")]
    pub hidden: Vec<usize>,
    /// Output channels (DACoN's feature size).
    #[config(default = 128)]
    pub output: usize,
}

/// A `k` x `k` convolution, stride 1, padding `padding`, with bias.
fn conv(c_in: usize, c_out: usize, k: usize, padding: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .init(device)
}

impl UNetConfig {
    /// A U-Net with PyTorch's default initialisation (random).
    pub fn init(&self, device: &Device) -> UNet {
        let block = |c_in, c_out| ConvBlock {
            first: conv(c_in, c_out, 3, 1, device),
            second: conv(c_out, c_out, 3, 1, device),
        };
        let mut encoder_blocks = Vec::new();
        let mut c_in = 3;
        for &h in &self.hidden {
            encoder_blocks.push(block(c_in, h));
            c_in = h;
        }
        let bottleneck = block(c_in, 2 * c_in);
        let mut decoder_up_convs = Vec::new();
        let mut decoder_conv_blocks = Vec::new();
        let mut current = 2 * c_in;
        for &skip in self.hidden.iter().rev() {
            decoder_up_convs.push(UpConv {
                conv: conv(current, skip, 3, 1, device),
            });
            decoder_conv_blocks.push(block(2 * skip, skip));
            current = skip;
        }
        UNet {
            encoder_blocks,
            bottleneck,
            decoder_up_convs,
            decoder_conv_blocks,
            final_conv: conv(current, self.output, 1, 0, device),
        }
    }

    /// Widths from the `unet.*` tensors of a DACoN checkpoint.
    ///
    /// # Errors
    /// [`Error::WrongModel`] when the tensors do not form a U-Net.
    pub fn read(w: &WeightMap) -> Result<UNetConfig> {
        let mut hidden = Vec::new();
        while let Some(s) = shape_of(
            w,
            &format!("unet.encoder_blocks.{}.conv.0.weight", hidden.len()),
            4,
        ) {
            hidden.push(s[0]);
        }
        let output = shape_of(w, "unet.final_conv.weight", 4).map(|s| s[0]);
        match (hidden.is_empty(), output) {
            (false, Some(output)) => Ok(UNetConfig { hidden, output }),
            _ => Err(Error::WrongModel {
                path: w.path().to_path_buf(),
                message: "not a DACoN checkpoint: no unet.encoder_blocks.0.conv.0.weight or unet.final_conv.weight".into(),
            }),
        }
    }
}

/// `nn.InstanceNorm2d` without affine parameters (eps 1e-5).
///
/// PyTorch accumulates the statistics in double precision on the CPU; a
/// flat float32 sum over 512x512 values drifts by ~1e-3 of the mean, which
/// normalisation by a small spread turns into errors of 1e-3 on the output.
/// Summing rows first, then the row sums, keeps each float32 sum short, and
/// two passes (mean, then squared deviations) avoid cancellation.
fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    // Under autodiff the statistics must stay in the graph (the gradient
    // flows through the mean and variance); otherwise exact statistics.
    // The statistics are broadcast over the rows first, then along each
    // row, because autodiff sums a broadcast gradient back in one reduction
    // over every broadcast element: 262144 of them at 512x512, which
    // burn-cubecl sums in float32 with an error that the first layer's
    // weight gradient (nearly the same image under every tap) amplifies to
    // a relative 0.11 on lavapipe; one row (512) at a time it matches the
    // official gradient to 2e-3, as the CPU does (`tests/train.rs`).
    if !x.is_autodiff() {
        return instance_norm_exact(x);
    }
    let [b, c, h, w] = x.dims();
    let n = (h * w) as f64;
    let mean = (x.clone().sum_dim(3).sum_dim(2) / n).expand([b, c, h, 1]);
    let centered = x - mean;
    let var = centered.clone().powf_scalar(2.0).sum_dim(3).sum_dim(2) / n;
    centered / (var + 1e-5).sqrt().expand([b, c, h, 1])
}

/// Inference: the statistics in double precision, as PyTorch on the CPU.
fn instance_norm_exact(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let data: Vec<f32> = x.clone().values();
    let n = h * w;
    let mut mean = Vec::with_capacity(b * c);
    let mut inv = Vec::with_capacity(b * c);
    for plane in data.chunks_exact(n) {
        let m = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = plane
            .iter()
            .map(|&v| (f64::from(v) - m).powi(2))
            .sum::<f64>()
            / n as f64;
        mean.push(m as f32);
        inv.push((1.0 / (var + 1e-5).sqrt()) as f32);
    }
    let mean: Tensor<4> = crate::weights::tensor(mean, [b, c, 1, 1], &device);
    let inv: Tensor<4> = crate::weights::tensor(inv, [b, c, 1, 1], &device);
    (x - mean) * inv
}

/// Two conv3x3 + InstanceNorm + ReLU (entries 0 and 3 of the official
/// `nn.Sequential`).
#[derive(Module, Debug)]
struct ConvBlock {
    first: Conv2d,
    second: Conv2d,
}

/// `conv -> InstanceNorm -> ReLU`.
fn conv_norm(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if trains_on_cpu(&x) {
        return cpu_train::convolve(conv, x, After::NormRelu);
    }
    relu(instance_norm(convolve(conv, x)))
}

/// Whether `x` is on the CPU's autodiff device, where the convolutions
/// are [`cpu_train`]'s operations.
fn trains_on_cpu(x: &Tensor<4>) -> bool {
    x.is_autodiff() && x.device().inner() == Device::flex()
}

/// A U-Net convolution (stride 1, odd square kernel, "same" padding).
///
/// Training on a GPU backend goes through [`convolve_as_matmul`]: burn-cubecl
/// 0.22.1 computes the weight gradient of a convolution over a large map
/// wrongly (on lavapipe a 1x1 convolution over 512x512 is off by a relative
/// 0.99, bias and input gradients right; `tests/gpu_gradients.rs`), while
/// the gradients of a plain matmul are right at every size. Training on
/// the CPU runs [`cpu_train`]'s convolution, GPU inference burn's (CPU
/// inference does not come here, see [`UNet::forward`]).
fn convolve(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if trains_on_cpu(&x) {
        return cpu_train::convolve(conv, x, After::Nothing);
    }
    if x.is_autodiff() {
        return convolve_as_matmul(conv, x, GPU_BAND_FLOATS);
    }
    conv.forward(x)
}

/// Floats in one band's im2col matrix on a GPU backend: wgpu binds at most
/// 128 MiB per storage buffer by default.
const GPU_BAND_FLOATS: usize = 1 << 24;

/// The same convolution as matmuls over the k*k shifted copies of the
/// padded input (im2col), band of rows by band, which autodiff
/// differentiates with matmuls, slices and concatenations only.
fn convolve_as_matmul(conv: &Conv2d, x: Tensor<4>, band_floats: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [o, _, k, _] = conv.weight.dims();
    let pad = k / 2;
    let padded = if pad > 0 {
        x.pad((pad, pad, pad, pad), PadMode::Constant(0.0))
    } else {
        x
    };
    // Tap-major channel blocks: block `dy * k + dx` is the input shifted by
    // (dy, dx), so the weight is laid out [o, ky, kx, c] to match. The bias
    // is one more column, against a row of ones: the matmul then sums its
    // gradient in tiles, where autodiff's gradient of a broadcast bias is
    // one float32 reduction over the whole map (see `instance_norm`), off
    // by up to 1.5e-2 on lavapipe at 512x512.
    let mut weight = conv
        .weight
        .val()
        .permute([0, 2, 3, 1])
        .reshape([o, k * k * c]);
    if let Some(bias) = &conv.bias {
        weight = Tensor::cat(vec![weight, bias.val().reshape([o, 1])], 1);
    }
    let [_, inputs] = weight.dims();
    let weight = weight.reshape([1, o, inputs]).expand([b, o, inputs]);
    let band = (band_floats / (b * inputs * w).max(1)).clamp(1, h.max(1));
    let bands: Vec<Tensor<4>> = (0..h)
        .step_by(band)
        .map(|y0| {
            let rows = band.min(h - y0);
            let mut taps: Vec<Tensor<4>> = (0..k * k)
                .map(|t| {
                    let (dy, dx) = (t / k, t % k);
                    padded
                        .clone()
                        .slice([0..b, 0..c, y0 + dy..y0 + dy + rows, dx..dx + w])
                })
                .collect();
            if conv.bias.is_some() {
                taps.push(Tensor::ones([b, 1, rows, w], &padded.device()));
            }
            let columns = Tensor::cat(taps, 1).reshape([b, inputs, rows * w]);
            weight.clone().matmul(columns).reshape([b, o, rows, w])
        })
        .collect();
    Tensor::cat(bands, 2)
}

impl ConvBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_norm(&self.second, conv_norm(&self.first, x))
    }
}

/// The convolution after upsampling (entry 1 of the official
/// `nn.Sequential`, after `nn.Upsample`).
#[derive(Module, Debug)]
struct UpConv {
    conv: Conv2d,
}

/// The U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    encoder_blocks: Vec<ConvBlock>,
    bottleneck: ConvBlock,
    decoder_up_convs: Vec<UpConv>,
    decoder_conv_blocks: Vec<ConvBlock>,
    final_conv: Conv2d,
}

impl UNet {
    /// # Shapes
    /// - x: `[B, 3, H, W]` (H, W divisible by 2^levels)
    /// - output: `[B, output, H, W]`
    ///
    /// Inference on the CPU runs in [`crate::cpu`] (burn's CPU convolution
    /// is 2.6x slower than PyTorch's), training on the CPU through
    /// [`cpu_train`]'s operations within burn's tensors, GPU backends on
    /// burn's tensors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if !x.is_autodiff() && x.device() == Device::flex() {
            return self.forward_cpu(x);
        }
        self.forward_tensors(x)
    }

    fn forward_tensors(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoder_blocks.len());
        let mut x = x;
        for block in &self.encoder_blocks {
            let y = block.forward(x);
            skips.push(y.clone());
            x = max_pool2d(y, MaxPoolOptions::new([2, 2]));
        }
        x = self.bottleneck.forward(x);
        for ((up, dec), skip) in self
            .decoder_up_convs
            .iter()
            .zip(&self.decoder_conv_blocks)
            .zip(skips.into_iter().rev())
        {
            let y = conv_norm(&up.conv, upsample(x));
            x = dec.forward(Tensor::cat(vec![skip, y], 1));
        }
        convolve(&self.final_conv, x)
    }
}

impl UNet {
    fn forward_cpu(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let data = x.values();
        let mut out = Vec::new();
        for image in data.chunks_exact((c * h * w).max(1)).take(b) {
            let y = self.forward_planes(cpu::Planes {
                c,
                h,
                w,
                data: image.to_vec(),
            });
            out.extend_from_slice(&y.data);
        }
        let o = out.len() / (b * h * w).max(1);
        crate::weights::tensor(out, [b, o, h, w], &device)
    }

    /// [`UNet::forward_tensors`] step for step, on one image.
    fn forward_planes(&self, x: cpu::Planes) -> cpu::Planes {
        let mut skips = Vec::with_capacity(self.encoder_blocks.len());
        let mut x = x;
        for block in &self.encoder_blocks {
            let y = block.forward_cpu(&[&x]);
            x = cpu::max_pool2(&y);
            skips.push(y);
        }
        x = self.bottleneck.forward_cpu(&[&x]);
        for ((up, dec), skip) in self
            .decoder_up_convs
            .iter()
            .zip(&self.decoder_conv_blocks)
            .zip(skips.into_iter().rev())
        {
            let y = conv_norm_cpu(&up.conv, &[&cpu::upsample2(&x)]);
            x = dec.forward_cpu(&[&skip, &y]);
        }
        kernel(&self.final_conv).apply(&x)
    }
}

impl ConvBlock {
    /// The block over the channels of `parts`, concatenated.
    fn forward_cpu(&self, parts: &[&cpu::Planes]) -> cpu::Planes {
        conv_norm_cpu(&self.second, &[&conv_norm_cpu(&self.first, parts)])
    }
}

fn conv_norm_cpu(conv: &Conv2d, parts: &[&cpu::Planes]) -> cpu::Planes {
    let mut y = kernel(conv).apply_concat(parts);
    cpu::instance_norm_relu(&mut y);
    y
}

/// A convolution's parameters, read out of the module.
fn kernel(conv: &Conv2d) -> cpu::Kernel {
    let [o, c, k, _] = conv.weight.dims();
    cpu::Kernel {
        o,
        c,
        k,
        weight: conv.weight.val().values(),
        bias: values_or_zeros(conv.bias.as_ref(), o),
    }
}

/// x2 bilinear upsampling, `align_corners=True`.
///
/// Training goes through [`upsample2x_aligned`], which autodiff can
/// differentiate on every backend (GPU backends have no bilinear backward
/// kernel); inference keeps burn's fused kernel, which needs no intermediate
/// half-upsampled tensors.
fn upsample(x: Tensor<4>) -> Tensor<4> {
    if trains_on_cpu(&x) {
        return cpu_train::upsample(x);
    }
    if x.is_autodiff() {
        return upsample2x_aligned(x);
    }
    let [_, _, h, w] = x.dims();
    let mut opts = InterpolateOptions::new(InterpolateMode::Bilinear);
    opts.align_corners = true;
    opts.output_size = Some([2 * h, 2 * w]);
    interpolate(x, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Values;

    /// Aligned corners: a ramp stays a ramp, ends included.
    #[test]
    fn upsampling_an_aligned_ramp_is_exact() {
        let device = crate::device::from_env().expect("DACON_DEVICE names a device of this build");
        let x: Tensor<4> = crate::weights::tensor(vec![0.0, 3.0, 0.0, 3.0], [1, 1, 2, 2], &device);
        let y = upsample2x_aligned(x).values();
        assert_eq!(&y[..4], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(&y[12..], &[0.0, 1.0, 2.0, 3.0]);
    }

    /// The differentiable form must give what burn's interpolation kernel
    /// gives (which the parity vectors check), on sizes of every U-Net level.
    /// burn places source points in f64 and sums four products; this form,
    /// like PyTorch's CPU kernel, places them in f32 (an error of up to one
    /// ulp of the position, 2e-6 at 31) and interpolates columns, then rows:
    /// times neighbour differences of up to 14 here, a few 1e-5.
    #[test]
    fn differentiable_upsampling_equals_the_interpolation_kernel() {
        let device = crate::device::from_env().expect("DACON_DEVICE names a device of this build");
        for (h, w) in [(1, 1), (2, 3), (4, 4), (7, 5), (32, 32)] {
            let n = 2 * h * w;
            let data: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let x: Tensor<4> = crate::weights::tensor(data, [1, 2, h, w], &device);
            let want = upsample(x.clone()).values();
            let got = upsample2x_aligned(x).values();
            assert_eq!(got.len(), 4 * n);
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() <= 5e-5, "{h}x{w}: {g} vs {e}");
            }
        }
    }

    /// The im2col form is the same convolution: values and the gradients of
    /// weight, bias and input equal burn's on the same device (the CPU in
    /// the workspace run, where burn's are the proven ones), for the 3x3
    /// and 1x1 kernels of the U-Net, over a map that is not square. Sums run
    /// in another order: a few float32 ulps of values of order 10.
    #[test]
    fn the_matmul_convolution_equals_burns() {
        let device = crate::device::from_env()
            .expect("DACON_DEVICE names a device of this build")
            .autodiff();
        let x: Tensor<4> = crate::weights::tensor(ramp(2 * 3 * 6 * 7, 1), [2, 3, 6, 7], &device);
        for (k, pad) in [(3, 1), (1, 0)] {
            let layer = conv(3, 5, k, pad, &device);
            let want = output_and_gradients(&x, Some(&layer), &|x| layer.forward(x));
            // One band, and bands of two rows (the last of one).
            let one_band = output_and_gradients(&x, Some(&layer), &|x| {
                convolve_as_matmul(&layer, x, GPU_BAND_FLOATS)
            });
            let two_rows = output_and_gradients(&x, Some(&layer), &|x| {
                let [b, c_in, _, w] = x.dims();
                convolve_as_matmul(&layer, x, 2 * b * k * k * c_in * w)
            });
            assert_close(&format!("{k}x{k} one band"), &one_band, &want);
            assert_close(&format!("{k}x{k} bands of two rows"), &two_rows, &want);
        }
    }

    /// `n` values in [-2, 2), a ramp folded at 101 and shifted by `seed`.
    fn ramp(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed) % 101) as f32 - 50.0) / 25.0)
            .collect()
    }

    /// `f(x)`, then the gradients of `sum(f(x) * r)` for a fixed ramp `r`
    /// at `x` and, when given, at `layer`'s weight and bias.
    fn output_and_gradients(
        x: &Tensor<4>,
        layer: Option<&Conv2d>,
        f: &dyn Fn(Tensor<4>) -> Tensor<4>,
    ) -> Vec<Vec<f32>> {
        let x = x.clone().require_grad();
        let y = f(x.clone());
        let dims = y.dims();
        let r: Tensor<4> =
            crate::weights::tensor(ramp(dims.iter().product(), 3), dims, &x.device());
        let grads = (y.clone() * r).sum().backward();
        let mut out = vec![y.values(), x.grad(&grads).expect("input gradient").values()];
        if let Some(layer) = layer {
            out.push(layer.weight.grad(&grads).expect("weight gradient").values());
            let bias = layer.bias.as_ref().expect("bias").grad(&grads);
            out.push(bias.expect("bias gradient").values());
        }
        out
    }

    /// Each part of `got` within 1e-4 of `want` (relative above 1).
    fn assert_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
        assert_eq!(got.len(), want.len(), "{what}: parts");
        for (part, (g, e)) in ["output", "input", "weight", "bias"]
            .iter()
            .zip(got.iter().zip(want))
        {
            assert_eq!(g.len(), e.len(), "{what} {part}");
            assert!(!g.is_empty(), "{what} {part}");
            for (g, e) in g.iter().zip(e) {
                assert!(
                    (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{what} {part}: {g} vs {e}"
                );
            }
        }
    }

    /// The CPU training operations (`cpu_train`: hand-written gradients)
    /// compute what burn's autodiff graph computes from burn's own
    /// convolution, the graph form of the norm and the tensor form of the
    /// upsampling: outputs and the gradients of weight, bias and input, for
    /// 3x3, 5x5 and 1x1 kernels with and without the norm, two images of a
    /// map that is not square. The norm's statistics are double precision
    /// here and row-wise float32 sums there: a few 1e-6 of values of order 1.
    #[test]
    fn the_cpu_training_operations_are_burns_graph() {
        let device = Device::flex().autodiff();
        let (b, c, o, h, w) = (2, 3, 5, 6, 7);
        let x: Tensor<4> = crate::weights::tensor(ramp(b * c * h * w, 1), [b, c, h, w], &device);
        for (k, pad) in [(3, 1), (5, 2), (1, 0)] {
            let layer = conv(c, o, k, pad, &device);
            assert_close(
                &format!("{k}x{k} conv + norm + relu"),
                &output_and_gradients(&x, Some(&layer), &|x| conv_norm(&layer, x)),
                &output_and_gradients(&x, Some(&layer), &|x| relu(instance_norm(layer.forward(x)))),
            );
            assert_close(
                &format!("{k}x{k} conv"),
                &output_and_gradients(&x, Some(&layer), &|x| convolve(&layer, x)),
                &output_and_gradients(&x, Some(&layer), &|x| layer.forward(x)),
            );
        }
        assert_close(
            "upsampling",
            &output_and_gradients(&x, None, &upsample),
            &output_and_gradients(&x, None, &upsample2x_aligned),
        );
    }

    /// The CPU inference path computes what the tensor path computes, on
    /// a narrow U-Net with three levels over a map that is not square. The
    /// two place the upsampling's source points in f32 (PyTorch) and f64
    /// (burn), a few 1e-5 before the normalisations; the parity vectors
    /// (tests/engine.rs) hold the CPU path to the official outputs at 1e-4.
    #[test]
    fn the_cpu_path_computes_the_tensor_path() {
        let device = Device::flex();
        let unet = UNetConfig::new()
            .with_hidden(vec![4, 6, 8])
            .with_output(5)
            .init(&device);
        let (h, w) = (40, 24);
        let data: Vec<f32> = (0..2 * 3 * h * w)
            .map(|i| ((i * 7919 % 1013) as f32) / 1013.0)
            .collect();
        let x: Tensor<4> = crate::weights::tensor(data, [2, 3, h, w], &device);
        let want = unet.forward_tensors(x.clone()).values();
        let got = unet.forward(x).values();
        assert_eq!(got.len(), 2 * 5 * h * w);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, e)| (g - e).abs() / e.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "worst difference {worst}");
    }

    /// The gradient of a sum through the upsampling is how often each
    /// input cell was read, weighted: every output row/column's weights sum
    /// to one, so the input gradients sum to the number of outputs.
    #[test]
    fn upsampling_has_a_gradient_on_the_autodiff_device() {
        let device = crate::device::from_env()
            .expect("DACON_DEVICE names a device of this build")
            .autodiff();
        let x: Tensor<4> =
            crate::weights::tensor((0..12).map(|v| v as f32).collect(), [1, 1, 3, 4], &device)
                .require_grad();
        let y = upsample(x.clone());
        assert_eq!(y.dims(), [1, 1, 6, 8]);
        let grads = y.sum().backward();
        let g = x.grad(&grads).expect("x takes part in the graph").values();
        let total: f32 = g.iter().sum();
        assert!((total - 48.0).abs() < 1e-4, "{total}");
        // Corners are read with weight 1 by the output corners only once
        // aligned, and by neighbours in between: every cell is read.
        assert!(g.iter().all(|&v| v > 0.0), "{g:?}");
    }
}
