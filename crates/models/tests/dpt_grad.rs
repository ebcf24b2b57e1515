//! DPT training paths: after one backward pass of the depth losses every trainable tensor
//! has a non-zero, finite gradient (and exactly the tensors of
//! `Config::frozen_patterns` have none); finite-difference checks (f64) of the ops DPT
//! added to `ops.rs` and of candle's convolutions as DPT uses them; loss properties; a
//! tiny DPT fitting a rendered depth map with AdamW.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::dpt::{self, Config, Dpt};
use sdvp_models::ops;
use sdvp_models::train::ParamFilter;

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn abs_sum(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64)
        .unwrap()
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Loads a fixture into a `VarMap` (its weights keep the depth map off the final ReLU's
/// flat part), runs both losses and checks every variable's gradient.
fn gradients_reach_every_tensor(dir: &Path, h: usize, w: usize) {
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    let mut varmap = VarMap::new();
    let model = Dpt::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    varmap.load(dir.join("model.safetensors")).unwrap();
    let px = Tensor::randn(0f32, 1.0, (2, 3, h, w), &Device::Cpu).unwrap();
    let depth = model.forward(&px).unwrap();
    // A target the model cannot fit exactly, from a rendered-looking depth map.
    let (b, dh, dw) = depth.dims3().unwrap();
    let rendered: Vec<f32> = (0..b * dh * dw)
        .map(|i| 1.0 + ((i % dw) as f32 / dw as f32) * 4.0 + (i % 7) as f32 * 0.1)
        .collect();
    let rendered = Tensor::from_vec(rendered, (b, dh, dw), &Device::Cpu).unwrap();
    let (target, mask) = dpt::inverse_depth(&rendered).unwrap();
    let loss = (dpt::ssi_loss(&depth, &target, &mask).unwrap()
        + dpt::l1_loss(&depth, &target, &mask).unwrap())
    .unwrap();
    let value = loss.to_scalar::<f32>().unwrap();
    assert!(value.is_finite() && value > 0.0, "loss {value}");
    let grads = loss.backward().unwrap();
    let frozen = ParamFilter::new(&cfg.frozen_patterns()).unwrap();
    let vars = varmap.data().lock().unwrap();
    let mut bad = Vec::new();
    let mut trained = 0;
    for (name, var) in vars.iter() {
        let g = grads.get(var.as_tensor()).map(abs_sum);
        match (frozen.matches(name), g) {
            (true, None | Some(0.0)) => {}
            (true, Some(s)) => bad.push(format!("{name} (frozen, but gradient {s:e})")),
            (false, None) => bad.push(format!("{name} (no gradient)")),
            (false, Some(s)) if !s.is_finite() => bad.push(format!("{name} (not finite)")),
            (false, Some(0.0)) => bad.push(format!("{name} (all zero)")),
            (false, Some(_)) => trained += 1,
        }
    }
    bad.sort();
    eprintln!(
        "{}: {trained} of {} tensors trained",
        dir.display(),
        vars.len()
    );
    assert!(bad.is_empty(), "DPT tensors: {bad:#?}");
    assert!(trained > 90, "only {trained} tensors trained");
}

#[test]
fn every_dpt_tensor_gets_a_gradient() {
    gradients_reach_every_tensor(&fixtures("dpt"), 32, 40);
}

#[test]
fn every_dpt_variant_tensor_gets_a_gradient() {
    // Batch norm (weights trained, running statistics frozen) and readout "add".
    gradients_reach_every_tensor(&fixtures("dpt").join("variant"), 32, 32);
}

const EPS: f64 = 1e-6;

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
    Tensor::from_vec(values(shape.iter().product(), seed), shape, &Device::Cpu).unwrap()
}

