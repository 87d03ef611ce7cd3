//! The DACoN training objective: a differentiable forward pass of one
//! (source, target) pair and the dual loss, as the parity vectors specify.
//!
//! - Label maps are resized to 512x512 with nearest neighbour
//!   (`F.interpolate(mode="nearest")`: source index `floor(dst * in / out)`).
//! - The frozen DINOv2 runs without gradients; the U-Net and the MLPs are
//!   differentiated. Segment pooling is a constant matrix product.
//! - CE: fused similarity / 0.1, softmax over source segments, probabilities
//!   summed per distinct source colour, `log(p + 1e-15)`, NLL over target
//!   segments whose colour exists among the source colours.
//! - L1: mean |fused - DINO| similarity, both / 0.1.
//! - total = 0.5 CE + 0.2 L1.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use dacon_core::{ColorTable, LineArt, Rgba, Segmentation};

use crate::dino::Dinov2;
use crate::engine::similarity;
use crate::error::Result;
use crate::model::{DaconHead, HeadConfig, Version};
use crate::pool::PoolGrid;
use crate::resize::bilinear;
use crate::weights::{tensor, Values, WeightMap};

/// Softmax temperature.
pub const TAU: f64 = 0.1;
/// Weight of the cross-entropy term.
pub const CE_SCALE: f64 = 0.5;
/// Weight of the L1 term.
pub const L1_SCALE: f64 = 0.2;
/// Side of training label maps.
pub const SEG_SIZE: usize = 512;

/// One frame of a training pair.
#[derive(Debug, Clone)]
pub struct TrainFrame {
    /// Line art at its own size.
    pub art: LineArt,
    /// Labels resized to 512x512.
    pub seg: Segmentation,
    /// Colour of every segment (ids of the original labels).
    pub colors: ColorTable,
}

impl TrainFrame {
    /// A frame from line art, its label map and its colour table; the labels
    /// are resized to 512x512 with nearest neighbour.
    pub fn new(art: LineArt, seg: &Segmentation, colors: ColorTable) -> Self {
        TrainFrame {
            art,
            seg: resize_nearest(seg, SEG_SIZE, SEG_SIZE),
            colors,
        }
    }
}

/// Nearest-neighbour resize of a label map (`floor(dst * in / out)`),
/// keeping label values (segments that vanish keep their ids).
pub fn resize_nearest(seg: &Segmentation, out_h: usize, out_w: usize) -> Segmentation {
    let (h, w) = (seg.height() as usize, seg.width() as usize);
    let (sy, sx) = (h as f32 / out_h as f32, w as f32 / out_w as f32);
    let rows: Vec<usize> = (0..out_h)
        .map(|y| ((y as f32 * sy) as usize).min(h - 1))
        .collect();
    let cols: Vec<usize> = (0..out_w)
        .map(|x| ((x as f32 * sx) as usize).min(w - 1))
        .collect();
    let labels = seg.labels();
    let mut out = Vec::with_capacity(out_h * out_w);
    for &r in &rows {
        out.extend(cols.iter().map(|&c| labels[r * w + c]));
    }
    Segmentation::with_count(out_w as u32, out_h as u32, out, seg.count())
}

/// The loss of one pair, with the similarity maps behind it.
#[derive(Debug)]
pub struct PairLoss {
    /// 0.5 CE + 0.2 L1, differentiable.
    pub total: Tensor<1>,
    /// The cross-entropy term.
    pub ce: f32,
    /// The L1 term.
    pub l1: f32,
    /// Fused similarity `[target, source]`.
    pub sim: Vec<f32>,
    /// Raw DINO similarity `[target, source]`.
    pub dino_sim: Vec<f32>,
}

/// A frozen DINOv2 and a trainable head.
#[derive(Debug)]
pub struct Trainer {
    dino: Dinov2,
    /// The trainable head (on the autodiff device).
    pub head: DaconHead,
    /// Its sizes and version.
    pub config: HeadConfig,
    plain: Device,
    train: Device,
}

impl Trainer {
    /// Loads the initial head and the backbone; the head lives on
    /// `device.autodiff()`.
    pub fn load(
        init: WeightMap,
        dino: WeightMap,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let (dino, _) = Dinov2::load(dino, heads, device)?;
        let train = device.clone().autodiff();
        let (head, config) = DaconHead::load(init, &train)?;
        Ok(Trainer {
            dino,
            head,
            config,
            plain: device.clone(),
            train,
        })
    }

