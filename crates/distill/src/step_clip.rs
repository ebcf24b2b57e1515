//! The `verify` and `classify` halves of a step: the CLIP student learns the teacher's
//! answers to verify_property and best_text_match calls. The teacher is the task's VQA
//! model, which the `blip-vqa` module lets answer both (as a yes/no question, and by
//! ranking the options as answers); the guard replays the generic corpus's verify texts or
//! attribute choices and earlier steps' sub-tasks of the same module.

use crate::finetune_clip::{ClipDistill, ClipItem};
use crate::step::{crops_of, export_imagefolder, read_kept, Counts, Kept, StepSpec};
use anyhow::{bail, Result};
use sdvp_core::rng::SplitMix64;
use sdvp_core::{ModuleKind, Request, Response};
use sdvp_data::scene::Attr;
use sdvp_modules::clip_match::ClipOptions;
use sdvp_modules::images::ImageCache;
use sdvp_modules::ModulesSpec;
use sdvp_train::scenes::{crop, jitter_box, SplitScenes};
use serde_json::{json, Value};
use std::path::Path;

/// The teacher's module set for a verify or classify step: `teacher` as given when it has
/// a module of `kind`, otherwise with `kind` answered by its `vqa` checkpoint.
pub(crate) fn teacher_spec(teacher: &ModulesSpec, kind: ModuleKind) -> Result<String> {
    let resolved = teacher.resolved()?;
    if resolved.iter().any(|r| r.kind == kind) {
        return Ok(teacher.text.clone());
    }
    let vqa = resolved
        .iter()
        .find(|r| r.kind == ModuleKind::Vqa && r.arch == "blip-vqa")
        .ok_or_else(|| {
            anyhow::anyhow!(
                "teacher `{}` has neither a {kind} module nor a blip-vqa vqa module to answer \
                 {kind} calls",
                teacher.text
            )
        })?;
    let dir = vqa
        .dir
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the teacher's vqa module has no weights directory"))?;
    Ok(format!(
        "{},{kind}=blip-vqa:{}",
        teacher.text,
        dir.display()
    ))
}

/// The target distribution a verify or classify response stands for: (P(yes), P(no)), or
/// the options' scores normalised.
fn target_of(r: &Response) -> Option<Vec<f32>> {
    match r {
        Response::Verdict { yes, score } => {
            let p = if *yes { *score } else { 1.0 - score };
            Some(vec![p, 1.0 - p])
        }
        Response::Choice { scores, .. } => {
            let total: f32 = scores.iter().sum();
            (total > 0.0 && total.is_finite()).then(|| scores.iter().map(|s| s / total).collect())
        }
        _ => None,
    }
}

/// One-hot on the response's answer (validation targets from the oracle).
fn one_hot(r: &Response) -> Option<Vec<f32>> {
    match r {
        Response::Verdict { yes, .. } => Some(if *yes { vec![1.0, 0.0] } else { vec![0.0, 1.0] }),
        Response::Choice { index, scores } => Some(
            (0..scores.len())
                .map(|k| f32::from(u8::from(k == *index)))
                .collect(),
        ),
        _ => None,
    }
}

/// `request` with `target` as the item the module scores.
fn item(
    pixels: image::RgbImage,
    o: &ClipOptions,
    request: &Request,
    target: Vec<f32>,
) -> Option<ClipItem> {
    match request {
        Request::Verify { text, .. } if target.len() == 2 => {
            Some(ClipItem::verify(pixels, o, text, target[0]))
        }
        Request::Classify { options, .. } if target.len() == options.len() => {
            Some(ClipItem::classify(pixels, o, options, target))
        }
        _ => None,
    }
}

/// Generic-corpus items of the world's `pretrain` scenes of `split`: object crops (boxes
/// jittered as a detector returns them) with the CLIP trainer's verify texts (true half the
/// time), or with all values of a random attribute as options; `n` from a seeded stream.
/// Targets are the truth (validation; replay overwrites them with the frozen student's).
fn generic_items(
    world: &Path,
    split: &str,
    n: usize,
    seed: u64,
    kind: ModuleKind,
    o: &ClipOptions,
) -> Result<Vec<ClipItem>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let scenes = SplitScenes::load(world, "pretrain", split, Some(n.div_ceil(4).max(8)))?;
    let objects: Vec<(usize, usize)> = scenes
        .scenes
        .iter()
        .enumerate()
        .flat_map(|(si, s)| (0..s.objects.len()).map(move |oi| (si, oi)))
        .collect();
    if objects.is_empty() {
        bail!("the world has no pretrain {split} objects for the {kind} replay and validation");
    }
    let mut rng = SplitMix64::derive_named(seed, &["generic-clip", kind.as_str(), split], 0);
    Ok((0..n)
        .map(|k| {
            let (si, oi) = objects[k % objects.len()];
            let s = &scenes.scenes[si];
            let ob = &s.objects[oi];
            let b = jitter_box(ob.bbox, s.width, s.height, 0.15, &mut rng);
            let pixels = crop(&scenes.images[si], b);
            if kind == ModuleKind::Verify {
                let (text, truth) = sdvp_train::clip::verify_text(ob, &mut rng);
                ClipItem::verify(pixels, o, &text, f32::from(u8::from(truth)))
            } else {
                let a = Attr::ALL[rng.below(Attr::ALL.len())];
                let values: Vec<String> = a.values().iter().map(|v| v.to_string()).collect();
                let target = values
                    .iter()
                    .map(|v| f32::from(u8::from(v == ob.attr(a))))
                    .collect();
                ClipItem::classify(pixels, o, &values, target)
            }
        })
        .collect())
}