/// Autograd gradient of `sum(f(inputs) * proj)` against central differences.
fn check(name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts);
    let proj = tensor(out.dims(), 777);
    let loss = |o: &Tensor| (o * &proj).unwrap().sum_all().unwrap();
    let grads = loss(&out).backward().unwrap();
    for (i, var) in vars.iter().enumerate() {
        let g: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = inputs[i].flatten_all().unwrap().to_vec1().unwrap();
        let mut max_rel = 0f64;
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs = inputs.to_vec();
                xs[i] = Tensor::from_vec(v, inputs[i].dims(), &Device::Cpu).unwrap();
                loss(&f(&xs)).to_scalar::<f64>().unwrap()
            };
            let num = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let rel = (num - g[j]).abs() / num.abs().max(g[j].abs()).max(1e-3);
            max_rel = max_rel.max(rel);
        }
        eprintln!("{name}: input {i}: max relative error {max_rel:.2e}");
        assert!(
            max_rel < 1e-4,
            "{name}: input {i}: relative error {max_rel:.3e}"
        );
    }
}

#[test]
fn interpolate_bilinear_gradient() {
    let x = tensor(&[2, 2, 3, 5], 1);
    for (oh, ow, ac) in [(6, 10, true), (4, 7, false), (2, 3, false), (5, 4, true)] {
        check(
            &format!("interpolate_bilinear {oh}x{ow} align_corners={ac}"),
            std::slice::from_ref(&x),
            &|t| ops::interpolate_bilinear(&t[0], oh, ow, ac).unwrap(),
        );
    }
}

#[test]
fn interpolate_bilinear_values() {
    // 1-D rows, checked by hand against PyTorch's rules.
    let x = Tensor::new(&[[[[0f64, 1.0, 2.0, 3.0]]]], &Device::Cpu).unwrap();
    let up: Vec<f64> = ops::interpolate_bilinear(&x, 1, 8, false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    // align_corners=False: src = (i + 0.5) / 2 - 0.5, clamped at 0.
    let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
    for (a, b) in up.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{up:?}");
    }
    let ac: Vec<f64> = ops::interpolate_bilinear(&x, 1, 7, true)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    // align_corners=True: src = i * 3 / 6.
    for (i, a) in ac.iter().enumerate() {
        assert!((a - i as f64 * 0.5).abs() < 1e-12, "{ac:?}");
    }
}

#[test]
fn conv_transpose_disjoint_gradient_and_value() {
    let x = tensor(&[2, 3, 2, 3], 2);
    let w = tensor(&[3, 2, 2, 2], 3);
    let b = tensor(&[2], 4);
    check(
        "conv_transpose2d_disjoint",
        &[x.clone(), w.clone(), b.clone()],
        &|t| ops::conv_transpose2d_disjoint(&t[0], &t[1], Some(&t[2])).unwrap(),
    );
    let ours = ops::conv_transpose2d_disjoint(&x, &w, Some(&b)).unwrap();
    let candle = x
        .conv_transpose2d(&w, 0, 0, 2, 1)
        .unwrap()
        .broadcast_add(&b.reshape((1, 2, 1, 1)).unwrap())
        .unwrap();
    let d = abs_sum(&(ours - candle).unwrap());
    assert!(d < 1e-10, "differs from candle's conv_transpose2d by {d}");
}

#[test]
fn batch_norm_eval_gradient() {
    let x = tensor(&[2, 3, 2, 2], 5);
    let mean = tensor(&[3], 6);
    let var = (tensor(&[3], 7).abs().unwrap() + 0.5).unwrap();
    check(
        "batch_norm_eval",
        &[x, tensor(&[3], 8), tensor(&[3], 9)],
        &|t| ops::batch_norm_eval(&t[0], &t[1], &t[2], &mean, &var, 1e-5).unwrap(),
    );
}

