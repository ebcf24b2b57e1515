//! Softmax over the last dimension, plain and as attention uses it (`x * scale + mask`).

use crate::reference;
use crate::rows::{for_row_blocks, same_len, slice};
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Softmax over the last dimension. A row whose entries are all `-inf` gives zeros.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !crate::fused(x) || x.rank() == 0 || x.elem_count() == 0 {
        return reference::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1(ScaledSoftmax { scale: 1.0 })
}

/// `softmax(x * scale + mask)` over the last dimension, with an additive `mask` that
/// broadcasts to `x` (0 to keep, a large negative value to drop). The mask is a constant:
/// it receives no gradient.
pub fn masked_softmax_last_dim(x: &Tensor, mask: Option<&Tensor>, scale: f64) -> Result<Tensor> {
    let Some(mask) = mask else {
        if scale == 1.0 {
            return softmax_last_dim(x);
        }
        if !crate::fused(x) || x.rank() == 0 || x.elem_count() == 0 {
            return reference::masked_softmax_last_dim(x, None, scale);
        }
        return x.contiguous()?.apply_op1(ScaledSoftmax {
            scale: scale as f32,
        });
    };
    if !crate::fused(x) || x.rank() == 0 || x.elem_count() == 0 || mask.dtype() != DType::F32 {
        return reference::masked_softmax_last_dim(x, Some(mask), scale);
    }
    let mask = mask.broadcast_as(x.shape())?;
    x.contiguous()?.apply_op2(
        &mask,
        MaskedSoftmax {
            scale: scale as f32,
        },
    )
}

/// Softmax of one row in place.
#[inline(always)]
pub(crate) fn softmax_row(y: &mut [f32]) {
    let max = crate::rows::max(y);
    if max == f32::NEG_INFINITY {
        y.fill(0.0);
        return;
    }
    for v in y.iter_mut() {
        *v = crate::exp::exp(*v - max);
    }
    let inv = 1.0 / crate::rows::sum(y);
    for v in y.iter_mut() {
        *v *= inv;
    }
}

fn forward(x: &[f32], n: usize, scale: f32, mask: Option<(&[f32], &Layout)>) -> Vec<f32> {
    let mut out = x.to_vec();
    for_row_blocks(
        &mut out,
        n,
        #[inline(always)]
        |row0, block| {
            for (j, y) in block.chunks_mut(n).enumerate() {
                if scale != 1.0 {
                    y.iter_mut().for_each(|v| *v *= scale);
                }
                if let Some((m, l)) = mask {
                    let (at, step) = mask_row(row0 + j, l);
                    for (i, v) in y.iter_mut().enumerate() {
                        *v += m[at + i * step];
                    }
                }
                softmax_row(y);
            }
        },
    );
    out
}

/// Start offset and element step of row `r` of a (broadcast, strided) mask layout.
fn mask_row(r: usize, l: &Layout) -> (usize, usize) {
    let (dims, strides) = (l.dims(), l.stride());
    let last = dims.len() - 1;
    let (mut rest, mut at) = (r, l.start_offset());
    for d in (0..last).rev() {
        at += (rest % dims[d]) * strides[d];
        rest /= dims[d];
    }
    (at, strides[last])
}

fn backward(y: &Tensor, grad: &Tensor, scale: f32) -> Result<Tensor> {
    y.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward { scale })
}

/// Softmax of `x · scale` (no multiply when the scale is 1).
struct ScaledSoftmax {
    scale: f32,
}

impl CustomOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "sdvp-scaled-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = l.dims()[l.dims().len() - 1];
        Ok((
            CpuStorage::F32(forward(x, n, self.scale, None)),
            l.shape().clone(),
        ))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(backward(y, grad, self.scale)?))
    }
}

struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "sdvp-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let CpuStorage::F32(mask) = s2 else {
            bail!(
                "{}: expected an f32 mask, got {:?}",
                self.name(),
                s2.dtype()
            )
        };
        if l2.dims() != l1.dims() {
            bail!(
                "{}: mask {:?} for scores {:?}",
                self.name(),
                l2.dims(),
                l1.dims()
            )
        }
        let n = l1.dims()[l1.dims().len() - 1];
        Ok((
            CpuStorage::F32(forward(x, n, self.scale, Some((mask, l2)))),
            l1.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _mask: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(backward(y, grad, self.scale)?), None))
    }
}

/// `dx = scale * y * (g - sum(g * y))` per row, from the softmax output `y`.
struct SoftmaxBackward {
    scale: f32,
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "sdvp-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        same_len(y, g, self.name())?;
        let n = l1.dims()[l1.dims().len() - 1];
        let mut out = vec![0f32; y.len()];
        for_row_blocks(
            &mut out,
            n,
            #[inline(always)]
            |row0, block| {
                for (j, dx) in block.chunks_mut(n).enumerate() {
                    let at = (row0 + j) * n;
                    let (yr, gr) = (&y[at..at + n], &g[at..at + n]);
                    let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    for i in 0..n {
                        dx[i] = self.scale * yr[i] * (gr[i] - dot);
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
