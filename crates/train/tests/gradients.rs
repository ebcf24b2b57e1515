//! Every trainable tensor of every trainer receives a non-zero gradient from its loss
//! (candle's fused ops have no backward pass: a model built on them would silently train
//! nothing upstream), and the frozen lists name only tensors no loss reaches.

use sdvp_core::rng::SplitMix64;
use sdvp_models::train::{NamedParams, ParamGrads};
use sdvp_train::blip::{BlipSize, BlipTrainee};
use sdvp_train::clip::{ClipSize, ClipTrainee};
use sdvp_train::detect::{DetectTrainee, OwlSize};
use sdvp_train::scenes::SplitScenes;
use sdvp_train::vocab::world_words;
use sdvp_train::Trainee;
use std::path::Path;

fn tiny_world(dir: &Path) {
    let cfg = sdvp_data::world::WorldConfig {
        seed: 1,
        scale: sdvp_data::world::Scale::Tiny,
        size: 64,
        threads: 1,
    };
    sdvp_data::world::generate_world(dir, &cfg, &|_, _| {}).unwrap();
}

/// Asserts every trainable parameter gets a gradient with a non-zero entry; returns how
/// many were checked.
fn check(name: &str, t: &dyn Trainee) -> usize {
    let all = NamedParams::from_varmap(t.varmap()).unwrap();
    let params = all.without(&t.frozen());
    let batch: Vec<usize> = (0..6).map(|i| i % t.train_len()).collect();
    let (loss, _) = t.loss(&batch, &mut SplitMix64::new(5)).unwrap();
    let grads = ParamGrads::backward(&loss, &params).unwrap();
    let mut missing = Vec::new();
    for (i, (n, _)) in params.iter().enumerate() {
        let nonzero = grads
            .get(i)
            .map(|g| {
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0
            })
            .unwrap_or(false);
        if !nonzero {
            missing.push(n.to_string());
        }
    }
    assert!(missing.is_empty(), "{name}: no gradient for {missing:?}");
    assert!(
        params.len() > 20,
        "{name}: only {} parameters",
        params.len()
    );
    params.len()
}

#[test]
fn every_trainable_tensor_of_every_trainer_gets_a_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("world");
    tiny_world(&w);
    let words = world_words(&w, &sdvp_data::world::TASKS).unwrap();
    let scenes = || {
        (
            SplitScenes::load(&w, "pretrain", "train", Some(8)).unwrap(),
            SplitScenes::load(&w, "pretrain", "val", Some(4)).unwrap(),
        )
    };
    let mut checked = 0;
    let (tr, va) = scenes();
    let blip = BlipSize {
        hidden: 32,
        heads: 2,
        vision_layers: 1,
        text_layers: 1,
        image_size: 32,
        patch_size: 8,
    };
    let t = BlipTrainee::new(blip, &words, &dir.path().join("a1"), tr, va, 0, 4).unwrap();
    checked += check("blip", &t);
    let (tr, va) = scenes();
    let owl = OwlSize {
        vision_hidden: 32,
        vision_layers: 1,
        vision_heads: 2,
        text_hidden: 16,
        text_layers: 1,
        text_heads: 2,
        image_size: 32,
        patch_size: 8,
    };
    let t = DetectTrainee::new(owl, &words, &dir.path().join("a2"), tr, va, 0, 4).unwrap();
    checked += check("owlvit", &t);
    let (tr, va) = scenes();
    let clip = ClipSize {
        vision_hidden: 32,
        vision_layers: 1,
        text_hidden: 16,
        text_layers: 1,
        heads: 2,
        projection: 16,
        image_size: 32,
        patch_size: 8,
    };
    let t = ClipTrainee::new(clip, &words, &dir.path().join("a3"), tr, va, 0, 4).unwrap();
    checked += check("clip", &t);
    assert!(checked > 60, "{checked} tensors checked");
}

#[test]
fn the_test_split_cannot_be_loaded_for_training() {
    let dir = tempfile::tempdir().unwrap();
    tiny_world(dir.path());
    let e = SplitScenes::load(dir.path(), "gqa-world", "test", None)
        .err()
        .expect("loading a test split must fail");
    assert!(e.to_string().contains("test"), "{e}");
}
