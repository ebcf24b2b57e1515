//! Training-core checks against hand-computed references.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::train::checkpoint::{has_checkpoint, load_checkpoint, save_checkpoint};
use sdvp_models::train::*;

fn scalars(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .unwrap_or_default()
}

/// Plain-f64 AdamW for one scalar, written from the PyTorch documentation.
#[allow(clippy::too_many_arguments)]
fn adamw_ref(p: &mut f64, m: &mut f64, v: &mut f64, g: f64, t: i32, lr: f64, wd: f64) {
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    *p *= 1.0 - lr * wd;
    *m = b1 * *m + (1.0 - b1) * g;
    *v = b2 * *v + (1.0 - b2) * g * g;
    let mhat = *m / (1.0 - b1.powi(t));
    let vhat = *v / (1.0 - b2.powi(t));
    *p -= lr * mhat / (vhat.sqrt() + eps);
}

#[test]
fn adamw_matches_hand_computed_reference() -> Result<()> {
    let dev = Device::Cpu;
    let w = Var::from_slice(&[0.5f32, -1.0], 2, &dev)?;
    let b = Var::from_slice(&[0.25f32], 1, &dev)?;
    let params = NamedParams::from_pairs(vec![
        ("layer.weight".into(), w.clone()),
        ("layer.bias".into(), b.clone()),
    ]);
    let cfg = AdamWConfig {
        lr: 0.1,
        weight_decay: 0.5,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(&params, cfg)?;
    assert_eq!(opt.decayed_names(), vec!["layer.weight".to_string()]);
    // Reference state per scalar: weight[0], weight[1], bias[0].
    let mut p = [0.5f64, -1.0, 0.25];
    let mut m = [0f64; 3];
    let mut v = [0f64; 3];
    let x = [2.0f64, -3.0];
    for t in 1..=3 {
        // loss = (w . x + b)^2
        let wt = Tensor::from_slice(&x.map(|a| a as f32), 2, &dev)?;
        let out = (w.as_tensor().mul(&wt)?.sum_all()? + b.as_tensor().sum_all()?)?;
        let loss = out.sqr()?;
        let grads = ParamGrads::backward(&loss, &params)?;
        let o = p[0] * x[0] + p[1] * x[1] + p[2];
        let g = [2.0 * o * x[0], 2.0 * o * x[1], 2.0 * o];
        // Params are sorted by name: bias first, then weight.
        opt.step(&grads)?;
        for i in 0..3 {
            let wd = if i < 2 { 0.5 } else { 0.0 };
            adamw_ref(&mut p[i], &mut m[i], &mut v[i], g[i], t, 0.1, wd);
        }
        let got_w = scalars(w.as_tensor());
        let got_b = scalars(b.as_tensor());
        for (i, got) in got_w.iter().chain(got_b.iter()).enumerate() {
            assert!(
                (f64::from(*got) - p[i]).abs() < 1e-5,
                "step {t} scalar {i}: {got} vs {}",
                p[i]
            );
        }
    }
    Ok(())
}

#[test]
fn warmup_cosine_values() {
    let s = WarmupCosine {
        base_lr: 1.0,
        warmup_steps: 10,
        total_steps: 110,
        min_lr: 0.1,
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(s.lr(0), 0.0));
    assert!(close(s.lr(5), 0.5));
    assert!(close(s.lr(10), 1.0));
    assert!(close(s.lr(60), 0.1 + 0.9 * 0.5));
    assert!(close(
        s.lr(35),
        0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * 0.25).cos())
    ));
    assert!(close(s.lr(110), 0.1));
    assert!(close(s.lr(500), 0.1));
    assert!(s.lr(20) > s.lr(30));
}

#[test]
fn global_norm_clipping() -> Result<()> {
    let dev = Device::Cpu;
    let a = Var::from_slice(&[1.0f32], 1, &dev)?;
    let b = Var::from_slice(&[1.0f32], 1, &dev)?;
    let params = NamedParams::from_pairs(vec![("a".into(), a.clone()), ("b".into(), b.clone())]);
    // loss = 3a + 4b: gradient (3, 4), norm 5.
    let loss = ((a.as_tensor() * 3.0)? + (b.as_tensor() * 4.0)?)?.sum_all()?;
    let mut g = ParamGrads::backward(&loss, &params)?;
    let mut unclipped = g.clone();
    assert!((unclipped.clip_global_norm(10.0)? - 5.0).abs() < 1e-6);
    assert_eq!(scalars(unclipped.get(0).expect("grad a")), vec![3.0]);
    let norm = g.clip_global_norm(1.0)?;
    assert!((norm - 5.0).abs() < 1e-6);
    let ga = scalars(g.get(0).expect("grad a"))[0];
    let gb = scalars(g.get(1).expect("grad b"))[0];
    assert!(
        (ga - 0.6).abs() < 1e-6 && (gb - 0.8).abs() < 1e-6,
        "{ga} {gb}"
    );
    assert!((g.global_norm()? - 1.0).abs() < 1e-5);
    Ok(())
}

