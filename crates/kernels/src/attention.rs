//! Multi-head scaled dot-product attention on token-major tensors, `[batch, tokens,
//! heads · head_dim]` as the projections produce them: no head transposes are
//! materialised, forward or backward. Each (batch, head) pair is two small gemms forward
//! and five backward (the probabilities are recomputed rather than kept).

use crate::reference;
use crate::rows::{same_len, slice, wide};
use crate::softmax::softmax_row;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// `softmax(q kᵀ · scale + mask) v` per head, for `q` `[b, q_len, d]`, `k` and `v`
/// `[b, k_len, d]`, `d = heads · head_dim`; returns `[b, q_len, d]` (the heads side by
/// side, ready for the output projection). `mask` is additive and broadcasts to
/// `[b, heads, q_len, k_len]`; it is a constant (no gradient). A query whose keys are
/// all `-inf` attends to nothing (zeros).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let (b, sq, d) = q.dims3()?;
    let (bk, sk, dk) = k.dims3()?;
    if bk != b || dk != d || v.dims() != k.dims() || heads == 0 || !d.is_multiple_of(heads) {
        bail!(
            "attention: q {:?}, k {:?}, v {:?} do not fit {heads} heads",
            q.dims(),
            k.dims(),
            v.dims()
        )
    }
    let fused = crate::fused(q)
        && crate::fused(k)
        && crate::fused(v)
        && mask.is_none_or(|m| m.dtype() == DType::F32)
        && b * sq * sk > 0;
    if !fused {
        return reference::attention(q, k, v, mask, heads, scale);
    }
    let mask = mask
        .map(|m| m.broadcast_as((b, heads, sq, sk)))
        .transpose()?;
    let op = Attention {
        dims: Dims {
            b,
            sq,
            sk,
            d,
            heads,
        },
        scale: scale as f32,
        mask,
    };
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    sq: usize,
    sk: usize,
    d: usize,
    heads: usize,
}

impl Dims {
    fn hd(&self) -> usize {
        self.d / self.heads
    }

