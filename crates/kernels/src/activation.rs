//! Element-wise activations: exact GELU and CLIP's quick GELU.

use crate::exp::exp;
use crate::reference;
use crate::rows::{for_chunks, same_len, slice};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default `gelu`).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if !crate::fused(x) {
        return reference::gelu_erf(x);
    }
    x.contiguous()?.apply_op1(Activation::Gelu)
}

/// CLIP's `quick_gelu`, `x * sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if !crate::fused(x) {
        return reference::quick_gelu(x);
    }
    x.contiguous()?.apply_op1(Activation::QuickGelu)
}

const INV_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[derive(Clone, Copy)]
enum Activation {
    Gelu,
    QuickGelu,
}

/// The standard normal CDF and density at `x`, sharing one `exp`: the CDF by
/// Abramowitz & Stegun 7.1.26 for `erf` (absolute error below 1.5e-7, about one f32 ulp
/// near 1), whose `exp(-a²)` at `a = x / sqrt 2` is the density's `exp(-x² / 2)`.
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    let e = exp(-0.5 * x * x);
    let a = x.abs() * INV_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf = (1.0 - poly * e).copysign(x);
    (0.5 * (1.0 + erf), e * INV_SQRT_2PI)
}

/// The logistic function `1 / (1 + e^-x)`; `exp` saturates to 0 or `inf` cleanly, so
/// the result is in [0, 1] for every input.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    x * normal_cdf_pdf(x).0
}

#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    let (cdf, pdf) = normal_cdf_pdf(x);
    cdf + x * pdf
}

#[inline(always)]
fn quick_gelu_value(x: f32) -> f32 {
    x * sigmoid(1.702 * x)
}

#[inline(always)]
fn quick_gelu_derivative(x: f32) -> f32 {
    let s = sigmoid(1.702 * x);
    s + 1.702 * x * s * (1.0 - s)
}

/// `out[i] = f(x[i]) · g[i]` (or `f(x[i])` without `g`) in parallel chunks. Generic, so
/// that each activation gets its own loop, which the compiler vectorises.
fn map_into(out: &mut [f32], x: &[f32], g: Option<&[f32]>, f: impl Fn(f32) -> f32 + Sync) {
    for_chunks(
        out,
        #[inline(always)]
        |at, o| match g {
            Some(g) => {
                for ((o, &v), &gv) in o.iter_mut().zip(&x[at..]).zip(&g[at..]) {
                    *o = gv * f(v);
                }
            }
            None => {
                for (o, &v) in o.iter_mut().zip(&x[at..]) {
                    *o = f(v);
                }
            }
        },
    );
}

impl Activation {
    /// `f(x)`, or `g · f'(x)` with a gradient.
    fn apply(self, out: &mut [f32], x: &[f32], g: Option<&[f32]>) {
        match (self, g.is_some()) {
            (Self::Gelu, false) => map_into(out, x, g, gelu),
            (Self::Gelu, true) => map_into(out, x, g, gelu_derivative),
            (Self::QuickGelu, false) => map_into(out, x, g, quick_gelu_value),
            (Self::QuickGelu, true) => map_into(out, x, g, quick_gelu_derivative),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Gelu => "sdvp-gelu",
            Self::QuickGelu => "sdvp-quick-gelu",
        }
    }
}

impl CustomOp1 for Activation {
    fn name(&self) -> &'static str {
        self.label()
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let mut out = vec![0f32; x.len()];
        self.apply(&mut out, x, None);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = x.apply_op2_no_bwd(&grad.contiguous()?, &ActivationBackward(*self))?;
        Ok(Some(dx))
    }
}

/// `dx = g * f'(x)`.
struct ActivationBackward(Activation);

impl CustomOp2 for ActivationBackward {
    fn name(&self) -> &'static str {
        "sdvp-activation-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        same_len(x, g, self.name())?;
        let mut out = vec![0f32; x.len()];
        self.0.apply(&mut out, x, Some(g));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
