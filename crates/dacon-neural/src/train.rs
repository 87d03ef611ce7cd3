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
use burn::tensor::{Device, Distribution, Tensor};
use dacon_core::{ColorTable, LineArt, Rgba, Segmentation};

use crate::cache::{fingerprint, CacheMode, FeatureCache};
use crate::dino::{Dino, DinoConfig};
use crate::engine::{similarity, DaconEngine, EngineConfig};
use crate::error::Result;
use crate::head::{DaconHead, HeadConfig};
use crate::keymap::{for_each_param, load_into, Update};
use crate::pool::PoolGrid;
use crate::resize::model_input;
use crate::weights::{tensor, RawTensor, Values, WeightMap};

/// Softmax temperature.
pub const TAU: f64 = 0.1;
/// Weight of the cross-entropy term.
pub const CE_SCALE: f64 = 0.5;
/// Weight of the L1 term.
pub const L1_SCALE: f64 = 0.2;
/// Side of training label maps.
pub const SEG_SIZE: usize = 512;
/// Default size limit of the in-memory feature cache (4 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 4 << 30;

/// One frame of a training pair.
#[derive(Debug, Clone)]
pub struct TrainFrame {
    /// Line art at its own size.
    pub art: LineArt,
    /// Labels resized to 512x512.
    pub seg: Segmentation,
    /// Colour of every segment of `seg`.
    pub colors: ColorTable,
}

impl TrainFrame {
    /// A frame from line art, its label map and its colour table; the labels
    /// are resized to 512x512 with nearest neighbour.
    ///
    /// Segments with no pixel left at 512x512 (thin or tiny regions of a
    /// large frame) are dropped and the others renumbered in order: they have
    /// no feature to learn from, and as zero vectors they would put NaN into
    /// the normalisation's gradient. The parity sample loses none, so this
    /// changes nothing there.
    pub fn new(art: LineArt, seg: &Segmentation, colors: ColorTable) -> Self {
        let (seg, colors) = drop_vanished(resize_nearest(seg, SEG_SIZE, SEG_SIZE), &colors);
        TrainFrame { art, seg, colors }
    }
}

/// Renumbers the segments that have pixels as 1..n, in order, with their
/// colours (missing entries stay missing).
fn drop_vanished(seg: Segmentation, colors: &ColorTable) -> (Segmentation, ColorTable) {
    let counts = seg.pixel_counts();
    if counts.iter().skip(1).all(|&c| c > 0) {
        return (seg, colors.clone());
    }
    let mut new_id = vec![0u32; counts.len()];
    let mut table = ColorTable::default();
    let mut next = 0u32;
    for (id, _) in counts.iter().enumerate().skip(1).filter(|(_, &c)| c > 0) {
        next += 1;
        new_id[id] = next;
        if let Some(c) = colors.get(id as u32) {
            table.set(next, c);
        }
    }
    let labels = seg.labels().iter().map(|&l| new_id[l as usize]).collect();
    (
        Segmentation::with_count(seg.width(), seg.height(), labels, next),
        table,
    )
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

/// Adam hyper-parameters (PyTorch defaults).
#[derive(Debug, Clone, Copy)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl Adam {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The losses of one optimisation step (means over its pairs).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StepLoss {
    /// 0.5 CE + 0.2 L1.
    pub loss: f32,
    /// Cross-entropy.
    pub ce: f32,
    /// L1 between the similarity maps.
    pub l1: f32,
}

type Moments = std::collections::BTreeMap<String, (Vec<f32>, Vec<f32>)>;

/// One Adam step of PyTorch's `torch.optim.Adam` (no weight decay), in
/// double precision as the parity vectors were checked, with the moments
/// stored as float32 under the parameters' official names.
struct AdamStep<'a> {
    adam: Adam,
    moments: &'a mut Moments,
    /// Bias corrections `1 - beta^t`.
    corrections: (f64, f64),
}

impl Update for AdamStep<'_> {
    fn update(&mut self, name: &str, p: &mut [f32], g: &[f32]) {
        let Adam {
            lr,
            beta1,
            beta2,
            eps,
        } = self.adam;
        let (bc1, bc2) = self.corrections;
        let (m, v) = self.moments.entry(name.to_string()).or_default();
        if m.len() != g.len() {
            *m = vec![0.0; g.len()];
            *v = vec![0.0; g.len()];
        }
        for i in 0..g.len() {
            let gi = f64::from(g[i]);
            let mi = beta1 * f64::from(m[i]) + (1.0 - beta1) * gi;
            let vi = beta2 * f64::from(v[i]) + (1.0 - beta2) * gi * gi;
            m[i] = mi as f32;
            v[i] = vi as f32;
            let update = lr * (mi / bc1) / ((vi / bc2).sqrt() + eps);
            p[i] = (f64::from(p[i]) - update) as f32;
        }
    }
}

