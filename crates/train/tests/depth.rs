//! The DPT depth trainer on a tiny world: every trainable tensor gets a gradient from its
//! loss, a few training steps export a checkpoint that `sdvp_models::dpt` loads, and the
//! validation metric reads the map exactly as the `dpt` module answers `compute_depth`.

use candle_core::{DType, Device, Tensor};
use sdvp_core::rng::SplitMix64;
use sdvp_data::world::{generate_world, Scale, WorldConfig};
use sdvp_data::ImageStore;
use sdvp_models::dpt::{Config, Dpt, ImageProcessor};
use sdvp_models::train::{NamedParams, ParamFilter};
use sdvp_modules::common::Checkpoint;
use sdvp_modules::dpt_depth::{DepthOptions, DptDepth};
use sdvp_modules::images::ImageCache;
use sdvp_train::depth::{box_depth, module_median, DepthTarget, DepthTrainee, DptSize};
use sdvp_train::runner::{train, RunDir, Schedule};
use sdvp_train::scenes::SplitScenes;
use sdvp_train::Trainee;
use std::sync::Arc;

/// A tiny world of 96 px images: the 64 px model's map is then not the source size, so
/// the mapping of boxes onto the map is exercised.
fn world() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WorldConfig {
        seed: 5,
        scale: Scale::Tiny,
        size: 96,
        threads: 2,
    };
    generate_world(dir.path(), &cfg, &|_, _| {}).expect("generate the world");
    dir
}

fn trainee(world: &std::path::Path, target: DepthTarget) -> DepthTrainee {
    let train = SplitScenes::load(world, "pretrain", "train", Some(8)).expect("train scenes");
    let val = SplitScenes::load(world, "pretrain", "val", Some(4)).expect("val scenes");
    DepthTrainee::new(DptSize::STUDENT, target, train, val, 3, 4).expect("trainee")
}

fn abs_sum(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64)
        .and_then(|t| t.abs()?.sum_all()?.to_scalar::<f64>())
        .expect("sum")
}

#[test]
fn depth_trainer_trains_every_tensor_and_exports_what_the_module_reads() {
    let started = std::time::Instant::now();
    let w = world();
    let t = trainee(w.path(), DepthTarget::Box);

    // One loss, one backward pass: exactly the tensors outside `frozen_patterns` move.
    let frozen = ParamFilter::new(&t.config.frozen_patterns()).expect("patterns");
    let (loss, _) = t
        .loss(&[0, 1, 2, 3], &mut SplitMix64::new(1))
        .expect("loss");
    let value = loss.to_scalar::<f32>().expect("scalar");
    assert!(value.is_finite() && value > 0.0, "loss {value}");
    let grads = loss.backward().expect("backward");
    let all = NamedParams::from_varmap(t.varmap()).expect("params");
    let (mut bad, mut trained) = (Vec::new(), 0);
    for (name, var) in all.iter() {
        let g = grads.get(var.as_tensor()).map(abs_sum);
        match (frozen.matches(name), g) {
            (true, None | Some(0.0)) => {}
            (true, Some(s)) => bad.push(format!("{name} (frozen, but gradient {s:e})")),
            (false, None) => bad.push(format!("{name} (no gradient)")),
            (false, Some(s)) if !s.is_finite() => bad.push(format!("{name} (not finite)")),
            (false, Some(0.0)) => bad.push(format!("{name} (all zero)")),
            (false, Some(_)) => trained += 1,
        }
    }
    bad.sort();
    assert!(bad.is_empty(), "DPT tensors: {bad:#?}");
    assert!(trained > 90, "only {trained} tensors trained");
    // The runner trains the same set: the trainee freezes exactly `frozen_patterns`.
    assert_eq!(t.frozen().sources(), frozen.sources());

    // A few steps through the resumable loop; `best/` is a Hugging Face DPT checkpoint.
    let run = tempfile::tempdir().expect("tempdir");
    let schedule = Schedule {
        steps: 3,
        batch: 2,
        lr: 1e-3,
        warmup: 1,
        weight_decay: 0.01,
        clip_norm: 1.0,
        eval_every: 3,
        log_every: 1,
    };
    let summary = train("depth", &t, &schedule, 3, &RunDir::new(run.path())).expect("train");
    assert_eq!(summary.best[0].0, "ordering");
    assert!((0.0..=1.0).contains(&summary.best[0].1));
    let best = run.path().join("best");
    let cfg = Config::from_file(&best.join("config.json")).expect("config.json");
    assert_eq!(cfg, t.config);
    let hf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(best.join("config.json")).expect("read config"),
    )
    .expect("json");
    assert_eq!(hf["architectures"][0], "DPTForDepthEstimation");
    assert_eq!(hf["model_type"], "dpt");
    let processor = ImageProcessor::load(&best).expect("preprocessor_config.json");
    assert_eq!(processor, t.processor);
    let loaded = Dpt::load(&best, DType::F32, &Device::Cpu).expect("load the export");

    // The exported weights give the trained model's map; the module loading the export
    // answers every object's box as `module_median` does on that map.
    let val = SplitScenes::load(w.path(), "pretrain", "val", Some(4)).expect("val scenes");
    let px = processor
        .to_tensor(&val.images, &Device::Cpu)
        .expect("pixels");
    let (_, _, ph, pw) = px.dims4().expect("dims");
    let ours = t.model.forward(&px).expect("forward");
    let theirs = loaded.forward(&px).expect("forward");
    let diff = abs_sum(&(&ours - &theirs).expect("sub"));
    assert!(
        diff == 0.0,
        "the export differs from the trained model by {diff}"
    );
    let (_, mh, mw) = ours.dims3().expect("dims");
    assert_ne!(
        (mh, mw),
        (96, 96),
        "the map should not be the source size here"
    );
    let module = DptDepth::load(
        Checkpoint::open("dpt", &best).expect("checkpoint"),
        DepthOptions::default(),
        Arc::new(ImageCache::new(ImageStore::for_world(w.path()), 1 << 24)),
    )
    .expect("the dpt module loads the export");
    let refs: Vec<&image::RgbImage> = val.images.iter().collect();
    let maps = module.maps(&refs).expect("module maps");
    let flat: Vec<Vec<f32>> = ours.flatten_from(1).and_then(|t| t.to_vec2()).expect("map");
    let mut compared = 0;
    for ((scene, map), ours) in val.scenes.iter().zip(&maps).zip(&flat) {
        for o in &scene.objects {
            let want = map.median(o.bbox);
            let got = module_median(
                ours,
                (mh, mw),
                (ph, pw),
                (scene.width, scene.height),
                o.bbox,
            );
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{}: object {}",
                scene.id,
                o.id
            );
            compared += 1;
        }
    }
    assert!(compared > 0);
    eprintln!("depth trainer test: {:.1?}", started.elapsed());
}

#[test]
fn box_target_answers_each_object_with_its_own_depth() {
    // On the box map, the module's rule answers an object's own depth unless nearer boxes
    // cover half of its box; on the world's scenes (boxes overlap at most 20%) it always
    // does, so the ordering ceiling of the box target is 1.
    let w = world();
    let val = SplitScenes::load(w.path(), "pretrain", "val", None).expect("val scenes");
    let mut n = 0;
    for s in &val.scenes {
        let (sw, sh) = (s.width as usize, s.height as usize);
        let map = box_depth(s);
        for o in &s.objects {
            let m = module_median(&map, (sh, sw), (sh, sw), (s.width, s.height), o.bbox);
            assert_eq!(m, o.depth, "{}: object {}", s.id, o.id);
            n += 1;
        }
    }
    assert!(n > 10, "{n} objects");
}