#[test]
fn conv2d_gradients_as_dpt_uses_them() {
    // candle's 3x3 padding-1 convolution (neck and fusion), and the strided one of the
    // 0.5 reassemble factor on odd, even and mixed-parity sizes.
    let w = tensor(&[2, 3, 3, 3], 10);
    let b = tensor(&[2], 12);
    let x = tensor(&[2, 3, 4, 5], 11);
    check("candle conv2d 4x5", &[x, w.clone()], &|t| {
        t[0].conv2d(&t[1], 1, 1, 1, 1).unwrap()
    });
    for (h, wd, stride) in [(4, 5, 2), (5, 5, 2), (4, 6, 2), (7, 5, 3)] {
        let x = tensor(&[2, 3, h, wd], 11);
        check(
            &format!("conv2d_strided {h}x{wd} stride {stride}"),
            &[x.clone(), w.clone(), b.clone()],
            &|t| ops::conv2d_strided(&t[0], &t[1], Some(&t[2]), 1, stride).unwrap(),
        );
        // Same values as candle's strided forward pass.
        let ours = ops::conv2d_strided(&x, &w, None, 1, stride).unwrap();
        let candle = x.conv2d(&w, 1, stride, 1, 1).unwrap();
        let d = abs_sum(&(ours - candle).unwrap());
        assert!(d < 1e-10, "conv2d_strided differs from candle by {d}");
    }
}

#[test]
fn ssi_loss_ignores_scale_and_shift_and_the_mask() {
    let p = (tensor(&[2, 4, 5], 12).abs().unwrap() + 0.1).unwrap();
    let target = ((&p * 3.0).unwrap() + 0.5).unwrap();
    let mut m = vec![1f64; 40];
    m[3] = 0.0;
    let mask = Tensor::from_vec(m, (2, 4, 5), &Device::Cpu).unwrap();
    let loss = dpt::ssi_loss(&p, &target, &mask)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(loss.abs() < 1e-9, "affine target: loss {loss}");
    // A masked pixel may hold anything.
    let mut t: Vec<f64> = target.flatten_all().unwrap().to_vec1().unwrap();
    t[3] = 1e6;
    let target = Tensor::from_vec(t, (2, 4, 5), &Device::Cpu).unwrap();
    let loss = dpt::ssi_loss(&p, &target, &mask)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(loss.abs() < 1e-9, "masked outlier: loss {loss}");
    // A constant prediction (all-zero after the ReLU) stays finite, with finite gradients.
    let zero =
        Var::from_tensor(&Tensor::zeros((2, 4, 5), DType::F64, &Device::Cpu).unwrap()).unwrap();
    let loss = dpt::ssi_loss(zero.as_tensor(), &target, &mask).unwrap();
    assert!(loss.to_scalar::<f64>().unwrap().is_finite());
    let g = loss.backward().unwrap();
    assert!(abs_sum(g.get(zero.as_tensor()).unwrap()).is_finite());
    // Shape mismatches are errors naming both shapes.
    let err = dpt::ssi_loss(&p, &target.narrow(1, 0, 2).unwrap(), &mask)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 2, 5]") && err.contains("[2, 4, 5]"),
        "{err}"
    );
}

#[test]
fn inverse_depth_masks_invalid_pixels() {
    let d = Tensor::new(&[[2f32, 0.0], [f32::INFINITY, 0.5]], &Device::Cpu).unwrap();
    let (inv, mask) = dpt::inverse_depth(&d).unwrap();
    assert_eq!(
        inv.to_vec2::<f32>().unwrap(),
        vec![vec![0.5, 0.0], vec![0.0, 2.0]]
    );
    assert_eq!(
        mask.to_vec2::<f32>().unwrap(),
        vec![vec![1.0, 0.0], vec![0.0, 1.0]]
    );
}

