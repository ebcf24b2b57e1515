//! `sdvp eval`: run programs on a dataset split and score the answers.
//!
//! Writes `RUN/traces.jsonl` (one trace per program, appended as each finishes, so a
//! killed run keeps what finished) and `RUN/metrics.json` (overall and per question type
//! accuracy, counts, errors). Exit code 0 when every example was run, whatever the accuracy.

use anyhow::Context;
use sdvp_data::{load_split, Example, OracleBackend};
use sdvp_program::exec::{run_step_programs_streaming, Job};
use sdvp_program::scripted::ScriptedBackend;
use sdvp_program::steps::Registry;
use sdvp_program::trace::append_trace;
use sdvp_program::value::normalize_answer;
use sdvp_program::{Backend, SchedulerConfig};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Dataset directory (DIR/TASK/SPLIT.jsonl).
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    task: String,
    #[arg(long, default_value = "val")]
    split: String,
    /// `gold` (the examples' gold programs) or a JSONL file of {"id", "program"} lines.
    #[arg(long, default_value = "gold")]
    programs: String,
    /// `oracle` (scene graphs of --data), `oracle:DIR`, or `scripted:FILE.json`.
    #[arg(long, default_value = "oracle")]
    modules: String,
    /// Run directory for traces.jsonl and metrics.json.
    #[arg(long)]
    out: PathBuf,
    /// Program style; only `step` runs here for now.
    #[arg(long, default_value = "step")]
    style: String,
    /// Evaluate only the first N examples.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
}

fn backend(spec: &str, data: &Path) -> anyhow::Result<Box<dyn Backend>> {
    match spec.split_once(':') {
        None if spec == "oracle" => Ok(Box::new(OracleBackend::load(data)?)),
        Some(("oracle", dir)) => Ok(Box::new(OracleBackend::load(Path::new(dir))?)),
        Some(("scripted", file)) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
            Ok(Box::new(
                ScriptedBackend::from_json(&text)
                    .with_context(|| format!("{file}: not a module script"))?,
            ))
        }
        _ => anyhow::bail!("--modules {spec:?}: expected oracle, oracle:DIR or scripted:FILE.json"),
    }
}

/// Programs by example id from a JSONL file of `{"id", "program"}` lines.
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
        let (Some(id), Some(p)) = (v["id"].as_str(), v["program"].as_str()) else {
            anyhow::bail!(
                "{}:{}: needs string fields `id` and `program`",
                path.display(),
                i + 1
            );
        };
        out.insert(id.to_string(), p.to_string());
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
    fn json(&self) -> serde_json::Value {
        let acc = if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        };
        json!({"accuracy": acc, "correct": self.correct, "total": self.total, "errors": self.errors})
    }
}

pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    if args.style != "step" {
        anyhow::bail!(
            "--style {}: only step programs run in `sdvp eval` so far",
            args.style
        );
    }
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
    let mut missing = 0usize;
    let mut jobs = Vec::new();
    let mut gold: Vec<&Example> = Vec::new();
    for ex in &examples {
        let program = match &given {
            None => ex.gold_step.clone(),
            Some(m) => m.get(&ex.id).cloned(),
        };
        let Some(source) = program else {
            missing += 1;
            continue;
        };
        let mut meta = BTreeMap::new();
        meta.insert("question".into(), json!(ex.question));
        meta.insert("gold".into(), json!(ex.answer));
        meta.insert("task".into(), json!(ex.task));
        meta.insert("question_type".into(), json!(ex.question_type));
        jobs.push(Job {
            id: ex.id.clone(),
            source,
            inputs: ex.inputs(),
            meta,
        });
        gold.push(ex);
    }
    let backend = backend(&args.modules, &args.data)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let traces_path = args.out.join("traces.jsonl");
    let mut traces = std::io::BufWriter::new(
        std::fs::File::create(&traces_path)
            .with_context(|| format!("creating {}", traces_path.display()))?,
    );
    let registry = Registry::visual_reasoning(Default::default());
    let config = SchedulerConfig {
        max_batch: args.max_batch.max(1),
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} programs {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut overall = Tally::default();
    let mut per_type: BTreeMap<String, Tally> = BTreeMap::new();
    let mut error_kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut write_error: Option<std::io::Error> = None;
    let stats =
        run_step_programs_streaming(&registry, backend.as_ref(), config, &jobs, |i, trace| {
            let ex = gold[i];
            let ok = trace
                .answer
                .as_deref()
                .is_some_and(|a| normalize_answer(a) == normalize_answer(&ex.answer));
            let failed = trace.error.is_some();
            for t in [
                &mut overall,
                per_type.entry(ex.question_type.clone()).or_default(),
            ] {
                t.total += 1;
                t.correct += ok as usize;
                t.errors += failed as usize;
            }
            if let Some(e) = &trace.error {
                *error_kinds.entry(e.kind.clone()).or_default() += 1;
            }
            if write_error.is_none() {
                if let Err(e) = append_trace(&mut traces, &trace) {
                    write_error = Some(e);
                }
            }
            bar.inc(1);
        });
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", traces_path.display()));
    }
    let metrics = json!({
        "task": args.task,
        "split": args.split,
        "programs": args.programs,
        "modules": backend.name(),
        "overall": overall.json(),
        "per_question_type": per_type.iter().map(|(k, t)| (k.clone(), t.json())).collect::<BTreeMap<_, _>>(),
        "error_kinds": error_kinds,
        "without_program": missing,
        "scheduler": stats,
    });
    let mpath = args.out.join("metrics.json");
    std::fs::write(&mpath, serde_json::to_string_pretty(&metrics)?)
        .with_context(|| format!("writing {}", mpath.display()))?;
    println!(
        "{}/{}: accuracy {:.4} ({}/{}), {} errors, {} without program -> {}",
        args.task,
        args.split,
        if overall.total == 0 {
            0.0
        } else {
            overall.correct as f64 / overall.total as f64
        },
        overall.correct,
        overall.total,
        overall.errors,
        missing,
        args.out.display()
    );
    Ok(0)
}
