//! The `detect` half of a step: the kept teacher boxes as region items of the OWL-ViT
//! student, the guard's replay regions (the generic corpus's region phrases and earlier
//! detect steps' sub-tasks), the validation sets, and the distilled detector's operating
//! point.

use crate::finetune_detect::{chunk_queries, DetectDistill, DetectLoss, RegionItem};
use crate::step::{export_imagefolder, read_kept, Counts, Kept, StepSpec};
use anyhow::{bail, Context, Result};
use sdvp_core::rng::SplitMix64;
use sdvp_core::{BBox, ModuleKind, Request, Response};
use sdvp_modules::images::{pixel_rect, ImageCache};
use sdvp_train::runner::RunSummary;
use sdvp_train::scenes::{crop, SplitScenes};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// `(request, boxes)` pairs grouped into one region item per distinct crop, in first-seen
/// order, at most [`crate::finetune_detect::QUERIES`] phrases each.
fn regions(cache: &ImageCache, pairs: &[(&Request, Vec<BBox>)]) -> Result<Vec<RegionItem>> {
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut items: Vec<RegionItem> = Vec::new();
    for (req, boxes) in pairs {
        let Request::Detect { image, object } = req else {
            continue;
        };
        let key = serde_json::to_string(image)?;
        let i = match slot.get(&key) {
            Some(&i) => i,
            None => {
                let c = cache
                    .crop(image)
                    .with_context(|| format!("rebuilding the crop of {}", image.source))?;
                items.push(RegionItem {
                    pixels: c.pixels,
                    origin: c.origin,
                    phrases: Vec::new(),
                    targets: Vec::new(),
                });
                slot.insert(key, items.len() - 1);
                items.len() - 1
            }
        };
        items[i].phrases.push(object.clone());
        items[i].targets.push(boxes.clone());
    }
    Ok(chunk_queries(items))
}

fn teacher_boxes(k: &Kept) -> Option<(&Request, Vec<BBox>)> {
    match (&k.subtask.request, &k.label.response) {
        (r @ Request::Detect { .. }, Some(Response::Detections { boxes, .. })) => {
            Some((r, boxes.clone()))
        }
        _ => None,
    }
}

/// Region phrases of the world's `pretrain` scenes of `split` (as the detector was trained:
/// whole images and halves, phrases naming objects by some of their attributes), `n`
/// regions from a seeded stream.
fn generic_regions(world: &Path, split: &str, n: usize, seed: u64) -> Result<Vec<RegionItem>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let scenes = SplitScenes::load(world, "pretrain", split, Some(n.div_ceil(2).max(8)))?;
    if scenes.is_empty() {
        bail!("the world has no pretrain {split} scenes for the detector's replay and validation");
    }
    let mut rng = SplitMix64::derive_named(seed, &["generic-detect", split], 0);
    Ok((0..n)
        .map(|k| {
            let it = sdvp_train::detect::draw_item(&scenes, k % scenes.len(), &mut rng);
            let img = &scenes.images[it.scene];
            let (x0, y0, _, _) = pixel_rect(it.region, img.width(), img.height());
            RegionItem {
                pixels: crop(img, it.region),
                origin: (x0 as f32, y0 as f32),
                phrases: it.phrases,
                targets: it.targets,
            }
        })
        .collect())
}

/// The task's val `detect` sub-tasks: the calls of its gold programs on an oracle that knows
/// only the loaded val scenes, with the scene graphs' boxes as targets.
fn task_val_regions(spec: &StepSpec, cache: &ImageCache) -> Result<Vec<RegionItem>> {
    let pairs = crate::step::val_subtask_pairs(spec)?;
    let detect: Vec<(&Request, Vec<BBox>)> = pairs
        .iter()
        .filter_map(|(q, r)| match (q, r) {
            (Request::Detect { .. }, Response::Detections { boxes, .. }) => {
                Some((q, boxes.clone()))
            }
            _ => None,
        })
        .collect();
    let mut items = regions(cache, &detect)?;
    items.truncate(spec.val_items);
    Ok(items)
}

/// The student's training run of a `detect` step: the kept teacher boxes (exported as an
/// imagefolder under `OUT/data`, boxes as COCO `[x, y, w, h]` in crop pixels), the replay
/// regions and the validation sets.
pub(crate) fn trainee(
    spec: &StepSpec,
    student_dir: &Path,
    kept: &[Kept],
    cache: &ImageCache,
    counts: &mut Counts,
) -> Result<DetectDistill> {
    let pairs: Vec<(&Request, Vec<BBox>)> = kept.iter().filter_map(teacher_boxes).collect();
    let mut rows = Vec::new();
    for k in kept {
        let (Request::Detect { image, object }, Some(Response::Detections { boxes, scores })) =
            (&k.subtask.request, &k.label.response)
        else {
            continue;
        };
        let c = cache
            .crop(image)
            .with_context(|| format!("rebuilding the crop of {}", image.source))?;
        let (ox, oy) = c.origin;
        rows.push((
            c.pixels,
            json!({
                "query": object,
                "objects": {
                    "bbox": boxes.iter().map(|b| [b.x0 - ox, b.y0 - oy, b.width(), b.height()]).collect::<Vec<_>>(),
                    "score": scores,
                },
                "teacher_confidence": k.label.confidence,
                "subtask": k.subtask.id,
            }),
        ));
    }
    export_imagefolder(&spec.out.join("data"), &rows)?;
    let task = regions(cache, &pairs)?;
    counts.kept = pairs.len();
    if task.is_empty() {
        bail!(
            "no detect sub-task survived filtering ({:?}); lower --min-confidence, switch off \
             --consistency, or mine more programs",
            counts.reasons
        );
    }
    let mut replay = generic_regions(&spec.world, "train", spec.replay_items, spec.seed)?;
    counts.replay_generic = replay.len();
    for dir in &spec.earlier {
        let earlier: Vec<Kept> = read_kept(dir)?
            .into_iter()
            .filter(|k| k.subtask.module == ModuleKind::Detect)
            .collect();
        let pairs: Vec<(&Request, Vec<BBox>)> = earlier.iter().filter_map(teacher_boxes).collect();
        counts.replay_earlier += pairs.len();
        replay.extend(regions(cache, &pairs)?);
    }
    let val_task = task_val_regions(spec, cache)?;
    let val_generic = generic_regions(&spec.world, "val", spec.val_items, spec.seed)?;
    counts.val_task = val_task.len();
    counts.val_generic = val_generic.len();
    DetectDistill::new(
        student_dir,
        task,
        replay,
        val_task,
        val_generic,
        DetectLoss {
            lambda: spec.loss.lambda,
            replay_batch: spec.loss.replay_batch,
        },
    )
}

/// The distilled detector's module options: the student's, with the score threshold of the
/// best checkpoint's validation (best F1 over the task and generic val sets pooled).
pub(crate) fn options(before: &Value, training: &RunSummary) -> Result<Value> {
    let threshold = training
        .best
        .iter()
        .find(|(k, _)| k == "threshold")
        .map(|(_, v)| *v)
        .ok_or_else(|| anyhow::anyhow!("the detect run's best validation has no threshold"))?;
    let mut o: BTreeMap<String, Value> = match before {
        Value::Object(m) => m.clone().into_iter().collect(),
        _ => BTreeMap::new(),
    };
    o.insert("threshold".into(), json!(threshold));
    Ok(json!(o))
}
