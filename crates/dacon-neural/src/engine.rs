//! The neural engine as an [`Engine`]: DINOv2 + DACoN head features per
//! segment, cosine similarity to the segments of all references together,
//! the colour of the most similar one.

use std::path::Path;

use burn::tensor::Device;
use dacon_core::{ColorTable, Confidence, Engine, Frame, Prediction, Reference, Source};

use crate::dino::{Dino, DinoConfig};
use crate::error::{Error, Result};
use crate::head::{DaconHead, HeadConfig, Version};
use crate::pool::PoolGrid;
use crate::resize::model_input;
use crate::weights::{tensor, Values, WeightMap};

/// Input and pooling sizes (the released configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// DINO input size (518 = 37 patches of 14).
    pub dino_input: [usize; 2],
    /// U-Net input size.
    pub unet_input: [usize; 2],
    /// v1.1 segment pooling size.
    pub pool_size: [usize; 2],
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            dino_input: [518, 518],
            unet_input: [512, 512],
            pool_size: [512, 512],
        }
    }
}

/// DACoN with its backbone.
#[derive(Debug)]
pub struct DaconEngine {
    dino: Dino,
    head: DaconHead,
    /// Backbone architecture.
    pub dino_config: DinoConfig,
    /// Head sizes and version.
    pub head_config: HeadConfig,
    config: EngineConfig,
    device: Device,
}

/// Segment features of one frame.
#[derive(Debug, Clone)]
pub struct SegmentFeatures {
    /// Segments.
    pub segments: usize,
    /// Fused features `[segments, feats_dim]`, row-major.
    pub fused: Vec<f32>,
    /// Pooled raw DINO features `[segments, dino_dim]`.
    pub raw_dino: Vec<f32>,
    /// Pooled U-Net features `[segments, feats_dim]`.
    pub unet: Vec<f32>,
    /// Width of `fused`.
    pub feats_dim: usize,
}

/// Intermediate maps of one frame (for parity checks and debugging).
#[derive(Debug, Clone)]
pub struct FeatureMaps {
    /// DINO patch map `[D, h, w]`.
    pub dino: Vec<f32>,
    /// Its `[D, h, w]`.
    pub dino_shape: [usize; 3],
    /// U-Net map `[F, 512, 512]`.
    pub unet: Vec<f32>,
    /// Its `[F, h, w]`.
    pub unet_shape: [usize; 3],
}

impl DaconEngine {
    /// Loads a DACoN checkpoint and a DINOv2 backbone (either file format);
    /// `heads` overrides the backbone's attention heads.
    ///
    /// # Errors
    /// Weight errors naming the file and tensor; [`Error::WrongModel`] when the
    /// checkpoint expects another backbone width.
    pub fn load(
        checkpoint: &Path,
        dino: &Path,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_weights(
            WeightMap::open(checkpoint)?,
            WeightMap::open(dino)?,
            heads,
            device,
        )
    }

    /// Builds the engine from weight maps already read.
    pub fn from_weights(
        checkpoint: WeightMap,
        dino: WeightMap,
        heads: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let dino_path = dino.path().to_path_buf();
        let ckpt_path = checkpoint.path().to_path_buf();
        let (dino_model, dino_config) = Dino::load(dino, heads, device)?;
        let (head, head_config) = DaconHead::load(checkpoint, device)?;
        if head_config.dino_dim != dino_config.embed_dim {
            return Err(Error::WrongModel {
                path: ckpt_path,
                message: format!(
                    "the checkpoint expects a DINOv2 of width {} but {} has width {}; pass the backbone it was trained with",
                    head_config.dino_dim,
                    dino_path.display(),
                    dino_config.embed_dim
                ),
            });
        }
        Ok(Self::new(
            (dino_model, dino_config),
            (head, head_config),
            device,
        ))
    }

    /// The engine of a backbone and a head already built (e.g. by their
    /// configs' `init`, for a model of random weights); `device` is theirs.
    ///
    /// # Panics
    /// If the head expects another DINO width than the backbone has.
    pub fn new(
        (dino, dino_config): (Dino, DinoConfig),
        (head, head_config): (DaconHead, HeadConfig),
        device: &Device,
    ) -> Self {
        assert_eq!(
            head_config.dino_dim, dino_config.embed_dim,
            "head_config.dino_dim must be the backbone's width"
        );
        crate::keymap::initialize(&dino);
        crate::keymap::initialize(&head);
        DaconEngine {
            dino,
            head,
            dino_config,
            head_config,
            config: EngineConfig::default(),
            device: device.clone(),
        }
    }

    /// The device the engine runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The released variant.
    pub fn version(&self) -> Version {
        self.head_config.version
    }

    /// DINO patch map `[D, h, w]` of a frame's line art.
    pub fn dino_map(&self, frame: &Frame) -> (Vec<f32>, [usize; 3]) {
        let x = model_input(&frame.art, self.config.dino_input, &self.device);
        let map = self.dino.forward(x);
        let shape = map.dims();
        (map.values(), shape)
    }

