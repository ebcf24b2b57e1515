//! `sdvp generate`: write programs for a dataset split with a program generator.
//!
//! Output: one JSON line per question, `{"id", "program", "raw", "failure", "samples"}`,
//! in question order. Generations are cached on disk (see `sdvp_generate::cache`), so a rerun
//! only pays for what changed; hit/miss counts are printed at the end. A fatal generator
//! error (server down, wrong URL or key, deadline) stops the run with exit code 1, leaving
//! the lines written so far.
//!
//! With `--samples N --select vote` every valid sample is executed with the `--modules`
//! backend and the program whose answer wins the majority is kept (ties go to sample
//! order); each sample's answer is recorded in its `samples[i].answer`, and `selected` says
//! which sample won. Outcomes are executed in groups so module calls batch across
//! questions while lines still stream out.

use anyhow::Context;
use sdvp_core::Job;
use sdvp_core::{Backend, SchedulerConfig, Value};
use sdvp_generate::backend::Generator;
use sdvp_generate::cache::Cache;
use sdvp_generate::embedded::EmbeddedGenerator;
use sdvp_generate::gold::GoldGenerator;
use sdvp_generate::local::ChatTemplate;
use sdvp_generate::openai::{Endpoint, OpenAiConfig, OpenAiGenerator};
use sdvp_generate::questions::Question;
use sdvp_generate::run::Driver;
use sdvp_generate::{
    gqa, prompt, Outcome, ProgramStyle, PromptOptions, RunConfig, Sampling, Select, Task,
};
use sdvp_program::exec::run_step_programs;
use sdvp_program::steps::Registry;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratorKind {
    Openai,
    Local,
    Embedded,
    Gold,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointKind {
    Chat,
    Completions,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Data directory holding TASK/SPLIT.jsonl.
    #[arg(long)]
    data: PathBuf,
    /// gqa-world, nlvr-world, attr-world, gqa or nlvr2.
    #[arg(long)]
    task: String,
    #[arg(long, default_value = "val")]
    split: String,
    #[arg(long, value_enum)]
    generator: GeneratorKind,
    /// step or python.
    #[arg(long, default_value = "step")]
    style: String,
    /// Where to write programs (JSONL).
    #[arg(long)]
    out: PathBuf,
    /// Only the first N questions (1 to 100000000).
    #[arg(long, value_parser = crate::cmd_world::usize_range(1, 100_000_000))]
    limit: Option<usize>,
    /// Samples per question (1 to 64).
    #[arg(long, default_value_t = 1, value_parser = crate::cmd_world::usize_range(1, 64))]
    samples: usize,
    /// How to choose among valid samples: first, or vote (majority of executed answers;
    /// needs --modules).
    #[arg(long, default_value = "first")]
    select: String,
    /// Module answers for --select vote: oracle (scene graphs of --data), oracle:WORLD_DIR
    /// or scripted:FILE.json.
    #[arg(long)]
    modules: Option<String>,
    /// Questions executed together for a vote (1 to 4096).
    #[arg(long, default_value_t = 64, value_parser = crate::cmd_world::usize_range(1, 4096))]
    vote_group: usize,
    /// Extra samples for a question whose samples are all invalid (0 to 16; default 8 for
    /// the embedded generator, 2 for the others).
    #[arg(long, value_parser = crate::cmd_world::usize_range(0, 16))]
    resamples: Option<usize>,
    /// In-context examples in the prompt (0 to 64).
    #[arg(long, default_value_t = 6, value_parser = crate::cmd_world::usize_range(0, 64))]
    examples: usize,
    /// Seed for example choice and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Options of the OpenAI-compatible generator (boxed: they are most of the size).
    #[command(flatten)]
    openai: Box<OpenAiArgs>,
    /// Sampling temperature (0 to 2).
    #[arg(long, default_value_t = 0.0, value_parser = temperature)]
    temperature: f32,
    /// Nucleus sampling mass (above 0, at most 1).
    #[arg(long, default_value_t = 1.0, value_parser = top_p)]
    top_p: f32,
    /// Tokens per completion (1 to 131072).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=131_072))]
    max_tokens: u32,
    /// Requests in flight at once (1 to 256).
    #[arg(long, default_value_t = 4, value_parser = crate::cmd_world::usize_range(1, 256))]
    concurrency: usize,
    /// Seconds the whole generation may take (0: no limit; at most a year).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    deadline: u64,
    /// Weights directory of the embedded generator (default: the embedded weights'
    /// `generator/`; see SDVP_WEIGHTS).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Checkpoint directory of the local generator (config.json, *.safetensors,
    /// tokenizer.json).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Chat template of the local generator: chatml, llama3 or plain (default: detected
    /// from the checkpoint).
    #[arg(long)]
    chat_template: Option<String>,
    /// Cache directory (default: $XDG_CACHE_HOME/sdvp/generate or ~/.cache/sdvp/generate).
    #[arg(long)]
    cache: Option<PathBuf>,
    #[arg(long)]
    no_cache: bool,
}

/// A float flag in `lo..=hi` (`lo` itself excluded when `open_low`).
fn float_in(s: &str, lo: f32, hi: f32, open_low: bool) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    let low_ok = if open_low { v > lo } else { v >= lo };
    if low_ok && v <= hi {
        Ok(v)
    } else {
        let low = if open_low { "above" } else { "at least" };
        Err(format!(
            "{v} is out of range: expected {low} {lo} and at most {hi}"
        ))
    }
}

