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
use sdvp_models::train::{seeded_init, NamedParams};

#[path = "harness.rs"]
mod harness;

const LEN: usize = 8;

fn main() -> Result<()> {
    sdvp_kernels::tune_process();
    let harness::Args { dir, batch, steps } =
        harness::Args::parse("crates/models/tests/fixtures/clip", 16)?;
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = ClipModel::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 0, 0.02)?;
    if let Some(v) = params.get("logit_scale") {
        v.set(&Tensor::new(config.logit_scale_init_value as f32, &dev)?)?;
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
    let timing = harness::time(
        &params,
        steps,
        || -> Result<Tensor> {
            let out = model.forward(&px, &ids, Some(&mask))?;
            Ok(contrastive_loss(&out.logits_per_image)?)
        },
        || Ok(model.forward(&px, &ids, Some(&mask))?),
    )?;
    harness::print(&timing, &params, batch, "");
    Ok(())
}
