//! The U-Net's inference on the CPU in plain loops around one GEMM kernel
//! (#15: burn's CPU convolution ran the released U-Net 2.6x slower than
//! PyTorch on the same machine).
//!
//! Why not through burn: its CPU convolution converts every map to NHWC,
//! copies im2col tiles and allocates a result per tile; InstanceNorm,
//! ReLU, pooling and concatenation are each another pass through memory.
//! Here a 3x3 convolution is an im2col band written straight from the
//! channel-major map and one GEMM per band that writes into the output
//! map in place (bias preloaded), and InstanceNorm + ReLU is one pass per
//! plane. The arithmetic is PyTorch's: float32 products summed by the GEMM
//! kernel, InstanceNorm statistics in double precision (as PyTorch's CPU
//! kernel), the upsampling's interpolation in PyTorch's order.
//! Training does not come here: it needs burn's autodiff graph.

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use crate::resize::{bilinear_taps_aligned, resample};

/// One image's feature map: `c` planes of `h x w`, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `c * h * w` values.
    pub data: Vec<f32>,
}

/// A stride-1 convolution with an odd `k x k` kernel and "same" padding
/// (`k / 2`), in PyTorch's layout.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Output channels.
    pub o: usize,
    /// Input channels.
    pub c: usize,
    /// Kernel side.
    pub k: usize,
    /// `[o, c, k, k]`.
    pub weight: Vec<f32>,
    /// `[o]`.
    pub bias: Vec<f32>,
}

/// Floats in one im2col band: the scratch a 3x3 convolution needs beside
/// its input and output (16 MiB), however large the map. Bands of a few
/// thousand pixels keep the GEMM at full speed.
const BAND_FLOATS: usize = 1 << 22;

