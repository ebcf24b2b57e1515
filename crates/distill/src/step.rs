//! One SDVP step: mine a task's `vqa` calls, label them with the task's teacher, filter,
//! fine-tune the student behind `vqa` with the forgetting guard, and write a module set.
//!
//! A step directory holds `mine-STYLE/` (the training programs' runs, resumable),
//! `labels.jsonl` (every mined sub-task with its label and verdict), `kept.jsonl` (what the
//! student trains on; the next step replays it), `data/` (the kept sub-tasks in the Hugging
//! Face `imagefolder` layout), `train/` (the resumable training run), `modules.json` (the
//! pipeline with `vqa` replaced by `train/best`) and `step.json` (counts and scores). Every
//! stage is a pure function of its inputs and the seed, so running the same command again
//! after `kill -9` ends with the same weights.

use crate::finetune::{GoldItem, SoftItem, VqaDistill, VqaLoss};
use crate::label::{label, Adapter, Label};
use crate::mine::{mine, MineOptions, SubTask};
use crate::replay::{filter, Decision, FilterOptions};
use anyhow::{bail, Context, Result};
use sdvp_core::module::Alternative;
use sdvp_core::rng::SplitMix64;
use sdvp_core::trace::{read_traces, ProgramStyle, Trace};
use sdvp_core::{Backend, Job, ModuleKind, Request, Response, SchedulerConfig};
use sdvp_data::{Example, ImageStore};
use sdvp_eval::{evaluate, EvalSpec, Programs};
use sdvp_modules::images::{ImageCache, DEFAULT_CACHE_BYTES};
use sdvp_modules::ModulesSpec;
use sdvp_train::runner::{train, RunDir, RunSummary, Schedule, Trainee};
use sdvp_train::scenes::{crop, SplitScenes};
use sdvp_train::subtask_items::task_vqa_items;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything one step depends on.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The world (dataset directory).
    pub world: PathBuf,
    pub task: String,
    /// The pipeline before this step (`--modules` text): mining runs it, and the step's
    /// module set is it with `vqa` replaced.
    pub modules: String,
    /// The teacher's module set (its `vqa` labels the sub-tasks).
    pub teacher: String,
    /// Where mined programs come from (gold, or a programs file per style).
    pub programs: BTreeMap<ProgramStyle, Programs>,
    /// Training questions mined per style.
    pub mine_limit: usize,
    pub dedup: bool,
    pub filter: FilterOptions,
    pub loss: VqaLoss,
    pub schedule: Schedule,
    pub seed: u64,
    /// Generic-corpus items in the guard's replay pool.
    pub replay_items: usize,
    /// Earlier steps' directories: their kept sub-tasks join the replay pool.
    pub earlier: Vec<PathBuf>,
    /// Validation items (task sub-tasks from the val split; generic corpus val).
    pub val_items: usize,
    pub out: PathBuf,
}

/// How many sub-tasks each stage kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub programs: usize,
    pub mined: usize,
    /// Sub-tasks the adapter could send to the teacher.
    pub labelled: usize,
    /// Reasons of the filter (`kept`, `low_confidence`, `disagrees`, …).
    pub reasons: BTreeMap<String, usize>,
    pub kept: usize,
    /// Kept labels whose answer lies outside the candidate vocabulary (dropped).
    pub out_of_vocabulary: usize,
    pub replay_generic: usize,
    pub replay_earlier: usize,
    pub val_task: usize,
    pub val_generic: usize,
}

/// What a finished step reports (`step.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub task: String,
    pub module: String,
    pub modules_before: String,
    pub teacher: String,
    pub counts: Counts,
    /// Validation of the student before this step (the same sets as `training.best`).
    pub before: Vec<(String, f64)>,
    pub training: RunSummary,
    pub lambda: f64,
    pub hard_labels: bool,
}

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

/// One program re-run against `backend` (the replay filter's runner).
pub fn run_one(backend: &dyn Backend, job: &Job, style: ProgramStyle) -> Trace {
    let mut out: Option<Trace> = None;
    sdvp_eval::run_programs(
        style,
        backend,
        SchedulerConfig::default(),
        std::slice::from_ref(job),
        |_, t| out = Some(t),
    );
    out.unwrap_or_else(|| Trace::new(job.id.clone(), style, job.source.clone()))
}

/// A kept sub-task with its label, as `kept.jsonl` stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    pub subtask: SubTask,
    pub label: Label,
}

fn write_jsonl_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    sdvp_models::train::checkpoint::write_atomic(text.as_bytes(), path)
}

