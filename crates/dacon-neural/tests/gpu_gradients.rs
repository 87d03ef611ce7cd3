//! Gradients on the device under test (`DACON_DEVICE`) against the CPU's,
//! for the pieces of a training step: a 1x1 convolution (the U-Net's
//! output layer) read out by a dense segment-pooling matmul, as
//! `train.rs` does. On the CPU both sides are the same backend; on wgpu
//! this is where the training-step parity fails (#15).

mod common;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};
use dacon_core::rng::Rng;
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

#[test]
#[ignore = "fails on wgpu (lavapipe): the weight gradient of a 1x1 convolution over 512x512 is off \
            (relative error 0.99; bias and input gradients right) - the training-step parity failure of #15"]
fn a_pooled_convolution_has_the_cpu_gradients_at_512px() {
    check(32, 8, 512);
}