fn mse_grads(w: &Var, params: &NamedParams, x: &Tensor, y: &Tensor) -> Result<ParamGrads> {
    let loss = x.matmul(w.as_tensor())?.sub(y)?.sqr()?.mean_all()?;
    ParamGrads::backward(&loss, params)
}

#[test]
fn accumulation_equals_larger_batch() -> Result<()> {
    let dev = Device::Cpu;
    let mut rng = SplitMix64::new(7);
    let mut rand = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_normal() as f32).collect() };
    let w = Var::from_vec(rand(6), (3, 2), &dev)?;
    let params = NamedParams::from_pairs(vec![("w".into(), w.clone())]);
    let x = Tensor::from_vec(rand(12), (4, 3), &dev)?;
    let y = Tensor::from_vec(rand(8), (4, 2), &dev)?;
    let full = mse_grads(&w, &params, &x, &y)?;
    let mut acc = GradAccumulator::new(params.len());
    for i in 0..2 {
        let g = mse_grads(
            &w,
            &params,
            &x.narrow(0, 2 * i, 2)?,
            &y.narrow(0, 2 * i, 2)?,
        )?;
        acc.add(&g)?;
    }
    assert_eq!(acc.count(), 2);
    let accumulated = acc.finish()?;
    let a = scalars(full.get(0).expect("full grad"));
    let b = scalars(accumulated.get(0).expect("accumulated grad"));
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    // A single half-batch is not the same gradient: the check above can fail.
    let half = mse_grads(&w, &params, &x.narrow(0, 0, 2)?, &y.narrow(0, 0, 2)?)?;
    let h = scalars(half.get(0).expect("half grad"));
    assert!(a.iter().zip(&h).any(|(p, q)| (p - q).abs() > 1e-4));
    Ok(())
}

#[test]
fn filters_and_seeded_init() -> Result<()> {
    let f = ParamFilter::new(&["vision_model.*", "re:.*\\.layer\\.[01]\\..*"])?;
    assert!(f.matches("vision_model.encoder.layers.0.mlp.fc1.weight"));
    assert!(f.matches("text_encoder.encoder.layer.1.output.dense.bias"));
    assert!(!f.matches("text_encoder.encoder.layer.2.output.dense.bias"));
    assert!(ParamFilter::new(&["re:("]).is_err());
    let nd = ParamFilter::default_no_decay();
    assert!(nd.matches("x.LayerNorm.weight") && nd.matches("a.bias") && !nd.matches("a.weight"));

    let make = || -> Result<(VarMap, Vec<f32>)> {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        candle_nn::linear(4, 3, vb.pp("lin"))?;
        let params = NamedParams::from_varmap(&vm)?;
        seeded_init(&params, 42, 0.02)?;
        let w = params
            .get("lin.weight")
            .expect("lin.weight")
            .as_tensor()
            .clone();
        Ok((vm, scalars(&w)))
    };
    let (vm, a) = make()?;
    let (_, b) = make()?;
    assert_eq!(a, b, "same seed, same weights");
    let params = NamedParams::from_varmap(&vm)?;
    assert_eq!(params.names(), vec!["lin.bias", "lin.weight"]);
    assert!(scalars(params.get("lin.bias").expect("bias").as_tensor())
        .iter()
        .all(|x| *x == 0.0));
    let trainable = params.without(&ParamFilter::new(&["*.bias"])?);
    assert_eq!(trainable.names(), vec!["lin.weight"]);
    Ok(())
}

#[test]
fn seeded_init_sets_every_normalisation_scale_to_one() -> Result<()> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    // Names as the checkpoints spell them (CLIP's `pre_layrnorm` included).
    let ones = [
        "vision_model.pre_layrnorm.weight",
        "text_encoder.embeddings.LayerNorm.weight",
        "vision_model.encoder.layers.0.layer_norm1.weight",
        "model.norm.weight",
        "model.layers.0.input_layernorm.weight",
        "neck.fusion.batch_norm.running_var",
    ];
    let zeros = [
        "vision_model.pre_layrnorm.bias",
        "neck.fusion.batch_norm.running_mean",
    ];
    for name in ones.iter().chain(&zeros) {
        vb.get(8, name)?;
    }
    vb.get((8, 8), "vision_model.encoder.layers.0.mlp.fc1.weight")?;
    let params = NamedParams::from_varmap(&vm)?;
    seeded_init(&params, 3, 0.02)?;
    let values = |name: &str| scalars(params.get(name).expect(name).as_tensor());
    for name in ones {
        assert_eq!(values(name), vec![1.0; 8], "{name}");
    }
    for name in zeros {
        assert_eq!(values(name), vec![0.0; 8], "{name}");
    }
    let fc = values("vision_model.encoder.layers.0.mlp.fc1.weight");
    assert_eq!(fc.len(), 64);
    assert!(fc.iter().all(|x| x.abs() < 0.2) && fc.iter().any(|x| *x != 0.0));
    Ok(())
}

