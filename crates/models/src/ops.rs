//! Differentiable building blocks shared by every model in this crate.
//!
//! candle 0.11's fused kernels (`candle_nn::ops::layer_norm`, `softmax_last_dim`,
//! `rms_norm`, `rope`) are fast but have no backward pass, so a model fine-tuned through
//! them silently gets no gradient for the tensors upstream of the kernel. Everything here
//! is written with elementary candle ops that all have a backward pass (checked in
//! `candle-core/src/backprop.rs`), so the same code serves inference and training.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * w + b`.
///
/// The variance is the biased one (divided by `n`), as in PyTorch. Computation happens in
/// the input dtype; half-precision inputs are promoted to f32 for the statistics so that
/// the mean of squares does not overflow, then cast back.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let in_dtype = x.dtype();
    let work = match in_dtype {
        DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    };
    let mean = work.mean_keepdim(D::Minus1)?;
    let centred = work.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed
        .to_dtype(in_dtype)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

/// A learnable layer norm with tensors named `weight` and `bias`, as in HF checkpoints.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads (or, with a `VarMap`-backed builder, creates as ones/zeros) `weight` and
    /// `bias` of length `size`.
    pub fn new(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        let weight = vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    /// Builds a layer norm from existing tensors (used by tests and adapters).
    pub fn from_tensors(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { weight, bias, eps }
    }

    /// The scale tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The shift tensor.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

/// Softmax over the last dimension.
///
/// The row maximum is subtracted first for numerical safety; it is detached because the
/// softmax is invariant to that shift, so its gradient contribution is exactly zero and
/// tracking it would only cost memory.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

/// Log-softmax over the last dimension, computed as `x - max - log(sum(exp(x - max)))`
/// so that it stays finite where `softmax(x).log()` would underflow to `-inf`.
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default `gelu`).
///
/// Built from `erf`, whose backward uses the exact derivative, rather than from the fused
/// `gelu_erf` whose backward rounds `1/sqrt(2 pi)` to six digits.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let inner = (x / std::f64::consts::SQRT_2)?.erf()?;
    x * ((inner + 1.0)? * 0.5)?
}

/// CLIP's `quick_gelu`: `x * sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    x * sigmoid(&(x * 1.702)?)?
}

/// Logistic sigmoid as `0.5 (1 + tanh(x / 2))`.
///
/// The textbook `1 / (1 + exp(-x))` overflows `exp` to `inf` below about -88 in f32 and
/// its backward pass then multiplies `0 * inf = NaN`; `tanh` saturates cleanly and its
/// derivative `1 - tanh^2` goes to 0 instead, so this form is safe for any finite input.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    ((x * 0.5)?.tanh()? + 1.0)? * 0.5
}

/// A `candle_nn::Linear` read from `vb` (`weight` of shape `[out, in]`, optional `bias`),
/// with PyTorch's default initialisation when the builder creates the variables.
pub fn linear(
    vb: VarBuilder,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> Result<candle_nn::Linear> {
    if bias {
        candle_nn::linear(in_dim, out_dim, vb)
    } else {
        candle_nn::linear_no_bias(in_dim, out_dim, vb)
    }
}

/// Scaled dot-product attention for `[batch, heads, seq, head_dim]` tensors.
///
/// `mask` is additive (0 to keep, a large negative value to drop) and must broadcast to
/// `[batch, heads, q_len, k_len]`. Returns `[batch, heads, q_len, head_dim]`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
    let scores = match mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores,
    };
    softmax_last_dim(&scores)?.matmul(&v.contiguous()?)
}

/// Row `i` holds the weights that 1-D linear interpolation from `in_size` to `out_size`
/// samples gives to each input index, with PyTorch's `interpolate(mode="bilinear")`
/// source-index rule for either `align_corners` setting (no antialiasing).
pub fn linear_interpolation_weights(
    in_size: usize,
    out_size: usize,
    align_corners: bool,
) -> Vec<Vec<f64>> {
    let mut rows = vec![vec![0f64; in_size]; out_size];
    if in_size == 0 {
        return rows;
    }
    for (i, row) in rows.iter_mut().enumerate() {
        let src = if align_corners {
            if out_size > 1 {
                i as f64 * (in_size - 1) as f64 / (out_size - 1) as f64
            } else {
                0.0
            }
        } else {
            // PyTorch clamps negative source positions of linear modes to 0.
            ((i as f64 + 0.5) * in_size as f64 / out_size as f64 - 0.5).max(0.0)
        };
        let i0 = (src.floor() as usize).min(in_size - 1);
        let i1 = (i0 + 1).min(in_size - 1);
        let lambda = src - i0 as f64;
        row[i0] += 1.0 - lambda;
        row[i1] += lambda;
    }
    rows
}

