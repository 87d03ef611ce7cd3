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
//! Training on the CPU uses these loops too, as operations of burn's
//! autodiff graph with their gradients written out (`cpu_train`).

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

/// A GEMM operand: element `(r, c)` at `data[r * row + c * col]`, so a
/// transposed matrix or one head's columns of the attention's packed
/// `q | k | v` rows are views, not copies.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row: usize,
    col: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            row: cols,
            col: 1,
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row + (self.cols - 1) * self.col < self.data.len()
    }
}

/// How a product meets what `dst` holds.
#[derive(Debug, Clone, Copy)]
enum Store {
    /// `dst += lhs * rhs`.
    Add,
    /// `dst = scale * lhs * rhs`.
    Overwrite(f32),
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]`, `dst` row-major with row
/// stride `dst_stride`; on the rayon pool when `threaded`, else on this
/// thread (for callers that already run one product per thread).
fn product(dst: &mut [f32], dst_stride: usize, lhs: View, rhs: View, store: Store, threaded: bool) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions");
    // The bounds the kernel will touch, checked once: every unsafe access
    // below stays inside these slices.
    assert!(
        m == 0 || n == 0 || dst.len() >= (m - 1) * dst_stride + n,
        "dst too short"
    );
    assert!(lhs.fits() && rhs.fits(), "operands too short");
    if m == 0 || n == 0 {
        return;
    }
    let (read_dst, scale) = match store {
        Store::Add => (true, 1.0),
        Store::Overwrite(s) => (false, s),
    };
    // Threads take column ranges, each a single-threaded GEMM: the kernel's
    // own threading splits 64-row products (the U-Net's outer level) badly
    // on two cores, 32-120 GFLOP/s by band width against 150-160 split
    // here (`dacon bench`, AVX-512 Xeon, the kernel's AVX2 version); wider
    // products lose nothing.
    let parts = if threaded {
        rayon::current_num_threads().clamp(1, n.div_ceil(64))
    } else {
        1
    };
    let width = n.div_ceil(parts);
    let dst_at = dst.as_mut_ptr() as usize;
    let run = |i: usize| {
        let n0 = i * width;
        let cols = width.min(n.saturating_sub(n0));
        if cols == 0 {
            return;
        }
        // SAFETY: the three operands are valid for the extents asserted
        // above and columns `n0..n0 + cols` lie inside them; each task
        // writes only its own columns of `dst`, so the tasks' writes are
        // disjoint, and `dst` is borrowed mutably for the whole call, so it
        // aliases neither operand. All strides fit in isize because they
        // index existing allocations.
        unsafe {
            gemm(
                m,
                cols,
                k,
                (dst_at as *mut f32).add(n0),
                1,
                dst_stride as isize,
                read_dst,
                lhs.data.as_ptr(),
                lhs.col as isize,
                lhs.row as isize,
                rhs.data.as_ptr().add(n0 * rhs.col),
                rhs.col as isize,
                rhs.row as isize,
                1.0,
                scale,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    };
    if parts == 1 {
        run(0);
    } else {
        (0..parts).into_par_iter().for_each(run);
    }
}

/// `dst[m x n] += lhs[m x k] * rhs[k x n]`, all row-major, `dst` with row
/// stride `dst_stride`, on the rayon pool.
fn gemm_add(
    dst: &mut [f32],
    dst_stride: usize,
    lhs: &[f32],
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
) {
    product(
        dst,
        dst_stride,
        View::dense(lhs, m, k),
        View::dense(rhs, k, n),
        Store::Add,
        true,
    );
}

impl Kernel {
    /// The convolution of `x` (`x.c == self.c`).
    pub fn apply(&self, x: &Planes) -> Planes {
        self.apply_concat(&[x])
    }

    /// The convolution of the channels of `parts` one after the other
    /// without writing their concatenation:
    /// the U-Net's decoder convolves a skip and an upsampled map together.
    pub fn apply_concat(&self, parts: &[&Planes]) -> Planes {
        assert!(!parts.is_empty(), "no input");
        let (h, w) = (parts[0].h, parts[0].w);
        assert!(
            parts.iter().all(|p| (p.h, p.w) == (h, w)),
            "concatenated maps differ in size"
        );
        assert_eq!(
            parts.iter().map(|p| p.c).sum::<usize>(),
            self.c,
            "input channels"
        );
        let hw = h * w;
        let mut out = vec![0f32; self.o * hw];
        if self.k == 1 && parts.len() == 1 && hw > 0 {
            // A 1x1 convolution's im2col matrix is its input.
            fill_planes(&mut out, hw, &self.bias);
            gemm_add(
                &mut out,
                hw,
                &self.weight,
                &parts[0].data,
                (self.o, hw, self.c),
            );
        } else if hw > 0 {
            let planes: Vec<&[f32]> = parts.iter().flat_map(|p| p.data.chunks(hw)).collect();
            self.apply_planes(&planes, (h, w), &mut out);
        }
        Planes {
            c: self.o,
            h,
            w,
            data: out,
        }
    }

    /// The convolution of `planes` (`self.c` of `h x w`) into `out`
    /// (`self.o` planes), which it overwrites.
    pub fn apply_planes(&self, planes: &[&[f32]], (h, w): (usize, usize), out: &mut [f32]) {
        let hw = h * w;
        assert_eq!(planes.len(), self.c, "input channels");
        assert!(planes.iter().all(|p| p.len() == hw), "plane sizes");
        assert_eq!(out.len(), self.o * hw, "output size");
        if hw == 0 {
            return;
        }
        fill_planes(out, hw, &self.bias);
        let depth = self.c * self.k * self.k;
        let mut columns = Vec::new();
        for (y0, rows) in self.bands(h, w) {
            let n = rows * w;
            self.im2col(&mut columns, planes, (h, w), y0, rows);
            gemm_add(
                &mut out[y0 * w..],
                hw,
                &self.weight,
                &columns,
                (self.o, n, depth),
            );
        }
    }

    /// Row bands `(first row, rows)` whose im2col matrix fits in
    /// [`BAND_FLOATS`].
    fn bands(&self, h: usize, w: usize) -> impl Iterator<Item = (usize, usize)> {
        let depth = self.c * self.k * self.k;
        let band = (BAND_FLOATS / (depth * w).max(1)).clamp(1, h.max(1));
        (0..h).step_by(band).map(move |y0| (y0, band.min(h - y0)))
    }

    /// The im2col matrix of rows `y0..y0 + rows` into `columns` (resized to
    /// `c * k * k` rows of `rows * w`): row `ci * taps + t` is channel `ci`
    /// shifted by tap `t`, zero outside the map, which is the weight's own
    /// order (`[o][c][ky][kx]` flattened).
    fn im2col(
        &self,
        columns: &mut Vec<f32>,
        planes: &[&[f32]],
        (h, w): (usize, usize),
        y0: usize,
        rows: usize,
    ) {
        let taps = self.k * self.k;
        let n = rows * w;
        let pad = self.k / 2;
        columns.resize(planes.len() * taps * n, 0.0);
        columns
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
    }

    /// The kernel whose convolution is this one's input gradient: the
    /// adjoint of a stride-1 "same" convolution is the convolution with the
    /// kernel flipped in space and its channels swapped (`[c][o][k-1-ky]
    /// [k-1-kx]`), no bias.
    pub fn adjoint(&self) -> Kernel {
        let taps = self.k * self.k;
        let mut weight = vec![0f32; self.weight.len()];
        for o in 0..self.o {
            for c in 0..self.c {
                let from = &self.weight[(o * self.c + c) * taps..][..taps];
                let to = &mut weight[(c * self.o + o) * taps..][..taps];
                for (t, v) in to.iter_mut().enumerate() {
                    *v = from[taps - 1 - t];
                }
            }
        }
        Kernel {
            o: self.c,
            c: self.o,
            k: self.k,
            weight,
            bias: vec![0.0; self.c],
        }
    }

    /// Adds the gradients of the weight (`[o, c, k, k]`) and the bias
    /// (`[o]`) for input `planes` (`self.c` of `h x w`) and output gradient
    /// `dy` (`self.o` planes) to `dw` and `db`: `dw += dy * im2col(x)^T`
    /// band by band, `db += sum(dy)` per plane.
    pub fn add_gradients(
        &self,
        planes: &[&[f32]],
        (h, w): (usize, usize),
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let hw = h * w;
        assert_eq!(planes.len(), self.c, "input channels");
        assert!(planes.iter().all(|p| p.len() == hw), "plane sizes");
        assert_eq!(dy.len(), self.o * hw, "output gradient size");
        assert_eq!(
            (dw.len(), db.len()),
            (self.weight.len(), self.o),
            "gradients"
        );
        if hw == 0 {
            return;
        }
        let sums: Vec<f32> = dy
            .par_chunks(hw)
            .map(|p| sum_f64(p, |v| v) as f32)
            .collect();
        db.iter_mut().zip(sums).for_each(|(d, s)| *d += s);
        let depth = self.c * self.k * self.k;
        let mut columns = Vec::new();
        for (y0, rows) in self.bands(h, w) {
            let n = rows * w;
            self.im2col(&mut columns, planes, (h, w), y0, rows);
            product(
                dw,
                depth,
                View {
                    data: &dy[y0 * w..],
                    rows: self.o,
                    cols: n,
                    row: hw,
                    col: 1,
                },
                // im2col(x)^T: element (p, r) of the band at r * n + p.
                View {
                    data: &columns,
                    rows: n,
                    cols: depth,
                    row: 1,
                    col: n,
                },
                Store::Add,
                true,
            );
        }
    }
}

