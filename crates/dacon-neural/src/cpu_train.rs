//! The U-Net's training on the CPU with hand-written gradients (#15: a
//! released-size training step took 57 s, 2.8x PyTorch's, most of it in
//! burn's CPU convolution and its transposed-convolution backward, which
//! allocate and fault in fresh memory for every tile).
//!
//! A convolution, optionally followed by InstanceNorm and ReLU, and the x2
//! upsampling are operations of burn's autodiff graph (a backend extension
//! on `flex`). A convolution's forward pass is [`crate::cpu`]'s inference
//! convolution; its backward pass three products over the same im2col
//! bands: the weight gradient `dy * im2col(x)^T`, the bias gradient
//! `sum(dy)`, and the input gradient, the convolution of `dy` with the
//! adjoint kernel. The norm's gradient is its closed form from the
//! normalised map and each plane's deviation, so the graph keeps two maps
//! per layer (input and normalised output) instead of every intermediate
//! of the norm's formula. Statistics are in double precision, as PyTorch's
//! CPU kernels. Maps are read in place from burn's tensors, not copied.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Dispatch, Flex};
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::cpu::{self, Kernel};
use crate::resize::{bilinear_taps_aligned, resample, resample_adjoint};

/// What follows a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Nothing (the U-Net's output convolution).
    Nothing,
    /// InstanceNorm (no affine, eps 1e-5), then ReLU.
    NormRelu,
}

/// The U-Net's operations on the CPU backend.
#[backend_extension(Autodiff, Flex)]
pub trait UNetOps: burn::backend::Backend {
    /// A stride-1 "same" convolution of `x` (`[b, c, h, w]`) by `weight`
    /// (`[o, c, k, k]`, `k` odd) plus `bias` (`[o]`), then InstanceNorm and
    /// ReLU when `norm`.
    fn unet_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        norm: bool,
    ) -> FloatTensor<Self>;

    /// Bilinear x2 upsampling with `align_corners=True` (`[b, c, h, w]` to
    /// `[b, c, 2h, 2w]`).
    fn unet_upsample(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `conv` applied to `x` on the (autodiff) CPU device, then `after`.
pub fn convolve(conv: &Conv2d, x: Tensor<4>, after: After) -> Tensor<4> {
    let [o, ..] = conv.weight.dims();
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([o], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as UNetOps>::unet_conv(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
        after == After::NormRelu,
    ))
}

/// The x2 upsampling of `x` on the (autodiff) CPU device.
pub fn upsample(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as UNetOps>::unet_upsample(x.into_dispatch()))
}

/// `t` as a contiguous float32 tensor (a copy only when it is a strided
/// view or of another type).
fn contiguous(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        FloatTensor::<Flex>::from_data(t.into_data().convert::<f32>())
    }
}

/// The values of a tensor from [`contiguous`].
fn values(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous float32 tensor (see `contiguous`)")
}

/// `t`'s values, owned (not copied when `t` holds the only reference).
fn owned(t: FloatTensor<Flex>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float32 after conversion")
}

/// `t`'s shape.
fn dims<const D: usize>(t: &FloatTensor<Flex>) -> [usize; D] {
    let dims = t.layout().shape().to_vec();
    dims.try_into()
        .unwrap_or_else(|d: Vec<usize>| panic!("expected a {D}-d tensor, got {d:?}"))
}

/// A flex tensor of `values` in `shape`.
fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape))
}

/// The kernel of a weight and a bias tensor.
fn kernel(weight: FloatTensor<Flex>, bias: FloatTensor<Flex>) -> Kernel {
    let [o, c, k, k2] = dims::<4>(&weight);
    let [ob] = dims::<1>(&bias);
    assert!(
        k == k2 && k % 2 == 1,
        "odd square kernels only, got {k}x{k2}"
    );
    assert_eq!(o, ob, "one bias per output channel");
    Kernel {
        o,
        c,
        k,
        weight: owned(weight),
        bias: owned(bias),
    }
}

/// The `n`-value planes of a map.
fn planes(values: &[f32], n: usize) -> Vec<&[f32]> {
    values.chunks(n.max(1)).collect()
}

/// A convolution's output, and the normalised map and deviations when the
/// norm ran.
type Convolved = (Vec<f32>, Option<(Vec<f32>, Vec<f32>)>);

