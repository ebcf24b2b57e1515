//! `sdvp eval`: run programs on a dataset split and score the answers.
//!
//! Writes `RUN/traces.jsonl` (one trace per program, appended and flushed as each finishes)
//! and `RUN/metrics.json` (overall and per question type accuracy, error kinds), replaced
//! atomically. Run it again on the same `RUN` after a kill and it resumes: programs whose
//! traces are already there are not run again, and a half-written last line is dropped.

use anyhow::Context;
use sdvp_data::{load_split, Example};
use sdvp_program::exec::{run_step_programs_streaming, Job};
use sdvp_program::steps::Registry;
use sdvp_program::trace::{append_trace, Trace};
use sdvp_program::value::normalize_answer;
use sdvp_program::{Backend, SchedulerConfig};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::backends::ModulesSpec;
use crate::cmd_program::Style;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Dataset directory (DIR/TASK/SPLIT.jsonl).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub task: String,
    #[arg(long, default_value = "val")]
    pub split: String,
    /// `gold` (the examples' gold programs) or a JSONL file of {"id", "program"} lines
    /// (what `sdvp generate` writes).
    #[arg(long, default_value = "gold")]
    pub programs: String,
    /// `oracle` (scene graphs of --data), `oracle:DIR`, or `scripted:FILE.json`.
    #[arg(long, default_value = "oracle")]
    pub modules: String,
    /// Run directory for traces.jsonl and metrics.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "step")]
    pub style: Style,
    /// Evaluate only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Start afresh instead of resuming from RUN/traces.jsonl.
    #[arg(long)]
    pub restart: bool,
}

