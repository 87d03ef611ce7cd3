//! Resampling exactly as PyTorch's `F.interpolate` on CPU (float32
//! arithmetic, no antialias): bilinear for the model inputs and the segment
//! pooling, bicubic for DINOv2's position embeddings.

/// Source taps of a bilinear resize along one axis (`align_corners=False`):
/// for every output index, `(i0, i1, w0, w1)`.
pub fn bilinear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src as usize).min(input - 1);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            let l1 = src - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Bilinear resize of `channels` planes (`[C, H, W]`, row-major) to
/// `[C, out_h, out_w]`.
pub fn bilinear(
    data: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f32> {
    resample(
        data,
        channels,
        h,
        w,
        &bilinear_taps(h, out_h),
        &bilinear_taps(w, out_w),
    )
}

/// Bilinear resampling of `channels` planes along row taps `ty` and column
/// taps `tx`, in PyTorch's order: `h0 * (w0 * a + w1 * b) + h1 * (w0 * c +
/// w1 * d)`.
pub fn resample(
    data: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    ty: &[(usize, usize, f32, f32)],
    tx: &[(usize, usize, f32, f32)],
) -> Vec<f32> {
    use rayon::prelude::*;
    let (out_h, out_w) = (ty.len(), tx.len());
    let mut out = vec![0f32; channels * out_h * out_w];
    if out_h * out_w == 0 || h * w == 0 {
        return out;
    }
    // A downscale reads only some rows.
    let mut needed = vec![false; h];
    for &(y0, y1, _, _) in ty {
        needed[y0] = true;
        needed[y1] = true;
    }
    // Planes in parallel: the U-Net's decoder upsamples up to 128 planes
    // of 512x512. Each source row is interpolated along x once (an
    // upsampling reads every row for two output rows), then rows are
    // blended: the same products and sums, in the same order, as blending
    // per output pixel.
    out.par_chunks_mut(out_h * out_w)
        .zip(data.par_chunks(h * w))
        .take(channels)
        .for_each(|(dst, plane)| {
            let mut across = vec![0f32; h * out_w];
            let rows = across.chunks_exact_mut(out_w).zip(plane.chunks_exact(w));
            for ((row, src), _) in rows.zip(&needed).filter(|(_, &n)| n) {
                for (v, &(x0, x1, wx0, wx1)) in row.iter_mut().zip(tx) {
                    *v = wx0 * src[x0] + wx1 * src[x1];
                }
            }
            for (line, &(y0, y1, wy0, wy1)) in dst.chunks_exact_mut(out_w).zip(ty) {
                let (a, b) = (
                    &across[y0 * out_w..(y0 + 1) * out_w],
                    &across[y1 * out_w..(y1 + 1) * out_w],
                );
                for ((v, &p), &q) in line.iter_mut().zip(a).zip(b) {
                    *v = wy0 * p + wy1 * q;
                }
            }
        });
    out
}

/// The adjoint of [`resample`], its gradient at the input: `dy` (`channels`
/// planes of `ty.len() x tx.len()`) carried back onto planes of `h x w`,
/// each output value added to its two source rows, then each of those to
/// its two source columns, with the taps' weights.
pub fn resample_adjoint(
    dy: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    ty: &[(usize, usize, f32, f32)],
    tx: &[(usize, usize, f32, f32)],
) -> Vec<f32> {
    use rayon::prelude::*;
    let (out_h, out_w) = (ty.len(), tx.len());
    let mut dx = vec![0f32; channels * h * w];
    if out_h * out_w == 0 || h * w == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(dy.par_chunks(out_h * out_w))
        .take(channels)
        .for_each(|(dst, plane)| {
            let mut across = vec![0f32; h * out_w];
            for (line, &(y0, y1, wy0, wy1)) in plane.chunks_exact(out_w).zip(ty) {
                for (v, &g) in across[y0 * out_w..(y0 + 1) * out_w].iter_mut().zip(line) {
                    *v += wy0 * g;
                }
                for (v, &g) in across[y1 * out_w..(y1 + 1) * out_w].iter_mut().zip(line) {
                    *v += wy1 * g;
                }
            }
            for (row, src) in dst.chunks_exact_mut(w).zip(across.chunks_exact(out_w)) {
                for (&g, &(x0, x1, wx0, wx1)) in src.iter().zip(tx) {
                    row[x0] += wx0 * g;
                    row[x1] += wx1 * g;
                }
            }
        });
    dx
}

/// A model input: the RGB channels of line art (alpha dropped), /255, resized
/// bilinearly to `size` (`[H, W]`), as a `[1, 3, H, W]` tensor on `device`.
/// This is the official `_prepare_images`.
pub fn model_input(
    art: &dacon_core::LineArt,
    size: [usize; 2],
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<4> {
    let rgba = art.rgba();
    let (w, h) = (rgba.width() as usize, rgba.height() as usize);
    let mut rgb = vec![0f32; 3 * h * w];
    for (i, p) in rgba.pixels().enumerate() {
        for c in 0..3 {
            rgb[c * h * w + i] = f32::from(p.0[c]) / 255.0;
        }
    }
    crate::weights::tensor(
        bilinear(&rgb, 3, h, w, size[0], size[1]),
        [1, 3, size[0], size[1]],
        device,
    )
}

/// Source taps of a bilinear resize with `align_corners=True` along one
/// axis: output `d` reads `d * (input - 1) / (output - 1)`, PyTorch's
/// `area_pixel_compute_scale` in float32.
pub fn bilinear_taps_aligned(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = if output > 1 {
        (input as f32 - 1.0) / (output as f32 - 1.0)
    } else {
        0.0
    };
    (0..output)
        .map(|d| {
            let src = scale * d as f32;
            let i0 = (src as usize).min(input - 1);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            let l1 = src - i0 as f32;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// The U-Net's x2 bilinear upsampling (`align_corners=True`) written with
/// index selection and broadcast products, which every backend can
/// differentiate: burn's GPU backends have no backward kernel for bilinear
/// interpolation, so training on them fails at its first step otherwise.
/// Rows are interpolated after columns, in the order of PyTorch's kernel
/// (`h0 * (w0 * a + w1 * b) + h1 * (w0 * c + w1 * d)`).
///
/// # Shapes
/// - x: `[B, C, H, W]`
/// - output: `[B, C, 2H, 2W]`
pub fn upsample2x_aligned(x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let x = lerp_axis(x, 3, &bilinear_taps_aligned(w, 2 * w), &device);
    lerp_axis(x, 2, &bilinear_taps_aligned(h, 2 * h), &device)
}

/// `w0 * x[i0] + w1 * x[i1]` along `dim` for every tap.
fn lerp_axis(
    x: burn::tensor::Tensor<4>,
    dim: usize,
    taps: &[(usize, usize, f32, f32)],
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<4> {
    use burn::tensor::{Int, Tensor, TensorData};
    let n = taps.len();
    let index = |f: fn(&(usize, usize, f32, f32)) -> i64| {
        let v: Vec<i64> = taps.iter().map(f).collect();
        Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
    };
    let mut shape = [1usize; 4];
    shape[dim] = n;
    let weight = |f: fn(&(usize, usize, f32, f32)) -> f32| {
        let v: Vec<f32> = taps.iter().map(f).collect();
        Tensor::<4>::from_data(TensorData::new(v, shape), device)
    };
    let a = x.clone().select(dim, index(|t| t.0 as i64)) * weight(|t| t.2);
    let b = x.select(dim, index(|t| t.1 as i64)) * weight(|t| t.3);
    a + b
}

const CUBIC_A: f32 = -0.75;

fn cubic_weights(t: f32) -> [f32; 4] {
    let cc1 = |x: f32| ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0;
    let cc2 = |x: f32| ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A;
    [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)]
}

/// Bicubic resize with an explicit scale factor, as
/// `F.interpolate(x, scale_factor=(sy, sx), mode="bicubic")`: the output is
/// `floor(size * factor)` and source positions use `1 / factor`.
pub fn bicubic_scale(
    data: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    sy: f64,
    sx: f64,
) -> (Vec<f32>, usize, usize) {
    let out_h = (h as f64 * sy).floor() as usize;
    let out_w = (w as f64 * sx).floor() as usize;
    let (scale_y, scale_x) = ((1.0 / sy) as f32, (1.0 / sx) as f32);
    let taps = |scale: f32, n: usize, size: usize| -> Vec<([usize; 4], [f32; 4])> {
        (0..n)
            .map(|d| {
                let real = scale * (d as f32 + 0.5) - 0.5;
                let base = real.floor();
                let t = real - base;
                let base = base as i64;
                let idx = [base - 1, base, base + 1, base + 2]
                    .map(|i| i.clamp(0, size as i64 - 1) as usize);
                (idx, cubic_weights(t))
            })
            .collect()
    };
    let ty = taps(scale_y, out_h, h);
    let tx = taps(scale_x, out_w, w);
    let mut out = vec![0f32; channels * out_h * out_w];
    for c in 0..channels {
        let plane = &data[c * h * w..(c + 1) * h * w];
        for (oy, (iy, wy)) in ty.iter().enumerate() {
            for (ox, (ix, wx)) in tx.iter().enumerate() {
                let mut rows = [0f32; 4];
                for (r, &y) in iy.iter().enumerate() {
                    let row = &plane[y * w..(y + 1) * w];
                    rows[r] = row[ix[0]] * wx[0]
                        + row[ix[1]] * wx[1]
                        + row[ix[2]] * wx[2]
                        + row[ix[3]] * wx[3];
                }
                out[c * out_h * out_w + oy * out_w + ox] =
                    rows[0] * wy[0] + rows[1] * wy[1] + rows[2] * wy[2] + rows[3] * wy[3];
            }
        }
    }
    (out, out_h, out_w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_identity_and_halving() {
        let d: Vec<f32> = (0..16).map(|x| x as f32).collect();
        assert_eq!(bilinear(&d, 1, 4, 4, 4, 4), d);
        // Halving averages 2x2 blocks at half-pixel centres.
        let h = bilinear(&d, 1, 4, 4, 2, 2);
        assert_eq!(h, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn resampling_rows_first_is_bit_equal_to_blending_each_pixel() {
        // PyTorch's order per output pixel: blend along x in both source
        // rows, then between the rows.
        let per_pixel = |d: &[f32], c: usize, h: usize, w: usize, ty: &[_], tx: &[_]| {
            let mut out = Vec::new();
            for plane in d.chunks(h * w).take(c) {
                for &(y0, y1, wy0, wy1) in ty {
                    let (r0, r1) = (&plane[y0 * w..], &plane[y1 * w..]);
                    for &(x0, x1, wx0, wx1) in tx {
                        let v: f32 = wy0 * (wx0 * r0[x0] + wx1 * r0[x1])
                            + wy1 * (wx0 * r1[x0] + wx1 * r1[x1]);
                        out.push(v);
                    }
                }
            }
            out
        };
        let (c, h, w) = (3, 7, 5);
        let d: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 37 % 101) as f32).sin())
            .collect();
        for (oh, ow) in [(14, 10), (3, 2), (7, 9)] {
            let (ty, tx) = (bilinear_taps_aligned(h, oh), bilinear_taps(w, ow));
            let got = resample(&d, c, h, w, &ty, &tx);
            let want = per_pixel(&d, c, h, w, &ty, &tx);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{oh}x{ow}"
            );
        }
    }

    #[test]
    fn bicubic_keeps_constants_and_identity() {
        let d = vec![3.0f32; 25];
        let (o, h, w) = bicubic_scale(&d, 1, 5, 5, 0.5, 0.5);
        assert_eq!((h, w), (2, 2));
        assert!(o.iter().all(|v| (v - 3.0).abs() < 1e-5));
        let d: Vec<f32> = (0..25).map(|x| x as f32).collect();
        let (o, _, _) = bicubic_scale(&d, 1, 5, 5, 1.0, 1.0);
        for (a, b) in o.iter().zip(&d) {
            assert!((a - b).abs() < 1e-4);
        }
    }
}
