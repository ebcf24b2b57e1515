//! A tiny BLIP VQA memorises a handful of (image, question, answer) examples: the
//! smoke test that forward, loss, backward and AdamW work together.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::train::{seeded_init, AdamW, AdamWConfig, NamedParams, ParamGrads, SplitMix64};
use std::path::Path;

#[test]
fn tiny_blip_overfits_a_handful_of_examples() -> Result<()> {
    let start = std::time::Instant::now();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip");
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model =
        BlipForQuestionAnswering::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 5, 0.05)?;
    let size = config.vision_config.image_size;
    let mut rng = SplitMix64::new(9);
    let pixels: Vec<f32> = (0..4 * 3 * size * size)
        .map(|_| rng.next_normal() as f32)
        .collect();
    let px = Tensor::from_vec(pixels, (4, 3, size, size), &dev)?;
    let q = Tensor::new(
        &[
            [2u32, 6, 7, 8, 3],
            [2, 6, 7, 9, 3],
            [2, 10, 11, 12, 3],
            [2, 10, 11, 13, 3],
        ],
        &dev,
    )?;
    let a = Tensor::new(&[[5u32, 14, 3], [5, 15, 3], [5, 16, 3], [5, 17, 3]], &dev)?;
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: 3e-3,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )?;
    let mut first = None;
    let mut last = f32::NAN;
    for _ in 0..60 {
        let loss = model.vqa_loss(&px, &q, None, &a, None, 0.0)?;
        last = loss.to_scalar::<f32>()?;
        first.get_or_insert(last);
        let mut g = ParamGrads::backward(&loss, &params)?;
        g.clip_global_norm(1.0)?;
        opt.step(&g)?;
    }
    let first = first.unwrap_or(f32::NAN);
    assert!(
        last <= 0.1 * first,
        "loss {first} -> {last}: fell less than 90%"
    );
    let answers = model.generate_greedy(&px, &q, None, 5)?;
    let want = a.to_vec2::<u32>()?;
    assert_eq!(answers, want, "memorised answers");
    eprintln!(
        "overfit: loss {first:.3} -> {last:.4} in {:.1?}",
        start.elapsed()
    );
    Ok(())
}
