//! Layer normalisation over the last dimension, one pass per row each way.

use crate::reference;
use crate::rows::{add_in_order, for_row_blocks, same_len, slice, whole_rows};
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last dimension (biased
/// variance, as PyTorch), for `weight` and `bias` of that dimension's length.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let n = x.dim(D::Minus1)?;
    let fits = crate::fused(x)
        && weight.dtype() == DType::F32
        && bias.dtype() == DType::F32
        && weight.dims() == [n]
        && bias.dims() == [n]
        && n > 0;
    if !fits {
        return reference::layer_norm(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

/// Mean and reciprocal standard deviation of a row.
fn stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

struct LayerNorm {
    eps: f32,
}

fn check(x: &[f32], n: usize, b: usize, op: &str) -> Result<()> {
    whole_rows(x.len(), n, op)?;
    if b != n {
        bail!("{op}: bias of {b} elements for rows of {n}")
    }
    Ok(())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "sdvp-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (x, w, b) = (
            slice(s1, l1, name)?,
            slice(s2, l2, name)?,
            slice(s3, l3, name)?,
        );
        let n = w.len();
        check(x, n, b.len(), name)?;
        let mut out = vec![0f32; x.len()];
        for_row_blocks(
            &mut out,
            n,
            #[inline(always)]
            |row0, block| {
                for (j, y) in block.chunks_mut(n).enumerate() {
                    let xr = &x[(row0 + j) * n..][..n];
                    let (mean, rstd) = stats(xr, self.eps);
                    // Iterators, not indices: without bounds checks the loop vectorises.
                    for (((y, &xv), &wv), &bv) in y.iter_mut().zip(xr).zip(w).zip(b) {
                        *y = (xv - mean) * rstd * wv + bv;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (total, n) = (x.elem_count(), w.elem_count());
        let flat =
            x.apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormBackward { eps: self.eps })?;
        let dx = flat.narrow(0, 0, total)?.reshape(x.shape())?;
        let dw = flat.narrow(0, total, n)?;
        let db = flat.narrow(0, total + n, n)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// Gradients of the layer norm, as one flat buffer: `dx` (the input's elements), then
/// `dweight`, then `dbias`.
struct LayerNormBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "sdvp-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (x, w, g) = (
            slice(s1, l1, name)?,
            slice(s2, l2, name)?,
            slice(s3, l3, name)?,
        );
        let n = w.len();
        check(x, n, n, name)?;
        same_len(x, g, name)?;
        let total = x.len();
        let mut out = vec![0f32; total + 2 * n];
        let (dx, wb) = out.split_at_mut(total);
        let partials = for_row_blocks(
            dx,
            n,
            #[inline(always)]
            |row0, block| {
                let mut acc = vec![0f32; 2 * n];
                let mut xhat = vec![0f32; n];
                for (j, dxr) in block.chunks_mut(n).enumerate() {
                    let at = (row0 + j) * n;
                    let (xr, gr) = (&x[at..at + n], &g[at..at + n]);
                    let (mean, rstd) = stats(xr, self.eps);
                    for (h, &xv) in xhat.iter_mut().zip(xr) {
                        *h = (xv - mean) * rstd;
                    }
                    // The two sums stay serial, in index order (as they were first written).
                    let (mut sum_gw, mut sum_gw_xhat) = (0f32, 0f32);
                    for ((&gv, &wv), &h) in gr.iter().zip(w).zip(xhat.iter()) {
                        let gw = gv * wv;
                        sum_gw += gw;
                        sum_gw_xhat += gw * h;
                    }
                    let (a, c) = (sum_gw / n as f32, sum_gw_xhat / n as f32);
                    let (dw, db) = acc.split_at_mut(n);
                    for (((((d, &gv), &wv), &h), dwv), dbv) in dxr
                        .iter_mut()
                        .zip(gr)
                        .zip(w)
                        .zip(xhat.iter())
                        .zip(dw.iter_mut())
                        .zip(db.iter_mut())
                    {
                        *d = rstd * (gv * wv - a - h * c);
                        *dwv += gv * h;
                        *dbv += gv;
                    }
                }
                acc
            },
        );
        add_in_order(wb, partials);
        Ok((CpuStorage::F32(out), Shape::from(total + 2 * n)))
    }
}