fn weight_matrix(rows: &[Vec<f64>], dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (r, c), device)?.to_dtype(dtype)
}

/// Bilinear resize of `[b, c, h, w]` to `[b, c, out_h, out_w]`, as PyTorch's
/// `interpolate(mode="bilinear", align_corners=..)` (no antialiasing).
///
/// Interpolation is separable, so it is written as `A_h · x · A_wᵀ` with constant
/// interpolation matrices: two matmuls, whose backward pass candle has.
pub fn interpolate_bilinear(
    x: &Tensor,
    out_h: usize,
    out_w: usize,
    align_corners: bool,
) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if (h, w) == (out_h, out_w) {
        // Same size: both source-index rules give the identity exactly.
        return Ok(x.clone());
    }
    let ah = weight_matrix(
        &linear_interpolation_weights(h, out_h, align_corners),
        x.dtype(),
        x.device(),
    )?;
    let aw = weight_matrix(
        &linear_interpolation_weights(w, out_w, align_corners),
        x.dtype(),
        x.device(),
    )?;
    let flat = x.reshape((b * c, h, w))?;
    let rows = flat.broadcast_matmul(&aw.t()?)?;
    let out = ah.broadcast_matmul(&rows)?;
    out.reshape((b, c, out_h, out_w))
}

/// `ConvTranspose2d` whose kernel equals its stride (padding 0): every input pixel
/// writes its own disjoint `k x k` output block, so the layer is one matmul and a
/// reshuffle. `weight` is PyTorch's `[in, out, k, k]`, `bias` `[out]`.
pub fn conv_transpose2d_disjoint(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (wc, o, k, k2) = weight.dims4()?;
    if wc != c || k != k2 {
        candle_core::bail!(
            "conv_transpose2d_disjoint: weight {:?} does not fit input {:?} (want [{c}, out, k, k])",
            weight.dims(),
            x.dims()
        );
    }
    let cols = x
        .permute((0, 2, 3, 1))?
        .reshape((b * h * w, c))?
        .matmul(&weight.reshape((c, o * k * k))?)?;
    let out = cols
        .reshape((b, h, w, o, k, k))?
        .permute((0, 3, 1, 4, 2, 5))?
        .reshape((b, o, h * k, w * k))?;
    match bias {
        Some(bias) => out.broadcast_add(&bias.reshape((1, o, 1, 1))?),
        None => Ok(out),
    }
}

/// `BatchNorm2d` in evaluation mode over `[b, c, h, w]`: the running statistics are
/// constants (detached), `weight` and `bias` are trained.
pub fn batch_norm_eval(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let c = x.dim(1)?;
    let inv_std = (running_var.detach() + eps)?.sqrt()?.recip()?;
    let scale = (weight * inv_std)?;
    let shift = (bias - (running_mean.detach() * &scale)?)?;
    x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
        .broadcast_add(&shift.reshape((1, c, 1, 1))?)
}

/// 2-D convolution at `stride`, computed at stride 1 and subsampled.
///
/// candle 0.11's backward pass of a strided `conv2d` derives the output padding from the
/// height alone, so it fails (shape mismatch) when height and width differ in parity;
/// this form only uses the stride-1 convolution and `index_select`, whose backward
/// passes are exact, at the cost of computing the skipped positions.
pub fn conv2d_strided(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let mut y = x.conv2d(weight, padding, 1, 1, 1)?;
    if stride > 1 {
        let (_, _, h, w) = y.dims4()?;
        let pick = |n: usize| Tensor::arange_step(0u32, n as u32, stride as u32, x.device());
        y = y.index_select(&pick(h)?, 2)?.index_select(&pick(w)?, 3)?;
    }
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        None => Ok(y),
    }
}
