//! The `vqa` half of a step: which sub-tasks the closed-vocabulary teacher answers, the
//! kept labels as soft targets over its vocabulary, the guard's replay pool and the
//! validation sets of the BLIP student.

use crate::finetune::{GoldItem, SoftItem, VqaDistill};
use crate::label::Adapter;
use crate::step::{crops_of, export_imagefolder, read_kept, Counts, Kept, StepSpec};
use anyhow::{bail, Result};
use sdvp_core::module::Alternative;
use sdvp_core::rng::SplitMix64;
use sdvp_core::{ModuleKind, Request, Response};
use sdvp_modules::images::ImageCache;
use sdvp_modules::ModulesSpec;
use sdvp_train::scenes::{crop, SplitScenes};
use sdvp_train::subtask_items::task_vqa_items;
use serde_json::json;
use std::path::Path;

/// Sends the teacher the questions its closed vocabulary can answer: attribute questions
/// ("What color is …?") always; yes/no and either-or questions ("Is the … red?", "Is the …
/// red or blue?") when its vocabulary has `yes` and `no`. Everything else stays with the
/// student.
pub struct ClosedVocabulary {
    pub yes_no: bool,
}

impl ClosedVocabulary {
    pub fn for_answers(answers: &[String]) -> Self {
        let has = |w: &str| answers.iter().any(|a| a == w);
        Self {
            yes_no: has("yes") && has("no"),
        }
    }
}

impl Adapter for ClosedVocabulary {
    fn to_teacher(&self, request: &Request) -> Option<Request> {
        match request {
            Request::Vqa { question, .. } => {
                let q = question.trim_start().to_ascii_lowercase();
                let attribute = ["what color", "what shape", "what size", "what material"]
                    .iter()
                    .any(|p| q.starts_with(p));
                let polar = self.yes_no && (q.starts_with("is ") || q.starts_with("are "));
                (attribute || polar).then(|| request.clone())
            }
            _ => None,
        }
    }
}

/// The closed answer vocabulary of the teacher's `vqa` module (`options.answers`).
pub(crate) fn teacher_answers(spec: &ModulesSpec) -> Result<Vec<String>> {
    let vqa = spec
        .resolved()?
        .into_iter()
        .find(|r| r.kind == ModuleKind::Vqa)
        .ok_or_else(|| anyhow::anyhow!("teacher `{}` has no vqa module", spec.text))?;
    let answers: Vec<String> = vqa.options["answers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if answers.len() < 2 {
        bail!(
            "teacher `{}`: its vqa module gives no closed answer list (options.answers), \
             so it has no distribution to distil",
            spec.text
        );
    }
    Ok(answers)
}

/// The teacher's distribution over `answers` (its `alternatives`, or all mass on its answer).
fn distribution(r: &Response, answers: &[String]) -> Option<Vec<f32>> {
    let Response::Answer {
        text, alternatives, ..
    } = r
    else {
        return None;
    };
    let mut p = vec![0.0f32; answers.len()];
    if alternatives.is_empty() {
        let i = answers.iter().position(|a| a == text)?;
        p[i] = 1.0;
    } else {
        for Alternative { text, p: q } in alternatives {
            if let Some(i) = answers.iter().position(|a| a == text) {
                p[i] += q;
            }
        }
    }
    let total: f32 = p.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    Some(p.into_iter().map(|x| x / total).collect())
}

/// Generic-corpus VQA items of the world's `pretrain` task (split `split`), first `n` after
/// a seeded shuffle, crops at the objects' boxes.
fn generic_items(world: &Path, split: &str, n: usize, seed: u64) -> Result<Vec<GoldItem>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let scenes = SplitScenes::load(world, "pretrain", split, Some(n.div_ceil(4).max(8)))?;
    let mut items = sdvp_train::blip::vqa_items(&scenes, seed);
    SplitMix64::derive_named(seed, &["generic", split], 0).shuffle(&mut items);
    items.truncate(n);
    Ok(gold_items(&scenes, items))
}