fn temperature(s: &str) -> Result<f32, String> {
    float_in(s, 0.0, 2.0, false)
}

fn top_p(s: &str) -> Result<f32, String> {
    float_in(s, 0.0, 1.0, true)
}

/// Image inputs of each question by id, for executing samples in a vote.
type InputsById = HashMap<String, BTreeMap<String, Value>>;

#[derive(clap::Args)]
pub struct OpenAiArgs {
    /// OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1).
    #[arg(long, default_value = "https://api.openai.com/v1")]
    base_url: String,
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
    #[arg(long, value_enum, default_value = "chat")]
    endpoint: EndpointKind,
    /// Environment variable holding the API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Seconds one request may take (1 to 86400).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    request_timeout: u64,
    /// Retries of a failed request (0 to 16).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=16))]
    retries: u32,
}

fn load_questions(args: &GenerateArgs, task: Task) -> anyhow::Result<(Vec<Question>, InputsById)> {
    let report = sdvp_data::load_split(&args.data, task.as_str(), &args.split)?;
    for skipped in &report.skipped {
        eprintln!("warning: skipped {skipped}");
    }
    let mut inputs = HashMap::new();
    let questions = report
        .examples
        .into_iter()
        .map(|e| {
            inputs.insert(e.id.clone(), e.inputs());
            Question {
                semantic: e.meta.get("semantic").cloned(),
                id: e.id,
                question: e.question,
                task: Some(e.task),
                gold_step: e.gold_step,
                gold_python: e.gold_python,
            }
        })
        .collect();
    Ok((questions, inputs))
}

/// The module backend a vote executes samples with.
fn modules_backend(spec: &str, data: &Path) -> anyhow::Result<Box<dyn Backend>> {
    crate::backends::build(spec, Some(data), &[])
}

/// Executes the valid samples of finished outcomes and applies the majority vote.
struct Voter<'a> {
    backend: Box<dyn Backend>,
    registry: &'a Registry,
    style: ProgramStyle,
    inputs: InputsById,
}

