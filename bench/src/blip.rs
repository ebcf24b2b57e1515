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
use sdvp_models::train::{seeded_init, NamedParams, SplitMix64};

#[path = "harness.rs"]
mod harness;

fn main() -> Result<()> {
    sdvp_kernels::tune_process();
    let harness::Args { dir, batch, steps } =
        harness::Args::parse("crates/models/tests/fixtures/blip", 16)?;
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
    let timing = harness::time(
        &params,
        steps,
        || Ok(model.vqa_loss(&px, &q, None, &a, None, 0.1)?),
        || Ok(model.generate_greedy(&px, &q, None, 6)?),
    )?;
    let train_gflop = 3.0 * forward_matmul_flops(&config, batch, 12, 4) / 1e9;
    harness::print(
        &timing,
        &params,
        batch,
        &format!(" train_gflop/step={train_gflop:.3}"),
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
