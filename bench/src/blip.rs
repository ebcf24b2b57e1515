//! BLIP VQA training and inference speed, to compare with `bench/blip_reference.py`
//! (PyTorch, same config, shapes and thread count).
//!
//! `cargo run --release -p sdvp-bench --bin bench-blip [--features mimalloc] -- [CONFIG_DIR] [BATCH] [STEPS]`
//!
//! A training step is forward + backward + gradient clipping + AdamW on a batch of
//! `BATCH` images, questions of 12 tokens and answers of 4; inference is the question
//! encoding plus greedy decoding of up to 6 tokens. Prints milliseconds per step.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::train::{seeded_init, AdamW, AdamWConfig, NamedParams, ParamGrads, SplitMix64};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    sdvp_kernels::tune_process();
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("crates/models/tests/fixtures/blip"));
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model =
        BlipForQuestionAnswering::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 0, 0.02)?;
    let t = &config.text_config;
    let size = config.vision_config.image_size;
    let mut rng = SplitMix64::new(1);
    let vocab = t.vocab_size as u64;
    let mut ids = |n: usize, first: u32| -> Vec<u32> {
        (0..n)
            .map(|i| {
                if i == 0 {
                    first
                } else {
                    6 + (rng.next_u64() % (vocab - 6)) as u32
                }
            })
            .collect()
    };
    let q = Tensor::from_vec(ids(batch * 12, 2), (batch, 12), &dev)?;
    let a = Tensor::from_vec(ids(batch * 4, t.bos_token_id), (batch, 4), &dev)?;
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
    // Seconds spent in the forward pass, backward pass and clipping + AdamW.
    let mut split = [0f64; 3];
    let mut train_step = |split: &mut [f64; 3]| -> Result<f32> {
        let t = Instant::now();
        let loss = model.vqa_loss(&px, &q, None, &a, None, 0.1)?;
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
        // On a pool worker, as `sdvp`'s training loop runs its steps.
        sdvp_kernels::on_pool(|| train_step(&mut [0f64; 3]))?;
    }
    let t0 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = sdvp_kernels::on_pool(|| train_step(&mut split))?;
    }
    let train_ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    // On a pool worker, as `sdvp` runs a module's batch.
    let infer = || sdvp_kernels::on_pool(|| model.generate_greedy(&px, &q, None, 6));
    for _ in 0..2 {
        infer()?;
    }
    let t1 = Instant::now();
    for _ in 0..steps {
        infer()?;
    }
    let infer_ms = t1.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let [fwd, bwd, opt_s] = split.map(|s| s * 1e3 / steps as f64);
    let train_gflop = 3.0 * forward_matmul_flops(&config, batch, 12, 4) / 1e9;
    println!("candle  split: forward_ms={fwd:.2} backward_ms={bwd:.2} clip+adamw_ms={opt_s:.2}");
    println!(
        "candle  params={} batch={batch} threads={} mimalloc={} train_ms/step={train_ms:.2} infer_ms/batch={infer_ms:.2} last_loss={loss:.4} train_gflop/step={train_gflop:.3}",
        params.numel(),
        candle_core::utils::get_num_threads(),
        cfg!(feature = "mimalloc"),
    );
    Ok(())
}

/// Matrix-multiply FLOPs (2·m·n·k each) of one teacher-forced forward pass: the vision
/// tower over `batch` images, the question encoder (`q_len` tokens, cross-attending to the
/// image tokens) and the answer decoder (`a_len` tokens, cross-attending to the question)
/// with its LM head. Element-wise work is not counted. A training step is about three
/// times this (the backward pass computes a gradient for each matmul operand).
fn forward_matmul_flops(c: &Config, batch: usize, q_len: usize, a_len: usize) -> f64 {
    let v = &c.vision_config;
    let t = &c.text_config;
    let b = batch as f64;
    let (dv, iv) = (v.hidden_size as f64, v.intermediate_size as f64);
    let patches = ((v.image_size / v.patch_size) * (v.image_size / v.patch_size)) as f64;
    let sv = patches + 1.0;
    let patch_embed = 2.0 * b * patches * (3 * v.patch_size * v.patch_size) as f64 * dv;
    // Per layer: qkv + output projections, scores and context, the MLP.
    let vision_layer = 2.0 * b * sv * (4.0 * dv * dv + 2.0 * sv * dv + 2.0 * dv * iv);
    let vision = patch_embed + v.num_hidden_layers as f64 * vision_layer;
    let (dt, it, de) = (
        t.hidden_size as f64,
        t.intermediate_size as f64,
        t.encoder_hidden_size as f64,
    );
    // A BERT layer with cross-attention: `len` query tokens over `mem` memory tokens of
    // width `mem_d`.
    let bert_layer = |len: f64, mem: f64, mem_d: f64| {
        let self_attn = 4.0 * len * dt * dt + 2.0 * len * len * dt;
        let cross = 2.0 * len * dt * dt + 2.0 * mem * mem_d * dt + 2.0 * len * mem * dt;
        let mlp = 2.0 * len * dt * it;
        2.0 * b * (self_attn + cross + mlp)
    };
    let layers = t.num_hidden_layers as f64;
    let (lq, la) = (q_len as f64, a_len as f64);
    let encoder = layers * bert_layer(lq, sv, de);
    let head = 2.0 * b * la * (dt * dt + dt * t.vocab_size as f64);
    let decoder = layers * bert_layer(la, lq, dt) + head;
    vision + encoder + decoder
}
