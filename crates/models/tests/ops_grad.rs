//! Finite-difference gradient checks (f64) of the differentiable ops, and forward-value
//! checks against candle's fused (non-differentiable) kernels.

use candle_core::{DType, Device, Tensor, Var, D};
use sdvp_models::ops;

const EPS: f64 = 1e-6;
const REL_TOL: f64 = 1e-4;

/// Deterministic pseudo-random values in [-2, 2) (xorshift), so failures reproduce.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed), shape, &Device::Cpu).unwrap()
}

/// A fixed random projection turns any output into a scalar loss, so every output element
/// contributes a different weight to the gradient.
fn scalar_loss(out: &Tensor, proj: &Tensor) -> Tensor {
    (out * proj).unwrap().sum_all().unwrap()
}

/// Compares the autograd gradient of `f` wrt each input against central differences.
fn check(name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts);
    let proj = tensor(out.dims(), 777);
    let loss = scalar_loss(&out, &proj);
    let grads = loss.backward().unwrap();
    for (i, var) in vars.iter().enumerate() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"));
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f64> = inputs[i].flatten_all().unwrap().to_vec1().unwrap();
        let mut max_rel = 0f64;
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs = inputs.to_vec();
                xs[i] = Tensor::from_vec(v, inputs[i].dims(), &Device::Cpu).unwrap();
                scalar_loss(&f(&xs), &proj).to_scalar::<f64>().unwrap()
            };
            let num = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let rel = (num - g[j]).abs() / (num.abs().max(g[j].abs()).max(1e-3));
            max_rel = max_rel.max(rel);
        }
        eprintln!("{name}: input {i}: max relative error {max_rel:.2e}");
        assert!(
            max_rel < REL_TOL,
            "{name}: input {i}: relative error {max_rel:.3e}"
        );
    }
}

#[test]
fn layer_norm_gradient() {
    let inputs = [tensor(&[3, 5], 1), tensor(&[5], 2), tensor(&[5], 3)];
    check("layer_norm", &inputs, &|t| {
        ops::layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap()
    });
}

#[test]
fn softmax_and_log_softmax_gradients() {
    let inputs = [tensor(&[2, 3, 4], 4)];
    check("softmax", &inputs, &|t| {
        ops::softmax_last_dim(&t[0]).unwrap()
    });
    check("log_softmax", &inputs, &|t| {
        ops::log_softmax_last_dim(&t[0]).unwrap()
    });
}

#[test]
fn activation_gradients() {
    let inputs = [tensor(&[4, 6], 5)];
    check("gelu_erf", &inputs, &|t| ops::gelu_erf(&t[0]).unwrap());
    check("quick_gelu", &inputs, &|t| ops::quick_gelu(&t[0]).unwrap());
    check("sigmoid", &inputs, &|t| ops::sigmoid(&t[0]).unwrap());
}

#[test]
fn attention_gradient_with_mask() {
    let q = tensor(&[2, 2, 3, 4], 6);
    let k = tensor(&[2, 2, 5, 4], 7);
    let v = tensor(&[2, 2, 5, 4], 8);
    // Mask out the last key of the second batch element, broadcast over heads and queries.
    let mut m = vec![0f64; 10];
    m[9] = -1e9;
    let mask = Tensor::from_vec(m, (2, 1, 1, 5), &Device::Cpu).unwrap();
    check("attention", &[q, k, v], &|t| {
        ops::attention(&t[0], &t[1], &t[2], Some(&mask), 0.5).unwrap()
    });
}

#[test]
fn attention_mask_removes_key() {
    let q = tensor(&[1, 1, 2, 4], 9);
    let k = tensor(&[1, 1, 3, 4], 10);
    let v = tensor(&[1, 1, 3, 4], 11);
    let mask = Tensor::new(&[0f64, 0.0, f64::NEG_INFINITY], &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 1, 3))
        .unwrap();
    let masked = ops::attention(&q, &k, &v, Some(&mask), 0.5).unwrap();
    let k2 = k.narrow(2, 0, 2).unwrap();
    let v2 = v.narrow(2, 0, 2).unwrap();
    let dropped = ops::attention(&q, &k2, &v2, None, 0.5).unwrap();
    let diff = max_abs_diff(&masked, &dropped);
    assert!(diff < 1e-12, "masked key still contributes: {diff}");
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[test]
fn forward_matches_fused_kernels() {
    let x = tensor(&[3, 7], 12).to_dtype(DType::F32).unwrap();
    let w = tensor(&[7], 13).to_dtype(DType::F32).unwrap();
    let b = tensor(&[7], 14).to_dtype(DType::F32).unwrap();
    let ours = ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
    let fused = candle_nn::ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
    let d = max_abs_diff(&ours, &fused);
    assert!(d < 1e-5, "layer_norm vs fused: {d}");

    let ours = ops::softmax_last_dim(&x).unwrap();
    let fused = candle_nn::ops::softmax_last_dim(&x).unwrap();
    let d = max_abs_diff(&ours, &fused);
    assert!(d < 1e-6, "softmax vs fused: {d}");

    let ours = ops::log_softmax_last_dim(&x).unwrap();
    let fused = candle_nn::ops::log_softmax(&x, D::Minus1).unwrap();
    let d = max_abs_diff(&ours, &fused);
    assert!(d < 1e-5, "log_softmax vs candle: {d}");

    let ours = ops::gelu_erf(&x).unwrap();
    let fused = x.gelu_erf().unwrap();
    let d = max_abs_diff(&ours, &fused);
    assert!(d < 1e-5, "gelu_erf vs fused: {d}");

    let ours = ops::sigmoid(&x).unwrap();
    let fused = candle_nn::ops::sigmoid(&x).unwrap();
    let d = max_abs_diff(&ours, &fused);
    assert!(d < 1e-6, "sigmoid vs fused: {d}");
}

#[test]
fn layer_norm_module_loads_named_tensors() {
    let dev = Device::Cpu;
    let mut map = std::collections::HashMap::new();
    map.insert(
        "ln.weight".to_string(),
        Tensor::new(&[2f32, 2.0], &dev).unwrap(),
    );
    map.insert(
        "ln.bias".to_string(),
        Tensor::new(&[1f32, 1.0], &dev).unwrap(),
    );
    let vb = candle_nn::VarBuilder::from_tensors(map, DType::F32, &dev);
    let ln = ops::LayerNorm::new(vb.pp("ln"), 2, 1e-5).unwrap();
    let x = Tensor::new(&[[0f32, 2.0]], &dev).unwrap();
    let y: Vec<Vec<f32>> = candle_core::Module::forward(&ln, &x)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert!(
        (y[0][0] + 1.0).abs() < 1e-3 && (y[0][1] - 3.0).abs() < 1e-3,
        "{y:?}"
    );
}

#[test]
fn sigmoid_gradient_is_finite_for_extreme_inputs() {
    let x = Var::from_tensor(
        &Tensor::new(&[-1000f32, -100.0, 0.0, 100.0, 1000.0], &Device::Cpu).unwrap(),
    )
    .unwrap();
    let y = ops::sigmoid(x.as_tensor()).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let g: Vec<f32> = g.get(x.as_tensor()).unwrap().to_vec1().unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    let y: Vec<f32> = y.to_vec1().unwrap();
    assert_eq!((y[0], y[2], y[4]), (0.0, 0.5, 1.0));
}
