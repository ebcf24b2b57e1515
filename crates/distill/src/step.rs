//! One SDVP step: mine a task's calls of one module (`vqa` or `detect`), label them with
//! the task's teacher, filter, fine-tune the student behind that module with the forgetting
//! guard, and write a module set.
//!
//! A step directory holds `mine-STYLE/` (the training programs' runs, resumable),
//! `labels.jsonl` (every mined sub-task with its label and verdict), `kept.jsonl` (what the
//! student trains on; the next step replays it), `data/` (the kept sub-tasks in the Hugging
//! Face `imagefolder` layout), `train/` (the resumable training run), `modules.json` (the
//! pipeline with the module replaced by `train/best`) and `step.json` (counts and scores). Every
//! stage is a pure function of its inputs and the seed, so running the same command again
//! after `kill -9` ends with the same weights.

use crate::finetune::VqaLoss;
use crate::label::{label, Adapter, Label};
use crate::mine::{mine, MineOptions, SubTask};
use crate::replay::{filter, Decision, FilterOptions};
use anyhow::{bail, Context, Result};
use sdvp_core::trace::{read_traces, ProgramStyle, Trace};
use sdvp_core::{Backend, Job, ModuleKind, Request, SchedulerConfig};
use sdvp_data::{Example, ImageStore};
use sdvp_eval::{evaluate, EvalSpec, Programs};
use sdvp_modules::images::{ImageCache, DEFAULT_CACHE_BYTES};
use sdvp_modules::ModulesSpec;
use sdvp_train::runner::{train, RunDir, RunSummary, Schedule, Trainee};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything one step depends on.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The world (dataset directory).
    pub world: PathBuf,
    pub task: String,
    /// The module distilled: `vqa` (BLIP student) or `detect` (OWL-ViT student).
    pub module: ModuleKind,
    /// The pipeline before this step (`--modules` text): mining runs it, and the step's
    /// module set is it with `module` replaced.
    pub modules: String,
    /// The teacher's module set (its module of the same kind labels the sub-tasks).
    pub teacher: String,
    /// Where mined programs come from (gold, or a programs file per style).
    pub programs: BTreeMap<ProgramStyle, Programs>,
    /// Training questions mined per style.
    pub mine_limit: usize,
    pub dedup: bool,
    pub filter: FilterOptions,
    /// For `detect`, only `lambda` and `replay_batch` apply (it learns the teacher's boxes).
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

pub(crate) fn write_jsonl_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    sdvp_models::train::checkpoint::write_atomic(text.as_bytes(), path)
}

pub(crate) fn read_kept(dir: &Path) -> Result<Vec<Kept>> {
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

fn load_examples(world: &Path, task: &str, split: &str, limit: usize) -> Result<Vec<Example>> {
    let report = sdvp_data::loaders::load_task(world, task, split)?;
    Ok(sdvp_eval::select_examples(
        report.examples,
        Some(limit),
        None,
    ))
}

/// The crops of `reqs`, rebuilt from their provenance.
pub(crate) fn crops_of(cache: &ImageCache, reqs: &[&Request]) -> Result<Vec<image::RgbImage>> {
    reqs.iter()
        .map(|r| {
            let img = r
                .image()
                .ok_or_else(|| anyhow::anyhow!("a {} request without an image", r.kind()))?;
            Ok(cache
                .crop(img)
                .with_context(|| format!("rebuilding the crop of {}", img.source))?
                .pixels)
        })
        .collect()
}

/// Writes `rows` (a crop and its metadata) as a Hugging Face `imagefolder` dataset
/// (`metadata.jsonl` with a `file_name` per row, and PNG crops), replacing `dir` whole.
pub(crate) fn export_imagefolder(dir: &Path, rows: &[(image::RgbImage, Value)]) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(tmp.join("images"))
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut meta = String::new();
    for (i, (crop, fields)) in rows.iter().enumerate() {
        let name = format!("images/{i:06}.png");
        crop.save(tmp.join(&name))
            .with_context(|| format!("writing {}", tmp.join(&name).display()))?;
        let mut row = serde_json::Map::new();
        row.insert("file_name".into(), json!(name));
        if let Value::Object(m) = fields {
            row.extend(m.clone());
        }
        meta.push_str(&serde_json::to_string(&row)?);
        meta.push('\n');
    }
    std::fs::write(tmp.join("metadata.jsonl"), meta)
        .with_context(|| format!("writing {}/metadata.jsonl", tmp.display()))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))
}

/// Sends only the requests of one module kind, unchanged.
pub struct OnlyKind(pub ModuleKind);

impl Adapter for OnlyKind {
    fn to_teacher(&self, request: &Request) -> Option<Request> {
        (request.kind() == self.0).then(|| request.clone())
    }
}

/// Validates the untouched student, then trains it; the run's metrics begin with that
/// step-0 validation.
fn fit(
    spec: &StepSpec,
    trainee: &dyn Trainee,
    run: &RunDir,
) -> Result<(Vec<(String, f64)>, RunSummary)> {
    let before = trainee.validate()?;
    if !run.metrics().is_file() {
        std::fs::create_dir_all(&run.root)
            .with_context(|| format!("creating {}", run.root.display()))?;
        let mut rec = json!({"step": 0, "split": "val"});
        for (k, v) in &before {
            rec[format!("val_{k}")] = json!(v);
        }
        write_jsonl_atomic(&run.metrics(), &[rec])?;
    }
    let training = train(
        &format!("sdvp {} {}", spec.task, spec.module),
        trainee,
        &spec.schedule,
        spec.seed,
        run,
    )?;
    Ok((before, training))
}

