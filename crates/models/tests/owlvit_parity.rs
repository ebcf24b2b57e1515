//! OWL-ViT parity against transformers (fixtures from tools/make_fixtures_clip_owlvit.py):
//! detection outputs, post-processing and gradients of a fixed loss, <= 1e-4 in f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::owlvit::{self, Config, OwlVit};
use sdvp_models::preprocess::ImageProcessor;

const TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/owlvit")
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

/// A weight in [-1, 1] per element, as `torch.linspace(-1, 1, n)` (or reversed).
fn ramp(dims: &[usize], reverse: bool) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let t = -1.0 + 2.0 * i as f32 / (n - 1) as f32;
            if reverse {
                -t
            } else {
                t
            }
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

#[test]
fn owlvit_forward_matches_transformers() {
    forward_parity(&dir(), true);
}

/// Real-size (owlvit-base-patch32 shapes) check; run
/// `python3 tools/make_fixtures_clip_owlvit.py --real-size` first.
#[test]
#[ignore]
fn owlvit_real_size_forward_matches_transformers() {
    forward_parity(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/real_size/owlvit"),
        false,
    );
}

fn forward_parity(d: &Path, post: bool) {
    let r = reference(d);
    let model = OwlVit::load(d, DType::F32, &Device::Cpu).unwrap();
    let out = model
        .forward(
            &r["pixel_values"],
            &r["input_ids"],
            Some(&r["attention_mask"]),
        )
        .unwrap();
    let mut worst = 0f32;
    worst = worst.max(max_diff("logits", &out.logits, &r["logits"]));
    worst = worst.max(max_diff("pred_boxes", &out.pred_boxes, &r["pred_boxes"]));
    worst = worst.max(max_diff(
        "image_embeds",
        &out.image_embeds,
        &r["image_embeds"],
    ));
    worst = worst.max(max_diff(
        "class_embeds",
        &out.class_embeds,
        &r["class_embeds"],
    ));
    // The padded query (last) has no meaningful embedding; compare the real ones.
    let a = out.text_embeds.narrow(1, 0, 1).unwrap();
    let b = r["text_embeds"].narrow(1, 0, 1).unwrap();
    worst = worst.max(max_diff("text_embeds (image 0)", &a, &b));
    let a = out.text_embeds.get(1).unwrap().narrow(0, 0, 1).unwrap();
    let b = r["text_embeds"].get(1).unwrap().narrow(0, 0, 1).unwrap();
    worst = worst.max(max_diff("text_embeds (image 1, query 0)", &a, &b));
    assert!(worst <= TOL, "max abs diff {worst} > {TOL}");
    if !post {
        return;
    }

    // Post-processing of image 0, threshold 0, NMS off: same scores, labels and boxes as
    // transformers' post_process_object_detection (order: ours by descending score).
    let dets = owlvit::post_process(
        &out.logits.get(0).unwrap(),
        &out.pred_boxes.get(0).unwrap(),
        (37, 50),
        0.0,
        1.0,
    )
    .unwrap();
    let scores: Vec<f32> = r["post_scores_0"].to_vec1().unwrap();
    let labels: Vec<i64> = r["post_labels_0"].to_vec1().unwrap();
    let boxes: Vec<Vec<f32>> = r["post_boxes_0"].to_vec2().unwrap();
    assert_eq!(dets.len(), scores.len());
    let mut worst = 0f32;
    for det in &dets {
        let best = (0..scores.len())
            .filter(|&i| labels[i] as usize == det.label)
            .map(|i| {
                (scores[i] - det.score).abs()
                    + (0..4)
                        .map(|k| (boxes[i][k] - det.bbox[k]).abs())
                        .sum::<f32>()
            })
            .fold(f32::INFINITY, f32::min);
        worst = worst.max(best);
    }
    eprintln!("post_process: worst score+box error {worst:.3e}");
    assert!(worst < 1e-3, "post-processing differs by {worst}");
}

#[test]
fn owlvit_gradients_match_transformers() {
    let d = dir();
    let r = reference(&d);
    let cfg = Config::from_file(&d.join("config.json")).unwrap();
    let mut varmap = VarMap::new();
    let model = OwlVit::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    varmap.load(d.join("model.safetensors")).unwrap();
    let out = model
        .forward(
            &r["pixel_values"],
            &r["input_ids"],
            Some(&r["attention_mask"]),
        )
        .unwrap();
    let valid = out.logits.ge(-1e30).unwrap();
    let logits = valid
        .where_cond(&out.logits, &out.logits.zeros_like().unwrap())
        .unwrap();
    let loss = ((logits * ramp(out.logits.dims(), false))
        .unwrap()
        .sum_all()
        .unwrap()
        + (&out.pred_boxes * ramp(out.pred_boxes.dims(), true))
            .unwrap()
            .sum_all()
            .unwrap())
    .unwrap();
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
fn owlvit_processor_close_to_transformers() {
    let d = dir();
    let r = reference(&d);
    let proc = ImageProcessor::from_file(&d.join("preprocessor_config.json")).unwrap();
    assert_eq!(proc, ImageProcessor::owlvit(32));
    let img = image::open(d.join("image.png")).unwrap().to_rgb8();
    let px = proc.to_tensor(&[img], &Device::Cpu).unwrap();
    let diff = max_diff(
        "owlvit processed_pixel_values",
        &px,
        &r["processed_pixel_values"],
    );
    assert!(diff <= 1e-5, "processor differs by {diff}");
}

#[test]
fn nms_suppresses_overlapping_same_label_boxes() {
    // Three patches, one query: patches 0 and 1 overlap heavily, patch 2 is elsewhere.
    let logits = Tensor::new(&[[3f32], [2.0], [1.0]], &Device::Cpu).unwrap();
    let boxes = Tensor::new(
        &[
            [0.3f32, 0.3, 0.2, 0.2],
            [0.31, 0.3, 0.2, 0.2],
            [0.8, 0.8, 0.1, 0.1],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let kept =
        owlvit::post_process(&logits, &boxes, (100, 100), 0.5, owlvit::DEFAULT_NMS_IOU).unwrap();
    let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!((scores[0] - 1.0 / (1.0 + (-3f32).exp())).abs() < 1e-6);
    assert!((kept[0].bbox[0] - 20.0).abs() < 1e-4 && (kept[0].bbox[3] - 40.0).abs() < 1e-4);
    let all = owlvit::post_process(&logits, &boxes, (100, 100), 0.5, 1.0).unwrap();
    assert_eq!(all.len(), 3);
}

#[test]
fn box_bias_puts_untrained_boxes_on_their_patch() {
    let bias = owlvit::box_bias(4, DType::F32, &Device::Cpu).unwrap();
    let centres: Vec<Vec<f32>> = sdvp_models::ops::sigmoid(&bias).unwrap().to_vec2().unwrap();
    // Patch (row 1, col 2): corner coordinates ((2+1)/4, (1+1)/4), size 1/4.
    let p = &centres[4 + 2];
    assert!(
        (p[0] - 0.75).abs() < 1e-3 && (p[1] - 0.5).abs() < 1e-3 && (p[2] - 0.25).abs() < 1e-3,
        "{p:?}"
    );
}
