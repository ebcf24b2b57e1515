//! `sdvp ask`: one question about one image (or an image pair), answered by a program the
//! generator writes and the modules run. The first thing a new user types.
//!
//! Out of the box it needs nothing but the checkout: the embedded generator
//! (`weights/generator`) writes the program and the embedded module set runs it, each
//! checkpoint loaded only when a step first calls it. A question the generator cannot
//! turn into a valid program is an error (exit 1), never a made-up answer.

use anyhow::{bail, Context};
use sdvp_core::trace::Trace;
use sdvp_core::{ImageRef, Job, ProgramStyle, SchedulerConfig, Value};
use sdvp_data::ImageStore;
use sdvp_generate::backend::Generator;
use sdvp_generate::openai::{OpenAiConfig, OpenAiGenerator};
use sdvp_generate::questions::Question;
use sdvp_generate::Task;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct AskArgs {
    /// The question (for an image pair: a statement to judge true or false).
    question: String,
    /// The image the question is about (`IMAGE`; `LEFT` with --image2).
    #[arg(long)]
    image: PathBuf,
    /// The second image of a pair (`RIGHT`); makes the task nlvr-world.
    #[arg(long)]
    image2: Option<PathBuf>,
    /// step or python.
    #[arg(long, default_value = "step")]
    style: String,
    /// The task the question is asked as (default: gqa-world, or nlvr-world for a pair).
    #[arg(long)]
    task: Option<String>,
    /// Program writer: embedded, openai:URL:MODEL or local:DIR.
    #[arg(long, default_value = "embedded")]
    generator: String,
    /// Modules that run the program (see `sdvp eval --modules`).
    #[arg(long, default_value = "embedded")]
    modules: String,
    /// Print one JSON object (program, answer, steps) instead of text.
    #[arg(long)]
    json: bool,
    /// Write the visual rationale (HTML) into this folder.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Samples tried when the first program is invalid (0 to 16; default 8 for the embedded
    /// generator, 4 for the others).
    #[arg(long, value_parser = crate::cmd_world::usize_range(0, 16))]
    resamples: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// An image input: its file, checked to decode, as a program value.
fn image_input(path: &Path, store: &mut ImageStore) -> anyhow::Result<Value> {
    if !path.is_file() {
        bail!("image {}: no such file", path.display());
    }
    let (w, h) = image::image_dimensions(path)
        .with_context(|| format!("image {}: not a readable image", path.display()))?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let source = abs.display().to_string();
    store.register_file(source.clone(), abs);
    Ok(Value::Image(ImageRef::new(source, w, h)))
}

fn generator(spec: &str) -> anyhow::Result<Box<dyn Generator>> {
    if spec == "embedded" {
        return Ok(Box::new(crate::programs::embedded_generator()?));
    }
    if let Some(rest) = spec.strip_prefix("openai:") {
        let Some((url, model)) = rest
            .rsplit_once(':')
            .filter(|(u, m)| !u.is_empty() && !m.is_empty())
        else {
            bail!("--generator openai:URL:MODEL: `{spec}` has no model after the URL");
        };
        let config = OpenAiConfig::new(url, model).with_key_from_env("OPENAI_API_KEY");
        return Ok(Box::new(OpenAiGenerator::new(config)?));
    }
    if let Some(dir) = spec.strip_prefix("local:") {
        return Ok(sdvp_generate::local::load(Path::new(dir), None)?);
    }
    bail!("--generator: `{spec}` is not embedded, openai:URL:MODEL or local:DIR")
}

/// A value as one line of text.
fn summary(v: &Value) -> String {
    match v {
        Value::Image(i) => {
            let r = i.region();
            format!(
                "image region ({:.0}, {:.0}, {:.0}, {:.0})",
                r.x0, r.y0, r.x1, r.y1
            )
        }
        Value::Boxes(b) => {
            let shown: Vec<String> = b
                .boxes
                .iter()
                .take(4)
                .map(|r| format!("({:.0}, {:.0}, {:.0}, {:.0})", r.x0, r.y0, r.x1, r.y1))
                .collect();
            let more = if b.boxes.len() > 4 { ", …" } else { "" };
            format!("{} box(es) {}{more}", b.boxes.len(), shown.join(", "))
        }
        other => other.to_answer(),
    }
}

/// What a step printed: its module, line and output.
fn step_json(t: &Trace) -> Vec<serde_json::Value> {
    t.steps
        .iter()
        .map(|s| {
            json!({
                "line": s.line,
                "text": s.text,
                "module": s.module,
                "output": s.output.as_ref().map(summary),
                "error": s.error,
            })
        })
        .collect()
}

pub fn run(args: AskArgs) -> anyhow::Result<i32> {
    let style: ProgramStyle = args.style.parse().map_err(anyhow::Error::msg)?;
    let task: Task = match &args.task {
        Some(t) => t.parse().map_err(anyhow::Error::msg)?,
        None if args.image2.is_some() => Task::NlvrWorld,
        None => Task::GqaWorld,
    };
    match (task.is_pair(), args.image2.is_some()) {
        (true, false) => bail!("{task} asks about an image pair: give --image2 as well"),
        (false, true) => {
            bail!("{task} asks about one image: --image2 is for pair tasks (--task nlvr-world)")
        }
        _ => {}
    }
    let question = args.question.trim();
    if question.is_empty() {
        bail!("the question is empty");
    }
    let mut store = ImageStore::new(Vec::new());
    let mut inputs = BTreeMap::new();
    let mut roots = Vec::new();
    let images: Vec<(&str, &PathBuf)> = match &args.image2 {
        Some(second) => vec![("LEFT", &args.image), ("RIGHT", second)],
        None => vec![("IMAGE", &args.image)],
    };
    for (name, path) in images {
        inputs.insert(name.to_string(), image_input(path, &mut store)?);
        if let Some(p) = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            roots.push(p);
        }
    }

    let gen = generator(&args.generator)?;
    let q = Question {
        id: "ask".into(),
        question: question.to_string(),
        task: Some(task.as_str().to_string()),
        gold_step: None,
        gold_python: None,
        semantic: None,
    };
    let mut outcome = None;
    crate::programs::generate(
        gen.as_ref(),
        task,
        style,
        std::slice::from_ref(&q),
        args.seed,
        args.resamples.unwrap_or(if args.generator == "embedded" {
            sdvp_generate::embedded::RESAMPLES
        } else {
            4
        }),
        |o| outcome = Some(o),
    )?;
    let Some(outcome) = outcome else {
        bail!("the generator returned nothing for the question");
    };
    let Some(program) = outcome.program.clone() else {
        let tried = outcome.samples.len();
        eprintln!(
            "the {} generator could not write a valid {style} program for this question \
             ({tried} attempt(s)): {}",
            gen.backend(),
            outcome.failure.as_deref().unwrap_or("no valid program")
        );
        if let Some(raw) = &outcome.raw {
            eprintln!("last attempt:\n{raw}");
        }
        return Ok(1);
    };

    let backend = sdvp_modules::ModulesSpec::parse(&args.modules, None)?.build(store)?;
    let job = Job {
        id: "ask".into(),
        source: program.clone(),
        inputs,
        meta: BTreeMap::from([("question".to_string(), json!(question))]),
    };
    let mut trace = job.empty_trace(style);
    sdvp_eval::run_programs(
        style,
        backend.as_ref(),
        SchedulerConfig::default(),
        std::slice::from_ref(&job),
        |_, t| trace = t,
    );

    if let Some(dir) = &args.html {
        let mut resolver = sdvp_report::ImageResolver::new(roots);
        sdvp_report::render_traces(std::slice::from_ref(&trace), &mut resolver, dir)
            .with_context(|| format!("rendering into {}", dir.display()))?;
    }
    let error = trace.error.as_ref().map(|e| e.message.clone());
    if args.json {
        let v = json!({
            "question": question,
            "task": task.as_str(),
            "style": style.as_str(),
            "generator": gen.model(),
            "program": program,
            "answer": trace.answer,
            "steps": step_json(&trace),
            "error": error,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("program ({style}, {}):", gen.backend());
        for l in program.lines() {
            println!("  {l}");
        }
        println!("steps:");
        for s in &trace.steps {
            let out = s.output.as_ref().map(summary).unwrap_or_default();
            match &s.error {
                Some(e) => println!("  {:>3}  {:<10} error: {e}", s.line, s.module),
                None => println!("  {:>3}  {:<10} {out}", s.line, s.module),
            }
        }
        match (&trace.answer, &error) {
            (Some(a), _) => println!("answer: {a}"),
            (None, Some(e)) => println!("no answer: {e}"),
            (None, None) => println!("no answer"),
        }
        if let Some(dir) = &args.html {
            println!("rationale: {}", dir.join("index.html").display());
        }
    }
    Ok(if trace.answer.is_some() { 0 } else { 1 })
}