#[test]
fn tiny_dpt_learns_a_rendered_depth_map() {
    use sdvp_models::train::{AdamW, AdamWConfig, NamedParams, ParamGrads};
    let start = std::time::Instant::now();
    let dir = fixtures("dpt");
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    let mut varmap = VarMap::new();
    let dev = Device::Cpu;
    let model = Dpt::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &cfg).unwrap();
    varmap.load(dir.join("model.safetensors")).unwrap();
    let frozen = ParamFilter::new(&cfg.frozen_patterns()).unwrap();
    let params = NamedParams::from_varmap(&varmap).unwrap().without(&frozen);
    let px = tensor(&[2, 3, 32, 32], 20).to_dtype(DType::F32).unwrap();
    // A floor receding from 2 to 10 units, with a near box (depth 1.5) on the left of
    // image 0 and on the right of image 1.
    let (h, w) = (64, 64);
    let mut depth = Vec::new();
    for b in 0..2 {
        for y in 0..h {
            for x in 0..w {
                let floor = 10.0 - 8.0 * y as f32 / (h - 1) as f32;
                let in_box = (20..44).contains(&y)
                    && if b == 0 {
                        (8..28).contains(&x)
                    } else {
                        (36..56).contains(&x)
                    };
                depth.push(if in_box { 1.5 } else { floor });
            }
        }
    }
    let depth = Tensor::from_vec(depth, (2, h, w), &dev).unwrap();
    let (target, mask) = dpt::inverse_depth(&depth).unwrap();
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: 2e-3,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )
    .unwrap();
    let (mut first, mut last) = (None, f32::NAN);
    for _ in 0..25 {
        let loss = dpt::ssi_loss(&model.forward(&px).unwrap(), &target, &mask).unwrap();
        last = loss.to_scalar::<f32>().unwrap();
        first.get_or_insert(last);
        let mut g = ParamGrads::backward(&loss, &params).unwrap();
        g.clip_global_norm(1.0).unwrap();
        opt.step(&g).unwrap();
    }
    let first = first.unwrap_or(f32::NAN);
    eprintln!(
        "dpt overfit: ssi loss {first:.5} -> {last:.5} in {:.1?}",
        start.elapsed()
    );
    assert!(
        last <= 0.3 * first,
        "loss {first} -> {last}: fell less than 70%"
    );
    // Inverse depth: the box must come out nearer (larger) than the floor behind it.
    let pred = model.forward(&px).unwrap();
    let mean = |b: usize, y: std::ops::Range<usize>, x: std::ops::Range<usize>| {
        pred.get(b)
            .unwrap()
            .narrow(0, y.start, y.len())
            .unwrap()
            .narrow(1, x.start, x.len())
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(mean(0, 20..44, 8..28) > mean(0, 20..44, 36..56));
    assert!(mean(1, 20..44, 36..56) > mean(1, 20..44, 8..28));
}

#[test]
fn frozen_patterns_follow_the_config() {
    let cfg: Config = serde_json::from_str(
        r#"{"num_hidden_layers": 6, "backbone_out_indices": [0, 1, 2, 3], "head_in_index": 2}"#,
    )
    .unwrap();
    let f = ParamFilter::new(&cfg.frozen_patterns()).unwrap();
    for name in [
        "dpt.encoder.layer.4.output.dense.weight",
        "dpt.encoder.layer.5.layernorm_before.bias",
        "neck.fusion_stage.layers.3.projection.weight",
        "neck.convs.0.weight",
        "neck.reassemble_stage.layers.0.resize.weight",
        "neck.reassemble_stage.readout_projects.0.0.bias",
        "neck.fusion_stage.layers.0.residual_layer1.convolution1.weight",
        "neck.fusion_stage.layers.1.residual_layer2.batch_norm1.running_var",
        "dpt.layernorm.weight",
    ] {
        assert!(f.matches(name), "{name} should be frozen");
    }
    for name in [
        "dpt.encoder.layer.3.output.dense.weight",
        "neck.fusion_stage.layers.2.projection.weight",
        "neck.convs.1.weight",
        "neck.reassemble_stage.layers.1.resize.weight",
        "neck.fusion_stage.layers.1.residual_layer2.batch_norm1.weight",
        "head.head.0.weight",
    ] {
        assert!(!f.matches(name), "{name} should train");
    }
}
