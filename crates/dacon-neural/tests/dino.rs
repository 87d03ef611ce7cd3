//! DINOv2 against the official forward passes (`dino.*` and the DINO maps of
//! the clips in `expected/tensors.safetensors`). Tolerance 1e-4 absolute: the
//! official code itself moves by up to 3.3e-6 between thread counts, and
//! attention and layer norms in another summation order add a few 1e-6.

mod common;

use burn::tensor::Tensor;
use dacon_neural::dino::Dino;
use dacon_neural::weights::{tensor, WeightMap};

use common::{max_abs_diff, vectors, Expected};

const TOL: f64 = 1e-4;

fn run(weights: &str, case: &str) {
    let Some(v) = vectors() else { return };
    let e = Expected::open(&v);
    let device = common::device();
    let (model, _) = Dino::load(WeightMap::open(&v.join(weights)).unwrap(), None, &device).unwrap();
    let (shape, input) = e.get(&format!("dino.{case}.input"));
    let input: Vec<f32> = input.iter().map(|&x| x as f32).collect();
    let x: Tensor<4> = tensor(input, [shape[0], shape[1], shape[2], shape[3]], &device);
    let got: Vec<f32> = model
        .patch_tokens(x)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let (_, want) = e.get(&format!("dino.{case}.patch_tokens"));
    let diff = max_abs_diff(&got, &want);
    assert!(diff < TOL, "{case}: max abs diff {diff}");
}

#[test]
fn plain_518_vs_pos_interpolation_at_224() {
    run("dinov2_tiny_plain_224.pth", "plain_224");
}

#[test]
fn four_registers() {
    run("dinov2_tiny_reg4_518.pth", "reg4_518");
}

#[test]
fn swiglu_feed_forward() {
    run("dinov2_tiny_swiglu_518.pth", "swiglu_518");
}

#[test]
fn hugging_face_layout() {
    run("hf_dinov2_tiny/model.safetensors", "hf_518");
}
