//! `sdvp eval`: run programs on a dataset split and score the answers (`sdvp_eval` does
//! the work; this is the flags and the printout).

use clap::{Args, Subcommand};
use sdvp_core::{ModuleKind, ProgramStyle};
use sdvp_eval::{EvalSpec, EvalSummary, Programs, Shard};
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    #[command(flatten)]
    pub run: EvalRunArgs,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Combine the shard runs `--shard 0/N … N-1/N` of one configuration into one run.
    Merge {
        /// The shard run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a module set on a split's sub-tasks: the vqa, detect, verify and classify
    /// calls of its gold programs (both styles) run on the oracle, labelled by the scene
    /// graphs. A thresholded detector is also scored on its ranked output (`ap50_ranked`).
    /// Writes OUT/subtasks.json.
    Subtasks {
        /// A world directory.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long, default_value = "val")]
        split: String,
        /// The module set to score (as for `sdvp eval --modules`).
        #[arg(long)]
        modules: String,
        /// Use only the first N examples' programs (1 to 100 000 000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        limit: Option<u64>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Clone)]
pub struct EvalRunArgs {
    /// Dataset directory: a world (DIR/TASK/SPLIT.jsonl), real GQA or real NLVR2.
    #[arg(long, required = true)]
    pub data: Option<PathBuf>,
    #[arg(long, required = true)]
    pub task: Option<String>,
    #[arg(long, default_value = "val")]
    pub split: String,
    /// `gold` (the examples' gold programs) or a JSONL file of {"id", "program"} lines
    /// (what `sdvp generate` writes).
    #[arg(long, default_value = "gold")]
    pub programs: String,
    /// BASE[,KIND=ARCH:DIR|KIND=SET_DIR]...: BASE is oracle, oracle:DIR, scripted:FILE.json,
    /// embedded or a module-set directory.
    #[arg(long, default_value = "oracle")]
    pub modules: String,
    /// Run directory for run.json, traces.jsonl and metrics.json.
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "step")]
    pub style: ProgramStyle,
    /// Evaluate only the first N examples.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub limit: Option<u64>,
    /// Run part I of N (deterministic by id), for cluster array jobs; see `eval merge`.
    #[arg(long)]
    pub shard: Option<String>,
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_batch: u64,
    /// Start afresh instead of resuming (also when run.json differs).
    #[arg(long)]
    pub restart: bool,
}

/// Run and score one split; the demo and distillation call this too.
pub fn evaluate(
    args: &EvalRunArgs,
    backend: Option<&dyn sdvp_core::Backend>,
    quiet: bool,
) -> anyhow::Result<EvalSummary> {
    let (Some(data), Some(task), Some(out)) = (&args.data, &args.task, &args.out) else {
        anyhow::bail!("eval needs --data, --task and --out");
    };
    let report = sdvp_data::loaders::load_task(data, task, &args.split)?;
    for e in &report.skipped {
        eprintln!("skipped {e}");
    }
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let examples =
        sdvp_eval::select_examples(report.examples, args.limit.map(|n| n as usize), shard);
    let built;
    let backend = match backend {
        Some(b) => b,
        None => {
            built = crate::backends::build(&args.modules, Some(data), &examples)?;
            built.as_ref()
        }
    };
    let spec = EvalSpec {
        task: task.clone(),
        split: args.split.clone(),
        style: args.style,
        programs: Programs::parse(&args.programs),
        modules: args.modules.clone(),
        out: out.clone(),
        limit: args.limit.map(|n| n as usize),
        shard,
        max_batch: args.max_batch as usize,
        restart: args.restart,
        quiet,
    };
    sdvp_eval::evaluate(&spec, &examples, backend)
}

pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    if let Some(EvalCommand::Merge { runs, out }) = args.command {
        let m = sdvp_eval::merge(&runs, &out)?;
        println!(
            "merged {} runs: accuracy {:.4} ({}/{}) -> {}",
            runs.len(),
            m["overall"]["accuracy"].as_f64().unwrap_or(0.0),
            m["overall"]["correct"],
            m["overall"]["total"],
            out.display()
        );
        return Ok(0);
    }
    if let Some(EvalCommand::Subtasks {
        data,
        task,
        split,
        modules,
        limit,
        out,
    }) = args.command
    {
        let report = sdvp_data::loaders::load_task(&data, &task, &split)?;
        let examples = sdvp_eval::select_examples(report.examples, limit.map(|n| n as usize), None);
        let oracle = sdvp_data::OracleBackend::load(&data)?;
        let subtasks = sdvp_eval::subtasks::gold_subtasks(&examples, &task, &split, &oracle, &out)?;
        let backend = crate::backends::build(&modules, Some(&data), &examples)?;
        let mut scores = sdvp_eval::subtasks::score_subtasks(&subtasks, backend.as_ref(), 64);
        // A neural detector is also scored on its whole ranked output (every box above
        // 0.01, as training validates it): AP@0.5 as detection benchmarks define it, apart
        // from the operating threshold.
        let mut ranked = sdvp_modules::ModulesSpec::parse(&modules, Some(&data))?;
        if ranked.set_option(ModuleKind::Detect, "owlvit", "threshold", 0.01.into())? {
            let detect: Vec<_> = subtasks
                .iter()
                .filter(|(r, _)| r.kind() == ModuleKind::Detect)
                .cloned()
                .collect();
            let backend = crate::backends::build_parsed(&ranked, Some(&data), &examples)?;
            let r = sdvp_eval::subtasks::score_subtasks(&detect, backend.as_ref(), 64);
            if let (Some(ap), Some(entry)) =
                (r["detect"].get("ap50").cloned(), scores.get_mut("detect"))
            {
                entry["ap50_ranked"] = ap;
            }
        }
        let result = serde_json::json!({
            "task": task, "split": split, "modules": modules,
            "examples": examples.len(), "subtasks": subtasks.len(), "scores": scores,
        });
        sdvp_eval::write_json_atomic(&out.join("subtasks.json"), &result)?;
        for (kind, v) in scores.as_object().into_iter().flatten() {
            let mut extra = v
                .get("ap50")
                .map(|a| {
                    format!(
                        ", AP@0.5 {:.4} over {} boxes",
                        a.as_f64().unwrap_or(0.0),
                        v["boxes"]
                    )
                })
                .unwrap_or_default();
            if let Some(a) = v.get("ap50_ranked").and_then(|a| a.as_f64()) {
                extra.push_str(&format!(" ({a:.4} over the ranked output)"));
            }
            println!(
                "{task}/{split} {kind}: accuracy {:.4} ({}/{}, {} failed){extra}",
                v["accuracy"].as_f64().unwrap_or(0.0),
                v["correct"],
                v["n"],
                v["failed"]
            );
        }
        return Ok(0);
    }
    let s = evaluate(&args.run, None, false)?;
    println!(
        "{}/{}: accuracy {:.4} ({}/{}), {} without program, {} invalid, {} failed, {} resumed -> {}",
        args.run.task.as_deref().unwrap_or_default(),
        args.run.split,
        s.accuracy,
        s.correct,
        s.total,
        s.no_program,
        s.invalid_program,
        s.execution_error,
        s.resumed,
        args.run.out.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    );
    Ok(0)
}
