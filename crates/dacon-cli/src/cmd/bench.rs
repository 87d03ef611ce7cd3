use std::time::{Duration, Instant};

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dacon_core::imageio::read_picture;
use dacon_core::{ColorTable, Engine, Frame, LineArt, Reference, RenderOptions, Segmentation};
use dacon_neural::dino::{default_heads, DinoConfig};
use dacon_neural::head::{HeadConfig, Version};
use dacon_neural::{AnyEngine, DaconEngine};
use dacon_synth::voronoi_frame;
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbaImage};

use crate::args::{EngineArgs, JobsArg};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A line-art frame (default: synthetic).
    #[arg(long, value_name = "FILE")]
    pub line: Option<PathBuf>,
    /// A reference line-art frame to colour from (repeat for several; each
    /// of its segments gets its own colour). Default: the frame itself.
    /// With the previous frames of a cut this times what `colorize
    /// --propagate --window N` does per frame.
    #[arg(long = "ref", value_name = "FILE", conflicts_with = "train")]
    pub refs: Vec<PathBuf>,
    /// Side of the synthetic frame.
    #[arg(long, default_value_t = 1920, value_parser = clap::value_parser!(u32).range(64..=8192))]
    pub size: u32,
    /// Cells (segments) of the synthetic frame.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub cells: u64,
    /// Synthetic frame: a checkerboard of 1-px lines of side --size instead
    /// of cells, so every other pixel is its own segment (about size²/2);
    /// the worst case for a matcher, like a speckled scan (#14).
    #[arg(long, conflicts_with_all = ["line", "cells"])]
    pub checkerboard: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Random weights of a released shape instead of --checkpoint/--dino.
    #[arg(long, value_enum, conflicts_with_all = ["checkpoint", "dino"])]
    pub synthetic_model: Option<SyntheticModel>,
    /// DACoN version of the synthetic checkpoint: v1_0 or v1_1.
    #[arg(long = "dacon-version", default_value_t = Version::V1_1)]
    pub dacon_version: Version,
    /// Runs per stage (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Measure training steps (needs --synthetic-model or --checkpoint and
    /// --dino) instead of colouring.
    #[arg(long)]
    pub train: bool,
    /// Timed training steps per cache mode (the median is reported).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), requires = "train")]
    pub steps: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SyntheticModel {
    /// ViT-S/14 (width 384, 12 blocks).
    Vits14,
    /// ViT-B/14 (768, 12).
    Vitb14,
    /// ViT-L/14 (1024, 24).
    Vitl14,
}

impl SyntheticModel {
    /// Width and depth of the backbone.
    pub fn shape(self) -> (usize, usize) {
        match self {
            SyntheticModel::Vits14 => (384, 12),
            SyntheticModel::Vitb14 => (768, 12),
            SyntheticModel::Vitl14 => (1024, 24),
        }
    }

    /// The released backbone of this shape (GELU MLP of 4x the width,
    /// LayerScale, 518 px grid) and a head of `version` for it.
    pub fn configs(self, version: Version) -> (DinoConfig, HeadConfig) {
        let (dim, depth) = self.shape();
        let dino = DinoConfig::new()
            .with_embed_dim(dim)
            .with_depth(depth)
            .with_num_heads(default_heads(dim))
            .with_mlp_hidden(4 * dim);
        let head = HeadConfig::new().with_version(version).with_dino_dim(dim);
        (dino, head)
    }
}

