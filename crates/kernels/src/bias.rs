//! Bias addition over the last dimension, whose backward sums the gradient's columns in
//! one pass (candle reduces a broadcast gradient with a strided, element-at-a-time sum).

use crate::rows::{add_in_order, for_row_blocks, map_row_blocks, slice, whole_rows};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// `x + bias` with `bias` of the last dimension's length, broadcast over the rest.
pub fn bias_add(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let n = x.dim(D::Minus1)?;
    if !crate::fused(x) || bias.dtype() != DType::F32 || bias.dims() != [n] || n == 0 {
        return x.broadcast_add(bias);
    }
    x.contiguous()?.apply_op2(&bias.contiguous()?, BiasAdd)
}

struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "sdvp-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let n = b.len();
        whole_rows(x.len(), n, self.name())?;
        let mut out = vec![0f32; x.len()];
        for_row_blocks(
            &mut out,
            n,
            #[inline(always)]
            |row0, block| {
                let src = &x[row0 * n..];
                for (row, xr) in block.chunks_mut(n).zip(src.chunks(n)) {
                    for ((o, &xv), &bv) in row.iter_mut().zip(xr).zip(b) {
                        *o = xv + bv;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = grad
            .contiguous()?
            .apply_op1_no_bwd(&ColumnSum { n: b.elem_count() })?;
        Ok((Some(grad.clone()), Some(db)))
    }
}

/// The sum of the rows of a contiguous buffer of rows of `n`: fixed row blocks summed in
/// parallel, then the block sums added in block order.
struct ColumnSum {
    n: usize,
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "sdvp-column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = slice(s, l, self.name())?;
        let n = self.n;
        whole_rows(g.len(), n, self.name())?;
        let partials = map_row_blocks(
            g,
            n,
            #[inline(always)]
            |rows| {
                let mut acc = vec![0f32; n];
                for row in rows.chunks(n) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                acc
            },
        );
        let mut out = vec![0f32; n];
        add_in_order(&mut out, partials);
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}
