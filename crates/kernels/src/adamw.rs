//! One AdamW update in place: the moments and the parameter are rewritten where they
//! lie, with no temporaries (the elementary form allocates a dozen per parameter).

use crate::rows::{for_chunks, same_len, slice, slice_mut};
use candle_core::{bail, CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor, Var};

/// The numbers of one AdamW step for one parameter (PyTorch's `torch.optim.AdamW`).
#[derive(Clone, Copy, Debug)]
pub struct AdamWHyper {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay for this parameter (0 where it gets none).
    pub weight_decay: f64,
    /// The parameter's step number, counting this one (1 on the first update).
    pub step: u64,
}

/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g²`, then
/// `p = p (1 - lr wd) - lr / bc1 · m / (sqrt(v) / sqrt(bc2) + eps)`.
///
/// `m` and `v` must not share storage with each other or with anything else that must
/// keep its value: they are rewritten in place on the fused path (and replaced by new
/// tensors on the fallback). candle refuses a moment that shares the parameter's storage.
pub fn adamw_update(
    param: &Var,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    h: &AdamWHyper,
) -> Result<()> {
    let g = grad.detach().to_dtype(m.dtype())?;
    let fused = crate::fused(param.as_tensor())
        && crate::fused(m)
        && crate::fused(v)
        && g.dtype() == DType::F32
        && param.is_contiguous()
        && m.is_contiguous()
        && v.is_contiguous();
    if !fused {
        return fallback(param, &g, m, v, h);
    }
    let g = g.contiguous()?;
    m.inplace_op2(
        &g,
        &Moment {
            keep: h.beta1 as f32,
            square: false,
        },
    )?;
    v.inplace_op2(
        &g,
        &Moment {
            keep: h.beta2 as f32,
            square: true,
        },
    )?;
    let t = h.step.min(i32::MAX as u64) as i32;
    let (bc1, bc2) = (1.0 - h.beta1.powi(t), 1.0 - h.beta2.powi(t));
    param.as_tensor().inplace_op3(
        m,
        v,
        &Update {
            decay: (1.0 - h.lr * h.weight_decay) as f32,
            step_size: (h.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: h.eps as f32,
        },
    )
}

fn fallback(param: &Var, g: &Tensor, m: &mut Tensor, v: &mut Tensor, h: &AdamWHyper) -> Result<()> {
    let t = h.step.min(i32::MAX as u64) as i32;
    let new_m = ((&*m * h.beta1)? + (g * (1.0 - h.beta1))?)?;
    let new_v = ((&*v * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
    let (bc1, bc2) = (1.0 - h.beta1.powi(t), 1.0 - h.beta2.powi(t));
    let mut p = param.as_tensor().detach();
    if h.weight_decay != 0.0 {
        p = (p * (1.0 - h.lr * h.weight_decay))?;
    }
    let denom = ((new_v.sqrt()? / bc2.sqrt())? + h.eps)?;
    let p = (p - ((new_m.clone() / denom)? * (h.lr / bc1))?)?;
    param.set(&p)?;
    *m = new_m;
    *v = new_v;
    Ok(())
}

/// `s = keep · s + (1 - keep) · g` (or `g²`).
struct Moment {
    keep: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "sdvp-adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let name = self.name();
        let (s, g) = (slice_mut(s1, l1, name)?, slice(s2, l2, name)?);
        same_len(s, g, name)?;
        let (keep, take) = (self.keep, 1.0 - self.keep);
        for_chunks(
            s,
            #[inline(always)]
            |at, c| {
                for (o, &gv) in c.iter_mut().zip(&g[at..]) {
                    let x = if self.square { gv * gv } else { gv };
                    *o = keep * *o + take * x;
                }
            },
        );
        Ok(())
    }
}

struct Update {
    decay: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    eps: f32,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "sdvp-adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let name = self.name();
        let p = slice_mut(s1, l1, name)?;
        let (m, v) = (slice(s2, l2, name)?, slice(s3, l3, name)?);
        if m.len() != p.len() || v.len() != p.len() {
            bail!(
                "{name}: moments of {} and {} elements for {}",
                m.len(),
                v.len(),
                p.len()
            )
        }
        for_chunks(
            p,
            #[inline(always)]
            |at, c| {
                for ((o, &mv), &vv) in c.iter_mut().zip(&m[at..]).zip(&v[at..]) {
                    let denom = vv.sqrt() * self.inv_sqrt_bc2 + self.eps;
                    *o = *o * self.decay - mv / denom * self.step_size;
                }
            },
        );
        Ok(())
    }
}
