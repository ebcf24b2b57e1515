//! Writing a trained model in the Hugging Face layout: `config.json`, `model.safetensors`,
//! tokenizer files and `preprocessor_config.json`.

use crate::vocab::write_json;
use anyhow::{anyhow, Context, Result};
use candle_nn::VarMap;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// The variables of `varmap` as `model.safetensors` in `dir`.
pub fn write_weights(varmap: &VarMap, dir: &Path) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow!("the VarMap lock is poisoned"))?;
    let tensors: HashMap<String, candle_core::Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path)
        .with_context(|| format!("writing {}", path.display()))
}

/// A square-resize image processor config (`BlipImageProcessor`, `OwlViTImageProcessor`
/// and, with `crop`, `CLIPImageProcessor`) with OpenAI CLIP's normalisation.
pub fn image_processor_json(class: &str, size: usize) -> Value {
    let mean = sdvp_models::preprocess::CLIP_MEAN;
    let std = sdvp_models::preprocess::CLIP_STD;
    let mut v = json!({
        "image_processor_type": class,
        "do_resize": true,
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "do_convert_rgb": true,
        "image_mean": mean,
        "image_std": std,
        "resample": 3,
    });
    if class == "CLIPImageProcessor" {
        v["size"] = json!({"shortest_edge": size});
        v["do_center_crop"] = json!(true);
        v["crop_size"] = json!({"height": size, "width": size});
    } else {
        v["size"] = json!({"height": size, "width": size});
        v["do_center_crop"] = json!(false);
    }
    v
}

/// A two-tower checkpoint in the Hugging Face layout: `config.json`, the weights, the
/// tokenizer files written into `assets` at set-up, and the image processor of class
/// `processor` sized from `config.vision_config.image_size`.
pub fn write_checkpoint(
    dir: &Path,
    config: &Value,
    varmap: &VarMap,
    assets: &Path,
    processor: &str,
) -> Result<()> {
    write_json(config, &dir.join("config.json"))?;
    write_weights(varmap, dir)?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(assets.join(f), dir.join(f))
            .with_context(|| format!("copying {f} into {}", dir.display()))?;
    }
    let size = config["vision_config"]["image_size"]
        .as_u64()
        .ok_or_else(|| anyhow!("config has no vision_config.image_size"))? as usize;
    write_json(
        &image_processor_json(processor, size),
        &dir.join("preprocessor_config.json"),
    )
}

/// Set-up shared by the CLIP-style two-tower trainers: writes the CLIP-style tokenizer over
/// `words` and the `config.json` that `config(vocab, bos, eos)` builds into `assets`, and
/// returns that config and the path it was written to.
pub fn clip_style_assets(
    words: &std::collections::BTreeSet<String>,
    assets: &Path,
    config: impl FnOnce(usize, u32, u32) -> Value,
) -> Result<(Value, std::path::PathBuf)> {
    std::fs::create_dir_all(assets).with_context(|| format!("creating {}", assets.display()))?;
    let (vocab, bos, eos) = crate::vocab::write_clip_tokenizer(words, assets)?;
    let config = config(vocab, bos, eos);
    let path = assets.join("config.json");
    write_json(&config, &path)?;
    Ok((config, path))
}
