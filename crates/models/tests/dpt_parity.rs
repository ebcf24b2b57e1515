//! DPT parity against transformers (fixtures from tools/make_fixtures_dpt.py): backbone
//! states, fusion states and depth maps (native size, interpolated positions, a
//! non-square grid), the image processor, the depth losses and their gradients; max
//! abs diff <= 1e-4 in f32 (gradients relative to their largest entry).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::dpt::{self, Config, Dpt, ImageProcessor};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dpt")
}

fn reference(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Compares tensors against the reference file and remembers which keys were checked.
struct Checker {
    r: HashMap<String, Tensor>,
    checked: BTreeSet<String>,
    worst: f32,
}

impl Checker {
    fn new(dir: &Path) -> Self {
        Self {
            r: reference(dir),
            checked: BTreeSet::new(),
            worst: 0.0,
        }
    }

    fn get(&self, key: &str) -> Tensor {
        self.r
            .get(key)
            .unwrap_or_else(|| panic!("reference has no `{key}`"))
            .clone()
    }

    /// Max abs diff, divided by `max(1, max |reference|)` when `relative` is set.
    fn check(&mut self, key: &str, ours: &Tensor, relative: bool) {
        let want = self.get(key);
        assert_eq!(ours.dims(), want.dims(), "{key}: shape");
        let d = max_abs(&(ours.to_dtype(DType::F32).unwrap() - &want).unwrap());
        let d = if d.is_nan() { f32::INFINITY } else { d };
        let scale = if relative { max_abs(&want) } else { 1.0 };
        eprintln!(
            "{key}: max abs diff {d:.3e}{}",
            if relative {
                format!(" (relative {:.3e})", d / scale)
            } else {
                String::new()
            }
        );
        self.worst = self.worst.max(d / scale);
        self.checked.insert(key.to_string());
    }

    /// Every reference tensor that is not an input was compared.
    fn finish(&self, inputs: &[&str], expected: usize) {
        let all: BTreeSet<String> = self
            .r
            .keys()
            .filter(|k| !inputs.contains(&k.as_str()))
            .cloned()
            .collect();
        let missed: Vec<_> = all.difference(&self.checked).collect();
        assert!(
            missed.is_empty(),
            "reference tensors not compared: {missed:?}"
        );
        eprintln!(
            "compared {} reference tensors, worst {:.3e}",
            self.checked.len(),
            self.worst
        );
        assert_eq!(self.checked.len(), expected, "number of compared tensors");
        assert!(self.worst <= TOL, "max abs diff {} > {TOL}", self.worst);
    }
}

fn check_forward(c: &mut Checker, model: &Dpt, suffix: &str, states: bool) {
    let px = c.get(&format!("pixel_values{suffix}"));
    let out = model.forward_with_states(&px).unwrap();
    c.check(
        &format!("predicted_depth{suffix}"),
        &out.predicted_depth,
        false,
    );
    if states {
        for (i, s) in out.backbone_hidden_states.iter().enumerate() {
            c.check(&format!("backbone_hidden_states.{i}"), s, false);
        }
        let n = out.fusion_hidden_states.len();
        for (i, s) in out.fusion_hidden_states.iter().take(n - 1).enumerate() {
            c.check(&format!("fusion_hidden_states.{i}"), s, false);
        }
    }
}

/// The loss target of the fixture script, rebuilt in closed form.
fn loss_target(b: usize, h: usize, w: usize) -> (Tensor, Tensor) {
    let (mut t, mut m) = (Vec::new(), Vec::new());
    for bb in 0..b {
        for y in 0..h {
            for x in 0..w {
                t.push(
                    (0.75 + 0.25 * (0.37 * y as f64 + 0.11 * x as f64 + 1.3 * bb as f64).sin())
                        as f32,
                );
                m.push(if (7 * y + 3 * x + bb) % 5 != 0 {
                    1f32
                } else {
                    0.0
                });
            }
        }
    }
    let dev = &Device::Cpu;
    (
        Tensor::from_vec(t, (b, h, w), dev).unwrap(),
        Tensor::from_vec(m, (b, h, w), dev).unwrap(),
    )
}

#[test]
fn dpt_matches_transformers() {
    let d = fixtures();
    let mut c = Checker::new(&d);
    let model = Dpt::load(&d, DType::F32, &Device::Cpu).unwrap();
    check_forward(&mut c, &model, "", true);
    check_forward(&mut c, &model, "_40", false);
    check_forward(&mut c, &model, "_32x48", false);

    // Image processor (keep_aspect_ratio, ensure_multiple_of) and the depth of its output.
    let proc = ImageProcessor::load(&d).unwrap();
    let img = image::open(d.join("image.png")).unwrap().to_rgb8();
    let px = proc.to_tensor(&[img], &Device::Cpu).unwrap();
    c.check("processed_pixel_values", &px, false);
    c.check("processed_depth", &model.forward(&px).unwrap(), false);

    // Losses and gradients, with the model's tensors as variables.
    let cfg = Config::from_file(&d.join("config.json")).unwrap();
    let mut varmap = VarMap::new();
    let trainable = Dpt::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    varmap.load(d.join("model.safetensors")).unwrap();
    let depth = trainable.forward(&c.get("pixel_values")).unwrap();
    let (b, h, w) = depth.dims3().unwrap();
    let (target, mask) = loss_target(b, h, w);
    let ssi = dpt::ssi_loss(&depth, &target, &mask).unwrap();
    let l1 = dpt::l1_loss(&depth, &target, &mask).unwrap();
    c.check("ssi_loss", &ssi.reshape(1).unwrap(), false);
    c.check("l1_loss", &l1.reshape(1).unwrap(), false);
    let grads = ssi.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    let keys: Vec<String> =
        c.r.keys()
            .filter(|k| k.starts_with("grad."))
            .cloned()
            .collect();
    for key in keys {
        let name = &key["grad.".len()..];
        let var = vars
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        c.check(&key, g, true);
    }
    let inputs = ["pixel_values", "pixel_values_40", "pixel_values_32x48"];
    c.finish(&inputs, 28);
}

#[test]
fn dpt_variant_matches_transformers() {
    // readout "add", batch norm in the fusion units, no qkv bias, tanh GELU, 3 stages,
    // a processor that pads to a multiple of 16 with its own mean and std.
    let d = fixtures().join("variant");
    let mut c = Checker::new(&d);
    let model = Dpt::load(&d, DType::F32, &Device::Cpu).unwrap();
    check_forward(&mut c, &model, "", true);
    check_forward(&mut c, &model, "_24x40", false);
    let proc = ImageProcessor::load(&d).unwrap();
    assert_eq!(proc.pad_to_multiple, Some(16));
    let img = image::open(d.join("image.png")).unwrap().to_rgb8();
    let px = proc.to_tensor(&[img], &Device::Cpu).unwrap();
    c.check("processed_pixel_values", &px, false);
    c.check("processed_depth", &model.forward(&px).unwrap(), false);
    c.finish(&["pixel_values", "pixel_values_24x40"], 9);
}

/// Real-size (Intel/dpt-large shapes, random weights) check; run
/// `python3 tools/make_fixtures_dpt.py --real-size` first. `SDVP_DPT_DIR` points it at
/// another directory the script's `build` wrote (any config).
#[test]
#[ignore]
fn dpt_real_size_matches_transformers() {
    let d = std::env::var_os("SDVP_DPT_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/real_size/dpt"),
        PathBuf::from,
    );
    let mut c = Checker::new(&d);
    let t0 = std::time::Instant::now();
    let model = Dpt::load(&d, DType::F32, &Device::Cpu).unwrap();
    eprintln!("load {:.1}s", t0.elapsed().as_secs_f64());
    let t0 = std::time::Instant::now();
    check_forward(&mut c, &model, "", true);
    eprintln!("forward {:.1}s", t0.elapsed().as_secs_f64());
    let n = 1 + Config::from_file(&d.join("config.json"))
        .unwrap()
        .neck_hidden_sizes
        .len()
        * 2
        - 1;
    c.finish(&["pixel_values"], n);
}