/// Each `hw`-sized plane of `out` set to its value in `values`.
fn fill_planes(out: &mut [f32], hw: usize, values: &[f32]) {
    out.par_chunks_mut(hw)
        .zip(values)
        .for_each(|(plane, &v)| plane.fill(v));
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
    normalise::<true>(&mut x.data, x.h * x.w);
}

/// InstanceNorm (no affine, eps 1e-5) in place on the `hw`-sized planes of
/// `data`, as [`instance_norm_relu`] before its ReLU, returning each
/// plane's `1 / sqrt(variance + eps)`: the normalised map and these are
/// what the gradient needs.
pub fn instance_norm(data: &mut [f32], hw: usize) -> Vec<f32> {
    normalise::<false>(data, hw)
}

/// InstanceNorm of each `hw`-sized plane of `data` in place, then ReLU when
/// `RELU` (in the same pass); each plane's inverse deviation.
fn normalise<const RELU: bool>(data: &mut [f32], hw: usize) -> Vec<f32> {
    if hw == 0 {
        return Vec::new();
    }
    data.par_chunks_mut(hw)
        .map(|plane| {
            let (m, inv) = mean_and_inverse_deviation(plane, 1e-5);
            for v in plane {
                *v = (*v - m) * inv;
                if RELU {
                    *v = v.max(0.0);
                }
            }
            inv
        })
        .collect()
}