/// Programs by example id from a JSONL file of `{"id", "program"}` lines (`program` may be null).
fn program_file(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let Some(id) = v["id"].as_str() else {
            anyhow::bail!("{}:{}: needs a string field `id`", path.display(), i + 1);
        };
        if let Some(p) = v["program"].as_str() {
            out.insert(id.to_string(), p.to_string());
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Tally {
    total: usize,
    correct: usize,
    errors: usize,
}

impl Tally {
    fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
    fn json(&self) -> serde_json::Value {
        json!({"accuracy": self.accuracy(), "correct": self.correct, "total": self.total, "errors": self.errors})
    }
}

/// Traces already in `path`, keeping only whole lines (a killed run may leave half a line,
/// which is cut off so the file stays valid JSONL).
fn resume_traces(path: &Path) -> anyhow::Result<Vec<Trace>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut good_bytes = 0u64;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        match serde_json::from_str::<Trace>(&line) {
            Ok(t) => {
                good_bytes += line.len() as u64 + 1;
                out.push(t);
            }
            Err(_) => break,
        }
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.set_len(good_bytes)
        .with_context(|| format!("truncating {}", path.display()))?;
    Ok(out)
}

/// Accuracy of one evaluation.
pub struct EvalSummary {
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    pub errors: usize,
    pub traces: PathBuf,
}

/// Write `value` to `path` through a temporary file and a rename.
pub fn write_json_atomic(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Run and score; the reusable core of `sdvp eval` (the demo calls it too).
pub fn evaluate(
    args: &EvalArgs,
    backend: &dyn Backend,
    quiet: bool,
) -> anyhow::Result<EvalSummary> {
    let report = load_split(&args.data, &args.task, &args.split)?;
    for e in &report.skipped {
        eprintln!("skipped {e}");
    }
    let mut examples: Vec<Example> = report.examples;
    if let Some(n) = args.limit {
        examples.truncate(n);
    }
    let given = if args.programs == "gold" {
        None
    } else {
        Some(program_file(Path::new(&args.programs))?)
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let traces_path = args.out.join("traces.jsonl");
    if args.restart && traces_path.exists() {
        std::fs::remove_file(&traces_path)
            .with_context(|| format!("removing {}", traces_path.display()))?;
    }
    let mut done = resume_traces(&traces_path)?;
    let finished: HashSet<String> = done.iter().map(|t| t.id.clone()).collect();
    let mut missing = 0usize;
    let mut jobs = Vec::new();
    for ex in &examples {
        let program = match (&given, args.style) {
            (None, Style::Step) => ex.gold_step.clone(),
            (None, Style::Python) => ex.gold_python.clone(),
            (Some(m), _) => m.get(&ex.id).cloned(),
        };
        let Some(source) = program else {
            missing += 1;
            continue;
        };
        if finished.contains(&ex.id) {
            continue;
        }
        let mut meta = BTreeMap::new();
        meta.insert("question".into(), json!(ex.question));
        meta.insert("gold_answer".into(), json!(ex.answer));
        meta.insert("task".into(), json!(ex.task));
        meta.insert("question_type".into(), json!(ex.question_type));
        jobs.push(Job {
            id: ex.id.clone(),
            source,
            inputs: ex.inputs(),
            meta,
        });
    }
    let mut traces_file = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&traces_path)
            .with_context(|| format!("opening {}", traces_path.display()))?,
    );
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::bar(jobs.len() as u64, "programs")
    };
    let mut write_error: Option<std::io::Error> = None;
    let config = SchedulerConfig {
        max_batch: args.max_batch.max(1),
        ..Default::default()
    };
    let on_done = |_i: usize, trace: Trace| {
        if write_error.is_none() {
            if let Err(e) = append_trace(&mut traces_file, &trace) {
                write_error = Some(e);
            }
        }
        done.push(trace);
        bar.inc(1);
    };
    let stats = match args.style {
        Style::Step => run_step_programs_streaming(
            &Registry::visual_reasoning(Default::default()),
            backend,
            config,
            &jobs,
            on_done,
        ),
        Style::Python => sdvp_python::run_python_programs_streaming(
            backend,
            config,
            &jobs,
            &Default::default(),
            on_done,
        ),
    };
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", traces_path.display()));
    }
    traces_file
        .flush()
        .with_context(|| format!("writing {}", traces_path.display()))?;

    let mut overall = Tally::default();
    let mut per_type: BTreeMap<String, Tally> = BTreeMap::new();
    let mut error_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for t in &done {
        let ok = match (&t.answer, t.gold_answer()) {
            (Some(a), Some(g)) => normalize_answer(a) == normalize_answer(&g),
            _ => false,
        };
        let qtype = t
            .meta_text("question_type")
            .unwrap_or_else(|| "unknown".into());
        for tally in [&mut overall, per_type.entry(qtype).or_default()] {
            tally.total += 1;
            tally.correct += ok as usize;
            tally.errors += t.error.is_some() as usize;
        }
        if let Some(e) = &t.error {
            *error_kinds.entry(e.kind.clone()).or_default() += 1;
        }
    }
    let metrics = json!({
        "task": args.task,
        "split": args.split,
        "style": match args.style { Style::Step => "step", Style::Python => "python" },
        "programs": args.programs,
        "modules": backend.name(),
        "overall": overall.json(),
        "per_question_type": per_type.iter().map(|(k, t)| (k.clone(), t.json())).collect::<BTreeMap<_, _>>(),
        "error_kinds": error_kinds,
        "without_program": missing,
        "resumed": finished.len(),
        "scheduler": stats,
    });
    write_json_atomic(&args.out.join("metrics.json"), &metrics)?;
    Ok(EvalSummary {
        accuracy: overall.accuracy(),
        correct: overall.correct,
        total: overall.total,
        errors: overall.errors,
        traces: traces_path,
    })
}

pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    let backend = ModulesSpec::parse_for(&args.modules, &args.data)?.build()?;
    let s = evaluate(&args, backend.as_ref(), false)?;
    println!(
        "{}/{}: accuracy {:.4} ({}/{}), {} errors -> {}",
        args.task,
        args.split,
        s.accuracy,
        s.correct,
        s.total,
        s.errors,
        args.out.display()
    );
    Ok(0)
}
