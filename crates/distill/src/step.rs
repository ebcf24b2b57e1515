//! One SDVP step: mine a task's calls of one module (`vqa`, `detect`, `verify` or
//! `classify`), label them with the task's teacher, filter, fine-tune the student behind
//! that module with the forgetting guard, and write a module set.
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
use crate::shard::{finished_shards, shard_dir, shard_labels, ShardReport};
use anyhow::{bail, Context, Result};
use sdvp_core::trace::{read_traces, ProgramStyle, Trace};
use sdvp_core::{Backend, Job, ModuleKind, Request, SchedulerConfig};
use sdvp_data::{Example, ImageStore};
use sdvp_eval::{evaluate, EvalSpec, Programs, Shard};
use sdvp_modules::images::{ImageCache, DEFAULT_CACHE_BYTES};
use sdvp_modules::ModulesSpec;
use sdvp_train::runner::{train, RunDir, RunSummary, Schedule, Trainee};
use sdvp_train::scenes::SplitScenes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Everything one step depends on.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// The world (dataset directory).
    pub world: PathBuf,
    pub task: String,
    /// The module distilled: `vqa` (BLIP student), `detect` (OWL-ViT student), `verify` or
    /// `classify` (CLIP student; the teacher's VQA model answers those calls).
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
    /// Ship the best fine-tuned checkpoint even when the untouched student validates
    /// higher (otherwise the module set keeps the untouched student).
    pub ship_trained: bool,
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
    /// False when the step's module set keeps the untouched student, because no checkpoint
    /// beat it on the selection score (the first validation metric).
    #[serde(default = "yes")]
    pub replaced: bool,
}

fn yes() -> bool {
    true
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

fn load_examples(
    world: &Path,
    task: &str,
    split: &str,
    limit: usize,
    shard: Option<Shard>,
) -> Result<Vec<Example>> {
    let report = sdvp_data::loaders::load_task(world, task, split)?;
    Ok(sdvp_eval::select_examples(
        report.examples,
        Some(limit),
        shard,
    ))
}

/// The calls of the task's val gold programs (both styles) on an oracle that knows only
/// the first `spec.val_items` val scenes, with the scene graphs' answers as labels; nothing
/// of another split is read.
pub(crate) fn val_subtask_pairs(spec: &StepSpec) -> Result<Vec<(Request, sdvp_core::Response)>> {
    let scenes = SplitScenes::load(&spec.world, &spec.task, "val", Some(spec.val_items))?;
    let loaded: std::collections::HashSet<&str> =
        scenes.scenes.iter().map(|s| s.id.as_str()).collect();
    let examples: Vec<_> = sdvp_data::loaders::load_task(&spec.world, &spec.task, "val")?
        .examples
        .into_iter()
        .filter(|e| {
            e.images
                .iter()
                .all(|i| loaded.contains(i.image.source.as_str()))
        })
        .collect();
    let oracle = sdvp_data::OracleBackend::new(scenes.scenes.iter().cloned());
    let pairs = sdvp_eval::subtasks::gold_subtasks(
        &examples,
        &spec.task,
        "val",
        &oracle,
        &spec.out.join("val-subtasks"),
    )?;
    Ok(pairs)
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

/// Copies a student checkpoint's files other than its weights (config, tokenizer, processor
/// and generation settings, those present) into an export directory.
pub(crate) fn copy_assets(student_dir: &Path, dir: &Path) -> Result<()> {
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "generation_config.json",
    ] {
        let src = student_dir.join(f);
        if src.is_file() {
            std::fs::copy(&src, dir.join(f))
                .with_context(|| format!("copying {} into {}", src.display(), dir.display()))?;
        }
    }
    Ok(())
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
        ModuleKind::Verify | ModuleKind::Classify => Ok("clip"),
        other => bail!("distillation fine-tunes vqa, detect, verify or classify, not {other}"),
    }
}

/// The modules a step works with, checked.
struct Setup {
    student_spec: ModulesSpec,
    teacher_spec: ModulesSpec,
    /// The teacher's closed answer vocabulary (`vqa` steps).
    answers: Vec<String>,
    student: sdvp_modules::Resolved,
    student_dir: PathBuf,
}

