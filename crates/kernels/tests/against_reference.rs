//! The fused kernels against the elementary-op reference, forward and backward, and
//! against central finite differences.

use candle_core::{DType, Device, Result, Tensor, Var};
use sdvp_kernels::{reference, AdamWHyper};

/// Deterministic pseudo-random values in [-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed), shape, &Device::Cpu)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    assert_eq!(a.dims(), b.dims());
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

/// Max |fused - reference| over the output and the gradient of `sum(out * probe)`
/// with respect to every input, and the number of tensors compared.
fn compare(
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    refer: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<(f32, usize)> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (yf, yr) = (fused(&ts)?, refer(&ts)?);
    let probe = tensor(yf.dims(), 99)?;
    let mut worst = max_abs_diff(&yf, &yr)?;
    let mut compared = 1;
    let gf = (yf * &probe)?.sum_all()?.backward()?;
    let gr = (yr * &probe)?.sum_all()?.backward()?;
    for t in &ts {
        let (a, b) = (gf.get(t), gr.get(t));
        let (Some(a), Some(b)) = (a, b) else {
            panic!(
                "a gradient is missing: fused {}, reference {}",
                a.is_some(),
                b.is_some()
            )
        };
        worst = worst.max(max_abs_diff(a, b)?);
        compared += 1;
    }
    Ok((worst, compared))
}

#[test]
fn layer_norm_matches_the_reference_forward_and_backward() -> Result<()> {
    // Small (serial) and large (parallel, several row blocks) inputs.
    for (shape, seed) in [(vec![2, 3, 8], 1u64), (vec![4, 130, 128], 2)] {
        let n = *shape.last().unwrap();
        let inputs = [
            tensor(&shape, seed)?,
            tensor(&[n], seed + 10)?,
            tensor(&[n], seed + 20)?,
        ];
        let (worst, compared) = compare(
            &inputs,
            |t| sdvp_kernels::layer_norm(&t[0], &t[1], &t[2], 1e-5),
            |t| reference::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        )?;
        assert_eq!(compared, 4);
        assert!(worst < 2e-4, "layer norm {shape:?}: max diff {worst}");
    }
    Ok(())
}

#[test]
fn softmax_matches_the_reference_forward_and_backward() -> Result<()> {
    for (shape, seed) in [(vec![3, 7], 3u64), (vec![16, 4, 65, 65], 4)] {
        let (worst, compared) = compare(
            &[tensor(&shape, seed)?],
            |t| sdvp_kernels::softmax_last_dim(&t[0]),
            |t| reference::softmax_last_dim(&t[0]),
        )?;
        assert_eq!(compared, 2);
        assert!(worst < 1e-5, "softmax {shape:?}: max diff {worst}");
    }
    Ok(())
}

#[test]
fn masked_softmax_matches_the_reference_for_every_mask_shape() -> Result<()> {
    let (b, h, q, k) = (3, 2, 5, 6);
    let keep_most = |shape: &[usize], seed| -> Result<Tensor> {
        // 0 or -10000 (dropped), as the models' additive masks.
        let v: Vec<f32> = values(shape.iter().product(), seed)
            .into_iter()
            .map(|x| if x < -1.2 { -10000.0 } else { 0.0 })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu)
    };
    let masks = [
        keep_most(&[b, 1, 1, k], 5)?,
        keep_most(&[1, 1, q, k], 6)?,
        keep_most(&[b, h, q, k], 7)?,
    ];
    let mut checked = 0;
    for mask in &masks {
        for scale in [1.0, 0.125] {
            let (worst, compared) = compare(
                &[tensor(&[b, h, q, k], 8)?],
                |t| sdvp_kernels::masked_softmax_last_dim(&t[0], Some(mask), scale),
                |t| reference::masked_softmax_last_dim(&t[0], Some(mask), scale),
            )?;
            assert_eq!(compared, 2);
            assert!(
                worst < 1e-5,
                "mask {:?} scale {scale}: max diff {worst}",
                mask.dims()
            );
            checked += 1;
        }
    }
    let (worst, _) = compare(
        &[tensor(&[b, h, q, k], 9)?],
        |t| sdvp_kernels::masked_softmax_last_dim(&t[0], None, 0.3),
        |t| reference::masked_softmax_last_dim(&t[0], None, 0.3),
    )?;
    assert!(worst < 1e-5, "unmasked scaled softmax: max diff {worst}");
    assert_eq!(checked, 6);
    Ok(())
}

