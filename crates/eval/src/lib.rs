//! Evaluation: run a split's programs (gold or generated) on a module set, score them, and
//! never lose or mix work.
//!
//! A run directory holds `run.json` (the configuration it belongs to), `traces.jsonl` (one
//! trace per example, appended and flushed as each finishes) and `metrics.json` (replaced
//! atomically). Running the same command again resumes: every trace already there is kept,
//! only the missing examples run. A different configuration on the same directory is
//! refused, naming the difference (`restart` starts afresh). `shard` runs a deterministic
//! part of the split, and [`merge`] combines the parts into what one run would have given.

pub mod metrics;
pub mod resume;
pub mod subtasks;

use anyhow::{bail, Context};
use metrics::{Scores, NO_PROGRAM};
use sdvp_core::trace::{append_trace, ProgramStyle, Trace, TraceError};
use sdvp_core::{Backend, Job, SchedulerConfig};
use sdvp_data::Example;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RUN_SCHEMA: &str = "sdvp.run/1";

/// Where a run's programs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Programs {
    /// The examples' gold programs of the run's style.
    Gold,
    /// `{"id", "program"}` lines (what `sdvp generate` writes); `program` may be null.
    File(PathBuf),
}

impl Programs {
    pub fn parse(s: &str) -> Self {
        if s == "gold" {
            Programs::Gold
        } else {
            Programs::File(PathBuf::from(s))
        }
    }
}

/// `i/n`: the examples whose id hashes to `i` modulo `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("--shard `{s}`: expected I/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--shard `{s}`: I is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--shard `{s}`: N is not a number"))?;
        if count == 0 || count > 100_000 || index >= count {
            bail!("--shard `{s}`: need 0 <= I < N <= 100000");
        }
        Ok(Self { index, count })
    }
    /// FNV-1a of the id: the same partition on every machine and toolchain.
    pub fn holds(&self, id: &str) -> bool {
        let h = sdvp_core::rng::name_hash(id);
        (h % self.count as u64) as usize == self.index
    }
}

/// Everything a run directory belongs to (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub schema: String,
    pub task: String,
    pub split: String,
    pub style: ProgramStyle,
    /// `gold`, or the programs file with its sha256.
    pub programs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs_sha256: Option<String>,
    pub modules: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// How many examples the run holds (after limit and shard).
    pub examples: usize,
}