/// The task's val sub-tasks of `kind`: the calls of its gold programs on an oracle that
/// knows only the loaded val scenes, with the scene graphs' answers as targets.
fn task_val_items(
    spec: &StepSpec,
    cache: &ImageCache,
    kind: ModuleKind,
    o: &ClipOptions,
) -> Result<Vec<ClipItem>> {
    let pairs = crate::step::val_subtask_pairs(spec)?;
    let mine: Vec<(&Request, Vec<f32>)> = pairs
        .iter()
        .filter(|(q, _)| q.kind() == kind)
        .filter_map(|(q, r)| Some((q, one_hot(r)?)))
        .take(spec.val_items)
        .collect();
    let reqs: Vec<&Request> = mine.iter().map(|(q, _)| *q).collect();
    Ok(crops_of(cache, &reqs)?
        .into_iter()
        .zip(mine)
        .filter_map(|(pixels, (q, t))| item(pixels, o, q, t))
        .collect())
}

/// Kept sub-tasks of `kind` as items with the teacher's distribution.
fn kept_items<'a>(
    cache: &ImageCache,
    kept: &'a [Kept],
    kind: ModuleKind,
    o: &ClipOptions,
) -> Result<Vec<(ClipItem, &'a Kept)>> {
    let mine: Vec<(&Kept, Vec<f32>)> = kept
        .iter()
        .filter(|k| k.subtask.module == kind)
        .filter_map(|k| Some((k, target_of(k.label.response.as_ref()?)?)))
        .collect();
    let reqs: Vec<&Request> = mine.iter().map(|(k, _)| &k.subtask.request).collect();
    Ok(crops_of(cache, &reqs)?
        .into_iter()
        .zip(mine)
        .filter_map(|(pixels, (k, t))| Some((item(pixels, o, &k.subtask.request, t)?, k)))
        .collect())
}

/// What the exported data says of a kept sub-task.
fn metadata(k: &Kept, target: &[f32]) -> Value {
    let best = sdvp_modules::common::best_index(target);
    let common = json!({"teacher_confidence": k.label.confidence, "subtask": k.subtask.id});
    let mut row = match &k.subtask.request {
        Request::Verify { text, .. } => json!({
            "text": text,
            "question": sdvp_modules::blip_vqa::verify_question(text),
            "p_yes": target[0],
            "answer": if best == 0 { "yes" } else { "no" },
        }),
        Request::Classify { options, .. } => json!({
            "options": options,
            "question": sdvp_modules::blip_vqa::classify_question(options),
            "scores": target,
            "answer": options.get(best),
        }),
        _ => json!({}),
    };
    if let (Value::Object(r), Value::Object(c)) = (&mut row, common) {
        r.extend(c);
    }
    row
}

/// The student's training run of a `verify` or `classify` step: the kept labels (exported
/// as an imagefolder under `OUT/data`), the replay pool and the validation sets.
pub(crate) fn trainee(
    spec: &StepSpec,
    student_dir: &Path,
    student_options: &Value,
    kept: &[Kept],
    cache: &ImageCache,
    counts: &mut Counts,
) -> Result<ClipDistill> {
    let kind = spec.module;
    let o: ClipOptions = if student_options.is_null() {
        ClipOptions::default()
    } else {
        serde_json::from_value(student_options.clone())
            .map_err(|e| anyhow::anyhow!("the {kind} student's clip options: {e}"))?
    };
    crate::finetune_clip::check_options(&o)?;
    let items = kept_items(cache, kept, kind, &o)?;
    let rows: Vec<(image::RgbImage, Value)> = items
        .iter()
        .map(|(it, k)| (it.pixels.clone(), metadata(k, &it.target)))
        .collect();
    export_imagefolder(&spec.out.join("data"), &rows)?;
    let task: Vec<ClipItem> = items.into_iter().map(|(it, _)| it).collect();
    counts.kept = task.len();
    if task.is_empty() {
        bail!(
            "no {kind} sub-task survived filtering ({:?}); lower --min-confidence, switch off \
             --consistency, or mine more programs ({kind} calls come from Python programs)",
            counts.reasons
        );
    }
    let mut replay = generic_items(&spec.world, "train", spec.replay_items, spec.seed, kind, &o)?;
    counts.replay_generic = replay.len();
    for dir in &spec.earlier {
        let earlier = read_kept(dir)?;
        let items = kept_items(cache, &earlier, kind, &o)?;
        counts.replay_earlier += items.len();
        replay.extend(items.into_iter().map(|(it, _)| it));
    }
    let val_task = task_val_items(spec, cache, kind, &o)?;
    let val_generic = generic_items(&spec.world, "val", spec.val_items, spec.seed, kind, &o)?;
    counts.val_task = val_task.len();
    counts.val_generic = val_generic.len();
    ClipDistill::new(student_dir, task, replay, val_task, val_generic, spec.loss)
}