/// A frozen DINOv2 and a trainable head.
///
/// The head is a burn module on the autodiff device, kept from step to step;
/// Adam visits its parameters through the module tree under their official
/// names (the checkpoint layout), where its moments are kept too, so a
/// checkpoint is the head's parameters and the moments, and resuming is
/// exact.
#[derive(Debug)]
pub struct Trainer {
    dino: Dino,
    dino_config: DinoConfig,
    /// The head being trained (on the autodiff device).
    pub head: DaconHead,
    /// Its sizes and version.
    pub config: HeadConfig,
    /// Tensors of the initial checkpoint the head has no place for (a
    /// released file's `dino.*`), saved back unchanged.
    extra: WeightMap,
    /// Adam's first and second moments per parameter.
    pub moments: Moments,
    /// Optimisation steps taken.
    pub step: u64,
    /// Segment-pooled frozen DINO features per frame (in memory by default).
    pub cache: FeatureCache,
    /// Input and pooling sizes, those of inference.
    sizes: EngineConfig,
    plain: Device,
    train: Device,
}

impl Trainer {
    /// Loads the initial head (a released checkpoint, or one of ours with
    /// Adam moments under `adam.m.*` / `adam.v.*`) and the backbone; the
    /// head lives on `device.autodiff()`.
    pub fn load(
        mut init: WeightMap,
        dino: WeightMap,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let dino = Dino::load(dino, heads, device)?;
        let config = HeadConfig::read(&init)?;
        let mut params = WeightMap::from_tensors(init.path(), Default::default());
        let mut moments = Moments::new();
        let keys: Vec<String> = init.keys().map(str::to_owned).collect();
        for k in keys {
            let shape = init.shape(&k).map(<[usize]>::to_vec).unwrap_or_default();
            let data = init.take(&k, &shape)?;
            if let Some(name) = k.strip_prefix("adam.m.") {
                moments.entry(name.to_string()).or_default().0 = data;
            } else if let Some(name) = k.strip_prefix("adam.v.") {
                moments.entry(name.to_string()).or_default().1 = data;
            } else {
                params.insert(k, RawTensor { shape, data });
            }
        }
        let train = device.clone().autodiff();
        let head = load_into(config.init(&train), &mut params)?;
        Self::assemble(dino, (head, config), params, moments, device)
    }

    /// A trainer of a backbone and a head already built (e.g. random ones
    /// from their configs' `init`) on `device`, without Adam moments.
    pub fn new(
        dino: (Dino, DinoConfig),
        (head, config): (DaconHead, HeadConfig),
        device: &Device,
    ) -> Result<Self> {
        // The same path as a checkpoint's parameters take into a trainer.
        let mut params = crate::keymap::to_weights(&head, "initial head");
        let head = load_into(config.init(&device.clone().autodiff()), &mut params)?;
        Self::assemble(dino, (head, config), params, Moments::new(), device)
    }

    fn assemble(
        (dino, dino_config): (Dino, DinoConfig),
        (head, config): (DaconHead, HeadConfig),
        extra: WeightMap,
        moments: Moments,
        device: &Device,
    ) -> Result<Self> {
        let backbone = fingerprint(&dino);
        Ok(Trainer {
            dino,
            dino_config,
            head,
            config,
            extra,
            moments,
            step: 0,
            cache: FeatureCache::new(
                CacheMode::Memory {
                    max_bytes: DEFAULT_CACHE_BYTES,
                },
                backbone,
            )?,
            sizes: EngineConfig::default(),
            plain: device.clone(),
            train: device.clone().autodiff(),
        })
    }

    /// The head's parameters under their official names, with the initial
    /// checkpoint's other tensors: a DACoN checkpoint without the moments.
    pub fn weights(&self) -> WeightMap {
        let mut all = self.extra.clone();
        for_each_param(&self.head, |name, t| all.insert(name, t));
        all
    }

