//! Writing a trained model in the Hugging Face layout: `config.json`, `model.safetensors`,
//! tokenizer files and `preprocessor_config.json`.

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
