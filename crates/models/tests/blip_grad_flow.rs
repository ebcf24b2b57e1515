//! After one backward pass every trainable tensor of BLIP VQA gets a non-zero gradient:
//! a detached op or a fused kernel without backward anywhere in the model would leave
//! the tensors upstream of it at zero, and fine-tuning would silently skip them.

use anyhow::{anyhow, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::blip::{vqa::soft_target_loss, BlipForQuestionAnswering, Config};
use sdvp_models::train::{seeded_init, NamedParams, ParamGrads, SplitMix64};
use std::path::Path;

#[test]
fn every_parameter_gets_a_gradient() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip");
    let config = Config::from_file(&dir.join("config.json"))?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model =
        BlipForQuestionAnswering::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &config)?;
    let params = NamedParams::from_varmap(&varmap)?;
    seeded_init(&params, 11, 0.1)?;
    let mut rng = SplitMix64::new(12);
    // Biases start at zero; make them non-zero so that products with them carry signal.
    for (name, var) in params.iter().filter(|(n, _)| n.ends_with("bias")) {
        let vals: Vec<f32> = (0..var.elem_count())
            .map(|_| (rng.next_normal() * 0.1) as f32)
            .collect();
        let noise = Tensor::from_vec(vals, var.shape(), &dev)?;
        var.set(&noise).map_err(|e| anyhow!("{name}: {e}"))?;
    }
    let size = config.vision_config.image_size;
    let px: Vec<f32> = (0..2 * 3 * size * size)
        .map(|_| rng.next_normal() as f32)
        .collect();
    let px = Tensor::from_vec(px, (2, 3, size, size), &dev)?;
    let q = Tensor::new(&[[2u32, 6, 7, 8, 3], [2, 9, 10, 3, 0]], &dev)?;
    let qm = Tensor::new(&[[1f32, 1., 1., 1., 1.], [1., 1., 1., 1., 0.]], &dev)?;
    let a = Tensor::new(&[[5u32, 12, 3], [5, 13, 3]], &dev)?;
    let cands = Tensor::new(&[[5u32, 12, 3], [5, 13, 3], [5, 14, 3]], &dev)?;
    let qe = model.encode(&px, &q, Some(&qm))?;
    let ce = model.answer_loss(&qe, Some(&qm), &a, None, 0.1)?;
    let scores = model.rank_answers(&qe, Some(&qm), &cands, None)?;
    let teacher = Tensor::new(&[[0.7f32, 0.2, 0.1], [0.1, 0.8, 0.1]], &dev)?;
    let kl = soft_target_loss(&scores, &teacher, 2.0)?;
    let loss = (ce + kl)?;
    let grads = ParamGrads::backward(&loss, &params)?;
    let mut failures = Vec::new();
    for (i, name) in params.names().iter().enumerate() {
        let ok = match grads.get(i) {
            Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
            None => false,
        };
        if !ok {
            failures.push(name.clone());
        }
    }
    assert!(params.len() > 140, "only {} parameters", params.len());
    assert!(failures.is_empty(), "no gradient for: {failures:?}");
    Ok(())
}