fn setup(spec: &StepSpec) -> Result<Setup> {
    let kind = spec.module;
    let student_spec = ModulesSpec::parse(&spec.modules, Some(&spec.world))?;
    let mut teacher_spec = ModulesSpec::parse(&spec.teacher, Some(&spec.world))?;
    let arch = student_arch(kind)?;
    let answers = match kind {
        ModuleKind::Vqa => crate::step_vqa::teacher_answers(&teacher_spec)?,
        _ => Vec::new(),
    };
    // Verify and classify calls go to the teacher's VQA model unless it has its own module.
    if matches!(kind, ModuleKind::Verify | ModuleKind::Classify) {
        let text = crate::step_clip::teacher_spec(&teacher_spec, kind)?;
        teacher_spec = ModulesSpec::parse(&text, Some(&spec.world))?;
    }
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
    Ok(Setup {
        student_spec,
        teacher_spec,
        answers,
        student,
        student_dir,
    })
}

/// The traces of `examples`' training programs of every style on `pipeline`, run (or
/// resumed) under `root/mine-STYLE`, with ids `STYLE/ID`, in the examples' order. Where
/// `shards` are given and `root` has no run of a style yet, the shards' runs are merged
/// into it first.
fn mine_traces(
    spec: &StepSpec,
    examples: &[Example],
    pipeline: &dyn Backend,
    root: &Path,
    shard: Option<Shard>,
    shards: Option<&[PathBuf]>,
    counts: &mut Counts,
) -> Result<Vec<Trace>> {
    let order: HashMap<&str, usize> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let mut traces: Vec<Trace> = Vec::new();
    for (style, programs) in &spec.programs {
        let name = format!("mine-{}", style.as_str());
        let dir = root.join(&name);
        if let Some(shards) = shards {
            if !dir.join("traces.jsonl").exists() {
                let runs: Vec<PathBuf> = shards.iter().map(|d| d.join(&name)).collect();
                sdvp_eval::merge(&runs, &dir)
                    .with_context(|| format!("merging the shards' {name} runs"))?;
            }
        }
        let eval = EvalSpec {
            task: spec.task.clone(),
            split: "train".into(),
            style: *style,
            programs: programs.clone(),
            modules: spec.modules.clone(),
            out: dir.clone(),
            limit: Some(spec.mine_limit),
            shard,
            max_batch: 64,
            restart: false,
            quiet: false,
        };
        let s = evaluate(&eval, examples, pipeline)?;
        counts.programs += s.total;
        let mut mine = read_traces(&dir.join("traces.jsonl"))?;
        mine.sort_by_key(|t| order.get(t.id.as_str()).copied().unwrap_or(usize::MAX));
        for mut t in mine {
            t.id = format!("{}/{}", style.as_str(), t.id);
            traces.push(t);
        }
    }
    Ok(traces)
}

/// The sub-tasks of `traces` that a step of `spec` distils.
fn subtasks_of(spec: &StepSpec, traces: &[Trace]) -> Vec<SubTask> {
    mine(
        traces,
        &MineOptions {
            modules: [spec.module].into_iter().collect(),
            dedup: spec.dedup,
        },
    )
}

