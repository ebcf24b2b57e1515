//! BLIP VQA training and inference speed, to compare with `bench/blip_reference.py`
//! (PyTorch, same config, shapes and thread count).
//!
//! `cargo run --release -p sdvp-bench --bin bench-blip [--features mimalloc] -- [CONFIG_DIR] [BATCH] [STEPS]`
//!
//! A training step is forward + backward + gradient clipping + AdamW on a batch of
//! `BATCH` images, questions of 12 tokens and answers of 4; inference is the question
//! encoding plus greedy decoding of up to 6 tokens. Prints milliseconds per step.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::train::{seeded_init, AdamW, AdamWConfig, NamedParams, ParamGrads, SplitMix64};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
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
    let mut train_step = || -> Result<f32> {
        let loss = model.vqa_loss(&px, &q, None, &a, None, 0.1)?;
        let mut g = ParamGrads::backward(&loss, &params)?;
        g.clip_global_norm(1.0)?;
        opt.step(&g)?;
        Ok(loss.to_scalar::<f32>()?)
    };
    for _ in 0..3 {
        train_step()?;
    }
    let t0 = Instant::now();
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = train_step()?;
    }
    let train_ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    for _ in 0..2 {
        model.generate_greedy(&px, &q, None, 6)?;
    }
    let t1 = Instant::now();
    for _ in 0..steps {
        model.generate_greedy(&px, &q, None, 6)?;
    }
    let infer_ms = t1.elapsed().as_secs_f64() * 1e3 / steps as f64;
    println!(
        "candle  params={} batch={batch} threads={} mimalloc={} train_ms/step={train_ms:.2} infer_ms/batch={infer_ms:.2} last_loss={loss:.4}",
        params.numel(),
        candle_core::utils::get_num_threads(),
        cfg!(feature = "mimalloc"),
    );
    Ok(())
}
