//! Differentiable building blocks shared by every model in this crate.
//!
//! candle 0.11's fused kernels (`candle_nn::ops::layer_norm`, `softmax_last_dim`,
//! `rms_norm`, `rope`) are fast but have no backward pass, so a model fine-tuned through
//! them silently gets no gradient for the tensors upstream of the kernel. Everything here
//! has a backward pass: either elementary candle ops (checked in
//! `candle-core/src/backprop.rs`) or the fused kernels of `sdvp-kernels`, whose backward
//! passes are tested against those elementary forms. The same code serves inference and
//! training.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * w + b`,
/// with the biased variance (divided by `n`), as in PyTorch. Fused with a backward pass
/// for f32 on the CPU ([`sdvp_kernels`]), elementary ops otherwise.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    sdvp_kernels::layer_norm(x, weight, bias, eps)
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

/// Softmax over the last dimension (fused with a backward pass for f32 on the CPU).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    sdvp_kernels::softmax_last_dim(x)
}

/// Log-softmax over the last dimension, computed as `x - max - log(sum(exp(x - max)))`
/// so that it stays finite where `softmax(x).log()` would underflow to `-inf`.
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default `gelu`), with the exact
/// derivative (candle's fused `gelu_erf` rounds `1/sqrt(2 pi)` to six digits).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    sdvp_kernels::gelu_erf(x)
}

/// CLIP's `quick_gelu`: `x * sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    sdvp_kernels::quick_gelu(x)
}

/// Logistic sigmoid as `0.5 (1 + tanh(x / 2))`, finite with a finite gradient for any
/// finite input.
pub use sdvp_kernels::reference::sigmoid;

/// A fully connected layer, `x W^T + b`, with the checkpoint's tensor names (`weight` of
/// shape `[out, in]`, optional `bias`). Like `candle_nn::Linear`, but the bias is added by
/// a fused op whose backward sums the gradient's columns in one pass.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer from existing tensors.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The `[out, in]` weight.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The `[out]` bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `N` layers computing consecutive equal blocks of this layer's outputs, as views of
    /// its tensors (gradients reach the originals): a fused projection such as ViT's `qkv`
    /// run as `N` separate ones.
    pub fn split_outputs<const N: usize>(&self) -> Result<[Linear; N]> {
        let out = self.weight.dim(0)?;
        if N == 0 || out % N != 0 {
            candle_core::bail!("cannot split {out} output features into {N} equal layers");
        }
        let part = out / N;
        let mut parts = Vec::with_capacity(N);
        for i in 0..N {
            let weight = self.weight.narrow(0, i * part, part)?;
            let bias = self
                .bias
                .as_ref()
                .map(|b| b.narrow(0, i * part, part))
                .transpose()?;
            parts.push(Linear::new(weight, bias));
        }
        parts
            .try_into()
            .map_err(|_| candle_core::Error::Msg("split_outputs: wrong part count".into()))
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.t()?;
        // A batch of rows is one matmul against the shared weight, never a broadcast one.
        let y = if x.rank() > 2 && x.is_contiguous() {
            let (lead, k) = x.dims().split_at(x.rank() - 1);
            let mut out_dims = lead.to_vec();
            out_dims.push(self.weight.dim(0)?);
            x.reshape((lead.iter().product::<usize>(), k[0]))?
                .matmul(&w)?
                .reshape(out_dims)?
        } else if x.rank() > 2 {
            x.broadcast_matmul(&w)?
        } else {
            x.matmul(&w)?
        };
        match &self.bias {
            Some(b) => sdvp_kernels::bias_add(&y, b),
            None => Ok(y),
        }
    }
}

/// A [`Linear`] read from `vb` (`weight` of shape `[out, in]`, optional `bias`), with
/// PyTorch's default initialisation when the builder creates the variables.
pub fn linear(vb: VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
    let l = if bias {
        candle_nn::linear(in_dim, out_dim, vb)?
    } else {
        candle_nn::linear_no_bias(in_dim, out_dim, vb)?
    };
    Ok(Linear::new(l.weight().clone(), l.bias().cloned()))
}

/// Multi-head attention on token-major tensors, as the projections produce them: `q`
/// `[b, q_len, heads · head_dim]`, `k` and `v` `[b, k_len, heads · head_dim]`; returns
/// `[b, q_len, heads · head_dim]` for the output projection. `mask` is additive and
/// broadcasts to `[b, heads, q_len, k_len]`. Fused for f32 on the CPU (no head
/// transposes are materialised, forward or backward).
pub fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    sdvp_kernels::attention(q, k, v, mask, heads, scale)
}

/// Scaled dot-product attention for `[batch, heads, seq, head_dim]` tensors (grouped
/// heads, as Llama's, come in this layout).
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
    let scores = q.contiguous()?.matmul(&k.t()?.contiguous()?)?;
    sdvp_kernels::masked_softmax_last_dim(&scores, mask, scale)?.matmul(&v.contiguous()?)
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