/// The forward pass of [`UNetOps::unet_conv`] on `x` of `shape`.
fn convolve_values(x: &[f32], [b, c, h, w]: [usize; 4], kernel: &Kernel, norm: bool) -> Convolved {
    assert_eq!(c, kernel.c, "input channels");
    let hw = h * w;
    let o = kernel.o;
    let mut z = vec![0f32; b * o * hw];
    if hw > 0 {
        for (xi, zi) in x.chunks(c * hw).zip(z.chunks_mut(o * hw)) {
            kernel.apply_planes(&planes(xi, hw), (h, w), zi);
        }
    }
    if !norm {
        return (z, None);
    }
    let inv = cpu::instance_norm(&mut z, hw);
    let out = z.par_iter().map(|v| v.max(0.0)).collect();
    (out, Some((z, inv)))
}

impl UNetOps for Flex {
    fn unet_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        norm: bool,
    ) -> FloatTensor<Self> {
        let x = contiguous(x);
        let [b, c, h, w] = dims::<4>(&x);
        let kernel = kernel(weight, bias);
        let (out, _) = convolve_values(values(&x), [b, c, h, w], &kernel, norm);
        tensor(out, [b, kernel.o, h, w])
    }

    fn unet_upsample(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let x = contiguous(x);
        let [b, c, h, w] = dims::<4>(&x);
        let out = resample(
            values(&x),
            b * c,
            h,
            w,
            &bilinear_taps_aligned(h, 2 * h),
            &bilinear_taps_aligned(w, 2 * w),
        );
        tensor(out, [b, c, 2 * h, 2 * w])
    }
}

/// What a convolution's backward pass keeps of its forward pass.
#[derive(Debug, Clone)]
struct ConvSaved {
    /// The input, contiguous.
    x: FloatTensor<Flex>,
    kernel: Arc<Kernel>,
    /// The normalised output before the ReLU, and each plane's inverse
    /// deviation, when the norm ran.
    norm: Option<Arc<(Vec<f32>, Vec<f32>)>>,
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvSaved;

    fn backward(self, ops: Ops<ConvSaved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let saved = ops.state;
        let kernel = &saved.kernel;
        let [b, c, h, w] = dims::<4>(&saved.x);
        let (o, hw) = (kernel.o, h * w);
        let mut dz = owned(grads.consume::<Flex>(&ops.node));
        if let Some(norm) = &saved.norm {
            let (normalised, deviations) = &**norm;
            cpu::instance_norm_relu_gradient(normalised, deviations, &mut dz, hw);
        }
        let x = values(&saved.x);
        if hw > 0 && (node_w.is_some() || node_b.is_some()) {
            let mut dw = vec![0f32; kernel.weight.len()];
            let mut db = vec![0f32; o];
            for (xi, dzi) in x.chunks(c * hw).zip(dz.chunks(o * hw)) {
                kernel.add_gradients(&planes(xi, hw), (h, w), dzi, &mut dw, &mut db);
            }
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, tensor(dw, [o, c, kernel.k, kernel.k]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, tensor(db, [o]));
            }
        }
        if let Some(node) = node_x {
            let mut dx = vec![0f32; x.len()];
            if hw > 0 {
                let adjoint = kernel.adjoint();
                for (dzi, dxi) in dz.chunks(o * hw).zip(dx.chunks_mut(c * hw)) {
                    adjoint.apply_planes(&planes(dzi, hw), (h, w), dxi);
                }
            }
            grads.register::<Flex>(node.id, tensor(dx, [b, c, h, w]));
        }
    }
}

#[derive(Debug)]
struct UpsampleBackward;

impl Backward<Flex, 1> for UpsampleBackward {
    /// The input's shape.
    type State = [usize; 4];

    fn backward(self, ops: Ops<[usize; 4], 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let [b, c, h, w] = ops.state;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            let dx = resample_adjoint(
                values(&dy),
                b * c,
                h,
                w,
                &bilinear_taps_aligned(h, 2 * h),
                &bilinear_taps_aligned(w, 2 * w),
            );
            grads.register::<Flex>(node.id, tensor(dx, [b, c, h, w]));
        }
    }
}

impl<C: CheckpointStrategy> UNetOps for Autodiff<Flex, C> {
    fn unet_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        norm: bool,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = contiguous(x.primitive().clone());
                let [b, c, h, w] = dims::<4>(&input);
                let kernel = kernel(weight.primitive().clone(), bias.primitive().clone());
                let (out, norm) = convolve_values(values(&input), [b, c, h, w], &kernel, norm);
                let out = tensor(out, [b, kernel.o, h, w]);
                let saved = ConvSaved {
                    x: input,
                    kernel: Arc::new(kernel),
                    norm: norm.map(Arc::new),
                };
                prep.finish(saved, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::unet_conv(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                norm,
            )),
        }
    }

    fn unet_upsample(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match UpsampleBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let shape = dims::<4>(x.primitive());
                prep.finish(shape, Flex::unet_upsample(x.primitive().clone()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::unet_upsample(x.into_primitive())),
        }
    }
}