fn read_kept(dir: &Path) -> Result<Vec<Kept>> {
    let path = dir.join("kept.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is {} a finished distillation step?)",
            path.display(),
            dir.display()
        )
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
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

/// The closed answer vocabulary of the teacher's `vqa` module (`options.answers`).
fn teacher_answers(spec: &ModulesSpec) -> Result<Vec<String>> {
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

fn crops_of(cache: &ImageCache, reqs: &[&Request]) -> Result<Vec<image::RgbImage>> {
    reqs.iter()
        .map(|r| {
            let img = r
                .image()
                .ok_or_else(|| anyhow::anyhow!("a vqa request without an image"))?;
            Ok(cache
                .crop(img)
                .with_context(|| format!("rebuilding the crop of {}", img.source))?
                .pixels)
        })
        .collect()
}

/// Writes the kept sub-tasks as a Hugging Face `imagefolder` dataset (`metadata.jsonl` and
/// PNG crops), replacing `dir` whole.
fn export_imagefolder(dir: &Path, kept: &[Kept], crops: &[image::RgbImage]) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(tmp.join("images"))
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut meta = String::new();
    for (i, (k, c)) in kept.iter().zip(crops).enumerate() {
        let name = format!("images/{i:06}.png");
        c.save(tmp.join(&name))
            .with_context(|| format!("writing {}", tmp.join(&name).display()))?;
        let (question, answer, dist) = match (&k.subtask.request, &k.label.response) {
            (
                Request::Vqa { question, .. },
                Some(Response::Answer {
                    text, alternatives, ..
                }),
            ) => (question.clone(), text.clone(), alternatives.clone()),
            _ => continue,
        };
        meta.push_str(&serde_json::to_string(&json!({
            "file_name": name, "question": question, "answer": answer,
            "teacher_confidence": k.label.confidence,
            "teacher_distribution": dist.iter().map(|a| json!({"answer": a.text, "p": a.p})).collect::<Vec<_>>(),
            "subtask": k.subtask.id,
        }))?);
        meta.push('\n');
    }
    std::fs::write(tmp.join("metadata.jsonl"), meta)
        .with_context(|| format!("writing {}/metadata.jsonl", tmp.display()))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))
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

fn load_examples(world: &Path, task: &str, split: &str, limit: usize) -> Result<Vec<Example>> {
    let report = sdvp_data::loaders::load_task(world, task, split)?;
    Ok(sdvp_eval::select_examples(
        report.examples,
        Some(limit),
        None,
    ))
}