#[test]
fn missing_tensor_error_names_tensor_and_file() {
    let d = fixtures();
    let cfg = Config::from_file(&d.join("config.json")).unwrap();
    let mut tensors =
        candle_core::safetensors::load(d.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("neck.fusion_stage.layers.2.projection.weight");
    let backend =
        sdvp_models::weights::CheckpointBackend::from_tensors(tensors, "broken.safetensors");
    let err = Dpt::new(backend.into_var_builder(DType::F32, &Device::Cpu), &cfg).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("neck.fusion_stage.layers.2.projection.weight")
            && msg.contains("broken.safetensors"),
        "{msg}"
    );
}

fn config_error(name: &str, json: &str) -> String {
    let tmp = std::env::temp_dir().join(format!("sdvp-dpt-{name}-{}.json", std::process::id()));
    std::fs::write(&tmp, json).unwrap();
    let err = Config::from_file(&tmp).unwrap_err().to_string();
    let _ = std::fs::remove_file(&tmp);
    assert!(err.contains(&format!("sdvp-dpt-{name}")), "{err}");
    err
}

#[test]
fn config_errors_name_field_and_file() {
    let e = config_error("hybrid", r#"{"is_hybrid": true}"#);
    assert!(
        e.contains("is_hybrid") && e.contains("not supported"),
        "{e}"
    );
    let e = config_error("patch", r#"{"patch_size": "sixteen"}"#);
    assert!(e.contains("patch_size"), "{e}");
    let e = config_error("readout", r#"{"readout_type": "concat"}"#);
    assert!(e.contains("readout_type"), "{e}");
    let e = config_error("indices", r#"{"backbone_out_indices": [2, 5, 8]}"#);
    assert!(e.contains("backbone_out_indices"), "{e}");
    let e = config_error("factor", r#"{"reassemble_factors": [4, 2.5, 1, 0.5]}"#);
    assert!(e.contains("reassemble_factors[1]"), "{e}");
    let e = config_error(
        "backbone",
        r#"{"backbone_config": {"model_type": "dinov2"}}"#,
    );
    assert!(e.contains("backbone_config"), "{e}");
}

#[test]
fn config_defaults_are_dpt_large_like_transformers() {
    // `null`s are what transformers writes for derived fields; they take the defaults.
    let tmp = std::env::temp_dir().join(format!("sdvp-dpt-defaults-{}.json", std::process::id()));
    std::fs::write(
        &tmp,
        r#"{"num_hidden_layers": null, "backbone_featmap_shape": null}"#,
    )
    .unwrap();
    let cfg = Config::from_file(&tmp).unwrap();
    let _ = std::fs::remove_file(&tmp);
    assert_eq!(
        (
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.image_size,
            cfg.patch_size
        ),
        (768, 12, 384, 16)
    );
    assert_eq!(cfg.out_layers(), vec![2, 5, 8, 11]);
    assert_eq!(cfg.neck_hidden_sizes, vec![96, 192, 384, 768]);
    assert_eq!(cfg.layer_norm_eps, 1e-12);
}

#[test]
fn processor_output_size_follows_transformers() {
    let p = ImageProcessor {
        size: Some((384, 384)),
        keep_aspect_ratio: true,
        ensure_multiple_of: 32,
        ..ImageProcessor::default()
    };
    // transformers: 480x640 -> scale 0.8 for both -> 384 x 512.
    assert_eq!(p.output_size(480, 640), (384, 512));
    // Python's round-half-to-even: 400 * (384/400) = 384; 300 * 0.96 = 288 = 9 * 32.
    assert_eq!(p.output_size(400, 300), (384, 288));
    let p = ImageProcessor::default();
    assert_eq!(p.output_size(37, 50), (384, 384));
}

#[test]
fn batched_and_single_images_agree() {
    let d = fixtures();
    let r = reference(&d);
    let model = Dpt::load(&d, DType::F32, &Device::Cpu).unwrap();
    let px = &r["pixel_values"];
    let both = model.forward(px).unwrap();
    for i in 0..2 {
        let one = model.forward(&px.narrow(0, i, 1).unwrap()).unwrap();
        let diff = max_abs(&(one - both.narrow(0, i, 1).unwrap()).unwrap());
        assert!(diff <= 1e-5, "image {i}: batched differs by {diff}");
    }
}

#[test]
fn processor_config_errors_name_field_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preprocessor_config.json");
    for (json, field) in [
        (r#"{"resample": 2}"#, "resample"),
        (r#"{"size": {"shortest_edge": 384}}"#, "size.height"),
        (r#"{"ensure_multiple_of": 0}"#, "ensure_multiple_of"),
        (r#"{"keep_aspect_ratio": "yes"}"#, "keep_aspect_ratio"),
    ] {
        std::fs::write(&path, json).unwrap();
        let err = ImageProcessor::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains("preprocessor_config.json"),
            "{json}: {err}"
        );
    }
    std::fs::write(&path, r#"{"size": 384}"#).unwrap();
    assert_eq!(
        ImageProcessor::from_file(&path).unwrap(),
        ImageProcessor::default()
    );
}

/// Config and processor files written from Rust read back unchanged (set
/// `SDVP_DPT_EXPORT_DIR` to keep them, e.g. to load them in transformers).
#[test]
fn hf_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("SDVP_DPT_EXPORT_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    for fixture in [fixtures(), fixtures().join("variant")] {
        let cfg = Config::from_file(&fixture.join("config.json")).unwrap();
        let proc = ImageProcessor::load(&fixture).unwrap();
        let json = serde_json::to_string_pretty(&cfg.to_hf_json()).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        let json = serde_json::to_string_pretty(&proc.to_hf_json()).unwrap();
        std::fs::write(dir.join("preprocessor_config.json"), json).unwrap();
        assert_eq!(Config::from_file(&dir.join("config.json")).unwrap(), cfg);
        assert_eq!(ImageProcessor::load(&dir).unwrap(), proc);
    }
    let small = Config {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 64,
        image_size: 64,
        backbone_out_indices: vec![0, 1],
        neck_hidden_sizes: vec![16, 32],
        reassemble_factors: vec![2.0, 0.5],
        fusion_hidden_size: 16,
        ..Config::default()
    };
    let v = small.to_hf_json();
    assert_eq!(v["reassemble_factors"], serde_json::json!([2, 0.5]));
    assert_eq!(v["model_type"], "dpt");
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    assert_eq!(Config::from_file(&dir.join("config.json")).unwrap(), small);
    let bad = Config {
        neck_hidden_sizes: vec![16],
        ..small
    };
    let err = Dpt::new(
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
        &bad,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("reassemble_factors"), "{err}");
}

/// Writes a Rust-initialised checkpoint (config.json, preprocessor_config.json,
/// model.safetensors from a `VarMap`) and its depth output to `SDVP_DPT_EXPORT_DIR`, for
/// `python3 tools/make_fixtures_dpt.py --check-export DIR` to load in transformers.
#[test]
#[ignore]
fn export_for_transformers() {
    let Some(dir) = std::env::var_os("SDVP_DPT_EXPORT_DIR").map(PathBuf::from) else {
        panic!("set SDVP_DPT_EXPORT_DIR");
    };
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = Config {
        hidden_size: 32,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        intermediate_size: 64,
        image_size: 32,
        patch_size: 8,
        backbone_out_indices: vec![0, 1, 2],
        neck_hidden_sizes: vec![8, 16, 32],
        reassemble_factors: vec![2.0, 1.0, 0.5],
        fusion_hidden_size: 16,
        use_batch_norm_in_fusion_residual: true,
        ..Config::default()
    };
    let varmap = VarMap::new();
    let model = Dpt::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    // Keep the map off the final ReLU's flat part; non-trivial batch-norm statistics.
    let mut varmap = varmap;
    varmap
        .set_one(
            "head.head.4.bias",
            Tensor::new(&[1f32], &Device::Cpu).unwrap(),
        )
        .unwrap();
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    for name in names.iter().filter(|n| n.contains("running_")) {
        let stat = (Tensor::rand(0f32, 1.0, 16, &Device::Cpu).unwrap() + 0.5).unwrap();
        varmap.set_one(name, stat).unwrap();
    }
    let json = serde_json::to_string_pretty(&cfg.to_hf_json()).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
    let json = serde_json::to_string_pretty(&ImageProcessor::default().to_hf_json()).unwrap();
    std::fs::write(dir.join("preprocessor_config.json"), json).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
    let px = Tensor::randn(0f32, 1.0, (2, 3, 40, 40), &Device::Cpu).unwrap();
    let depth = model.forward(&px).unwrap();
    let out: HashMap<String, Tensor> = [
        ("pixel_values".to_string(), px),
        ("predicted_depth".to_string(), depth),
    ]
    .into();
    candle_core::safetensors::save(&out, dir.join("rust_output.safetensors")).unwrap();
}

#[test]
fn f16_runs_close_to_f32() {
    // candle 0.11 has no CPU matmul for BF16, so only F16 is checked here.
    let d = fixtures();
    let r = reference(&d);
    let want = &r["predicted_depth"];
    let model = Dpt::load(&d, DType::F16, &Device::Cpu).unwrap();
    let got = model.forward(&r["pixel_values"]).unwrap();
    assert_eq!(got.dtype(), DType::F16);
    let diff = max_abs(&(got.to_dtype(DType::F32).unwrap() - want).unwrap());
    eprintln!(
        "F16: max abs diff {diff:.3e} (depth up to {:.2})",
        max_abs(want)
    );
    assert!(diff < 0.02, "F16 differs by {diff}");
}
