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
    // on baseline x86-64 (no SSE4.1) and would keep the loop scalar.
    let n = ((c * LOG2E + 0.5 + 128.0) as i32 - 128) as f32;
    let r = c - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
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

#[cfg(test)]
mod tests {
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