#[test]
fn activations_match_the_reference_forward_and_backward() -> Result<()> {
    for (shape, seed) in [(vec![5, 9], 11u64), (vec![64, 1040], 12)] {
        let x = (tensor(&shape, seed)? * 3.0)?;
        let (worst, compared) = compare(
            std::slice::from_ref(&x),
            |t| sdvp_kernels::gelu_erf(&t[0]),
            |t| reference::gelu_erf(&t[0]),
        )?;
        assert_eq!(compared, 2);
        assert!(worst < 1e-5, "gelu {shape:?}: max diff {worst}");
        let (worst, compared) = compare(
            std::slice::from_ref(&x),
            |t| sdvp_kernels::quick_gelu(&t[0]),
            |t| reference::quick_gelu(&t[0]),
        )?;
        assert_eq!(compared, 2);
        assert!(worst < 1e-5, "quick gelu {shape:?}: max diff {worst}");
    }
    Ok(())
}

/// Central differences of `sum(f(x) * probe)` at a few coordinates of each input,
/// against the fused backward pass.
fn finite_difference_check(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    what: &str,
) -> Result<usize> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts)?;
    let probe = tensor(y.dims(), 77)?;
    let grads = (y * &probe)?.sum_all()?.backward()?;
    let objective = |xs: &[Tensor]| -> Result<f64> {
        (f(xs)? * &probe)?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()
    };
    let mut checked = 0;
    for (i, t) in ts.iter().enumerate() {
        let analytic = grads
            .get(t)
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        let base = t.flatten_all()?.to_vec1::<f32>()?;
        for j in [0, base.len() / 2, base.len() - 1] {
            let h = 1e-2f32;
            let at = |delta: f32| -> Result<f64> {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs = ts.clone();
                xs[i] = Tensor::from_vec(v, t.dims(), &Device::Cpu)?;
                objective(&xs)
            };
            let numeric = (at(h)? - at(-h)?) / (2.0 * h as f64);
            let a = analytic[j] as f64;
            assert!(
                (numeric - a).abs() <= 2e-2 * (1.0 + a.abs()),
                "{what}: input {i} element {j}: analytic {a}, numeric {numeric}"
            );
            checked += 1;
        }
    }
    Ok(checked)
}

#[test]
fn fused_gradients_agree_with_finite_differences() -> Result<()> {
    let mut checked = 0;
    let ln = [tensor(&[3, 6], 21)?, tensor(&[6], 22)?, tensor(&[6], 23)?];
    checked += finite_difference_check(
        &ln,
        |t| sdvp_kernels::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        "layer norm",
    )?;
    let mask = Tensor::from_vec(vec![0f32, -1e4, 0.0, 0.0], (1, 1, 1, 4), &Device::Cpu)?;
    checked += finite_difference_check(
        &[tensor(&[2, 1, 3, 4], 24)?],
        |t| sdvp_kernels::masked_softmax_last_dim(&t[0], Some(&mask), 0.5),
        "masked softmax",
    )?;
    checked += finite_difference_check(
        &[tensor(&[4, 5], 25)?],
        |t| sdvp_kernels::gelu_erf(&t[0]),
        "gelu",
    )?;
    checked += finite_difference_check(
        &[tensor(&[4, 5], 26)?],
        |t| sdvp_kernels::quick_gelu(&t[0]),
        "quick gelu",
    )?;
    assert_eq!(checked, 3 * 3 + 3 + 3 + 3);
    Ok(())
}

#[test]
fn strided_inputs_and_fully_masked_rows_are_handled() -> Result<()> {
    // A transposed (non-contiguous) input gives the same as its contiguous copy.
    let x = tensor(&[6, 4], 31)?.t()?;
    assert!(!x.is_contiguous());
    let a = sdvp_kernels::softmax_last_dim(&x)?;
    let b = sdvp_kernels::softmax_last_dim(&x.contiguous()?)?;
    assert_eq!(max_abs_diff(&a, &b)?, 0.0);
    // A row with every entry -inf is all zeros, not NaN.
    let x = Tensor::from_vec(vec![f32::NEG_INFINITY; 3], (1, 3), &Device::Cpu)?;
    assert_eq!(
        sdvp_kernels::softmax_last_dim(&x)?.to_vec2::<f32>()?,
        vec![vec![0f32; 3]]
    );
    // Other dtypes take the reference path.
    let x64 = tensor(&[2, 5], 32)?.to_dtype(DType::F64)?;
    let y = sdvp_kernels::softmax_last_dim(&x64)?;
    assert_eq!(y.dtype(), DType::F64);
    let sums = y.sum(1)?.to_vec1::<f64>()?;
    assert_eq!(sums.len(), 2);
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
    Ok(())
}