/// The gradient of InstanceNorm + ReLU at its input, from the normalised
/// planes `xhat` (before the ReLU, `hw` values each), each plane's inverse
/// deviation `inv` and the output's gradient `dy`, written over `dy`. With
/// `g = dy` where `xhat > 0`, else 0 (PyTorch's ReLU gradient at 0), per
/// plane: `dx = inv * (g - mean(g) - xhat * mean(g * xhat))`, the means in
/// double precision.
pub fn instance_norm_relu_gradient(xhat: &[f32], inv: &[f32], dy: &mut [f32], hw: usize) {
    assert_eq!(xhat.len(), dy.len(), "sizes");
    assert_eq!(inv.len() * hw, xhat.len(), "one deviation per plane");
    if hw == 0 {
        return;
    }
    dy.par_chunks_mut(hw)
        .zip(xhat.par_chunks(hw))
        .zip(inv.par_iter())
        .for_each(|((g, xh), &inv)| {
            for (g, &x) in g.iter_mut().zip(xh) {
                if x <= 0.0 {
                    *g = 0.0;
                }
            }
            let mean = sum_f64(g, |v| v) / hw as f64;
            let along = dot_f64(g, xh) / hw as f64;
            for (g, &x) in g.iter_mut().zip(xh) {
                *g = inv * ((f64::from(*g) - mean - f64::from(x) * along) as f32);
            }
        });
}