impl Voter<'_> {
    /// Run every valid sample of `outcomes` in one batch and select each one's majority.
    /// A question without recorded inputs votes with no answers (keeps its first valid
    /// sample) and is reported once on stderr.
    fn vote(&self, outcomes: &mut [Outcome]) {
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        for (o, outcome) in outcomes.iter().enumerate() {
            let Some(inputs) = self.inputs.get(&outcome.id) else {
                eprintln!("warning: {}: no inputs recorded, not voted", outcome.id);
                continue;
            };
            for (s, sample) in outcome.samples.iter().enumerate() {
                let Some(source) = sample.program.as_ref().filter(|_| sample.valid) else {
                    continue;
                };
                jobs.push(Job {
                    id: format!("{}#{}", outcome.id, sample.index),
                    source: source.clone(),
                    inputs: inputs.clone(),
                    meta: BTreeMap::new(),
                });
                slots.push((o, s));
            }
        }
        let config = SchedulerConfig::default();
        let backend = self.backend.as_ref();
        let traces = match self.style {
            ProgramStyle::Step => run_step_programs(self.registry, backend, config, &jobs).0,
            ProgramStyle::Python => {
                sdvp_python::run_python_programs(backend, config, &jobs, &Default::default()).0
            }
        };
        let mut answers: Vec<Vec<Option<String>>> = outcomes
            .iter()
            .map(|o| vec![None; o.samples.len()])
            .collect();
        for ((o, s), trace) in slots.into_iter().zip(traces) {
            if trace.error.is_none() {
                answers[o][s] = trace.answer;
            }
        }
        for (outcome, answers) in outcomes.iter_mut().zip(answers) {
            outcome.apply_vote(&answers);
        }
    }
}

fn generator(
    args: &GenerateArgs,
    task: Task,
    style: ProgramStyle,
    questions: &[Question],
) -> anyhow::Result<Box<dyn Generator>> {
    Ok(match args.generator {
        GeneratorKind::Openai => {
            let mut c = OpenAiConfig::new(&args.openai.base_url, &args.openai.model)
                .with_key_from_env(&args.openai.api_key_env);
            c.endpoint = match args.openai.endpoint {
                EndpointKind::Chat => Endpoint::Chat,
                EndpointKind::Completions => Endpoint::Completions,
            };
            c.concurrency = args.concurrency.max(1);
            c.request_timeout = Duration::from_secs(args.openai.request_timeout.max(1));
            c.max_retries = args.openai.retries;
            c.total_timeout = (args.deadline > 0).then(|| Duration::from_secs(args.deadline));
            c.jitter_seed = args.seed;
            Box::new(OpenAiGenerator::new(c)?)
        }
        GeneratorKind::Local => {
            let Some(dir) = &args.checkpoint else {
                anyhow::bail!("--generator local needs --checkpoint DIR");
            };
            let template = args
                .chat_template
                .as_deref()
                .map(str::parse::<ChatTemplate>)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            sdvp_generate::local::load(dir, template)?
        }
        GeneratorKind::Embedded => Box::new(EmbeddedGenerator::from_dir(
            &args
                .weights
                .clone()
                .unwrap_or_else(|| sdvp_modules::set::embedded_dir().join("generator")),
        )?),
        GeneratorKind::Gold => {
            let mut gold = GoldGenerator::from_questions(questions);
            // Real GQA records carry a functional program instead of a gold step program.
            if task == Task::Gqa && style == ProgramStyle::Step {
                for q in questions.iter().filter(|q| q.gold_step.is_none()) {
                    let Some(sem) = &q.semantic else { continue };
                    match gqa::parse_semantic(sem).and_then(|ops| gqa::convert(&ops)) {
                        Ok(p) => gold.insert(&q.id, ProgramStyle::Step, p),
                        Err(e) => eprintln!("warning: {}: GQA semantic not converted: {e}", q.id),
                    }
                }
            }
            Box::new(gold)
        }
    })
}

pub fn run(args: GenerateArgs) -> anyhow::Result<i32> {
    run_with(args, None)
}

