//! A branch-free `exp` that the compiler vectorises: libm's `expf` is a scalar call per
//! element and dominated softmax and GELU.

/// `e^x` to about 2 ulp (Cephes' `expf` polynomial after range reduction by `ln 2`);
/// exactly 0 below -87.3 (including `-inf`), `+inf` above 88.7.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n · ln2 is exact in the reduction.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let c = x.clamp(-87.3, 88.7);
    // floor(c · log2 e + 0.5) by truncating a positive value: `floor` is a library call
    // on baseline x86-64 (no SSE4.1) and would keep the loop scalar. `as i32` would too:
    // its saturating, NaN-checking conversion is scalar code per lane.
    let t = c * LOG2E + 0.5 + 128.0;
    let t = if t.is_nan() { 128.0 } else { t };
    // SAFETY: `t` is finite and in [2.5, 256.5] (c is clamped, NaN replaced), so it fits.
    let ni = unsafe { t.to_int_unchecked::<i32>() } - 128;
    let n = ni as f32;
    let r = c - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    let scaled = y * f32::from_bits(((ni + 127) as u32) << 23);
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        scaled
    }
}

#[cfg(test)]
mod tests {
    /// The formula as first written, with Rust's saturating `as` conversions.
    fn exp_with_saturating_casts(x: f32) -> f32 {
        let c = x.clamp(-87.3, 88.7);
        let n = ((c * std::f32::consts::LOG2_E + 0.5 + 128.0) as i32 - 128) as f32;
        let r = c - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
            * r
            + 1.666_666_5e-1)
            * r
            + 0.5;
        let y = p * r * r + r + 1.0;
        let scaled = y * f32::from_bits(((n as i32 + 127) as u32) << 23);
        if x < -87.3 {
            0.0
        } else if x > 88.7 {
            f32::INFINITY
        } else {
            scaled
        }
    }

    #[test]
    fn unchecked_conversion_changes_no_bit() {
        // Every 4099th f32 bit pattern (both signs, subnormals, infinities, NaNs) and a
        // dense sweep of the range that is neither 0 nor inf.
        let mut checked = 0usize;
        let mut bits = 0u32;
        loop {
            let x = f32::from_bits(bits);
            let (a, b) = (super::exp(x), exp_with_saturating_casts(x));
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "exp({x:e}): {a:e} vs {b:e}"
            );
            checked += 1;
            match bits.checked_add(4099) {
                Some(b) => bits = b,
                None => break,
            }
        }
        let mut x = -90.0f32;
        while x < 90.0 {
            assert_eq!(
                super::exp(x).to_bits(),
                exp_with_saturating_casts(x).to_bits(),
                "exp({x})"
            );
            x += 1.0e-4;
            checked += 1;
        }
        assert!(checked > 2_500_000, "{checked}");
    }

    #[test]
    fn matches_std_exp_to_a_few_ulp() {
        let mut checked = 0;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (super::exp(x), x.exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}) = {a}, std {b}");
            x += 0.0137;
            checked += 1;
        }
        assert!(checked > 12_000);
        assert_eq!(super::exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp(-1e9), 0.0);
        assert_eq!(super::exp(0.0), 1.0);
        assert_eq!(super::exp(100.0), f32::INFINITY);
    }
}