/// `(mean, 1 / sqrt(variance + eps))` of `values` (not empty), as
/// PyTorch's CPU norms compute them: in double precision, the mean, then
/// the mean squared deviation from it.
fn mean_and_inverse_deviation(values: &[f32], eps: f64) -> (f32, f32) {
    let n = values.len() as f64;
    let mean = sum_f64(values, |v| v) / n;
    let var = sum_f64(values, |v| (v - mean).powi(2)) / n;
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

/// `sum(a * b)` in double precision, in lanes as [`sum_f64`].
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest = ca.remainder().iter().zip(cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += f64::from(x) * f64::from(y);
        }
    }
    lanes.iter().sum::<f64>()
        + rest
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum::<f64>()
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
#[cfg(test)]
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

/// A transformer's tokens: `n` rows of `d` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Tokens.
    pub n: usize,
    /// Width.
    pub d: usize,
    /// `n * d` values.
    pub data: Vec<f32>,
}

/// A linear layer, `y = x W + b`.
#[derive(Debug, Clone)]
pub struct Dense {
    /// Input width.
    pub i: usize,
    /// Output width.
    pub o: usize,
    /// `[i, o]` (burn's layout; PyTorch's transposed).
    pub weight: Vec<f32>,
    /// `[o]`.
    pub bias: Vec<f32>,
}

impl Dense {
    /// The layer on every token of `x` (`x.d == self.i`).
    pub fn apply(&self, x: &Tokens) -> Tokens {
        assert_eq!(x.d, self.i, "input width");
        let mut data = Vec::with_capacity(x.n * self.o);
        for _ in 0..x.n {
            data.extend_from_slice(&self.bias);
        }
        product(
            &mut data,
            self.o,
            View::dense(&x.data, x.n, self.i),
            View::dense(&self.weight, self.i, self.o),
            Store::Add,
            true,
        );
        Tokens {
            n: x.n,
            d: self.o,
            data,
        }
    }
}

/// LayerNorm over each token: statistics in double precision, then
/// `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn layer_norm(x: &Tokens, gamma: &[f32], beta: &[f32], eps: f64) -> Tokens {
    assert!(
        gamma.len() == x.d && beta.len() == x.d,
        "norm parameters' width"
    );
    let mut data = x.data.clone();
    if x.d > 0 {
        data.par_chunks_mut(x.d).for_each(|row| {
            let (m, inv) = mean_and_inverse_deviation(row, eps);
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - m) * inv * g + b;
            }
        });
    }
    Tokens { data, ..*x }
}

/// The exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`, in place.
pub fn gelu(x: &mut Tokens) {
    x.data.par_chunks_mut(1 << 14).for_each(|chunk| {
        widest(|| {
            for v in chunk {
                *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
            }
        });
    });
}

/// `erf(x)` to 6e-7 absolute (Abramowitz & Stegun 7.1.26 evaluated in
/// float32), which puts GELU within 3e-7 |x| of its value; branch-free, so it
/// vectorises (libm's `erff` made GELU a tenth of a block's time).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let y = 1.0 - poly * exp_nonpositive(-a * a);
    y.copysign(x)
}

/// SwiGLU's gate on `[x1 | x2]` rows: `silu(x1) * x2`, half the width.
pub fn swiglu(x: &Tokens) -> Tokens {
    let half = x.d / 2;
    let mut data = vec![0f32; x.n * half];
    if half > 0 {
        data.par_chunks_mut(half)
            .zip(x.data.par_chunks(x.d))
            .for_each(|(dst, row)| {
                let (a, b) = row.split_at(half);
                for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                    *d = a / (1.0 + (-a).exp()) * b;
                }
            });
    }
    Tokens {
        n: x.n,
        d: half,
        data,
    }
}