    /// The elements of `q`, `k` and `v`, checked against these dimensions.
    fn inputs<'a>(
        &self,
        (s1, l1): (&'a CpuStorage, &Layout),
        (s2, l2): (&'a CpuStorage, &Layout),
        (s3, l3): (&'a CpuStorage, &Layout),
        op: &str,
    ) -> Result<(&'a [f32], &'a [f32], &'a [f32])> {
        let (q, k, v) = (slice(s1, l1, op)?, slice(s2, l2, op)?, slice(s3, l3, op)?);
        let (nq, nk) = (self.b * self.sq * self.d, self.b * self.sk * self.d);
        if q.len() != nq || k.len() != nk || v.len() != nk {
            bail!(
                "{op}: buffers of {}, {}, {} elements for {nq}, {nk}, {nk}",
                q.len(),
                k.len(),
                v.len()
            )
        }
        Ok((q, k, v))
    }
}

/// A raw pointer that rayon tasks may share: each task writes a disjoint set of
/// elements (its own batch row and head columns).
#[derive(Clone, Copy)]
struct Out(*mut f32);
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer; a method, so that closures capture the whole (`Send`) wrapper.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// The mask's f32 elements and layout, if there is a mask.
fn with_mask<R>(
    mask: &Option<Tensor>,
    f: impl FnOnce(Option<(&[f32], &Layout)>) -> Result<R>,
) -> Result<R> {
    match mask {
        None => f(None),
        Some(m) => {
            let (storage, layout) = m.storage_and_layout();
            match &*storage {
                Storage::Cpu(CpuStorage::F32(data)) => f(Some((data.as_slice(), layout))),
                _ => bail!("attention: the mask must be an f32 CPU tensor"),
            }
        }
    }
}

/// `dst[m, n] = beta · lhs[m, k] · rhs[k, n]`, each operand given by pointer and (row,
/// column) strides.
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    beta: f32,
) {
    gemm(
        m,
        n,
        k,
        dst.0,
        dst.2 as isize,
        dst.1 as isize,
        false,
        lhs.0,
        lhs.2 as isize,
        lhs.1 as isize,
        rhs.0,
        rhs.2 as isize,
        rhs.1 as isize,
        0.0,
        beta,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// The attention probabilities `[sq, sk]` of pair (`bi`, `hi`) into `p`.
fn probabilities(
    dm: Dims,
    scale: f32,
    (q, k): (&[f32], &[f32]),
    mask: Option<(&[f32], &Layout)>,
    (bi, hi): (usize, usize),
    p: &mut [f32],
) {
    let (sq, sk, d, hd) = (dm.sq, dm.sk, dm.d, dm.hd());
    // SAFETY: q is [b, sq, d] and k [b, sk, d] (checked); the pair's head columns
    // hi·hd..(hi+1)·hd of its batch row stay inside them, and p holds sq·sk.
    unsafe {
        matmul(
            (sq, sk, hd),
            (p.as_mut_ptr(), sk, 1),
            (q.as_ptr().add(bi * sq * d + hi * hd), d, 1),
            (k.as_ptr().add(bi * sk * d + hi * hd), 1, d),
            scale,
        );
    }
    wide(
        #[inline(always)]
        || {
            for (i, row) in p.chunks_mut(sk).enumerate() {
                if let Some((m, l)) = mask {
                    let s = l.stride();
                    let at = l.start_offset() + bi * s[0] + hi * s[1] + i * s[2];
                    for (j, x) in row.iter_mut().enumerate() {
                        *x += m[at + j * s[3]];
                    }
                }
                softmax_row(row);
            }
        },
    );
}

struct Attention {
    dims: Dims,
    scale: f32,
    mask: Option<Tensor>,
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "sdvp-attention"
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
        let dm = self.dims;
        let (q, k, v) = dm.inputs((s1, l1), (s2, l2), (s3, l3), name)?;
        let (sq, sk, d, hd) = (dm.sq, dm.sk, dm.d, dm.hd());
        let mut out = vec![0f32; dm.b * sq * d];
        let dst = Out(out.as_mut_ptr());
        with_mask(&self.mask, |mask| {
            (0..dm.b * dm.heads).into_par_iter().for_each_init(
                || vec![0f32; sq * sk],
                |p, pair| {
                    let (bi, hi) = (pair / dm.heads, pair % dm.heads);
                    probabilities(dm, self.scale, (q, k), mask, (bi, hi), p);
                    // SAFETY: out is [b, sq, d]; this pair alone writes its head columns.
                    unsafe {
                        matmul(
                            (sq, hd, sk),
                            (dst.ptr().add(bi * sq * d + hi * hd), d, 1),
                            (p.as_ptr(), sk, 1),
                            (v.as_ptr().add(bi * sk * d + hi * hd), d, 1),
                            1.0,
                        );
                    }
                },
            );
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let back = AttentionBackward {
            dims: self.dims,
            scale: self.scale,
            mask: self.mask.clone(),
            grad: grad.contiguous()?,
        };
        let flat = q.apply_op3_no_bwd(k, v, &back)?;
        let (nq, nk) = (q.elem_count(), k.elem_count());
        let dq = flat.narrow(0, 0, nq)?.reshape(q.shape())?;
        let dk = flat.narrow(0, nq, nk)?.reshape(k.shape())?;
        let dv = flat.narrow(0, nq + nk, nk)?.reshape(v.shape())?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// The gradients of [`Attention`] for the output gradient `grad`, as one flat buffer:
/// `dq`, then `dk`, then `dv`.
struct AttentionBackward {
    dims: Dims,
    scale: f32,
    mask: Option<Tensor>,
    grad: Tensor,
}

impl CustomOp3 for AttentionBackward {
    fn name(&self) -> &'static str {
        "sdvp-attention-backward"
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
        let dm = self.dims;
        let (q, k, v) = dm.inputs((s1, l1), (s2, l2), (s3, l3), name)?;
        let (sq, sk, d, hd) = (dm.sq, dm.sk, dm.d, dm.hd());
        let (gs, gl) = self.grad.storage_and_layout();
        let Storage::Cpu(gs) = &*gs else {
            bail!("{name}: the gradient must be a CPU tensor")
        };
        let g = slice(gs, gl, name)?;
        same_len(q, g, name)?;
        let (nq, nk) = (q.len(), k.len());
        let mut out = vec![0f32; nq + 2 * nk];
        let base = Out(out.as_mut_ptr());
        with_mask(&self.mask, |mask| {
            (0..dm.b * dm.heads).into_par_iter().for_each_init(
                || (vec![0f32; sq * sk], vec![0f32; sq * sk]),
                |(p, ds), pair| {
                    let (bi, hi) = (pair / dm.heads, pair % dm.heads);
                    probabilities(dm, self.scale, (q, k), mask, (bi, hi), p);
                    let (qo, ko) = (bi * sq * d + hi * hd, bi * sk * d + hi * hd);
                    // SAFETY: the three gradients are [b, sq, d], [b, sk, d], [b, sk, d]
                    // back to back in `out`; this pair alone writes its head columns of
                    // its batch row in each. The inputs are checked to those shapes.
                    unsafe {
                        let (dq, dk, dv) =
                            (base.ptr(), base.ptr().add(nq), base.ptr().add(nq + nk));
                        // dP = dO Vᵀ
                        matmul(
                            (sq, sk, hd),
                            (ds.as_mut_ptr(), sk, 1),
                            (g.as_ptr().add(qo), d, 1),
                            (v.as_ptr().add(ko), 1, d),
                            1.0,
                        );
                        // dV = Pᵀ dO
                        matmul(
                            (sk, hd, sq),
                            (dv.add(ko), d, 1),
                            (p.as_ptr(), 1, sk),
                            (g.as_ptr().add(qo), d, 1),
                            1.0,
                        );
                        // dS = P ⊙ (dP - rowsum(dP ⊙ P)) · scale
                        for (pr, dr) in p.chunks(sk).zip(ds.chunks_mut(sk)) {
                            let dot: f32 = pr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                            for (x, &pv) in dr.iter_mut().zip(pr) {
                                *x = pv * (*x - dot) * self.scale;
                            }
                        }
                        // dQ = dS K, dK = dSᵀ Q
                        matmul(
                            (sq, hd, sk),
                            (dq.add(qo), d, 1),
                            (ds.as_ptr(), sk, 1),
                            (k.as_ptr().add(ko), d, 1),
                            1.0,
                        );
                        matmul(
                            (sk, hd, sq),
                            (dk.add(ko), d, 1),
                            (ds.as_ptr(), 1, sk),
                            (q.as_ptr().add(qo), d, 1),
                            1.0,
                        );
                    }
                },
            );
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from(nq + 2 * nk)))
    }
}
