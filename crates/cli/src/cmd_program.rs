//! `sdvp program`: check, run and list programs.

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use sdvp_core::scheduler::SchedulerConfig;
use sdvp_core::Job;
use sdvp_core::ProgramStyle;
use sdvp_core::{ImageRef, Value, ValueType};
use sdvp_data::{Example, ImageInput};
use sdvp_program::exec::{check_program, run_step_programs};
use sdvp_program::steps::Registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ProgramArgs {
    #[command(subcommand)]
    command: ProgramCommand,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Inputs {
    /// `LEFT`/`RIGHT` when the program uses them, `IMAGE` otherwise.
    Auto,
    /// One image called `IMAGE`.
    Image,
    /// An image pair called `LEFT` and `RIGHT`.
    Pair,
}

#[derive(Subcommand)]
enum ProgramCommand {
    /// Check a program. Exit 0 with a one-line summary when it is valid; otherwise exit 1 and
    /// print one JSON object per problem (`kind`, `line`, `column`, `message`) on stdout.
    Check {
        #[arg(long, default_value = "step")]
        style: ProgramStyle,
        /// Which input names the program may use (step style).
        #[arg(long, value_enum, default_value = "auto")]
        inputs: Inputs,
        file: PathBuf,
    },
    /// Run one program on an image (or a pair with --image2) and print the answer and trace.
    Run {
        #[arg(long, default_value = "step")]
        style: ProgramStyle,
        /// The image (`IMAGE`), or the left image of a pair.
        #[arg(long)]
        image: PathBuf,
        /// The right image of a pair; the program then reads `LEFT` and `RIGHT`.
        #[arg(long)]
        image2: Option<PathBuf>,
        /// Module backend: `scripted:ANSWERS.json` or `oracle:WORLD_DIR`.
        #[arg(long)]
        modules: String,
        /// Write the trace (JSONL) here as well as printing it.
        #[arg(long)]
        trace: Option<PathBuf>,
        file: PathBuf,
    },
    /// List the step modules with their arguments.
    Modules,
}

pub fn run(args: ProgramArgs) -> anyhow::Result<i32> {
    match args.command {
        ProgramCommand::Check {
            style,
            inputs,
            file,
        } => check(style, inputs, &file),
        ProgramCommand::Run {
            style,
            image,
            image2,
            modules,
            trace,
            file,
        } => run_one(
            style,
            &image,
            image2.as_deref(),
            &modules,
            trace.as_deref(),
            &file,
        ),
        ProgramCommand::Modules => {
            list_modules();
            Ok(0)
        }
    }
}

fn read_source(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read program {}", file.display()))
}

/// Does the step program read `LEFT` or `RIGHT`? Decided on the parsed arguments, not the text,
/// so a question mentioning "left" does not count.
fn uses_pair(source: &str) -> bool {
    let (program, _) = sdvp_program::parser::parse(source);
    program.steps.iter().flat_map(|s| &s.args).any(
        |a| matches!(&a.value, sdvp_program::ast::ArgValue::Var(v) if v == "LEFT" || v == "RIGHT"),
    )
}

fn input_types(inputs: Inputs, source: &str) -> Vec<(&'static str, ValueType)> {
    let pair = match inputs {
        Inputs::Auto => uses_pair(source),
        Inputs::Image => false,
        Inputs::Pair => true,
    };
    if pair {
        vec![("LEFT", ValueType::Image), ("RIGHT", ValueType::Image)]
    } else {
        vec![("IMAGE", ValueType::Image)]
    }
}

fn check(style: ProgramStyle, inputs: Inputs, file: &Path) -> anyhow::Result<i32> {
    let source = read_source(file)?;
    let result = match style {
        ProgramStyle::Step => {
            let registry = Registry::visual_reasoning(Default::default());
            check_program(&source, &registry, &input_types(inputs, &source)).map(|p| p.steps.len())
        }
        ProgramStyle::Python => sdvp_python::check_program(&source).map(|p| p.body.len()),
    };
    match result {
        Ok(n) => {
            let unit = if style == ProgramStyle::Step {
                "step(s)"
            } else {
                "function(s)"
            };
            println!("{}: valid, {n} {unit}", file.display());
            Ok(0)
        }
        Err(problems) => {
            for p in &problems {
                println!("{}", serde_json::to_string(p)?);
            }
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            Ok(1)
        }
    }
}

/// A command-line image as a program input, and the example that lets the module backend
/// find its file (image stores resolve registered files, never arbitrary paths).
fn image_input(name: &str, path: &Path) -> anyhow::Result<(Value, ImageInput)> {
    let (w, h) = image::image_dimensions(path)
        .with_context(|| format!("cannot read image {}", path.display()))?;
    let image = ImageRef::new(path.display().to_string(), w, h);
    let input = ImageInput {
        name: name.to_string(),
        image: image.clone(),
        path: path.to_path_buf(),
    };
    Ok((Value::Image(image), input))
}

fn run_one(
    style: ProgramStyle,
    image: &Path,
    image2: Option<&Path>,
    modules: &str,
    trace_out: Option<&Path>,
    file: &Path,
) -> anyhow::Result<i32> {
    let source = read_source(file)?;
    let named = match image2 {
        Some(right) => vec![("LEFT", image), ("RIGHT", right)],
        None => vec![("IMAGE", image)],
    };
    let mut inputs = BTreeMap::new();
    let mut files = Vec::new();
    for (name, path) in named {
        let (value, input) = image_input(name, path)?;
        inputs.insert(name.to_string(), value);
        files.push(input);
    }
    let example = Example {
        id: String::new(),
        task: String::new(),
        split: String::new(),
        question: String::new(),
        answer: String::new(),
        question_type: String::new(),
        images: files,
        gold_step: None,
        gold_python: None,
        meta: BTreeMap::new(),
    };
    let backend = crate::backends::build(modules, None, std::slice::from_ref(&example))?;
    let job = Job {
        id: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source,
        inputs,
        meta: BTreeMap::new(),
    };
    let config = SchedulerConfig::default();
    let jobs = std::slice::from_ref(&job);
    let (traces, _) = match style {
        ProgramStyle::Step => run_step_programs(
            &Registry::visual_reasoning(Default::default()),
            backend.as_ref(),
            config,
            jobs,
        ),
        ProgramStyle::Python => {
            sdvp_python::run_python_programs(backend.as_ref(), config, jobs, &Default::default())
        }
    };
    let Some(trace) = traces.into_iter().next() else {
        bail!("the executor returned no trace");
    };
    if let Some(path) = trace_out {
        let mut f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        sdvp_core::trace::append_trace(&mut f, &trace)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", serde_json::to_string_pretty(&trace)?);
    match (&trace.answer, &trace.error) {
        (Some(a), _) => {
            println!("answer: {a}");
            Ok(0)
        }
        (None, Some(e)) => {
            eprintln!("program failed ({}): {}", e.kind, e.message);
            Ok(1)
        }
        (None, None) => Ok(1),
    }
}

fn list_modules() {
    let registry = Registry::visual_reasoning(Default::default());
    for m in registry.modules() {
        let sig = m.signature();
        let args: Vec<String> = sig
            .args
            .iter()
            .map(|a| format!("{}{}: {}", a.name, if a.required { "" } else { "?" }, a.ty))
            .collect();
        println!(
            "{}({}) -> {}\n    {}",
            m.name(),
            args.join(", "),
            sig.output,
            m.doc()
        );
    }
}