/// Multi-head self-attention on packed `[q | k | v]` rows (each `heads`
/// heads wide, as DINOv2's `qkv` layer writes them): per head
/// `softmax(q k^T / sqrt(head width)) v`, the heads side by side.
///
/// Work is split by head and by blocks of [`QUERY_BLOCK`] queries, each
/// task with its own `QUERY_BLOCK x n` scores; each row of the result is
/// divided by its softmax sum at the end, which spares a pass over the
/// scores.
pub fn attention(qkv: &Tokens, heads: usize) -> Tokens {
    assert!(
        heads > 0 && qkv.d % (3 * heads) == 0,
        "{} values per token is not q, k, v of {heads} heads",
        qkv.d
    );
    let (n, d) = (qkv.n, qkv.d / 3);
    let hd = d / heads;
    let mut data = vec![0f32; n * d];
    if n == 0 || hd == 0 {
        return Tokens { n, d, data };
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let column = |offset: usize, rows: usize, cols: usize, row: usize, col: usize| View {
        data: &qkv.data[offset..],
        rows,
        cols,
        row,
        col,
    };
    let blocks = n.div_ceil(QUERY_BLOCK);
    // A task's head and first query row.
    let place = |task: usize| (task / blocks, task % blocks * QUERY_BLOCK);
    let outputs: Vec<Vec<f32>> = (0..heads * blocks)
        .into_par_iter()
        .map_init(Vec::new, |scores, task| {
            let (h, r0) = place(task);
            let rows = QUERY_BLOCK.min(n - r0);
            let q = column(r0 * 3 * d + h * hd, rows, hd, 3 * d, 1);
            let k_t = column(d + h * hd, hd, n, 1, 3 * d);
            let v = column(2 * d + h * hd, n, hd, 3 * d, 1);
            scores.resize(rows * n, 0.0);
            product(scores, n, q, k_t, Store::Overwrite(scale), false);
            let mut sums = Vec::with_capacity(rows);
            widest(|| {
                for row in scores.chunks_mut(n) {
                    sums.push(exp_shifted(row));
                }
            });
            let mut out = vec![0f32; rows * hd];
            product(
                &mut out,
                hd,
                View::dense(scores, rows, n),
                v,
                Store::Overwrite(1.0),
                false,
            );
            for (row, sum) in out.chunks_mut(hd).zip(sums) {
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|v| *v *= inv);
            }
            out
        })
        .collect();
    for (task, out) in outputs.iter().enumerate() {
        let (h, r0) = place(task);
        for (dst, src) in data[r0 * d..].chunks_mut(d).zip(out.chunks(hd)) {
            dst[h * hd..(h + 1) * hd].copy_from_slice(src);
        }
    }
    Tokens { n, d, data }
}

/// Queries per attention task: bounds a task's scores (2.8 MB at DINOv2's
/// 1370 tokens). Blocks of 128, 512, 704 and whole heads timed the same
/// within this machine's noise (ViT-S forward 0.56-0.60 s, 3 runs each).
const QUERY_BLOCK: usize = 512;

/// Runs `f` compiled for the widest vector unit this CPU has (AVX-512, else
/// AVX2 with FMA), picked at run time: the binary targets baseline x86-64,
/// whose 4-wide SSE would leave most of a modern core idle. `f` should be
/// made of `#[inline(always)]` code so that it is compiled into the chosen
/// version.
#[inline(always)]
fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn narrow<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked on the line above.
            return unsafe { wide(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked on the line above.
            return unsafe { narrow(f) };
        }
    }
    f()
}

/// Lanes of one vector register: independent running maxima and sums the
/// compiler turns into vector instructions (one running value is a chain
/// of dependent operations it may not reorder).
const LANES: usize = 16;