/// Items of `scenes` with their crops cut (at the exact boxes: validation and replay).
fn gold_items(scenes: &SplitScenes, items: Vec<sdvp_train::blip::VqaItem>) -> Vec<GoldItem> {
    items
        .into_iter()
        .map(|it| {
            let s = &scenes.scenes[it.scene];
            GoldItem {
                pixels: crop(
                    &scenes.images[it.scene],
                    it.object_box.unwrap_or(s.full_box()),
                ),
                question: it.question,
                answer: it.answer,
            }
        })
        .collect()
}

/// The student's training run of a `vqa` step: the kept labels as distributions over the
/// teacher's `answers` (exported as an imagefolder under `OUT/data`), the replay pool (the
/// generic corpus and the earlier steps' kept `vqa` sub-tasks) and the validation sets.
pub(crate) fn trainee(
    spec: &StepSpec,
    student_dir: &Path,
    answers: &[String],
    kept: &[Kept],
    cache: &ImageCache,
    counts: &mut Counts,
) -> Result<VqaDistill> {
    let reqs: Vec<&Request> = kept.iter().map(|k| &k.subtask.request).collect();
    let crops = crops_of(cache, &reqs)?;
    let mut rows = Vec::new();
    let mut task_items = Vec::new();
    for (k, c) in kept.iter().zip(&crops) {
        let (
            Request::Vqa { question, .. },
            Some(
                r @ Response::Answer {
                    text, alternatives, ..
                },
            ),
        ) = (&k.subtask.request, &k.label.response)
        else {
            continue;
        };
        rows.push((
            c.clone(),
            json!({
                "question": question, "answer": text,
                "teacher_confidence": k.label.confidence,
                "teacher_distribution": alternatives.iter().map(|a| json!({"answer": a.text, "p": a.p})).collect::<Vec<_>>(),
                "subtask": k.subtask.id,
            }),
        ));
        match distribution(r, answers) {
            Some(target) => task_items.push(SoftItem {
                pixels: c.clone(),
                question: question.clone(),
                target,
            }),
            None => counts.out_of_vocabulary += 1,
        }
    }
    export_imagefolder(&spec.out.join("data"), &rows)?;
    counts.kept = task_items.len();
    if task_items.is_empty() {
        bail!(
            "no sub-task survived filtering ({:?}); lower --min-confidence, switch off \
             --consistency, or mine more programs",
            counts.reasons
        );
    }

    // The guard's replay pool: the generic corpus and the earlier steps' sub-tasks.
    let mut replay: Vec<SoftItem> =
        generic_items(&spec.world, "train", spec.replay_items, spec.seed)?
            .into_iter()
            .map(|g| SoftItem {
                pixels: g.pixels,
                question: g.question,
                target: Vec::new(),
            })
            .collect();
    counts.replay_generic = replay.len();
    for dir in &spec.earlier {
        let earlier: Vec<Kept> = read_kept(dir)?
            .into_iter()
            .filter(|k| k.subtask.module == ModuleKind::Vqa)
            .collect();
        let reqs: Vec<&Request> = earlier.iter().map(|k| &k.subtask.request).collect();
        for (k, c) in earlier.iter().zip(crops_of(cache, &reqs)?) {
            if let Request::Vqa { question, .. } = &k.subtask.request {
                replay.push(SoftItem {
                    pixels: c,
                    question: question.clone(),
                    target: Vec::new(),
                });
                counts.replay_earlier += 1;
            }
        }
    }

    // Validation: the task's val sub-tasks (its gold programs on the oracle, labels from the
    // scene graphs) and generic val.
    let val_scenes = SplitScenes::load(&spec.world, &spec.task, "val", Some(spec.val_items))?;
    let mut val_task = gold_items(
        &val_scenes,
        task_vqa_items(
            &spec.world,
            &spec.task,
            &val_scenes,
            &spec.out.join("val-subtasks"),
        )?,
    );
    val_task.truncate(spec.val_items);
    let val_generic = generic_items(&spec.world, "val", spec.val_items, spec.seed)?;
    counts.val_task = val_task.len();
    counts.val_generic = val_generic.len();
    VqaDistill::new(
        student_dir,
        answers,
        task_items,
        replay,
        val_task,
        val_generic,
        spec.loss,
    )
}
