//! Finite-difference check (f32, central, eps 1e-2) of BLIP VQA's full training loss against its analytic
//! gradient, on entries of the vision tower's patch embedding, position embedding and first
//! attention layer: the path shape information must take.
//!
//! `cargo run --release -p sdvp-train --example grad_check`

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_core::rng::SplitMix64;
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::train::{seeded_init, NamedParams};

fn main() -> anyhow::Result<()> {
    let size = sdvp_train::blip::BlipSize {
        hidden: 16,
        heads: 2,
        vision_layers: 2,
        text_layers: 1,
        image_size: 32,
        patch_size: 16,
    };
    let cfg: Config = serde_json::from_value(sdvp_train::blip::config_json(&size, 40))?;
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let model =
        BlipForQuestionAnswering::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &cfg)?;
    let params = NamedParams::from_varmap(&vm)?;
    seeded_init(&params, 3, 0.2)?;
    let mut rng = SplitMix64::new(9);
    let px: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|_| rng.next_normal_f32())
        .collect();
    let px = Tensor::from_vec(px, (2, 3, 32, 32), &dev)?;
    let q = Tensor::from_vec(vec![2u32, 7, 9, 11, 3, 2, 8, 10, 12, 3], (2, 5), &dev)?;
    let a = Tensor::from_vec(vec![5u32, 20, 3, 5, 21, 3], (2, 3), &dev)?;
    let loss = |m: &BlipForQuestionAnswering| -> anyhow::Result<Tensor> {
        Ok(m.vqa_loss(&px, &q, None, &a, None, 0.0)?)
    };
    let l = loss(&model)?;
    let grads = l.backward()?;
    let mut worst = 0f64;
    let mut n = 0;
    for name in [
        "vision_model.embeddings.patch_embedding.weight",
        "vision_model.embeddings.position_embedding",
        "vision_model.encoder.layers.0.self_attn.qkv.weight",
        "vision_model.encoder.layers.1.mlp.fc1.weight",
    ] {
        let Some(var) = params.get(name) else {
            println!("no parameter {name}");
            continue;
        };
        let g = grads
            .get(var.as_tensor())
            .ok_or_else(|| anyhow::anyhow!("no gradient for {name}"))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let base = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        for k in 0..6 {
            let i = (k * 7919 + 13) % base.len();
            let eps = 1e-2f32;
            let mut plus = base.clone();
            plus[i] += eps;
            var.set(&Tensor::from_vec(plus, var.shape(), &dev)?)?;
            let lp = loss(&model)?.to_scalar::<f32>()?;
            let mut minus = base.clone();
            minus[i] -= eps;
            var.set(&Tensor::from_vec(minus, var.shape(), &dev)?)?;
            let lm = loss(&model)?.to_scalar::<f32>()?;
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &dev)?)?;
            let num = f64::from((lp - lm) / (2.0 * eps));
            let gi = f64::from(g[i]);
            let rel = (num - gi).abs() / (num.abs() + gi.abs()).max(1e-8);
            worst = worst.max(rel);
            n += 1;
            println!(
                "{name}[{i}]: analytic {:+.6e} numeric {:+.6e} rel {:.1e}",
                gi, num, rel
            );
        }
    }
    println!("{n} entries, worst relative difference {worst:.1e}");
    Ok(())
}