/// An engine with random weights of a released shape.
fn synthetic_engine(
    model: SyntheticModel,
    version: Version,
    device: &dacon_neural::Device,
) -> AnyEngine {
    let (dino, head) = model.configs(version);
    let engine = DaconEngine::new((dino.init(device), dino), (head.init(device), head), device);
    AnyEngine::Dacon(Box::new(engine))
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let pool = args.jobs.pool()?;
    if args.train {
        return pool.install(|| crate::cmd::bench_train::run(args));
    }
    let engine = match args.synthetic_model {
        Some(m) => synthetic_engine(m, args.dacon_version, &args.engine.device.open()?),
        None => args.engine.load()?,
    };
    // The frame as PNG bytes, so reading is measured too.
    let png = match &args.line {
        Some(p) => std::fs::read(p).with_context(|| format!("{}", p.display()))?,
        None => {
            let line = if args.checkerboard {
                RgbaImage::from_fn(args.size, args.size, |x, y| {
                    image::Rgba(if (x + y) % 2 == 0 {
                        [0, 0, 0, 255]
                    } else {
                        [255, 255, 255, 0]
                    })
                })
            } else {
                voronoi_frame(args.size, args.cells as usize, (0, 0)).line
            };
            let mut buf = Vec::new();
            PngEncoder::new(&mut buf)
                .write_image(
                    line.as_raw(),
                    line.width(),
                    line.height(),
                    image::ExtendedColorType::Rgba8,
                )
                .context("encoding the synthetic frame")?;
            buf
        }
    };
    let tmp = std::env::temp_dir().join(format!("dacon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let input = tmp.join("frame.png");
    std::fs::write(&input, &png)?;
    if let AnyEngine::Dacon(m) = &engine {
        println!("device: {}", dacon_neural::device::describe(m.device()));
    }
    let result = pool.install(|| {
        if let AnyEngine::Dacon(m) = &engine {
            neural_stages(m, &input, args)?;
        }
        measure(&engine, &input, args)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub(crate) fn time<T>(n: u32, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n {
        let t0 = Instant::now();
        last = Some(f()?);
        times.push(t0.elapsed());
    }
    Ok((median(times), last.expect("at least one run")))
}

fn measure<E: Engine>(m: &E, input: &std::path::Path, args: &BenchArgs) -> Result<()> {
    let n = args.repeat;
    let (t_read, art) = time(n, || Ok(LineArt::open(input)?))?;
    let (t_seg, seg) = time(n, || Ok(Segmentation::from_line_art(&art)?))?;
    let frame = Frame::new(art, seg);
    // Each reference segment a distinct colour.
    let distinct = |count: u32| {
        ColorTable::from_colors((1..=count).map(|i| {
            let b = i.to_be_bytes();
            [b[1], b[2], b[3], 255]
        }))
    };
    let colors = distinct(frame.seg.count());
    let mut references = Vec::new();
    for path in &args.refs {
        let art = LineArt::open(path).with_context(|| format!("reference {}", path.display()))?;
        let seg = Segmentation::from_line_art(&art)
            .with_context(|| format!("reference {}", path.display()))?;
        let colors = distinct(seg.count());
        let features = m
            .features(&Frame::new(art, seg))
            .map_err(anyhow::Error::new)?;
        references.push((features, colors));
    }
    if references.is_empty() {
        // The frame is its own reference.
        references.push((
            m.features(&frame).map_err(anyhow::Error::new)?,
            colors.clone(),
        ));
    }
    let (t_feat, target) = time(n, || m.features(&frame).map_err(anyhow::Error::new))?;
    let refs: Vec<Reference<'_, E::Features>> = references
        .iter()
        .map(|(features, colors)| Reference { features, colors })
        .collect();
    let (t_match, pred) = time(n, || m.predict(&refs, &target).map_err(anyhow::Error::new))?;
    let out = input.with_file_name("pred.png");
    let (t_write, ()) = time(n, || {
        let img = dacon_core::render(&frame.seg, &pred.colors, None, RenderOptions::default())?;
        dacon_core::imageio::write_rgba_png(&out, &img)?;
        Ok(())
    })?;
    // Sanity: the picture written back decodes.
    read_picture(&out)?;
    let total = t_read + t_seg + t_feat + t_match + t_write;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "frame {}x{}, {} segments, {} reference(s), {} threads, median of {n}",
        frame.seg.width(),
        frame.seg.height(),
        frame.seg.count(),
        refs.len(),
        rayon::current_num_threads()
    );
    println!("  read        {:>9.1} ms", ms(t_read));
    println!("  segment     {:>9.1} ms", ms(t_seg));
    println!("  features    {:>9.1} ms", ms(t_feat));
    println!("  match       {:>9.1} ms", ms(t_match));
    println!("  write       {:>9.1} ms", ms(t_write));
    println!("  whole frame {:>9.1} ms", ms(total));
    if args.refs.is_empty() {
        let correct = (1..=frame.seg.count())
            .filter(|&i| pred.colors.get(i) == colors.get(i))
            .count();
        println!("  self-match  {correct}/{} segments", frame.seg.count());
    }
    match peak_rss_mib() {
        Some(p) => println!("  peak RSS    {p:>9.1} MiB"),
        None => println!("  peak RSS    unavailable on this system"),
    }
    Ok(())
}

/// The neural feature stage split into its parts.
fn neural_stages(m: &DaconEngine, input: &std::path::Path, args: &BenchArgs) -> Result<()> {
    let art = LineArt::open(input)?;
    let seg = Segmentation::from_line_art(&art)?;
    let frame = Frame::new(art, seg);
    let n = args.repeat;
    let (t_dino, dino) = time(n, || Ok(m.dino_map(&frame)))?;
    let (t_unet, unet) = time(n, || Ok(m.unet_map(&frame)))?;
    let maps = dacon_neural::engine::FeatureMaps {
        dino: dino.0,
        dino_shape: dino.1,
        unet: unet.0,
        unet_shape: unet.1,
    };
    let (t_pool, _) = time(n, || Ok(m.pool_and_fuse(&frame, &maps)))?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "neural features: DINOv2 {:.1} ms, U-Net {:.1} ms, segment pooling + fusion {:.1} ms ({:?}, DINO width {})",
        ms(t_dino),
        ms(t_unet),
        ms(t_pool),
        m.version(),
        m.dino_config.embed_dim
    );
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`).
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
