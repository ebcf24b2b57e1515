//! OWL-ViT detection training and inference speed, to compare with
//! `bench/owlvit_reference.py` (PyTorch, same config, shapes, inputs and thread count).
//!
//! `cargo run --release -p sdvp-bench --bin bench-owlvit [--features mimalloc] -- [CONFIG_DIR] [BATCH] [STEPS]`
//!
//! A training step is forward + backward + gradient clipping + AdamW on `BATCH` images
//! with 4 text queries of 8 tokens each. The loss is a stand-in of the same cost as the
//! fine-tuning loss (`owlvit::detection_loss`) without its matching, so that PyTorch
//! computes exactly the same: sigmoid cross-entropy of every (patch, query) logit against
//! a fixed 0/1 target, plus L1 of every predicted box against a fixed box. Inference is
//! one `forward` (logits and boxes). Prints milliseconds per step.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::owlvit::{Config, OwlVit};
use sdvp_models::train::{seeded_init, NamedParams};

#[path = "harness.rs"]
mod harness;

const QUERIES: usize = 4;
const LEN: usize = 8;

fn main() -> Result<()> {
    sdvp_kernels::tune_process();
    let harness::Args { dir, batch, steps } =
        harness::Args::parse("crates/models/tests/fixtures/owlvit", 8)?;
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = OwlVit::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 0, 0.02)?;
    if let Some(v) = params.get("owlvit.logit_scale") {
        v.set(&Tensor::new(config.logit_scale_init_value as f32, &dev)?)?;
    }
    // The same inputs as the Python side: [bos, 6 ids, eos] per query, a fixed pixel ramp.
    let vocab = config.text_config.vocab_size;
    let rows = batch * QUERIES;
    let ids: Vec<u32> = (0..rows * LEN)
        .map(|i| match (i / LEN, i % LEN) {
            (_, 0) => vocab as u32 - 2,
            (_, c) if c == LEN - 1 => vocab as u32 - 1,
            (r, c) => (1 + (r * 7 + c * 13) % (vocab - 3)) as u32,
        })
        .collect();
    let ids = Tensor::from_vec(ids, (rows, LEN), &dev)?;
    let mask = Tensor::ones((rows, LEN), DType::U32, &dev)?;
    let size = config.vision_config.image_size;
    let pixels: Vec<f32> = (0..batch * 3 * size * size)
        .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
        .collect();
    let px = Tensor::from_vec(pixels, (batch, 3, size, size), &dev)?;
    let patches = config.vision_config.grid().pow(2);
    let labels: Vec<f32> = (0..batch * patches * QUERIES)
        .map(|i| {
            let (b, p, q) = (i / (patches * QUERIES), i / QUERIES % patches, i % QUERIES);
            f32::from(u8::from((b * 3 + p * 5 + q) % 11 == 0))
        })
        .collect();
    let labels = Tensor::from_vec(labels, (batch, patches, QUERIES), &dev)?;
    let boxes: Vec<f32> = (0..batch * patches)
        .flat_map(|i| {
            let (b, p) = (i / patches, i % patches);
            let cx = 0.1 + 0.8 * ((b + p) % 9) as f32 / 8.0;
            let cy = 0.1 + 0.8 * ((b + 2 * p) % 7) as f32 / 6.0;
            [cx, cy, 0.2, 0.2]
        })
        .collect();
    let boxes = Tensor::from_vec(boxes, (batch, patches, 4), &dev)?;
    let timing = harness::time(
        &params,
        steps,
        || -> Result<Tensor> {
            let out = model.forward(&px, &ids, Some(&mask))?;
            // Stable BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|)).
            let x = &out.logits;
            let bce = ((x.relu()? - (x * &labels)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            let l1 = (&out.pred_boxes - &boxes)?.abs()?.mean_all()?;
            Ok((bce.mean_all()? + l1)?)
        },
        || Ok(model.forward(&px, &ids, Some(&mask))?),
    )?;
    harness::print(&timing, &params, batch, "");
    Ok(())
}
