//! Programs from a generator outside `sdvp generate`: the one question of `sdvp ask` and the
//! training questions `sdvp distill --programs embedded` mines.

use anyhow::Context;
use sdvp_core::ProgramStyle;
use sdvp_generate::backend::Generator;
use sdvp_generate::cache::Cache;
use sdvp_generate::embedded::EmbeddedGenerator;
use sdvp_generate::extract::{Checker, PythonValidator};
use sdvp_generate::questions::Question;
use sdvp_generate::run::Driver;
use sdvp_generate::{Outcome, PromptOptions, RunConfig, RunStats, Sampling, Task};
use sdvp_program::steps::Registry;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The shipped generator (`weights/generator`, or `$SDVP_WEIGHTS/generator`).
pub fn embedded_generator() -> anyhow::Result<EmbeddedGenerator> {
    let dir = sdvp_modules::set::embedded_dir().join("generator");
    Ok(EmbeddedGenerator::from_dir(&dir)?)
}

/// The validity check of generated programs: what `sdvp program check` accepts for `task`.
pub fn checker(task: Task, style: ProgramStyle, registry: &Registry) -> Checker {
    let python: PythonValidator = Arc::new(|src: &str| sdvp_python::check_program(src).map(|_| ()));
    Checker::new(task, style, registry.clone(), Some(python))
}

/// Writes programs for `questions` with `generator` (greedy, then up to `resamples`
/// sampled retries of an invalid one), calling `done` per question in order.
pub fn generate(
    generator: &dyn Generator,
    task: Task,
    style: ProgramStyle,
    questions: &[Question],
    seed: u64,
    resamples: usize,
    done: impl FnMut(Outcome),
) -> anyhow::Result<RunStats> {
    let registry = Registry::visual_reasoning(Default::default());
    let checker = checker(task, style, &registry);
    let cache = Cache::disabled();
    let driver = Driver {
        generator,
        cache: &cache,
        checker: &checker,
        registry: &registry,
        config: RunConfig {
            prompt: PromptOptions { examples: 6, seed },
            sampling: Sampling {
                seed,
                ..Sampling::default()
            },
            samples: 1,
            max_resamples: resamples,
            ..RunConfig::default()
        },
    };
    driver
        .run(questions, done)
        .map_err(|e| anyhow::anyhow!("generation stopped: {e}"))
}

/// The first `limit` questions of `task`/`split` of `world` with embedded-generator
/// programs in `path` (`{"id", "program", …}` lines, what `sdvp generate` writes). A file
/// already there is kept: it is only ever written whole (temporary file, then renamed).
pub fn write_embedded_programs(
    world: &Path,
    task: &str,
    split: &str,
    style: ProgramStyle,
    limit: usize,
    path: &Path,
) -> anyhow::Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let task_enum: Task = task.parse().map_err(anyhow::Error::msg)?;
    let report = sdvp_data::load_split(world, task, split)?;
    let questions: Vec<Question> = report
        .examples
        .into_iter()
        .take(limit)
        .map(|e| Question {
            id: e.id,
            question: e.question,
            task: Some(e.task),
            gold_step: None,
            gold_python: None,
            semantic: None,
        })
        .collect();
    let generator = embedded_generator()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let bar = sdvp_core::progress::bar(
        questions.len() as u64,
        &format!("{task} {style} programs (embedded generator)"),
    );
    let mut error = None;
    let resamples = sdvp_generate::embedded::RESAMPLES;
    let stats = generate(
        &generator,
        task_enum,
        style,
        &questions,
        0,
        resamples,
        |o| {
            bar.inc(1);
            let line = serde_json::to_string(&o).map_err(anyhow::Error::from);
            if let Err(e) = line.and_then(|l| writeln!(out, "{l}").map_err(anyhow::Error::from)) {
                error.get_or_insert(e);
            }
        },
    )?;
    bar.finish_and_clear();
    if let Some(e) = error {
        return Err(e.context(format!("writing {}", tmp.display())));
    }
    out.flush()
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "{task} {style}: {} questions, {} with a valid program, {} without ({})",
        stats.questions,
        stats.with_program,
        stats.questions - stats.with_program,
        path.display()
    );
    Ok(())
}