/// `dst[m x n] += lhs[m x k] * rhs[k x n]`, all row-major, `dst` with row
/// stride `dst_stride`.
fn gemm_add(
    dst: &mut [f32],
    dst_stride: usize,
    lhs: &[f32],
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
) {
    // The bounds the kernel will touch, checked once: every unsafe access
    // below stays inside these slices.
    assert!(
        m == 0 || dst.len() >= (m - 1) * dst_stride + n,
        "dst too short"
    );
    assert!(
        lhs.len() >= m * k && rhs.len() >= k * n,
        "operands too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    // Threads take column ranges, each a single-threaded GEMM: the kernel's
    // own threading splits 64-row products (the U-Net's outer level) badly
    // on two cores, 32-120 GFLOP/s by band width against 150-160 split
    // here (`dacon bench`, AVX-512 Xeon); wider products lose nothing.
    let parts = rayon::current_num_threads().clamp(1, n.div_ceil(64));
    let width = n.div_ceil(parts);
    let dst_at = dst.as_mut_ptr() as usize;
    (0..parts).into_par_iter().for_each(|i| {
        let n0 = i * width;
        let cols = width.min(n.saturating_sub(n0));
        if cols == 0 {
            return;
        }
        // SAFETY: the three slices are valid for the extents asserted above
        // (row-major, unit column stride) and columns `n0..n0 + cols` lie
        // inside them; each task writes only its own columns of `dst`, so
        // the tasks' writes are disjoint, and `dst` is borrowed mutably for
        // the whole call, so it aliases neither operand. All strides fit in
        // isize because they index existing allocations.
        unsafe {
            gemm(
                m,
                cols,
                k,
                (dst_at as *mut f32).add(n0),
                1,
                dst_stride as isize,
                true,
                lhs.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr().add(n0),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    });
}

impl Kernel {
    /// The convolution of `x` (`x.c == self.c`).
    pub fn apply(&self, x: &Planes) -> Planes {
        self.apply_concat(&[x])
    }

    /// The convolution of the channels of `parts` one after the other (as
    /// [`concat`] would lay them out) without writing the concatenation:
    /// the U-Net's decoder convolves a skip and an upsampled map together.
    pub fn apply_concat(&self, parts: &[&Planes]) -> Planes {
        assert!(!parts.is_empty(), "no input");
        let (h, w) = (parts[0].h, parts[0].w);
        assert!(
            parts.iter().all(|p| (p.h, p.w) == (h, w)),
            "concatenated maps differ in size"
        );
        if self.k == 1 && parts.len() > 1 {
            let joined = parts[1..]
                .iter()
                .fold(parts[0].clone(), |a, b| concat(&a, b));
            return self.apply(&joined);
        }
        assert_eq!(
            parts.iter().map(|p| p.c).sum::<usize>(),
            self.c,
            "input channels"
        );
        let x = parts[0];
        let hw = h * w;
        if hw == 0 {
            return Planes {
                c: self.o,
                h,
                w,
                data: Vec::new(),
            };
        }
        let mut out = vec![0f32; self.o * hw];
        out.par_chunks_mut(hw)
            .zip(&self.bias)
            .for_each(|(plane, &b)| plane.fill(b));
        let taps = self.k * self.k;
        let depth = self.c * taps;
        if self.k == 1 {
            gemm_add(&mut out, hw, &self.weight, &x.data, (self.o, hw, depth));
            return Planes {
                c: self.o,
                h,
                w,
                data: out,
            };
        }
        let planes: Vec<&[f32]> = parts.iter().flat_map(|p| p.data.chunks(hw)).collect();
        let pad = self.k / 2;
        let band = (BAND_FLOATS / (depth * w).max(1)).clamp(1, h.max(1));
        let mut columns = vec![0f32; depth * band * w];
        for y0 in (0..h).step_by(band) {
            let rows = band.min(h - y0);
            let n = rows * w;
            // Row `ci * taps + t` of the band: channel `ci` shifted by tap
            // `t`, zero outside the map, which is the weight's own order
            // (`[o][c][ky][kx]` flattened).
            columns[..depth * n]
                .par_chunks_mut(taps * n)
                .zip(planes.par_iter())
                .for_each(|(block, plane)| {
                    for t in 0..taps {
                        let (dy, dx) = (t / self.k, t % self.k);
                        for r in 0..rows {
                            let dst = &mut block[t * n + r * w..t * n + (r + 1) * w];
                            shifted_row(
                                dst,
                                plane,
                                w,
                                h,
                                (y0 + r + dy) as isize - pad as isize,
                                dx as isize - pad as isize,
                            );
                        }
                    }
                });
            gemm_add(
                &mut out[y0 * w..],
                hw,
                &self.weight,
                &columns[..depth * n],
                (self.o, n, depth),
            );
        }
        Planes {
            c: self.o,
            h,
            w,
            data: out,
        }
    }
}

/// `dst[x] = plane[y][x + dx]`, zero where that lies outside the plane.
fn shifted_row(dst: &mut [f32], plane: &[f32], w: usize, h: usize, y: isize, dx: isize) {
    if y < 0 || y >= h as isize {
        dst.fill(0.0);
        return;
    }
    let row = &plane[y as usize * w..(y as usize + 1) * w];
    // Source columns x + dx for x in 0..w, clipped to 0..w.
    let lo = (-dx).clamp(0, w as isize) as usize;
    let hi = (w as isize - dx).clamp(0, w as isize) as usize;
    dst[..lo].fill(0.0);
    if lo < hi {
        let s = (lo as isize + dx) as usize;
        dst[lo..hi].copy_from_slice(&row[s..s + (hi - lo)]);
    }
    dst[hi.max(lo)..].fill(0.0);
}

/// InstanceNorm (no affine, eps 1e-5) then ReLU, in place, per plane.
/// Statistics in double precision, mean then squared deviations, as
/// PyTorch's CPU kernel (see `unet::instance_norm_exact`).
pub fn instance_norm_relu(x: &mut Planes) {
    let n = x.h * x.w;
    if n == 0 {
        return;
    }
    x.data.par_chunks_mut(n).for_each(|plane| {
        let mean = sum_f64(plane, |v| v) / n as f64;
        let var = sum_f64(plane, |v| (v - mean).powi(2)) / n as f64;
        let (m, inv) = (mean as f32, (1.0 / (var + 1e-5).sqrt()) as f32);
        for v in plane {
            *v = ((*v - m) * inv).max(0.0);
        }
    });
}

/// The sum of `f(v)` over `values`, in double precision, in eight running
/// sums (lanes of one vector register; one running sum is a chain of
/// dependent additions that cannot be vectorised). The order differs from
/// a single running sum only below float32's precision.
fn sum_f64(values: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(f64::from(v));
        }
    }
    let mut total = lanes.iter().sum::<f64>();
    for &v in rest {
        total += f(f64::from(v));
    }
    total
}

/// 2x2 max-pooling, stride 2 (odd sizes drop the last row/column, as
/// PyTorch's floor mode).
pub fn max_pool2(x: &Planes) -> Planes {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut data = vec![0f32; x.c * h * w];
    if h * w > 0 {
        data.par_chunks_mut(h * w)
            .zip(x.data.par_chunks(x.h * x.w))
            .for_each(|(dst, src)| {
                for y in 0..h {
                    let (r0, r1) = (&src[2 * y * x.w..], &src[(2 * y + 1) * x.w..]);
                    for xx in 0..w {
                        let a = r0[2 * xx].max(r0[2 * xx + 1]);
                        let b = r1[2 * xx].max(r1[2 * xx + 1]);
                        dst[y * w + xx] = a.max(b);
                    }
                }
            });
    }
    Planes { c: x.c, h, w, data }
}

/// x2 bilinear upsampling with `align_corners=True`, PyTorch's order.
pub fn upsample2(x: &Planes) -> Planes {
    let (h, w) = (2 * x.h, 2 * x.w);
    let ty = bilinear_taps_aligned(x.h, h);
    let tx = bilinear_taps_aligned(x.w, w);
    Planes {
        c: x.c,
        h,
        w,
        data: resample(&x.data, x.c, x.h, x.w, &ty, &tx),
    }
}

/// `a`'s channels then `b`'s (same size).
pub fn concat(a: &Planes, b: &Planes) -> Planes {
    assert_eq!((a.h, a.w), (b.h, b.w), "concatenated maps differ in size");
    let mut data = Vec::with_capacity(a.data.len() + b.data.len());
    data.extend_from_slice(&a.data);
    data.extend_from_slice(&b.data);
    Planes {
        c: a.c + b.c,
        h: a.h,
        w: a.w,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct convolution from the definition, in f64.
    fn direct(x: &Planes, k: &Kernel) -> Vec<f64> {
        let pad = (k.k / 2) as isize;
        let mut out = vec![0f64; k.o * x.h * x.w];
        for o in 0..k.o {
            for y in 0..x.h as isize {
                for xx in 0..x.w as isize {
                    let mut s = f64::from(k.bias[o]);
                    for c in 0..k.c {
                        for dy in 0..k.k as isize {
                            for dx in 0..k.k as isize {
                                let (sy, sx) = (y + dy - pad, xx + dx - pad);
                                if sy < 0 || sx < 0 || sy >= x.h as isize || sx >= x.w as isize {
                                    continue;
                                }
                                let wv = k.weight
                                    [((o * k.c + c) * k.k + dy as usize) * k.k + dx as usize];
                                let xv = x.data[(c * x.h + sy as usize) * x.w + sx as usize];
                                s += f64::from(wv) * f64::from(xv);
                            }
                        }
                    }
                    out[(o * x.h + y as usize) * x.w + xx as usize] = s;
                }
            }
        }
        out
    }

    fn numbers(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1009) as f32 - 504.0) / 252.0)
            .collect()
    }

    /// Against the definition, for the U-Net's kernels, on maps with odd
    /// sides and on one taller than a band (several bands, the last short).
    #[test]
    fn convolution_is_the_definition() {
        for (k, c, o, h, w) in [
            (3, 3, 5, 7, 9),
            (1, 4, 3, 5, 6),
            (3, 2, 2, 1, 1),
            (3, 40, 3, 300, 37),
        ] {
            let x = Planes {
                c,
                h,
                w,
                data: numbers(c * h * w, 1),
            };
            let kernel = Kernel {
                o,
                c,
                k,
                weight: numbers(o * c * k * k, 2),
                bias: numbers(o, 3),
            };
            let got = kernel.apply(&x);
            assert_eq!((got.c, got.h, got.w), (o, h, w));
            for (g, e) in got.data.iter().zip(direct(&x, &kernel)) {
                assert!(
                    (f64::from(*g) - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{k}x{k} {h}x{w}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn pooling_normalising_and_concatenating_by_hand() {
        let x = Planes {
            c: 1,
            h: 2,
            w: 4,
            data: vec![1.0, 5.0, -2.0, 0.0, 3.0, 2.0, -1.0, -3.0],
        };
        assert_eq!(max_pool2(&x).data, vec![5.0, 0.0]);
        let mut y = Planes {
            c: 1,
            h: 1,
            w: 2,
            data: vec![1.0, 3.0],
        };
        instance_norm_relu(&mut y);
        // mean 2, variance 1: (-1, 1) / sqrt(1 + 1e-5), then ReLU.
        assert_eq!(y.data[0], 0.0);
        assert!((y.data[1] - 1.0 / (1.0f32 + 1e-5).sqrt()).abs() < 1e-7);
        let z = concat(&y, &y);
        assert_eq!((z.c, z.data.len()), (2, 4));
    }

    #[test]
    fn lane_sums_are_the_running_sum_in_double_precision() {
        for n in [0, 1, 7, 8, 9, 1000, 4099] {
            let v = numbers(n, 3);
            let running: f64 = v.iter().map(|&x| f64::from(x) * 3.0).sum();
            let lanes = sum_f64(&v, |x| x * 3.0);
            assert!(
                (running - lanes).abs() <= 1e-12 * (1.0 + running.abs()),
                "{n}"
            );
        }
    }

    /// Convolving parts equals convolving their concatenation, to the bit
    /// (the same columns reach the same GEMM), for 3x3 over several bands
    /// and for 1x1.
    #[test]
    fn convolving_parts_is_convolving_their_concatenation() {
        for (k, h, w) in [(3, 300, 37), (1, 5, 6)] {
            let part = |c: usize, seed: usize| Planes {
                c,
                h,
                w,
                data: numbers(c * h * w, seed),
            };
            let (a, b) = (part(24, 1), part(16, 2));
            let kernel = Kernel {
                o: 3,
                c: 40,
                k,
                weight: numbers(3 * 40 * k * k, 3),
                bias: numbers(3, 4),
            };
            assert_eq!(
                kernel.apply_concat(&[&a, &b]),
                kernel.apply(&concat(&a, &b))
            );
        }
    }
}
