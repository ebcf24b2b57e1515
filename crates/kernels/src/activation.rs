//! Element-wise activations: exact GELU and CLIP's quick GELU.

use crate::reference;
use crate::rows::{for_chunks, slice};
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

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

/// The error function by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, about
/// one f32 ulp near 1): one `exp` and one division, where libm's `erff` is several times
/// slower and dominated the GELU's cost.
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-a * a).exp();
    y.copysign(x)
}

/// `0.5 (1 + tanh(x / 2))`: finite for every finite input.
fn sigmoid(x: f32) -> f32 {
    0.5 * (1.0 + (0.5 * x).tanh())
}

impl Activation {
    fn value(self, x: f32) -> f32 {
        match self {
            Self::Gelu => 0.5 * x * (1.0 + erf(x * INV_SQRT_2)),
            Self::QuickGelu => x * sigmoid(1.702 * x),
        }
    }

    fn derivative(self, x: f32) -> f32 {
        match self {
            Self::Gelu => {
                let cdf = 0.5 * (1.0 + erf(x * INV_SQRT_2));
                cdf + x * (-0.5 * x * x).exp() * INV_SQRT_2PI
            }
            Self::QuickGelu => {
                let s = sigmoid(1.702 * x);
                s + 1.702 * x * s * (1.0 - s)
            }
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
        for_chunks(&mut out, |at, y| {
            for (o, &v) in y.iter_mut().zip(&x[at..]) {
                *o = self.value(v);
            }
        });
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
        if x.len() != g.len() {
            bail!(
                "{}: gradient has {} elements for {}",
                self.name(),
                g.len(),
                x.len()
            )
        }
        let mut out = vec![0f32; x.len()];
        for_chunks(&mut out, |at, dx| {
            for ((o, &v), &gv) in dx.iter_mut().zip(&x[at..]).zip(&g[at..]) {
                *o = gv * self.0.derivative(v);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