    /// An inference engine of the current weights (for validation).
    ///
    /// # Errors
    /// Only if the head's own parameters did not fit its config (a bug).
    pub fn engine(&self) -> Result<DaconEngine> {
        let head = load_into(self.config.init(&self.plain), &mut self.weights())?;
        Ok(DaconEngine::new(
            (self.dino.clone(), self.dino_config.clone()),
            (head, self.config.clone()),
            &self.plain,
        ))
    }

    /// Replaces the feature cache (an empty one of `mode`, same backbone).
    ///
    /// # Errors
    /// [`crate::Error::Write`] when a disk cache folder cannot be created.
    pub fn set_cache(&mut self, mode: CacheMode) -> Result<()> {
        self.cache = FeatureCache::new(mode, self.cache.backbone())?;
        Ok(())
    }

    /// One Adam step on the mean loss of `pairs` (source, target).
    ///
    /// # Panics
    /// If `pairs` is empty.
    pub fn train_step(
        &mut self,
        pairs: &[(&TrainFrame, &TrainFrame)],
        adam: Adam,
    ) -> Result<StepLoss> {
        assert!(!pairs.is_empty(), "a step needs at least one pair");
        let mut total: Option<Tensor<1>> = None;
        let (mut ce, mut l1) = (0f32, 0f32);
        for (s, t) in pairs {
            let out = self.loss(s, t)?;
            ce += out.ce;
            l1 += out.l1;
            total = Some(match total {
                Some(acc) => acc + out.total,
                None => out.total,
            });
        }
        let n = pairs.len() as f32;
        let total = total.expect("non-empty") / f64::from(n);
        let loss = total.clone().detach().values()[0];
        let grads = total.backward();
        self.step += 1;
        let t = self.step as i32;
        let mut update = AdamStep {
            adam,
            moments: &mut self.moments,
            corrections: (1.0 - adam.beta1.powi(t), 1.0 - adam.beta2.powi(t)),
        };
        self.head = crate::keymap::step(self.head.clone(), &grads, &mut update, &self.train);
        Ok(StepLoss {
            loss,
            ce: ce / n,
            l1: l1 / n,
        })
    }

    /// Parameters, Adam moments and `info` (plus the step) in one
    /// safetensors file: it loads as a checkpoint anywhere (`colorize
    /// --checkpoint`) and resumes training exactly. The information is one
    /// metadata entry, `dacon_train`, a JSON object with sorted keys, so the
    /// same state always gives the same bytes.
    pub fn save(
        &self,
        path: &std::path::Path,
        mut info: std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let mut all = self.weights();
        for (name, (m, v)) in &self.moments {
            let shape = all
                .shape(name)
                .map(<[usize]>::to_vec)
                .unwrap_or_else(|| vec![m.len()]);
            all.insert(
                format!("adam.m.{name}"),
                RawTensor {
                    shape: shape.clone(),
                    data: m.clone(),
                },
            );
            all.insert(
                format!("adam.v.{name}"),
                RawTensor {
                    shape,
                    data: v.clone(),
                },
            );
        }
        info.insert("step".into(), self.step.to_string());
        info.insert("format".into(), "dacon-train-1".into());
        let json = serde_json::to_string(&info).expect("strings serialise");
        all.save_safetensors(
            path,
            std::collections::HashMap::from([("dacon_train".to_string(), json)]),
        )
    }

    /// The information [`Trainer::save`] stored in a checkpoint, if any.
    pub fn checkpoint_info(
        path: &std::path::Path,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        let meta = WeightMap::safetensors_metadata(path)?;
        Ok(meta
            .get("dacon_train")
            .and_then(|j| serde_json::from_str(j).ok()))
    }

