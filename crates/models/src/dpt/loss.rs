//! Differentiable depth losses and the conversion of rendered depth into their targets.

use candle_core::{DType, Result, Tensor};

fn check_same(what: &str, pred: &Tensor, other: &Tensor) -> Result<()> {
    if pred.dims() != other.dims() {
        candle_core::bail!(
            "{what}: shape {:?} does not match predicted_depth {:?}",
            other.dims(),
            pred.dims()
        );
    }
    Ok(())
}

/// Added to the determinant of the per-image least-squares system of [`ssi_loss`], so
/// that a constant prediction (e.g. an all-zero map after the final ReLU) stays finite.
pub const SSI_EPS: f64 = 1e-6;

/// Scale-and-shift-invariant MSE (MiDaS, Ranftl et al. 2020, without its gradient-matching
/// term): per image, the scale `s` and shift `t` minimising `Σ m (s·p + t − y)²` are
/// solved in closed form (and differentiated through), then
/// `loss = Σ_images Σ m (s·p + t − y)² / (2 Σ m)`.
///
/// `pred`, `target` and the 0/1 `mask` are `[b, h, w]`; targets are inverse depth like
/// DPT's output (see [`inverse_depth`]), in any scale and offset. Masked-out pixels
/// (mask 0) do not count; every image should keep at least two distinct valid pixels.
pub fn ssi_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check_same("target", pred, target)?;
    check_same("mask", pred, mask)?;
    let m = mask.to_dtype(pred.dtype())?;
    let t = target.to_dtype(pred.dtype())?;
    let sum = |x: &Tensor| x.sum_keepdim(2)?.sum_keepdim(1);
    let mp = (&m * pred)?;
    let a00 = sum(&(&mp * pred)?)?;
    let a01 = sum(&mp)?;
    let a11 = sum(&m)?;
    let b0 = sum(&(&mp * &t)?)?;
    let b1 = sum(&(&m * &t)?)?;
    let det = ((&a00 * &a11)? - a01.sqr()?)? + SSI_EPS;
    let det = det?;
    let scale = ((&a11 * &b0)? - (&a01 * &b1)?)?.div(&det)?;
    let shift = ((&a00 * &b1)? - (&a01 * &b0)?)?.div(&det)?;
    let res = pred.broadcast_mul(&scale)?.broadcast_add(&shift)?.sub(&t)?;
    let total = (&m * res.sqr()?)?.sum_all()?;
    total / (m.sum_all()?.to_scalar_f64()? * 2.0).max(f64::MIN_POSITIVE)
}

/// Mean absolute error over the mask: for targets in the checkpoint's own units.
pub fn l1_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check_same("target", pred, target)?;
    check_same("mask", pred, mask)?;
    let m = mask.to_dtype(pred.dtype())?;
    let err = (pred - target.to_dtype(pred.dtype())?)?.abs()?;
    (m.clone() * err)?.sum_all()? / m.sum_all()?.to_scalar_f64()?.max(f64::MIN_POSITIVE)
}

/// `(1 / depth, mask)` where `depth > 0` and finite, `(0, 0)` elsewhere: converts a
/// rendered depth map (distance) into the inverse-depth targets of the losses.
pub fn inverse_depth(depth: &Tensor) -> Result<(Tensor, Tensor)> {
    let d = depth
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let ok = |v: f32| v > 0.0 && v.is_finite();
    let inv: Vec<f32> = d
        .iter()
        .map(|&v| if ok(v) { 1.0 / v } else { 0.0 })
        .collect();
    let mask: Vec<f32> = d.iter().map(|&v| f32::from(ok(v))).collect();
    let dev = depth.device();
    Ok((
        Tensor::from_vec(inv, depth.dims(), dev)?.to_dtype(depth.dtype())?,
        Tensor::from_vec(mask, depth.dims(), dev)?.to_dtype(depth.dtype())?,
    ))
}

trait ScalarF64 {
    fn to_scalar_f64(&self) -> Result<f64>;
}

impl ScalarF64 for Tensor {
    fn to_scalar_f64(&self) -> Result<f64> {
        self.to_dtype(DType::F64)?.to_scalar::<f64>()
    }
}
