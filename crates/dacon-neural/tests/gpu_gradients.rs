//! Gradients on the device under test (`DACON_DEVICE`) against the CPU's,
//! for what a training step differentiates: a U-Net over a 512x512 image
//! read out by a dense segment-pooling matmul, as `train.rs` does, and a
//! bare burn convolution, whose weight gradient burn-cubecl 0.22.1 gets
//! wrong over large maps (the reason `unet.rs` trains on GPU backends
//! through matmuls, #15). On the CPU both sides are the same backend.

mod common;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};
use dacon_core::rng::Rng;
use dacon_neural::keymap::{gradients as named_gradients, load_into, to_weights};
use dacon_neural::unet::UNetConfig;
use dacon_neural::weights::{tensor, Values};

/// Gradients of weight, bias and input of a `c -> o` 1x1 convolution over
/// an `s x s` map, pooled by 5 dense segments and squared; the same seeded
/// numbers on every device.
fn gradients(device: &Device, c: usize, o: usize, s: usize) -> [Vec<f32>; 3] {
    let dev = device.clone().autodiff();
    let mut rng = Rng::new(7);
    let mut random = |shape: Vec<usize>| -> Tensor<1> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        tensor(v, [n], &dev)
    };
    let mut conv: Conv2d = Conv2dConfig::new([c, o], [1, 1]).init(&dev);
    conv.weight = Param::from_tensor(random(vec![o, c]).reshape([o, c, 1, 1]));
    conv.bias = Some(Param::from_tensor(random(vec![o])));
    let x: Tensor<4> = random(vec![c, s, s]).reshape([1, c, s, s]).require_grad();
    let pool: Tensor<2> = random(vec![5, s * s]).reshape([5, s * s]);
    let pooled = pool.matmul(conv.forward(x.clone()).reshape([o, s * s]).transpose());
    let grads = pooled.powf_scalar(2.0).sum().backward();
    let values = |t: Option<Tensor<4>>| t.expect("in the graph").values();
    let bias = conv
        .bias
        .as_ref()
        .expect("bias")
        .grad(&grads)
        .expect("in the graph");
    [
        values(conv.weight.grad(&grads)),
        bias.values(),
        values(x.grad(&grads)),
    ]
}

/// Norm of the difference over the norm of the reference.
fn rel(got: &[f32], want: &[f32]) -> f64 {
    let d: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let n: f64 = want.iter().map(|a| f64::from(*a).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

/// float32 sums in another order move these far less than the 1e-4
/// allowed; a wrong kernel moves them by the order of 1.
fn check(c: usize, o: usize, s: usize) {
    let want = gradients(&Device::flex(), c, o, s);
    let got = gradients(&common::device(), c, o, s);
    for (name, (g, w)) in ["weight", "bias", "input"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        let r = rel(g, w);
        assert!(r < 1e-4, "{s}x{s} {name} gradient: relative error {r}");
    }
}

#[test]
fn a_pooled_convolution_has_the_cpu_gradients_at_64px() {
    check(8, 4, 64);
}

/// burn's own convolution, which the U-Net no longer differentiates on GPU
/// backends; kept to show when an upgrade of burn fixes it.
#[test]
#[ignore = "fails on wgpu (lavapipe) with burn-cubecl 0.22.1: the weight gradient of a 1x1 convolution \
            over 512x512 is off (relative error 0.99; bias and input gradients right); unet.rs works \
            around it (im2col matmuls), see a_unet_has_the_cpu_gradients_at_512px"]
fn a_pooled_convolution_has_the_cpu_gradients_at_512px() {
    check(32, 8, 512);
}

/// Every parameter gradient of a narrow U-Net (the released layout: two
/// levels, 3x3 blocks, upsampling, skips, 1x1 output) over a 512x512
/// image, on the device vs the CPU, from the same weights and numbers.
/// Tolerance 1e-2 of the norm, as the training parity test allows U-Net
/// gradients: float32 InstanceNorm statistics over 512x512 summed in
/// another order (the official code itself moves them by 2.8e-3 between
/// thread counts; on the CPU, perturbing this input by one part in 1e7
/// moves every U-Net weight gradient here by about 1e-3); a wrong kernel is
/// off by the order of 1. On lavapipe the worst layer is at 1e-3..5e-3 over
/// runs (burn-cubecl picks its reduction by timing, so the order of sums
/// changes between processes). Before the InstanceNorm statistics were
/// broadcast a row at a time and the bias became a matmul column
/// (`unet.rs`), the first layer's weight gradient was off by 4e-2..9e-2 and
/// the output bias's by up to 1.5e-2.
#[test]
fn a_unet_has_the_cpu_gradients_at_512px() {
    let s = 512;
    let config = UNetConfig::new().with_hidden(vec![4, 8]).with_output(6);
    let source = config.init(&Device::flex());
    let run = |device: &Device| {
        let dev = device.clone().autodiff();
        let mut weights = to_weights(&source, "random U-Net");
        let unet = load_into(config.init(&dev), &mut weights).expect("the same config");
        let mut rng = Rng::new(11);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect() };
        let x: Tensor<4> = tensor(random(3 * s * s), [1, 3, s, s], &dev);
        let pool: Tensor<2> = tensor(random(5 * s * s), [5, s * s], &dev);
        let y = unet.forward(x).reshape([6, s * s]).transpose();
        let grads = pool.matmul(y).powf_scalar(2.0).sum().backward();
        named_gradients(&unet, &grads)
    };
    let want = run(&Device::flex());
    let got = run(&common::device());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    // The bias of a convolution followed by InstanceNorm has no effect: its
    // gradient is zero up to rounding on both sides (a cancelling sum over
    // the whole map), so it is checked to be that, not compared. Every
    // other gradient (the weights, the output layer's bias) is compared.
    let norm = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let largest = want.values().map(|w| norm(w)).fold(0.0, f64::max);
    let mut worst = (0.0, String::new());
    for (name, w) in &want {
        let g = &got[name];
        if name.ends_with(".bias") && name != "final_conv.bias" {
            for (side, v) in [("device", g), ("cpu", w)] {
                let r = norm(v) / largest;
                assert!(
                    r < 1e-2,
                    "{name} on the {side}: {r} of the largest gradient, not zero"
                );
            }
            continue;
        }
        let r = rel(g, w);
        eprintln!("{name}: {r:.2e}");
        assert!(r < 1e-2, "{name}: relative error {r}");
        if r > worst.0 {
            worst = (r, name.clone());
        }
    }
    eprintln!(
        "U-Net gradients at {s}px: worst relative error {:.2e} ({})",
        worst.0, worst.1
    );
}