/// Runs one step (resuming whatever an earlier run of the same spec left).
pub fn run_step(spec: &StepSpec) -> Result<StepReport> {
    let out = &spec.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let student_spec = ModulesSpec::parse(&spec.modules, Some(&spec.world))?;
    let teacher_spec = ModulesSpec::parse(&spec.teacher, Some(&spec.world))?;
    let answers = teacher_answers(&teacher_spec)?;
    let student_vqa = student_spec
        .resolved()?
        .into_iter()
        .find(|r| r.kind == ModuleKind::Vqa)
        .ok_or_else(|| anyhow::anyhow!("--modules `{}` has no vqa module", spec.modules))?;
    if student_vqa.arch != "blip-vqa" {
        bail!(
            "the student behind vqa is `{}`; distillation fine-tunes blip-vqa students",
            student_vqa.arch
        );
    }
    let student_dir = student_vqa
        .dir
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the vqa student has no weights directory"))?;
    let mut counts = Counts::default();

    // 1. Mine: the task's training programs on the current pipeline.
    let examples = load_examples(&spec.world, &spec.task, "train", spec.mine_limit)?;
    let mut traces: Vec<Trace> = Vec::new();
    {
        let backend = student_spec.build(ImageStore::for_world(&spec.world))?;
        for (style, programs) in &spec.programs {
            let dir = out.join(format!("mine-{}", style.as_str()));
            let eval = EvalSpec {
                task: spec.task.clone(),
                split: "train".into(),
                style: *style,
                programs: programs.clone(),
                modules: spec.modules.clone(),
                out: dir.clone(),
                limit: Some(spec.mine_limit),
                shard: None,
                max_batch: 64,
                restart: false,
                quiet: false,
            };
            let s = evaluate(&eval, &examples, backend.as_ref())?;
            counts.programs += s.total;
            for mut t in read_traces(&dir.join("traces.jsonl"))? {
                t.id = format!("{}/{}", style.as_str(), t.id);
                traces.push(t);
            }
        }
    }
    let subtasks = mine(
        &traces,
        &MineOptions {
            modules: [ModuleKind::Vqa].into_iter().collect(),
            dedup: spec.dedup,
        },
    );
    counts.mined = subtasks.len();

    // 2. Label with the teacher through the vocabulary adapter.
    let teacher = teacher_spec.build(ImageStore::for_world(&spec.world))?;
    let adapter = ClosedVocabulary::for_answers(&answers);
    let labels = label(&subtasks, teacher.as_ref(), &adapter, 64);
    counts.labelled = labels.iter().filter(|l| l.response.is_some()).count();

    // 3. Filter: confidence, then replay consistency with the gold answer.
    let styles: BTreeMap<&str, ProgramStyle> =
        traces.iter().map(|t| (t.id.as_str(), t.style)).collect();
    let runner = |b: &dyn Backend, job: &Job| {
        let style = styles
            .get(job.id.as_str())
            .copied()
            .unwrap_or(ProgramStyle::Step);
        run_one(b, job, style)
    };
    let decisions: Vec<Decision> = filter(&traces, &subtasks, &labels, spec.filter, &runner);
    let by_id: BTreeMap<&str, &Label> = labels.iter().map(|l| (l.subtask.as_str(), l)).collect();
    let verdicts: BTreeMap<&str, &Decision> =
        decisions.iter().map(|d| (d.subtask.as_str(), d)).collect();
    let mut rows = Vec::with_capacity(subtasks.len());
    let mut kept: Vec<Kept> = Vec::new();
    for s in &subtasks {
        let l = by_id.get(s.id.as_str()).copied();
        let d = verdicts.get(s.id.as_str()).copied();
        let reason = d.map_or("no_label", |d| d.reason.as_str());
        *counts.reasons.entry(reason.to_string()).or_default() += 1;
        rows.push(json!({"subtask": s, "label": l, "decision": d}));
        if let (Some(l), true) = (l, d.is_some_and(|d| d.keep)) {
            kept.push(Kept {
                subtask: s.clone(),
                label: l.clone(),
            });
        }
    }
    write_jsonl_atomic(&out.join("labels.jsonl"), &rows)?;
    write_jsonl_atomic(&out.join("kept.jsonl"), &kept)?;

    // 4. The training items: crops rebuilt from provenance, targets from the teacher.
    let cache = ImageCache::new(ImageStore::for_world(&spec.world), DEFAULT_CACHE_BYTES);
    let reqs: Vec<&Request> = kept.iter().map(|k| &k.subtask.request).collect();
    let crops = crops_of(&cache, &reqs)?;
    export_imagefolder(&out.join("data"), &kept, &crops)?;
    let mut task_items = Vec::new();
    for (k, c) in kept.iter().zip(&crops) {
        let (Request::Vqa { question, .. }, Some(r)) = (&k.subtask.request, &k.label.response)
        else {
            continue;
        };
        match distribution(r, &answers) {
            Some(target) => task_items.push(SoftItem {
                pixels: c.clone(),
                question: question.clone(),
                target,
            }),
            None => counts.out_of_vocabulary += 1,
        }
    }
    counts.kept = task_items.len();
    if task_items.is_empty() {
        bail!(
            "no sub-task survived filtering ({:?}); lower --min-confidence, switch off \
             --consistency, or mine more programs",
            counts.reasons
        );
    }

    // 5. The guard's replay pool: the generic corpus and the earlier steps' sub-tasks.
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
        let earlier = read_kept(dir)?;
        let reqs: Vec<&Request> = earlier.iter().map(|k| &k.subtask.request).collect();
        for (k, c) in earlier.iter().zip(crops_of(&cache, &reqs)?) {
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
            &out.join("val-subtasks"),
        )?,
    );
    val_task.truncate(spec.val_items);
    let val_generic = generic_items(&spec.world, "val", spec.val_items, spec.seed)?;
    counts.val_task = val_task.len();
    counts.val_generic = val_generic.len();

    // 6. Fine-tune.
    let trainee = VqaDistill::new(
        &student_dir,
        &answers,
        task_items,
        replay,
        val_task,
        val_generic,
        spec.loss,
    )?;
    let before = trainee.validate()?;
    let run = RunDir::new(out.join("train"));
    if !run.metrics().is_file() {
        // Step 0 of the validation curves: the student as the step found it.
        std::fs::create_dir_all(&run.root)
            .with_context(|| format!("creating {}", run.root.display()))?;
        let mut rec = json!({"step": 0, "split": "val"});
        for (k, v) in &before {
            rec[format!("val_{k}")] = json!(v);
        }
        write_jsonl_atomic(&run.metrics(), &[rec])?;
    }
    let training = train(
        &format!("sdvp {} vqa", spec.task),
        &trainee,
        &spec.schedule,
        spec.seed,
        &run,
    )?;

    // 7. The module set: the pipeline before, with vqa replaced by the distilled student.
    let mut modules = student_spec.resolved()?;
    for m in &mut modules {
        if m.kind == ModuleKind::Vqa {
            m.dir = Some(run.best().canonicalize().unwrap_or_else(|_| run.best()));
            m.sha256 = None;
        } else if let Some(d) = &m.dir {
            m.dir = Some(d.canonicalize().unwrap_or_else(|_| d.clone()));
        }
    }
    sdvp_modules::set::write_module_set(out, &modules)?;
    let report = StepReport {
        task: spec.task.clone(),
        module: "vqa".into(),
        modules_before: spec.modules.clone(),
        teacher: spec.teacher.clone(),
        counts,
        before,
        training,
        lambda: spec.loss.lambda,
        hard_labels: spec.loss.hard,
    };
    sdvp_eval::write_json_atomic(&out.join("step.json"), &report)?;
    Ok(report)
}