/// Labels `subtasks` with the teacher through the module's adapter; labels already in
/// `known` (by sub-task id) are taken from there.
fn label_subtasks(
    spec: &StepSpec,
    setup: &Setup,
    subtasks: &[SubTask],
    mut known: HashMap<String, Label>,
) -> Result<Vec<Label>> {
    let missing: Vec<SubTask> = subtasks
        .iter()
        .filter(|s| !known.contains_key(&s.id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let teacher = setup
            .teacher_spec
            .build(ImageStore::for_world(&spec.world))?;
        let adapter: Box<dyn Adapter> = match spec.module {
            ModuleKind::Vqa => Box::new(crate::step_vqa::ClosedVocabulary::for_answers(
                &setup.answers,
            )),
            kind => Box::new(OnlyKind(kind)),
        };
        for l in label(&missing, teacher.as_ref(), adapter.as_ref(), 64) {
            known.insert(l.subtask.clone(), l);
        }
    }
    // An adapter may leave a sub-task to the student: it then has no label.
    Ok(subtasks
        .iter()
        .filter_map(|s| known.remove(&s.id))
        .collect())
}

/// Mines and labels shard `shard` of a step's training questions into
/// `OUT/shards/I-of-N/` (see [`crate::shard`]); the step without a shard merges them.
pub fn run_shard(spec: &StepSpec, shard: Shard) -> Result<ShardReport> {
    let dir = shard_dir(&spec.out, shard);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let setup = setup(spec)?;
    let examples = load_examples(
        &spec.world,
        &spec.task,
        "train",
        spec.mine_limit,
        Some(shard),
    )?;
    let pipeline = setup
        .student_spec
        .build(ImageStore::for_world(&spec.world))?;
    let mut counts = Counts::default();
    let traces = mine_traces(
        spec,
        &examples,
        pipeline.as_ref(),
        &dir,
        Some(shard),
        None,
        &mut counts,
    )?;
    drop(pipeline);
    let subtasks = subtasks_of(spec, &traces);
    let labels = label_subtasks(spec, &setup, &subtasks, HashMap::new())?;
    write_jsonl_atomic(&dir.join("labels.jsonl"), &labels)?;
    let r = ShardReport {
        index: shard.index,
        count: shard.count,
        programs: counts.programs,
        mined: subtasks.len(),
        labelled: labels.iter().filter(|l| l.response.is_some()).count(),
        dir: dir.clone(),
    };
    sdvp_eval::write_json_atomic(&dir.join("shard.json"), &r)?;
    Ok(r)
}

/// Runs one step (resuming whatever an earlier run of the same spec left, and merging
/// finished shards of its mining and labelling).
pub fn run_step(spec: &StepSpec) -> Result<StepReport> {
    let out = &spec.out;
    let kind = spec.module;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let setup = setup(spec)?;
    let Setup {
        student_spec,
        answers,
        student,
        student_dir,
        ..
    } = &setup;
    let mut counts = Counts::default();
    let shards = finished_shards(out)?;

    // 1. Mine: the task's training programs on the current pipeline.
    let examples = load_examples(&spec.world, &spec.task, "train", spec.mine_limit, None)?;
    let pipeline = student_spec.build(ImageStore::for_world(&spec.world))?;
    let traces = mine_traces(
        spec,
        &examples,
        pipeline.as_ref(),
        out,
        None,
        shards.as_deref(),
        &mut counts,
    )?;
    let subtasks = subtasks_of(spec, &traces);
    counts.mined = subtasks.len();

    // 2. Label with the teacher through the module's adapter (or take the shards' labels).
    let known = match &shards {
        Some(dirs) => shard_labels(dirs)?,
        None => HashMap::new(),
    };
    let labels = label_subtasks(spec, &setup, &subtasks, known)?;
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
                crate::step_vqa::trainee(spec, student_dir, answers, &kept, &cache, &mut counts)?;
            let (before, training) = fit(spec, &t, &run)?;
            (before, training, None)
        }
        ModuleKind::Verify | ModuleKind::Classify => {
            let t = crate::step_clip::trainee(
                spec,
                student_dir,
                &student.options,
                &kept,
                &cache,
                &mut counts,
            )?;
            let (before, training) = fit(spec, &t, &run)?;
            (before, training, None)
        }
        _ => {
            let t = crate::step_detect::trainee(spec, student_dir, &kept, &cache, &mut counts)?;
            let (before, training) = fit(spec, &t, &run)?;
            let options = crate::step_detect::options(&student.options, &training)?;
            (before, training, Some(options))
        }
    };

    // 5. The module set: the pipeline before, with the module replaced by the distilled
    // student (a detector also gets the operating point chosen on val), unless no checkpoint
    // beat the untouched student on the selection score.
    let replaced = spec.ship_trained
        || match (training.best.first(), before.first()) {
            (Some((_, best)), Some((_, untouched))) => best >= untouched,
            _ => true,
        };
    let mut modules = student_spec.resolved()?;
    for m in &mut modules {
        if m.kind == kind && replaced {
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
        replaced,
    };
    sdvp_eval::write_json_atomic(&out.join("step.json"), &report)?;
    Ok(report)
}