/// The command with an optional ready-made generator (tests supply their own).
fn run_with(args: GenerateArgs, given: Option<Box<dyn Generator>>) -> anyhow::Result<i32> {
    let task: Task = args.task.parse().map_err(anyhow::Error::msg)?;
    let style: ProgramStyle = args.style.parse().map_err(anyhow::Error::msg)?;
    let select: Select = args.select.parse().map_err(anyhow::Error::msg)?;
    let (mut questions, inputs) = load_questions(&args, task)?;
    if let Some(n) = args.limit {
        questions.truncate(n);
    }
    let registry = Registry::visual_reasoning(Default::default());
    let voter = match (select, &args.modules) {
        (Select::First, _) => None,
        (Select::Vote, None) => anyhow::bail!(
            "--select vote executes the samples: give --modules (oracle, oracle:WORLD_DIR, \
             scripted:FILE.json, embedded or a module-set directory)"
        ),
        (Select::Vote, Some(spec)) => Some(Voter {
            backend: modules_backend(spec, &args.data)?,
            registry: &registry,
            style,
            inputs,
        }),
    };
    let generator = match given {
        Some(g) => g,
        None => generator(&args, task, style, &questions)?,
    };
    let cache = if args.no_cache {
        Cache::disabled()
    } else {
        match args.cache.clone().or_else(Cache::default_dir) {
            Some(dir) => Cache::new(dir),
            None => {
                eprintln!("warning: no cache directory (HOME unset); caching is off");
                Cache::disabled()
            }
        }
    };
    let checker = crate::programs::checker(task, style, &registry);
    // Completion-style prompts continue the example list, so they stop at the next example.
    let completion_style = match args.generator {
        GeneratorKind::Openai => args.openai.endpoint == EndpointKind::Completions,
        GeneratorKind::Local => generator.backend() == "local/plain",
        _ => false,
    };
    let stop = if completion_style {
        prompt::stop_texts(task)
    } else {
        Vec::new()
    };
    let config = RunConfig {
        prompt: PromptOptions {
            examples: args.examples,
            seed: args.seed,
        },
        sampling: Sampling {
            temperature: args.temperature,
            top_p: args.top_p,
            max_tokens: args.max_tokens,
            stop,
            seed: args.seed,
        },
        samples: args.samples.max(1),
        max_resamples: args.resamples.unwrap_or(match args.generator {
            GeneratorKind::Embedded => sdvp_generate::embedded::RESAMPLES,
            _ => RunConfig::default().max_resamples,
        }),
        chunk: (args.concurrency.max(1) * 4).max(8),
        ..RunConfig::default()
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let bar = sdvp_core::progress::bar(questions.len() as u64, "questions");
    let driver = Driver {
        generator: generator.as_ref(),
        cache: &cache,
        checker: &checker,
        registry: &registry,
        config,
    };
    let mut write_error: Option<anyhow::Error> = None;
    let mut pending: Vec<Outcome> = Vec::new();
    let group = args.vote_group.max(1);
    let mut flush = |pending: &mut Vec<Outcome>, write_error: &mut Option<anyhow::Error>| {
        if let Some(v) = &voter {
            v.vote(pending);
        }
        for outcome in pending.drain(..) {
            if write_error.is_some() {
                return;
            }
            let line = serde_json::to_string(&outcome).map_err(anyhow::Error::from);
            if let Err(e) = line.and_then(|l| writeln!(out, "{l}").map_err(anyhow::Error::from)) {
                *write_error = Some(e);
            }
        }
    };
    let result = driver.run(&questions, |outcome| {
        bar.inc(1);
        pending.push(outcome);
        if voter.is_none() || pending.len() >= group {
            flush(&mut pending, &mut write_error);
        }
    });
    flush(&mut pending, &mut write_error);
    bar.finish_and_clear();
    out.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(e) = write_error {
        return Err(e.context(format!("writing {}", args.out.display())));
    }
    let cache_stats = cache.stats();
    eprintln!(
        "cache: {} hits, {} misses{}",
        cache_stats.hits,
        cache_stats.misses,
        if args.no_cache { " (--no-cache)" } else { "" }
    );
    match result {
        Ok(stats) => {
            println!(
                "{} questions: {} programs, {} generation failures, {} requests; wrote {}",
                stats.questions,
                stats.with_program,
                stats.failures,
                stats.requests,
                args.out.display()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: generation stopped: {e}");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use sdvp_generate::backend::{GenError, GenRequest};
    use serde_json::Value as Json;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    /// Returns `texts[sample_index]` for every question.
    struct Scripted(Vec<String>);
    impl Generator for Scripted {
        fn backend(&self) -> String {
            "scripted".into()
        }
        fn model(&self) -> String {
            "test".into()
        }
        fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
            requests
                .iter()
                .map(|r| {
                    self.0
                        .get(r.sample_index)
                        .cloned()
                        .ok_or_else(|| GenError::request("no such sample"))
                })
                .collect()
        }
    }

    fn world() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = sdvp_data::world::WorldConfig {
            seed: 5,
            scale: sdvp_data::world::Scale::Tiny,
            size: 96,
            threads: 2,
        };
        sdvp_data::world::generate_world(dir.path(), &cfg, &|_, _| {}).expect("world");
        dir
    }

    fn first_question(world: &Path) -> (String, String, String) {
        let report = sdvp_data::load_split(world, "gqa-world", "val").expect("split");
        let ex = report.examples.into_iter().next().expect("a question");
        let gold = ex.gold_step.expect("gold step program");
        (ex.id, gold, ex.answer)
    }

    fn run_cli(world: &Path, flags: &[&str], texts: Vec<String>) -> anyhow::Result<Vec<Json>> {
        let out = world.join("programs.jsonl");
        let data = world.display().to_string();
        let out_s = out.display().to_string();
        let mut argv = vec![
            "t",
            "--data",
            &data,
            "--task",
            "gqa-world",
            "--generator",
            "gold",
            "--out",
            &out_s,
            "--limit",
            "1",
            "--no-cache",
        ];
        argv.extend_from_slice(flags);
        let cli = Cli::try_parse_from(argv)?;
        let code = run_with(cli.args, Some(Box::new(Scripted(texts))))?;
        anyhow::ensure!(code == 0, "exit code {code}");
        let text = std::fs::read_to_string(&out)?;
        Ok(text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    }

    fn answers(line: &Json) -> Vec<Option<String>> {
        line["samples"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|x| x["answer"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn vote_keeps_the_majority_program_and_records_answers() {
        let w = world();
        let (_, gold, answer) = first_question(w.path());
        let constant =
            |a: &str| format!("ANSWER0=EVAL(expr=\"'{a}'\")\nFINAL_RESULT=RESULT(var=ANSWER0)");
        assert_ne!(answer, "zzz");
        let texts = vec![constant("zzz"), gold.clone(), constant(&answer)];
        let flags = ["--samples", "3", "--select", "vote", "--modules", "oracle"];
        let lines = run_cli(w.path(), &flags, texts.clone()).expect("vote run");
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["selected"], 1);
        assert_eq!(line["program"].as_str().map(str::trim), Some(gold.trim()));
        assert_eq!(
            answers(line),
            vec![
                Some("zzz".into()),
                Some(answer.clone()),
                Some(answer.clone())
            ]
        );

        // The same samples under --select first keep sample 0 and run nothing.
        let lines = run_cli(w.path(), &["--samples", "3"], texts).expect("first run");
        assert_eq!(lines[0]["selected"], 0);
        assert_eq!(answers(&lines[0]), vec![None, None, None]);
    }

    #[test]
    fn python_samples_vote_too_and_vote_needs_modules() {
        let w = world();
        let py = |a: &str| format!("def execute_command(image):\n    return '{a}'\n");
        let texts = vec![py("no"), py("maybe"), py("maybe")];
        let flags = [
            "--style",
            "python",
            "--samples",
            "3",
            "--select",
            "vote",
            "--modules",
            "oracle",
        ];
        let lines = run_cli(w.path(), &flags, texts.clone()).expect("python vote");
        assert_eq!(lines[0]["selected"], 1);
        assert_eq!(
            answers(&lines[0]),
            vec![
                Some("no".into()),
                Some("maybe".into()),
                Some("maybe".into())
            ]
        );
        let err = run_cli(w.path(), &["--samples", "3", "--select", "vote"], texts)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--modules")));
    }

    #[test]
    fn local_generator_needs_a_checkpoint() {
        let w = world();
        let out = w.path().join("p.jsonl").display().to_string();
        let data = w.path().display().to_string();
        let cli = Cli::try_parse_from([
            "t",
            "--data",
            &data,
            "--task",
            "gqa-world",
            "--generator",
            "local",
            "--out",
            &out,
        ])
        .expect("parse");
        let err = run(cli.args).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--checkpoint")));
    }
}