#[test]
fn in_place_adamw_matches_the_elementary_update() -> Result<()> {
    let n = 40_000; // above the serial threshold: the parallel path runs
    let init = tensor(&[n], 41)?;
    for wd in [0.0, 0.05] {
        let fused = Var::from_tensor(&init.copy()?)?;
        let plain = Var::from_tensor(&init.to_dtype(DType::F64)?)?; // f64: the fallback path
        let (mut mf, mut vf) = (
            Tensor::zeros(n, DType::F32, &Device::Cpu)?,
            Tensor::zeros(n, DType::F32, &Device::Cpu)?,
        );
        let (mut mp, mut vp) = (
            Tensor::zeros(n, DType::F64, &Device::Cpu)?,
            Tensor::zeros(n, DType::F64, &Device::Cpu)?,
        );
        for step in 1..=3u64 {
            let g = tensor(&[n], 50 + step)?;
            let h = AdamWHyper {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: wd,
                step,
            };
            sdvp_kernels::adamw_update(&fused, &g, &mut mf, &mut vf, &h)?;
            sdvp_kernels::adamw_update(&plain, &g.to_dtype(DType::F64)?, &mut mp, &mut vp, &h)?;
        }
        let diff = max_abs_diff(fused.as_tensor(), &plain.as_tensor().to_dtype(DType::F32)?)?;
        assert!(
            diff < 1e-6,
            "weight decay {wd}: parameters differ by {diff}"
        );
        let moved = max_abs_diff(fused.as_tensor(), &init)?;
        assert!(
            moved > 1e-3,
            "the update did not move the parameters ({moved})"
        );
        assert!(max_abs_diff(&mf, &mp.to_dtype(DType::F32)?)? < 1e-6);
        assert!(max_abs_diff(&vf, &vp.to_dtype(DType::F32)?)? < 1e-6);
    }
    Ok(())
}

#[test]
fn bias_add_matches_broadcast_add_forward_and_backward() -> Result<()> {
    for (shape, seed) in [(vec![3, 5], 61u64), (vec![16, 65, 512], 62)] {
        let n = *shape.last().unwrap();
        let (worst, compared) = compare(
            &[tensor(&shape, seed)?, tensor(&[n], seed + 1)?],
            |t| sdvp_kernels::bias_add(&t[0], &t[1]),
            |t| t[0].broadcast_add(&t[1]),
        )?;
        assert_eq!(compared, 3);
        // The bias gradient sums 16 * 65 rows in f32, in a different order.
        assert!(worst < 1e-3, "bias add {shape:?}: max diff {worst}");
    }
    Ok(())
}

#[test]
fn attention_matches_the_reference_for_self_and_cross_attention() -> Result<()> {
    let (b, heads, hd) = (3, 4, 8);
    let d = heads * hd;
    let padding = {
        let v: Vec<f32> = (0..b * 7)
            .map(|i| if i % 7 >= 5 + i / 7 % 2 { -1e9 } else { 0.0 })
            .collect();
        Tensor::from_vec(v, (b, 1, 1, 7), &Device::Cpu)?
    };
    let causal = {
        let v: Vec<f32> = (0..5 * 7)
            .map(|i| if i % 7 > i / 7 + 2 { -1e9 } else { 0.0 })
            .collect();
        Tensor::from_vec(v, (1, 1, 5, 7), &Device::Cpu)?
    };
    let mut checked = 0;
    // (query tokens, key tokens, mask): self-attention, cross-attention, masked both ways.
    for (sq, sk, mask) in [
        (7, 7, None),
        (5, 7, None),
        (7, 7, Some(&padding)),
        (5, 7, Some(&causal)),
    ] {
        let inputs = [
            tensor(&[b, sq, d], 71)?,
            tensor(&[b, sk, d], 72)?,
            tensor(&[b, sk, d], 73)?,
        ];
        let scale = 1.0 / (hd as f64).sqrt();
        let (worst, compared) = compare(
            &inputs,
            |t| sdvp_kernels::attention(&t[0], &t[1], &t[2], mask, heads, scale),
            |t| reference::attention(&t[0], &t[1], &t[2], mask, heads, scale),
        )?;
        assert_eq!(compared, 4);
        assert!(
            worst < 1e-4,
            "attention {sq}x{sk} mask {}: max diff {worst}",
            mask.is_some()
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
    let fd = finite_difference_check(
        &[
            tensor(&[2, 3, 4], 74)?,
            tensor(&[2, 5, 4], 75)?,
            tensor(&[2, 5, 4], 76)?,
        ],
        |t| sdvp_kernels::attention(&t[0], &t[1], &t[2], None, 2, 0.5),
        "attention",
    )?;
    assert_eq!(fd, 9);
    // Shapes that do not fit the heads are an error naming them.
    let err = sdvp_kernels::attention(
        &inputs_of(2, 3, 6)?,
        &inputs_of(2, 3, 6)?,
        &inputs_of(2, 3, 6)?,
        None,
        4,
        1.0,
    )
    .expect_err("6 columns do not split into 4 heads");
    assert!(err.to_string().contains("4 heads"), "{err}");
    Ok(())
}

fn inputs_of(b: usize, s: usize, d: usize) -> Result<Tensor> {
    tensor(&[b, s, d], 80)
}