impl RunConfig {
    /// The fields that differ from `other`, as `field: ours vs theirs`.
    pub fn differences(&self, other: &RunConfig) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let keys: std::collections::BTreeSet<&String> = a
            .as_object()
            .into_iter()
            .chain(b.as_object())
            .flat_map(|m| m.keys())
            .collect();
        keys.into_iter()
            .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
            .map(|k| {
                format!(
                    "{k}: {} (this run) vs {} (in the directory)",
                    a.get(k.as_str()).cloned().unwrap_or_default(),
                    b.get(k.as_str()).cloned().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalSpec {
    pub task: String,
    pub split: String,
    pub style: ProgramStyle,
    pub programs: Programs,
    /// The `--modules` text, recorded in `run.json`.
    pub modules: String,
    pub out: PathBuf,
    pub limit: Option<usize>,
    pub shard: Option<Shard>,
    pub max_batch: usize,
    pub restart: bool,
    pub quiet: bool,
}

/// What one evaluation came to.
#[derive(Debug, Clone)]
pub struct EvalSummary {
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    pub no_program: usize,
    pub invalid_program: usize,
    pub execution_error: usize,
    /// Examples whose trace was already there.
    pub resumed: usize,
    /// Lines of an existing traces file that were dropped (1-based).
    pub dropped_lines: Vec<usize>,
    pub traces: PathBuf,
    pub metrics: serde_json::Value,
}

impl EvalSummary {
    /// Programs that did not give an answer, for any reason.
    pub fn errors(&self) -> usize {
        self.no_program + self.invalid_program + self.execution_error
    }
}

/// Write `value` to `path` through a temporary file and a rename.
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Programs by example id from a JSONL file of `{"id", "program"}` lines; a bad line is an
/// error naming file and line (a generated-programs file is ours, not user data).
pub fn read_program_file(path: &Path) -> anyhow::Result<(HashMap<String, Option<String>>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sha = sha256_hex(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let Some(id) = v["id"].as_str() else {
            bail!("{}:{}: needs a string field `id`", path.display(), i + 1);
        };
        out.insert(id.to_string(), v["program"].as_str().map(str::to_string));
    }
    Ok((out, sha))
}

/// The examples a run holds: `limit` first, then the shard's part.
pub fn select_examples(
    mut examples: Vec<Example>,
    limit: Option<usize>,
    shard: Option<Shard>,
) -> Vec<Example> {
    if let Some(n) = limit {
        examples.truncate(n);
    }
    if let Some(s) = shard {
        examples.retain(|e| s.holds(&e.id));
    }
    examples
}

fn no_program_trace(
    ex: &Example,
    style: ProgramStyle,
    meta: BTreeMap<String, serde_json::Value>,
    why: &str,
) -> Trace {
    let job = Job {
        id: ex.id.clone(),
        source: String::new(),
        inputs: ex.inputs(),
        meta,
    };
    let mut t = job.empty_trace(style);
    t.error = Some(TraceError {
        kind: NO_PROGRAM.into(),
        message: why.into(),
        line: None,
        problems: Vec::new(),
    });
    t
}

fn example_meta(ex: &Example) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("question".to_string(), json!(ex.question)),
        ("gold_answer".to_string(), json!(ex.answer)),
        ("task".to_string(), json!(ex.task)),
        ("question_type".to_string(), json!(ex.question_type)),
    ])
}

/// Runs `jobs` as programs of `style` (the visual-reasoning step registry, or the Python
/// sandbox with its default limits), calling `done` as each finishes.
pub fn run_programs(
    style: ProgramStyle,
    backend: &dyn Backend,
    config: SchedulerConfig,
    jobs: &[Job],
    done: impl FnMut(usize, Trace),
) -> sdvp_core::scheduler::SchedulerStats {
    match style {
        ProgramStyle::Step => sdvp_program::exec::run_step_programs_streaming(
            &sdvp_program::steps::Registry::visual_reasoning(Default::default()),
            backend,
            config,
            jobs,
            done,
        ),
        ProgramStyle::Python => sdvp_python::run_python_programs_streaming(
            backend,
            config,
            jobs,
            &Default::default(),
            done,
        ),
    }
}

/// Runs and scores `examples` (already limited and sharded by [`select_examples`]).
pub fn evaluate(
    spec: &EvalSpec,
    examples: &[Example],
    backend: &dyn Backend,
) -> anyhow::Result<EvalSummary> {
    let (given, programs_sha256) = match &spec.programs {
        Programs::Gold => (None, None),
        Programs::File(p) => {
            let (m, sha) = read_program_file(p)?;
            (Some(m), Some(sha))
        }
    };
    let config = RunConfig {
        schema: RUN_SCHEMA.into(),
        task: spec.task.clone(),
        split: spec.split.clone(),
        style: spec.style,
        programs: match &spec.programs {
            Programs::Gold => "gold".into(),
            Programs::File(p) => p.display().to_string(),
        },
        programs_sha256,
        modules: spec.modules.clone(),
        limit: spec.limit,
        shard: spec.shard,
        examples: examples.len(),
    };
    std::fs::create_dir_all(&spec.out)
        .with_context(|| format!("creating {}", spec.out.display()))?;
    let run_path = spec.out.join("run.json");
    let traces_path = spec.out.join("traces.jsonl");
    if spec.restart {
        for f in [&traces_path, &spec.out.join("metrics.json")] {
            if f.exists() {
                std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
            }
        }
    } else if run_path.is_file() {
        let text = std::fs::read_to_string(&run_path)
            .with_context(|| format!("reading {}", run_path.display()))?;
        let old: RunConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a run configuration", run_path.display()))?;
        let diff = config.differences(&old);
        if !diff.is_empty() {
            bail!(
                "{} belongs to another run configuration ({}); use another --out, or --restart to start afresh",
                spec.out.display(),
                diff.join("; ")
            );
        }
    } else if traces_path.is_file() {
        bail!(
            "{} has traces but no run.json (written by an older sdvp?): use --restart to start afresh",
            spec.out.display()
        );
    }
    write_json_atomic(&run_path, &config)?;

    let resumed = resume::resume_traces(&traces_path)?;
    if !resumed.dropped_lines.is_empty() && !spec.quiet {
        eprintln!(
            "warning: {}: dropped {} unreadable or duplicate line(s): {:?}; those examples run again",
            traces_path.display(),
            resumed.dropped_lines.len(),
            resumed.dropped_lines
        );
    }
    let wanted: HashSet<&str> = examples.iter().map(|e| e.id.as_str()).collect();
    let mut scores = Scores::default();
    let mut finished: HashSet<String> = HashSet::new();
    for t in &resumed.traces {
        if wanted.contains(t.id.as_str()) {
            scores.add(t);
            finished.insert(t.id.clone());
        }
    }
    let resumed_count = finished.len();
    let dropped_lines = resumed.dropped_lines;
    drop(resumed.traces);

    let mut traces_file = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&traces_path)
            .with_context(|| format!("opening {}", traces_path.display()))?,
    );
    let mut write_error: Option<std::io::Error> = None;
    let mut jobs = Vec::new();
    for ex in examples {
        if finished.contains(&ex.id) {
            continue;
        }
        let source = match &given {
            None => match spec.style {
                ProgramStyle::Step => ex.gold_step.clone(),
                ProgramStyle::Python => ex.gold_python.clone(),
            },
            Some(m) => m.get(&ex.id).cloned().flatten(),
        };
        let meta = example_meta(ex);
        let Some(source) = source else {
            let why = match &given {
                None => "the example has no gold program of this style",
                Some(m) if m.contains_key(&ex.id) => "generation gave no program",
                Some(_) => "the programs file has no line for this example",
            };
            let t = no_program_trace(ex, spec.style, meta, why);
            if let Err(e) = append_trace(&mut traces_file, &t) {
                write_error.get_or_insert(e);
            }
            scores.add(&t);
            continue;
        };
        jobs.push(Job {
            id: ex.id.clone(),
            source,
            inputs: ex.inputs(),
            meta,
        });
    }
    let bar = if spec.quiet {
        sdvp_core::progress::hidden()
    } else {
        sdvp_core::progress::bar(jobs.len() as u64, "programs")
    };
    let config = SchedulerConfig {
        max_batch: spec.max_batch.max(1),
        ..Default::default()
    };
    let on_done = |_i: usize, trace: Trace| {
        if write_error.is_none() {
            if let Err(e) = append_trace(&mut traces_file, &trace) {
                write_error = Some(e);
            }
        }
        scores.add(&trace);
        bar.inc(1);
    };
    let stats = run_programs(spec.style, backend, config, &jobs, on_done);
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", traces_path.display()));
    }
    traces_file
        .flush()
        .with_context(|| format!("writing {}", traces_path.display()))?;

    let mut metrics = scores.json(examples.len());
    metrics["run"] = config_for_metrics(spec, backend);
    metrics["resumed"] = json!(resumed_count);
    metrics["scheduler"] = serde_json::to_value(stats)?;
    write_json_atomic(&spec.out.join("metrics.json"), &metrics)?;
    let o = &scores.overall;
    Ok(EvalSummary {
        accuracy: if examples.is_empty() {
            0.0
        } else {
            o.correct as f64 / examples.len() as f64
        },
        correct: o.correct,
        total: examples.len(),
        no_program: o.no_program,
        invalid_program: o.invalid_program,
        execution_error: o.execution_error + examples.len().saturating_sub(o.total),
        resumed: resumed_count,
        dropped_lines,
        traces: traces_path,
        metrics,
    })
}

