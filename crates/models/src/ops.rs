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
