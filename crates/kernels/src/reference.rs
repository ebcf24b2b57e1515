//! The same functions written with elementary candle ops, every one of which has a
//! backward pass: the fallback for dtypes and devices the fused kernels do not cover,
//! and the yardstick the tests hold the fused kernels to.

use candle_core::{DType, Result, Tensor, D};

/// Layer normalisation over the last dimension, `(x - mean) / sqrt(var + eps) * w + b`,
/// with the biased variance as in PyTorch. Half-precision inputs are promoted to f32 for
/// the statistics so that the mean of squares does not overflow, then cast back.
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

/// Softmax over the last dimension. The row maximum is subtracted first and detached:
/// softmax is invariant to that shift, so its gradient contribution is exactly zero.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

/// `softmax(x * scale + mask)` over the last dimension; `mask` broadcasts to `x`.
pub fn masked_softmax_last_dim(x: &Tensor, mask: Option<&Tensor>, scale: f64) -> Result<Tensor> {
    let scaled = (x * scale)?;
    let scores = match mask {
        Some(m) => scaled.broadcast_add(m)?,
        None => scaled,
    };
    softmax_last_dim(&scores)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, built from `erf`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let inner = (x / std::f64::consts::SQRT_2)?.erf()?;
    x * ((inner + 1.0)? * 0.5)?
}

/// CLIP's `quick_gelu`: `x * sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    x * sigmoid(&(x * 1.702)?)?
}

/// Logistic sigmoid as `0.5 (1 + tanh(x / 2))`, finite with a finite gradient for any
/// finite input (the textbook form overflows `exp` below about -88 in f32).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    ((x * 0.5)?.tanh()? + 1.0)? * 0.5
}

/// Multi-head attention on token-major `[b, tokens, heads · head_dim]` tensors:
/// `softmax(q kᵀ · scale + mask) v` per head, heads side by side in the result.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let split = |x: &Tensor| -> Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        x.reshape((b, s, heads, d / heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (qh, kh, vh) = (split(q)?, split(k)?, split(v)?);
    let scores = qh.matmul(&kh.t()?.contiguous()?)?;
    let ctx = masked_softmax_last_dim(&scores, mask, scale)?.matmul(&vh)?;
    let (b, sq, d) = q.dims3()?;
    ctx.transpose(1, 2)?.reshape((b, sq, d))
}
