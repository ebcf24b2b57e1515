//! After one backward pass of a training loss through CLIP and OWL-ViT (tiny configs,
//! `VarMap`-initialised), every trainable tensor must have a non-zero, finite gradient.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_models::clip::{self, ClipModel};
use sdvp_models::owlvit::{self, LossWeights, OwlVit, Target};

fn fixtures(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Names of variables whose gradient is missing, all-zero or not finite.
fn dead_gradients(varmap: &VarMap, grads: &candle_core::backprop::GradStore) -> Vec<String> {
    let vars = varmap.data().lock().unwrap();
    let mut bad: Vec<String> = vars
        .iter()
        .filter_map(|(name, var)| {
            let Some(g) = grads.get(var.as_tensor()) else {
                return Some(format!("{name} (no gradient)"));
            };
            let g = g.to_dtype(DType::F64).unwrap();
            let abs_sum = g
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            if !abs_sum.is_finite() {
                Some(format!("{name} (not finite)"))
            } else if abs_sum == 0.0 {
                Some(format!("{name} (all zero)"))
            } else {
                None
            }
        })
        .collect();
    bad.sort();
    bad
}

fn tokens(n: usize, len: usize, vocab: u32, eos: u32) -> (Tensor, Tensor) {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut row: Vec<u32> = (0..len as u32)
            .map(|j| 1 + (7 * i as u32 + 3 * j) % (vocab - 3))
            .collect();
        row[0] = vocab - 2;
        row[len - 1] = eos;
        ids.extend(row);
    }
    let ids = Tensor::from_vec(ids, (n, len), &Device::Cpu).unwrap();
    let mask = Tensor::ones((n, len), DType::U32, &Device::Cpu).unwrap();
    (ids, mask)
}

#[test]
fn every_clip_tensor_gets_a_gradient() {
    let cfg = clip::Config::from_file(&fixtures("clip").join("config.json")).unwrap();
    let varmap = VarMap::new();
    let model = ClipModel::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    let v = &cfg.vision_config;
    let px = Tensor::randn(0f32, 1.0, (3, 3, v.image_size, v.image_size), &Device::Cpu).unwrap();
    let vocab = cfg.text_config.vocab_size as u32;
    let (ids, mask) = tokens(3, 6, vocab, vocab - 1);
    let out = model.forward(&px, &ids, Some(&mask)).unwrap();
    let loss = clip::contrastive_loss(&out.logits_per_image).unwrap();
    let grads = loss.backward().unwrap();
    let bad = dead_gradients(&varmap, &grads);
    assert!(
        bad.is_empty(),
        "CLIP tensors without a useful gradient: {bad:#?}"
    );
}

#[test]
fn every_owlvit_tensor_gets_a_gradient() {
    let cfg = owlvit::Config::from_file(&fixtures("owlvit").join("config.json")).unwrap();
    let varmap = VarMap::new();
    let model = OwlVit::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )
    .unwrap();
    let v = &cfg.vision_config;
    let px = Tensor::randn(0f32, 1.0, (2, 3, v.image_size, v.image_size), &Device::Cpu).unwrap();
    let vocab = cfg.text_config.vocab_size as u32;
    // Two images, two queries each.
    let (ids, mask) = tokens(4, 5, vocab, vocab - 1);
    let out = model.forward(&px, &ids, Some(&mask)).unwrap();
    let targets = vec![
        vec![
            Target {
                query: 0,
                bbox: [0.3, 0.3, 0.2, 0.3],
            },
            Target {
                query: 1,
                bbox: [0.7, 0.6, 0.3, 0.2],
            },
        ],
        vec![Target {
            query: 1,
            bbox: [0.5, 0.5, 0.4, 0.4],
        }],
    ];
    let det = owlvit::detection_loss(&out, &targets, &LossWeights::default()).unwrap();
    assert_eq!(det.matches.len(), 3);
    // The detection head does not use the pooled CLIP projection (`visual_projection`,
    // `logit_scale`); fine-tuning adds the image-text contrastive term through them.
    let (img_ids, img_mask) = (ids.narrow(0, 0, 2).unwrap(), mask.narrow(0, 0, 2).unwrap());
    let itc = clip::contrastive_loss(
        &model
            .image_text_logits(&px, &img_ids, Some(&img_mask))
            .unwrap(),
    )
    .unwrap();
    let loss = (&det.total + itc).unwrap();
    let value = loss.to_scalar::<f32>().unwrap();
    assert!(value.is_finite() && value > 0.0, "loss {value}");
    let grads = loss.backward().unwrap();
    let bad = dead_gradients(&varmap, &grads);
    assert!(
        bad.is_empty(),
        "OWL-ViT tensors without a useful gradient: {bad:#?}"
    );
}

#[test]
fn detection_loss_is_lower_for_the_right_box() {
    // One image, four patches, one query: a loss that cannot tell a right box from a wrong
    // one would not train anything.
    let logits = Tensor::new(&[[[2f32], [-2.0], [-2.0], [-2.0]]], &Device::Cpu).unwrap();
    let boxes = Tensor::new(
        &[[
            [0.25f32, 0.25, 0.2, 0.2],
            [0.75, 0.25, 0.2, 0.2],
            [0.25, 0.75, 0.2, 0.2],
            [0.75, 0.75, 0.2, 0.2],
        ]],
        &Device::Cpu,
    )
    .unwrap();
    let zeros = Tensor::zeros((1, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let out = owlvit::DetectionOutput {
        logits,
        pred_boxes: boxes,
        text_embeds: zeros.clone(),
        image_embeds: zeros.clone(),
        class_embeds: zeros,
    };
    let w = LossWeights::default();
    let right = owlvit::detection_loss(
        &out,
        &[vec![Target {
            query: 0,
            bbox: [0.25, 0.25, 0.2, 0.2],
        }]],
        &w,
    )
    .unwrap();
    let wrong = owlvit::detection_loss(
        &out,
        &[vec![Target {
            query: 0,
            bbox: [0.75, 0.75, 0.2, 0.2],
        }]],
        &w,
    )
    .unwrap();
    assert_eq!(right.matches, vec![(0, 0, 0)]);
    assert_eq!(wrong.matches, vec![(0, 3, 0)]);
    let (r, wr) = (
        right.total.to_scalar::<f32>().unwrap(),
        wrong.total.to_scalar::<f32>().unwrap(),
    );
    assert!(r < wr, "right {r} >= wrong {wr}");
    assert!(right.l1.to_scalar::<f32>().unwrap().abs() < 1e-6);
    assert!(right.giou.to_scalar::<f32>().unwrap().abs() < 1e-5);
}