fn config_for_metrics(spec: &EvalSpec, backend: &dyn Backend) -> serde_json::Value {
    json!({
        "task": spec.task,
        "split": spec.split,
        "style": spec.style,
        "modules": spec.modules,
        "backend": backend.name(),
    })
}

/// Combines shard runs `0/n … n-1/n` of one configuration into `out` (traces and metrics
/// equal to an unsharded run's, in shard order).
pub fn merge(runs: &[PathBuf], out: &Path) -> anyhow::Result<serde_json::Value> {
    if runs.is_empty() {
        bail!("merge needs at least one run directory");
    }
    let mut configs = Vec::new();
    for r in runs {
        let p = r.join("run.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let c: RunConfig =
            serde_json::from_str(&text).with_context(|| format!("{}: not a run", p.display()))?;
        configs.push(c);
    }
    let count = match configs[0].shard {
        Some(s) => s.count,
        None => bail!(
            "{} is not a shard (no shard in run.json)",
            runs[0].display()
        ),
    };
    let mut base = configs[0].clone();
    base.shard = None;
    let mut seen = vec![false; count];
    for (r, c) in runs.iter().zip(&configs) {
        let Some(s) = c.shard else {
            bail!("{} is not a shard (no shard in run.json)", r.display());
        };
        if s.count != count {
            bail!(
                "{}: shard {}/{} is not of {count}",
                r.display(),
                s.index,
                s.count
            );
        }
        if std::mem::replace(&mut seen[s.index], true) {
            bail!("shard {}/{count} given twice ({})", s.index, r.display());
        }
        let mut mine = c.clone();
        mine.shard = None;
        mine.examples = base.examples;
        let diff = mine.differences(&base);
        if !diff.is_empty() {
            bail!(
                "{} is of another configuration: {}",
                r.display(),
                diff.join("; ")
            );
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        bail!("shard {missing}/{count} is missing");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let traces_path = out.join("traces.jsonl");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&traces_path)
            .with_context(|| format!("creating {}", traces_path.display()))?,
    );
    let mut scores = Scores::default();
    let mut examples = 0usize;
    for (r, c) in runs.iter().zip(&configs) {
        examples += c.examples;
        let got = resume::resume_traces(&r.join("traces.jsonl"))?;
        if !got.dropped_lines.is_empty() {
            bail!(
                "{}/traces.jsonl has unreadable lines {:?}: resume that shard first",
                r.display(),
                got.dropped_lines
            );
        }
        for t in &got.traces {
            append_trace(&mut w, t)
                .with_context(|| format!("writing {}", traces_path.display()))?;
            scores.add(t);
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", traces_path.display()))?;
    base.examples = examples;
    write_json_atomic(&out.join("run.json"), &base)?;
    let mut metrics = scores.json(examples);
    metrics["merged_from"] = json!(runs
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>());
    write_json_atomic(&out.join("metrics.json"), &metrics)?;
    Ok(metrics)
}