    fn rgb(art: &LineArt, size: [usize; 2]) -> Vec<f32> {
        let rgba = art.rgba();
        let (w, h) = (rgba.width() as usize, rgba.height() as usize);
        let mut rgb = vec![0f32; 3 * h * w];
        for (i, p) in rgba.pixels().enumerate() {
            for c in 0..3 {
                rgb[c * h * w + i] = f32::from(p.0[c]) / 255.0;
            }
        }
        bilinear(&rgb, 3, h, w, size[0], size[1])
    }

    /// Raw DINO segment features (constant) and fused features (tracked).
    fn features(&self, f: &TrainFrame) -> (Vec<f32>, Tensor<2>) {
        let x = tensor(Self::rgb(&f.art, [518, 518]), [1, 3, 518, 518], &self.plain);
        let map = self.dino.forward(x);
        let [d, dh, dw] = map.dims();
        let map: Vec<f32> = map.values();
        let pool = match self.config.version {
            Version::V1_0 => [f.seg.height() as usize, f.seg.width() as usize],
            Version::V1_1 => [SEG_SIZE, SEG_SIZE],
        };
        let grid = PoolGrid::new(&f.seg, pool);
        let l = grid.segments();
        let raw = grid.pool(&map, d, dh, dw);
        let x = tensor(Self::rgb(&f.art, [512, 512]), [1, 3, 512, 512], &self.train);
        let unet = self.head.unet.forward(x);
        let [_, c, uh, uw] = unet.dims();
        let weights: Tensor<2> = tensor(grid.dense_weights(uh, uw), [l, uh * uw], &self.train);
        let seg_unet = weights.matmul(unet.reshape([c, uh * uw]).transpose());
        let raw_t: Tensor<2> = tensor(raw.clone(), [l, d], &self.train);
        (raw, self.head.fuse(raw_t, seg_unet))
    }

    /// The loss of colouring `target` from `source`.
    pub fn loss(&self, source: &TrainFrame, target: &TrainFrame) -> PairLoss {
        let (raw_s, fused_s) = self.features(source);
        let (raw_t, fused_t) = self.features(target);
        let d = raw_s.len() / source.seg.count().max(1) as usize;
        let dino_sim = similarity(&raw_t, &[&raw_s], d);
        let sim = cosine(fused_t, fused_s);
        let [lt, ls] = sim.dims();

        // Source colours: distinct values, and each source segment's index.
        let src_colors: Vec<Rgba> = (1..=ls as u32)
            .map(|i| source.colors.get(i).unwrap_or([0, 0, 0, 0]))
            .collect();
        let mut distinct = src_colors.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let u = distinct.len();
        let mut member = vec![0f32; ls * u];
        for (j, c) in src_colors.iter().enumerate() {
            member[j * u + distinct.binary_search(c).expect("listed")] = 1.0;
        }
        let mut pick = vec![0f32; lt * u];
        let mut valid = 0usize;
        for i in 0..lt {
            if let Some(c) = target.colors.get(i as u32 + 1) {
                if let Ok(k) = distinct.binary_search(&c) {
                    pick[i * u + k] = 1.0;
                    valid += 1;
                }
            }
        }
        let member: Tensor<2> = tensor(member, [ls, u], &self.train);
        let pick: Tensor<2> = tensor(pick, [lt, u], &self.train);
        let probs = softmax(sim.clone() / TAU, 1).matmul(member);
        let log_probs = (probs + 1e-15).log();
        let ce = -(log_probs * pick).sum() / valid.max(1) as f64;
        let dino: Tensor<2> = tensor(dino_sim.clone(), [lt, ls], &self.train);
        let l1 = (sim.clone() - dino).abs().mean() / TAU;
        let scalar = |t: &Tensor<1>| -> f32 { t.clone().detach().values()[0] };
        let (ce_v, l1_v) = (scalar(&ce), scalar(&l1));
        let total = ce * CE_SCALE + l1 * L1_SCALE;
        PairLoss {
            total,
            ce: ce_v,
            l1: l1_v,
            sim: sim.detach().values(),
            dino_sim,
        }
    }
}

/// `normalize(a) @ normalize(b)^T` with `F.normalize` (eps 1e-12).
fn cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let n = |x: Tensor<2>| {
        let norm = x
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        x / norm
    };
    n(a).matmul(n(b).transpose())
}