    /// The frame's segment-pooled raw DINO features `[segments, D]`,
    /// through the cache (they never change: the backbone is frozen).
    fn raw_features(&self, f: &TrainFrame, grid: &PoolGrid, pool: [usize; 2]) -> Result<Vec<f32>> {
        let labels: Vec<u8> = f
            .seg
            .labels()
            .iter()
            .flat_map(|l| l.to_le_bytes())
            .collect();
        let dims: Vec<u8> = [
            f.art.width(),
            f.art.height(),
            pool[0] as u32,
            pool[1] as u32,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
        let key = self.cache.key(&[&dims, f.art.rgba().as_raw(), &labels]);
        self.cache.get_or_compute(key, || {
            let x = model_input(&f.art, self.sizes.dino_input, &self.plain);
            let map = self.dino.forward(x);
            let [d, dh, dw] = map.dims();
            grid.pool(&map.values(), d, dh, dw)
        })
    }

    /// The U-Net's forward and backward pass alone over `batch` random
    /// images of its input size (loss: the mean squared output), returning
    /// the loss: a step's dominant cost, timed by `dacon bench --train`
    /// beside `scripts/torch_bench.py`'s PyTorch figure for the same work.
    /// The head's parameters are left as they were.
    pub fn unet_pass(&self, batch: usize) -> f32 {
        let [h, w] = self.sizes.unet_input;
        let x: Tensor<4> = Tensor::random([batch, 3, h, w], Distribution::Default, &self.train);
        let loss = self.head.unet.forward(x).powf_scalar(2.0).mean();
        let value = loss.clone().values()[0];
        let _gradients = loss.backward();
        value
    }

    /// Raw DINO segment features (constant) and fused features (tracked).
    fn features(&self, f: &TrainFrame) -> Result<(Vec<f32>, Tensor<2>)> {
        let pool = self.config.version.pool_size(&f.seg, self.sizes.pool_size);
        let grid = PoolGrid::new(&f.seg, pool);
        let l = grid.segments();
        let raw = self.raw_features(f, &grid, pool)?;
        let d = raw.len() / l.max(1);
        let x = model_input(&f.art, self.sizes.unet_input, &self.train);
        let unet = self.head.unet.forward(x);
        let [_, c, uh, uw] = unet.dims();
        let weights: Tensor<2> = tensor(grid.dense_weights(uh, uw), [l, uh * uw], &self.train);
        let seg_unet = weights.matmul(unet.reshape([c, uh * uw]).transpose());
        let raw_t: Tensor<2> = tensor(raw.clone(), [l, d], &self.train);
        Ok((raw, self.head.fuse(raw_t, seg_unet)))
    }

    /// The loss of colouring `target` from `source`.
    ///
    /// # Errors
    /// [`crate::Error::Core`] (an I/O error naming the entry) when the feature
    /// cache cannot be written.
    pub fn loss(&self, source: &TrainFrame, target: &TrainFrame) -> Result<PairLoss> {
        let (raw_s, fused_s) = self.features(source)?;
        // A frame paired with itself (offset 0 of the official sampler,
        // about a third of the pairs) goes through the U-Net once; the
        // loss and gradient are the same.
        let (raw_t, fused_t) = if std::ptr::eq(source, target) {
            (raw_s.clone(), fused_s.clone())
        } else {
            self.features(target)?
        };
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
        Ok(PairLoss {
            total,
            ce: ce_v,
            l1: l1_v,
            sim: sim.detach().values(),
            dino_sim,
        })
    }
}

/// `normalize(a) @ normalize(b)^T` with `F.normalize` (eps 1e-12).
///
/// The clamp sits on the squared norm (1e-24 = eps^2, the same values) so
/// that a zero row has a zero gradient, as in PyTorch, instead of the
/// `0 * inf` of differentiating `sqrt` at 0.
fn cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let n = |x: Tensor<2>| {
        let norm = x
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .clamp_min(1e-24)
            .sqrt();
        x / norm
    };
    n(a).matmul(n(b).transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_segments_are_dropped_and_the_rest_renumbered() {
        // Segment 2 is absent; segment 4 has no colour entry.
        let seg = Segmentation::with_count(3, 1, vec![1, 3, 4], 4);
        let mut colors = ColorTable::from_colors([[1, 0, 0, 255], [2, 0, 0, 255], [3, 0, 0, 255]]);
        colors.set(5, [9, 9, 9, 255]);
        let (s, c) = drop_vanished(seg, &colors);
        assert_eq!(s.labels(), &[1, 2, 3]);
        assert_eq!(s.count(), 3);
        assert_eq!(c.get(1), Some([1, 0, 0, 255]));
        assert_eq!(c.get(2), Some([3, 0, 0, 255]));
        assert_eq!(c.get(3), None);
    }

    #[test]
    fn nearest_resize_takes_the_floor_of_the_scaled_index() {
        let seg = Segmentation::with_count(4, 1, vec![1, 2, 3, 4], 4);
        assert_eq!(resize_nearest(&seg, 1, 2).labels(), &[1, 3]);
        assert_eq!(
            resize_nearest(&seg, 1, 8).labels(),
            &[1, 1, 2, 2, 3, 3, 4, 4]
        );
    }
}
