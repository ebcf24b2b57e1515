//! CLIP contrastive training and inference speed, to compare with
//! `bench/clip_reference.py` (PyTorch, same config, shapes, inputs and thread count).
//!
//! `cargo run --release -p sdvp-bench --bin bench-clip [--features mimalloc] -- [CONFIG_DIR] [BATCH] [STEPS]`
//!
//! A training step is forward + backward + gradient clipping + AdamW on `BATCH` image-text
//! pairs (texts of 8 tokens) with the symmetric contrastive loss (cross-entropy over the
//! `BATCH x BATCH` image-text logits, both ways). Inference is one `forward` (the logits).
//! Prints milliseconds per step.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::clip::{contrastive_loss, ClipModel, Config};
use sdvp_models::train::{seeded_init, AdamW, AdamWConfig, NamedParams, ParamGrads};
use std::path::PathBuf;
use std::time::Instant;

const LEN: usize = 8;

fn main() -> Result<()> {
    sdvp_kernels::tune_process();
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("crates/models/tests/fixtures/clip"));
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = ClipModel::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 0, 0.02)?;
    if let Some(v) = params.get("logit_scale") {
        v.set(&Tensor::new(config.logit_scale_init_value as f32, &dev)?)?;
    }
    // `seeded_init` sets norm scales to one by name; CLIP's pre-norm is spelt `layrnorm`.
    if let Some(v) = params.get("vision_model.pre_layrnorm.weight") {
        v.set(&v.ones_like()?)?;
    }
    // The same inputs as the Python side: [bos, 6 ids, eos] per text, a fixed pixel ramp.
    let vocab = config.text_config.vocab_size;
    let ids: Vec<u32> = (0..batch * LEN)
        .map(|i| match (i / LEN, i % LEN) {
            (_, 0) => vocab as u32 - 2,
            (_, c) if c == LEN - 1 => vocab as u32 - 1,
            (r, c) => (1 + (r * 7 + c * 13) % (vocab - 3)) as u32,
        })
        .collect();
    let ids = Tensor::from_vec(ids, (batch, LEN), &dev)?;
    let mask = Tensor::ones((batch, LEN), DType::U32, &dev)?;
    let size = config.vision_config.image_size;
    let pixels: Vec<f32> = (0..batch * 3 * size * size)
        .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
        .collect();
    let px = Tensor::from_vec(pixels, (batch, 3, size, size), &dev)?;
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        },
    )?;
    let mut split = [0f64; 3];
    let mut train_step = |split: &mut [f64; 3]| -> Result<f32> {
        let t = Instant::now();
        let out = model.forward(&px, &ids, Some(&mask))?;
        let loss = contrastive_loss(&out.logits_per_image)?;
        let t_fwd = t.elapsed().as_secs_f64();
        let mut g = ParamGrads::backward(&loss, &params)?;
        let t_bwd = t.elapsed().as_secs_f64();
        g.clip_global_norm(1.0)?;
        opt.step(&g)?;
        let t_all = t.elapsed().as_secs_f64();
        split[0] += t_fwd;
        split[1] += t_bwd - t_fwd;
        split[2] += t_all - t_bwd;
        Ok(loss.to_scalar::<f32>()?)
    };
    for _ in 0..3 {
        sdvp_kernels::on_pool(|| train_step(&mut [0f64; 3]))?;
    }
    let t0 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = sdvp_kernels::on_pool(|| train_step(&mut split))?;
    }
    let train_ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let infer = || sdvp_kernels::on_pool(|| model.forward(&px, &ids, Some(&mask)));
    for _ in 0..2 {
        infer()?;
    }
    let t1 = Instant::now();
    for _ in 0..steps {
        infer()?;
    }
    let infer_ms = t1.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let [fwd, bwd, opt_s] = split.map(|s| s * 1e3 / steps as f64);
    println!("candle  split: forward_ms={fwd:.2} backward_ms={bwd:.2} clip+adamw_ms={opt_s:.2}");
    println!(
        "candle  params={} batch={batch} threads={} mimalloc={} train_ms/step={train_ms:.2} infer_ms/batch={infer_ms:.2} last_loss={loss:.4}",
        params.numel(),
        candle_core::utils::get_num_threads(),
        cfg!(feature = "mimalloc"),
    );
    Ok(())
}