/// Builds a 2-layer MLP in a fresh VarMap with seeded weights.
fn mlp(seed: u64) -> Result<(VarMap, NamedParams, candle_nn::Linear, candle_nn::Linear)> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let l1 = candle_nn::linear(3, 5, vb.pp("l1"))?;
    let l2 = candle_nn::linear(5, 1, vb.pp("l2"))?;
    let params = NamedParams::from_varmap(&vm)?;
    seeded_init(&params, seed, 0.5)?;
    Ok((vm, params, l1, l2))
}

fn train_steps(
    params: &NamedParams,
    l1: &candle_nn::Linear,
    l2: &candle_nn::Linear,
    opt: &mut AdamW,
    sched: &WarmupCosine,
    from: u64,
    to: u64,
) -> Result<()> {
    use candle_core::Module;
    let dev = Device::Cpu;
    for step in from..to {
        let mut rng = SplitMix64::new(1000 + step);
        let x: Vec<f32> = (0..24).map(|_| rng.next_normal() as f32).collect();
        let x = Tensor::from_vec(x, (8, 3), &dev)?;
        let y = x.sum_keepdim(1)?.tanh()?;
        let h = l1.forward(&x)?.relu()?;
        let loss = l2.forward(&h)?.sub(&y)?.sqr()?.mean_all()?;
        let mut g = ParamGrads::backward(&loss, params)?;
        g.clip_global_norm(1.0)?;
        opt.set_lr(sched.lr(step));
        opt.step(&g)?;
    }
    Ok(())
}

#[test]
fn checkpoint_resume_is_exact() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sched = WarmupCosine {
        base_lr: 0.05,
        warmup_steps: 2,
        total_steps: 10,
        min_lr: 0.0,
    };
    let cfg = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    };

    // Uninterrupted run: 6 steps.
    let (vm_a, pa, l1a, l2a) = mlp(3)?;
    let mut opt_a = AdamW::new(&pa, cfg.clone())?;
    train_steps(&pa, &l1a, &l2a, &mut opt_a, &sched, 0, 3)?;
    let state = TrainerState {
        step: 3,
        seed: 3,
        optimizer: opt_a.state(),
        extra: serde_json::json!({"epoch": 0}),
    };
    save_checkpoint(dir.path(), &vm_a, &opt_a, &state)?;
    // An older step's files are cleaned up by the next save.
    save_checkpoint(dir.path(), &vm_a, &opt_a, &state)?;
    train_steps(&pa, &l1a, &l2a, &mut opt_a, &sched, 3, 6)?;

    // Resumed run: fresh model with another seed, then the checkpoint.
    let (vm_b, pb, l1b, l2b) = mlp(99)?;
    let mut opt_b = AdamW::new(&pb, AdamWConfig::default())?;
    assert!(has_checkpoint(dir.path()));
    let ck = load_checkpoint(dir.path(), &vm_b, &mut opt_b)?;
    assert_eq!(ck.state, state);
    train_steps(&pb, &l1b, &l2b, &mut opt_b, &sched, ck.state.step, 6)?;

    for ((na, va), (nb, vb)) in pa.iter().zip(pb.iter()) {
        assert_eq!(na, nb);
        assert_eq!(
            scalars(va.as_tensor()),
            scalars(vb.as_tensor()),
            "{na} differs after resume"
        );
    }
    let files: Vec<String> = std::fs::read_dir(dir.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");

    // A checkpoint missing a tensor is refused with its name.
    let (vm_c, pc, _, _) = mlp(1)?;
    let vb = VarBuilder::from_varmap(&vm_c, DType::F32, &Device::Cpu);
    candle_nn::linear(5, 2, vb.pp("extra"))?;
    let mut opt_c = AdamW::new(&pc, AdamWConfig::default())?;
    let err = load_checkpoint(dir.path(), &vm_c, &mut opt_c).expect_err("missing tensor");
    assert!(format!("{err:#}").contains("extra."), "{err:#}");
    Ok(())
}

#[test]
fn metrics_and_plot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m/metrics.jsonl");
    {
        let mut w = MetricsWriter::open(&path)?;
        for s in 0..50u64 {
            w.log(s, &[("loss", 2.0 / (1.0 + s as f64)), ("lr", 1e-3)])?;
        }
        w.log(50, &[("loss", f64::NAN)])?;
    }
    // A torn last line (killed mid-write) is tolerated.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)? + "{\"step\": 51, \"lo",
    )?;
    let recs = read_metrics(&path)?;
    assert_eq!(recs.len(), 51);
    let loss = metrics::series(&recs, "loss");
    assert_eq!(loss.len(), 50);
    assert_eq!(loss[1], (1.0, 1.0));
    let png = dir.path().join("loss.png");
    plot_loss_curve(&loss, &png, 320, 200)?;
    let bytes = std::fs::read(&png)?;
    assert_eq!(&bytes[1..4], b"PNG");
    let img = image::load_from_memory(&bytes)?.to_rgb8();
    assert_eq!(img.dimensions(), (320, 200));
    assert!(
        img.pixels().any(|p| p.0 == [20, 60, 160]),
        "curve colour is drawn"
    );
    assert!(plot_loss_curve(&[], &png, 10, 10).is_err());
    Ok(())
}