    /// U-Net map `[F, 512, 512]` of a frame's line art.
    pub fn unet_map(&self, frame: &Frame) -> (Vec<f32>, [usize; 3]) {
        let x = model_input(&frame.art, self.config.unet_input, &self.device);
        let map = self.head.unet.forward(x);
        let [_, f, oh, ow] = map.dims();
        (map.values(), [f, oh, ow])
    }

    /// DINO and U-Net maps of a frame's line art.
    pub fn maps(&self, frame: &Frame) -> FeatureMaps {
        let (dino, dino_shape) = self.dino_map(frame);
        let (unet, unet_shape) = self.unet_map(frame);
        FeatureMaps {
            dino,
            dino_shape,
            unet,
            unet_shape,
        }
    }

    /// Segment features from the two maps.
    pub fn pool_and_fuse(&self, frame: &Frame, maps: &FeatureMaps) -> SegmentFeatures {
        let pool = self.version().pool_size(&frame.seg, self.config.pool_size);
        let grid = PoolGrid::new(&frame.seg, pool);
        let [d, dh, dw] = maps.dino_shape;
        let [f, uh, uw] = maps.unet_shape;
        let raw_dino = grid.pool(&maps.dino, d, dh, dw);
        let unet = grid.pool(&maps.unet, f, uh, uw);
        let l = grid.segments();
        let fused = if l == 0 {
            Vec::new()
        } else {
            self.head
                .fuse(
                    tensor(raw_dino.clone(), [l, d], &self.device),
                    tensor(unet.clone(), [l, f], &self.device),
                )
                .values()
        };
        SegmentFeatures {
            segments: l,
            fused,
            raw_dino,
            unet,
            feats_dim: f,
        }
    }

    /// Segment features of a frame.
    pub fn segment_features(&self, frame: &Frame) -> SegmentFeatures {
        let maps = self.maps(frame);
        self.pool_and_fuse(frame, &maps)
    }
}

/// Rows normalised as `F.normalize` (`x / max(||x||, 1e-12)`).
fn normalized_rows(x: &[f32], dim: usize) -> Vec<f32> {
    x.chunks_exact(dim)
        .flat_map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(move |v| v / n)
        })
        .collect()
}

/// Cosine similarity of every target segment to every reference segment,
/// references concatenated in order: `[target, sum refs]`, row-major.
pub fn similarity(target: &[f32], refs: &[&[f32]], dim: usize) -> Vec<f32> {
    let t = normalized_rows(target, dim);
    let r: Vec<f32> = refs.iter().flat_map(|x| normalized_rows(x, dim)).collect();
    let mut out = Vec::with_capacity(t.len() / dim * (r.len() / dim));
    for a in t.chunks_exact(dim) {
        for b in r.chunks_exact(dim) {
            out.push(a.iter().zip(b).map(|(x, y)| x * y).sum());
        }
    }
    out
}

impl Engine for DaconEngine {
    type Features = SegmentFeatures;
    type Error = Error;

    fn features(&self, frame: &Frame) -> Result<SegmentFeatures> {
        Ok(self.segment_features(frame))
    }

    fn predict(
        &self,
        refs: &[Reference<'_, SegmentFeatures>],
        target: &SegmentFeatures,
    ) -> Result<Prediction> {
        if refs.is_empty() {
            return Err(dacon_core::Error::NoReferences.into());
        }
        let dim = target.feats_dim;
        let ref_feats: Vec<&[f32]> = refs.iter().map(|r| r.features.fused.as_slice()).collect();
        let sim = similarity(&target.fused, &ref_feats, dim);
        // Colour and origin of every concatenated reference segment.
        let (colors, sources): (Vec<[u8; 4]>, Vec<Source>) = refs
            .iter()
            .enumerate()
            .flat_map(|(reference, r)| {
                (1..=r.features.segments as u32).map(move |segment| {
                    (
                        r.colors.get(segment).unwrap_or([0, 0, 0, 0]),
                        Source { reference, segment },
                    )
                })
            })
            .unzip();
        if colors.is_empty() {
            // References without a single segment: nothing to take from.
            return Err(dacon_core::Error::NoReferences.into());
        }
        let n = colors.len();
        let mut table = ColorTable::default();
        let mut confidence = Vec::with_capacity(target.segments);
        for t in 0..target.segments {
            let row = &sim[t * n..(t + 1) * n];
            // First maximum, as torch.argmax.
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            let other = row
                .iter()
                .zip(&colors)
                .filter(|(_, c)| **c != colors[best])
                .map(|(v, _)| *v)
                .fold(f32::NEG_INFINITY, f32::max);
            table.set(t as u32 + 1, colors[best]);
            confidence.push(Confidence {
                similarity: row[best],
                margin: if other.is_finite() {
                    row[best] - other
                } else {
                    row[best]
                },
                source: Some(sources[best]),
            });
        }
        Ok(Prediction {
            colors: table,
            confidence,
        })
    }
}
