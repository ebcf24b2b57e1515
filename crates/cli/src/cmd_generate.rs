//! `sdvp generate`: write programs for a dataset split with a program generator.
//!
//! Output: one JSON line per question, `{"id", "program", "raw", "failure", "samples"}`,
//! in question order. Generations are cached on disk (see `sdvp_generate::cache`), so a rerun
//! only pays for what changed; hit/miss counts are printed at the end. A fatal generator
//! error (server down, wrong URL or key, deadline) stops the run with exit code 1, leaving
//! the lines written so far.

use anyhow::Context;
use sdvp_generate::backend::Generator;
use sdvp_generate::cache::Cache;
use sdvp_generate::embedded::EmbeddedGenerator;
use sdvp_generate::extract::{Checker, PythonValidator};
use sdvp_generate::gold::GoldGenerator;
use sdvp_generate::openai::{Endpoint, OpenAiConfig, OpenAiGenerator};
use sdvp_generate::questions::Question;
use sdvp_generate::run::Driver;
use sdvp_generate::{gqa, prompt, PromptOptions, RunConfig, Sampling, Style, Task};
use sdvp_program::steps::Registry;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// gqa-world, nlvr-world, gqa or nlvr2.
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
    /// Only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per question.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Extra samples for a question whose samples are all invalid.
    #[arg(long, default_value_t = 2)]
    resamples: usize,
    /// In-context examples in the prompt.
    #[arg(long, default_value_t = 6)]
    examples: usize,
    /// Seed for example choice and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 512)]
    max_tokens: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 120)]
    request_timeout: u64,
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Seconds the whole generation may take (0: no limit).
    #[arg(long, default_value_t = 0)]
    deadline: u64,
    /// Weights directory of the embedded generator.
    #[arg(long, default_value = "weights/generator")]
    weights: PathBuf,
    /// Cache directory (default: $XDG_CACHE_HOME/sdvp/generate or ~/.cache/sdvp/generate).
    #[arg(long)]
    cache: Option<PathBuf>,
    #[arg(long)]
    no_cache: bool,
}

fn load_questions(args: &GenerateArgs, task: Task) -> anyhow::Result<Vec<Question>> {
    let report = sdvp_data::load_split(&args.data, task.as_str(), &args.split)?;
    for skipped in &report.skipped {
        eprintln!("warning: skipped {skipped}");
    }
    Ok(report
        .examples
        .into_iter()
        .map(|e| Question {
            semantic: e.meta.get("semantic").cloned(),
            id: e.id,
            question: e.question,
            task: Some(e.task),
            gold_step: e.gold_step,
            gold_python: e.gold_python,
        })
        .collect())
}

fn generator(
    args: &GenerateArgs,
    task: Task,
    style: Style,
    questions: &[Question],
) -> anyhow::Result<Box<dyn Generator>> {
    Ok(match args.generator {
        GeneratorKind::Openai => {
            let mut c =
                OpenAiConfig::new(&args.base_url, &args.model).with_key_from_env(&args.api_key_env);
            c.endpoint = match args.endpoint {
                EndpointKind::Chat => Endpoint::Chat,
                EndpointKind::Completions => Endpoint::Completions,
            };
            c.concurrency = args.concurrency.max(1);
            c.request_timeout = Duration::from_secs(args.request_timeout.max(1));
            c.max_retries = args.retries;
            c.total_timeout = (args.deadline > 0).then(|| Duration::from_secs(args.deadline));
            c.jitter_seed = args.seed;
            Box::new(OpenAiGenerator::new(c)?)
        }
        GeneratorKind::Local => anyhow::bail!(
            "the local in-process LLM generator is not built yet; serve the model with an \
             OpenAI-compatible server (vLLM, llama.cpp) and use --generator openai --base-url"
        ),
        GeneratorKind::Embedded => Box::new(EmbeddedGenerator::from_dir(&args.weights)?),
        GeneratorKind::Gold => {
            let mut gold = GoldGenerator::from_questions(questions);
            // Real GQA records carry a functional program instead of a gold step program.
            if task == Task::Gqa && style == Style::Step {
                for q in questions.iter().filter(|q| q.gold_step.is_none()) {
                    let Some(sem) = &q.semantic else { continue };
                    match gqa::parse_semantic(sem).and_then(|ops| gqa::convert(&ops)) {
                        Ok(p) => gold.insert(&q.id, Style::Step, p),
                        Err(e) => eprintln!("warning: {}: GQA semantic not converted: {e}", q.id),
                    }
                }
            }
            Box::new(gold)
        }
    })
}

pub fn run(args: GenerateArgs) -> anyhow::Result<i32> {
    let task: Task = args.task.parse().map_err(anyhow::Error::msg)?;
    let style: Style = args.style.parse().map_err(anyhow::Error::msg)?;
    let mut questions = load_questions(&args, task)?;
    if let Some(n) = args.limit {
        questions.truncate(n);
    }
    let generator = generator(&args, task, style, &questions)?;
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
    let registry = Registry::visual_reasoning(Default::default());
    let python: PythonValidator = Arc::new(|src: &str| sdvp_python::check_program(src).map(|_| ()));
    let checker = Checker::new(task, style, registry.clone(), Some(python));
    let stop = match (args.generator, args.endpoint) {
        (GeneratorKind::Openai, EndpointKind::Completions) => prompt::stop_texts(task),
        _ => Vec::new(),
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
        max_resamples: args.resamples,
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
    let bar = indicatif::ProgressBar::new(questions.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} questions {elapsed} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let driver = Driver {
        generator: generator.as_ref(),
        cache: &cache,
        checker: &checker,
        registry: &registry,
        config,
    };
    let mut write_error: Option<anyhow::Error> = None;
    let result = driver.run(&questions, |outcome| {
        bar.inc(1);
        if write_error.is_some() {
            return;
        }
        let line = serde_json::to_string(&outcome).map_err(anyhow::Error::from);
        if let Err(e) = line.and_then(|l| writeln!(out, "{l}").map_err(anyhow::Error::from)) {
            write_error = Some(e);
        }
    });
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