/// `v = exp(v - max)` in place; returns the sum (the softmax without its
/// division). libm's scalar `expf` made the softmax 60% of the attention's
/// time.
#[inline(always)]
fn exp_shifted(row: &mut [f32]) -> f32 {
    let mut top = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (t, &v) in top.iter_mut().zip(chunk) {
            *t = t.max(v);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&top)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in sums.iter_mut().zip(chunk) {
            *v = exp_nonpositive(*v - max);
            *s += *v;
        }
    }
    let mut sum = sums.iter().sum::<f32>();
    for v in chunks.into_remainder() {
        *v = exp_nonpositive(*v - max);
        sum += *v;
    }
    sum
}

/// `e^x` for `x <= 0` (below -87 the result is flushed to about 1e-38, far
/// below a softmax's largest term, 1): `x = n ln 2 + r` with `|r| <= ln 2 /
/// 2`, Cephes' degree-6 polynomial for `e^r` (about 1 ulp), then `2^n`
/// written into the exponent bits. Branch-free, so it vectorises.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    let rounded = x * std::f32::consts::LOG2_E + ROUND;
    let n = rounded - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // `n` sits in the low bits of `rounded`'s mantissa; integer arithmetic
    // on the bits (a float-to-int cast would not vectorise) gives `2^n`.
    let n_bits = rounded.to_bits().wrapping_sub(ROUND.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
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

    /// The vectorisable `exp` and `erf` against libm's over their ranges.
    #[test]
    fn exp_and_erf_are_libm_to_a_few_ulp() {
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (got, want) = (exp_nonpositive(x), x.exp());
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}) = {got}, libm {want}"
            );
            // A&S 7.1.26 is 1.5e-7 from erf; float32 evaluation adds up to
            // 4e-7 more, so GELU, 0.5 x (1 + erf), is off by at most 3e-7 |x|.
            let x = 12.0 * (i as f32 / 100_000.0 - 1.0);
            let (got, want) = (erf(x), libm::erff(x));
            assert!((got - want).abs() <= 6e-7, "erf({x}) = {got}, libm {want}");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e30) < 1e-37);
    }

    /// Attention against its definition in f64 (with more tokens than a
    /// query block, and a last block that is short), LayerNorm and a
    /// linear layer by hand.
    #[test]
    fn attention_norm_and_linear_are_their_definitions() {
        let (n, heads, hd) = (QUERY_BLOCK + 88, 3, 8);
        let d = heads * hd;
        let qkv = Tokens {
            n,
            d: 3 * d,
            data: numbers(n * 3 * d, 5),
        };
        let got = attention(&qkv, heads);
        let at = |r: usize, c: usize| f64::from(qkv.data[r * 3 * d + c]);
        for h in 0..heads {
            for r in (0..n).step_by(7) {
                let scores: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..hd)
                            .map(|e| at(r, h * hd + e) * at(j, d + h * hd + e))
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for e in 0..hd {
                    let want = (0..n)
                        .map(|j| weights[j] * at(j, 2 * d + h * hd + e))
                        .sum::<f64>()
                        / total;
                    let g = f64::from(got.data[r * d + h * hd + e]);
                    assert!((g - want).abs() < 1e-5, "head {h} row {r}: {g} vs {want}");
                }
            }
        }
        let x = Tokens {
            n: 2,
            d: 4,
            data: vec![1.0, 2.0, 3.0, 6.0, -1.0, -1.0, -1.0, -1.0],
        };
        // Row 1: mean 3, variance 3.5; row 2 is constant.
        let y = layer_norm(&x, &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.0, 0.5], 1e-6);
        let s = (3.5f32 + 1e-6).sqrt();
        for (g, w) in
            y.data
                .iter()
                .zip([-2.0 / s, -2.0 / s, 0.0, 3.0 / s + 0.5, 0.0, 0.0, 0.0, 0.5])
        {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        let dense = Dense {
            i: 4,
            o: 2,
            weight: vec![1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, -1.0],
            bias: vec![0.5, -0.5],
        };
        // y = x W + b with W = [[1, 0], [0, 1], [2, 0], [0, -1]].
        assert_eq!(dense.apply(&x).data, vec![7.5, -4.5, -2.5, -0.5]);
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