/// The architecture distillation fine-tunes behind `kind`.
fn student_arch(kind: ModuleKind) -> Result<&'static str> {
    match kind {
        ModuleKind::Vqa => Ok("blip-vqa"),
        ModuleKind::Detect => Ok("owlvit"),
        other => bail!("distillation fine-tunes vqa or detect, not {other}"),
    }
}

/// Runs one step (resuming whatever an earlier run of the same spec left).
pub fn run_step(spec: &StepSpec) -> Result<StepReport> {
    let out = &spec.out;
    let kind = spec.module;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let student_spec = ModulesSpec::parse(&spec.modules, Some(&spec.world))?;
    let teacher_spec = ModulesSpec::parse(&spec.teacher, Some(&spec.world))?;
    let arch = student_arch(kind)?;
    let answers = match kind {
        ModuleKind::Vqa => crate::step_vqa::teacher_answers(&teacher_spec)?,
        _ => Vec::new(),
    };
    if !teacher_spec.resolved()?.iter().any(|r| r.kind == kind) {
        bail!("teacher `{}` has no {kind} module", spec.teacher);
    }
    let student = student_spec
        .resolved()?
        .into_iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| anyhow::anyhow!("--modules `{}` has no {kind} module", spec.modules))?;
    if student.arch != arch {
        bail!(
            "the student behind {kind} is `{}`; distillation fine-tunes {arch} students there",
            student.arch
        );
    }
    let student_dir = student
        .dir
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the {kind} student has no weights directory"))?;
    let mut counts = Counts::default();

    // 1. Mine: the task's training programs on the current pipeline.
    let examples = load_examples(&spec.world, &spec.task, "train", spec.mine_limit)?;
    let mut traces: Vec<Trace> = Vec::new();
    let pipeline = student_spec.build(ImageStore::for_world(&spec.world))?;
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
        let s = evaluate(&eval, &examples, pipeline.as_ref())?;
        counts.programs += s.total;
        for mut t in read_traces(&dir.join("traces.jsonl"))? {
            t.id = format!("{}/{}", style.as_str(), t.id);
            traces.push(t);
        }
    }
    let subtasks = mine(
        &traces,
        &MineOptions {
            modules: [kind].into_iter().collect(),
            dedup: spec.dedup,
        },
    );
    counts.mined = subtasks.len();

    // 2. Label with the teacher through the module's adapter.
    let teacher = teacher_spec.build(ImageStore::for_world(&spec.world))?;
    let adapter: Box<dyn Adapter> = match kind {
        ModuleKind::Vqa => Box::new(crate::step_vqa::ClosedVocabulary::for_answers(&answers)),
        _ => Box::new(OnlyKind(kind)),
    };
    let labels = label(&subtasks, teacher.as_ref(), adapter.as_ref(), 64);
    counts.labelled = labels.iter().filter(|l| l.response.is_some()).count();

    // 3. Filter: confidence, then replay consistency with the gold answer. A request the
    // substituted labels lead to (a crop at a teacher's box) is answered by the pipeline.
    let styles: BTreeMap<&str, ProgramStyle> =
        traces.iter().map(|t| (t.id.as_str(), t.style)).collect();
    let runner = |b: &dyn Backend, job: &Job| {
        let style = styles
            .get(job.id.as_str())
            .copied()
            .unwrap_or(ProgramStyle::Step);
        run_one(b, job, style)
    };
    let decisions: Vec<Decision> = filter(
        &traces,
        &subtasks,
        &labels,
        spec.filter,
        &runner,
        Some(pipeline.as_ref()),
    );
    drop(pipeline);
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

    // 4. Fine-tune the student on the kept labels, with the guard.
    let cache = ImageCache::new(ImageStore::for_world(&spec.world), DEFAULT_CACHE_BYTES);
    let run = RunDir::new(out.join("train"));
    let (before, training, options) = match kind {
        ModuleKind::Vqa => {
            let t =
                crate::step_vqa::trainee(spec, &student_dir, &answers, &kept, &cache, &mut counts)?;
            let (before, training) = fit(spec, &t, &run)?;
            (before, training, None)
        }
        _ => {
            let t = crate::step_detect::trainee(spec, &student_dir, &kept, &cache, &mut counts)?;
            let (before, training) = fit(spec, &t, &run)?;
            let options = crate::step_detect::options(&student.options, &training)?;
            (before, training, Some(options))
        }
    };

    // 5. The module set: the pipeline before, with the module replaced by the distilled
    // student (a detector also gets the operating point chosen on val).
    let mut modules = student_spec.resolved()?;
    for m in &mut modules {
        if m.kind == kind {
            m.dir = Some(run.best().canonicalize().unwrap_or_else(|_| run.best()));
            m.sha256 = None;
            if let Some(o) = &options {
                m.options = o.clone();
            }
        } else if let Some(d) = &m.dir {
            m.dir = Some(d.canonicalize().unwrap_or_else(|_| d.clone()));
        }
    }
    sdvp_modules::set::write_module_set(out, &modules)?;
    let report = StepReport {
        task: spec.task.clone(),
        module: kind.as_str().into(),
        modules_before: spec.modules.clone(),
        teacher: spec.teacher.clone(),
        counts,
        before,
        training,
        lambda: spec.loss.lambda,
        hard_labels: spec.loss.hard || kind == ModuleKind::Detect,
    };
    sdvp_eval::write_json_atomic(&out.join("step.json"), &report)?;
    Ok(report)
}
