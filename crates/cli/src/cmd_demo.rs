//! `sdvp demo`: the main job. On the embedded default, for both program styles: the base
//! pipeline on every world task's test split, four SDVP steps (`vqa`, `detect` and
//! `classify` on `gqa-world`, then `vqa` on `nlvr-world`, each starting from the last), the
//! replace-with-teacher baseline and the teacher alone; prints the paper-style table and
//! writes `summary.json` / `summary.md`.
//!
//! Everything is resumable: running the same command again reuses every finished run.

use crate::cmd_distill::{describe, DistillArgs};
use crate::cmd_eval::{evaluate, EvalRunArgs};
use anyhow::Context;
use clap::Args;
use sdvp_core::trace::ProgramStyle;
use sdvp_data::world::{generate_world, Scale, WorldConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// Output folder (world, runs, steps, summary). Re-running reuses and resumes what is there.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Use this world instead of generating one into OUT/world.
    #[arg(long)]
    world: Option<PathBuf>,
    /// World size when generating: tiny (seconds) or small (10k training questions per task).
    #[arg(long, default_value = "small")]
    scale: String,
    /// World seed when generating (0: the world the shipped weights were trained on, whose
    /// test split they never saw).
    #[arg(long, default_value_t = 0)]
    world_seed: u64,
    /// Test questions per task and style (1 to 1 000 000).
    #[arg(long, default_value_t = 400, value_parser = crate::cmd_world::usize_range(1, 1_000_000))]
    limit: usize,
    /// Training questions mined per style in each SDVP step (1 to 10 000 000).
    #[arg(long, default_value_t = 1000, value_parser = crate::cmd_world::usize_range(1, 10_000_000))]
    mine_limit: usize,
    /// Fine-tuning steps of each SDVP step (1 to 1 000 000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    distill_steps: u64,
    /// Weight of the forgetting guard (0 to 100).
    #[arg(long, default_value_t = 1.0, value_parser = crate::cmd_distill::f64_range(0.0, 100.0))]
    lambda: f64,
    /// Programs: `embedded` (the shipped generator writes them, mistakes included, for the
    /// test questions and for mining) or `gold` (the dataset's own).
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "gold"])]
    pub programs: String,
    /// Training seed of the distillation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One SDVP step of the plan.
struct PlanStep {
    task: &'static str,
    module: &'static str,
    /// The program styles mined (classify calls come only from Python programs).
    style: &'static str,
}

/// The SDVP plan, in order; `attr-world` is never trained on.
const STEPS: [PlanStep; 4] = [
    PlanStep {
        task: "gqa-world",
        module: "vqa",
        style: "both",
    },
    PlanStep {
        task: "gqa-world",
        module: "detect",
        style: "both",
    },
    PlanStep {
        task: "gqa-world",
        module: "classify",
        style: "python",
    },
    PlanStep {
        task: "nlvr-world",
        module: "vqa",
        style: "both",
    },
];
/// What the demo prints progress over: the world, the base, each step, the two baselines.
const STAGES: usize = 4 + STEPS.len();
/// The target tasks, in the plan's order.
const TARGETS: [&str; 2] = ["gqa-world", "nlvr-world"];
const UNSEEN: &str = "attr-world";
const TASKS: [&str; 3] = ["gqa-world", "nlvr-world", "attr-world"];
const STYLES: [ProgramStyle; 2] = [ProgramStyle::Step, ProgramStyle::Python];

fn teacher_dir(task: &str) -> String {
    sdvp_modules::set::embedded_dir()
        .join("teachers")
        .join(task)
        .display()
        .to_string()
}

/// One number of the table: accuracy and how many questions it rests on.
#[derive(Clone, Copy)]
struct Cell {
    accuracy: f64,
    n: usize,
    errors: usize,
}

struct Ctx<'a> {
    world: &'a Path,
    out: &'a Path,
    limit: usize,
    /// `gold` or `embedded`.
    programs: &'a str,
}

impl Ctx<'_> {
    /// The `--programs` value of the test questions of `task` in `style`: gold, or the
    /// embedded generator's programs (written once into OUT/programs/).
    fn test_programs(&self, task: &str, style: ProgramStyle) -> anyhow::Result<String> {
        if self.programs == "gold" {
            return Ok("gold".into());
        }
        let path = self.out.join("programs").join(format!(
            "{task}-test-{}-{}.jsonl",
            self.limit,
            style.as_str()
        ));
        crate::programs::write_embedded_programs(
            self.world, task, "test", style, self.limit, &path,
        )?;
        Ok(path.display().to_string())
    }

    fn eval(
        &self,
        name: &str,
        task: &str,
        style: ProgramStyle,
        modules: &str,
        programs: &str,
    ) -> anyhow::Result<Cell> {
        let args = EvalRunArgs {
            data: Some(self.world.to_path_buf()),
            task: Some(task.to_string()),
            split: "test".into(),
            programs: programs.to_string(),
            modules: modules.to_string(),
            out: Some(
                self.out
                    .join("eval")
                    .join(format!("{name}-{task}-{}", style.as_str())),
            ),
            style,
            limit: Some(self.limit as u64),
            shard: None,
            max_batch: 64,
            restart: false,
        };
        let s = evaluate(&args, None, false)?;
        println!(
            "  {name:<16} {task:<11} {:<6} {:.3} ({}/{}, {} errors)",
            style.as_str(),
            s.accuracy,
            s.correct,
            s.total,
            s.errors()
        );
        Ok(Cell {
            accuracy: s.accuracy,
            n: s.total,
            errors: s.errors(),
        })
    }
}

/// The question asked of the teacher directly, whole image in, as a program of `style`.
fn direct_program(question: &str, style: ProgramStyle) -> Option<String> {
    if question.contains(['\'', '"', '\\', '\n']) {
        return None;
    }
    Some(match style {
        ProgramStyle::Step => {
            format!("ANSWER0=VQA(image=IMAGE,question='{question}')\nFINAL_RESULT=RESULT(var=ANSWER0)\n")
        }
        ProgramStyle::Python => format!(
            "def execute_command(image):\n    image_patch = ImagePatch(image)\n    return image_patch.simple_query(\"{question}\")\n"
        ),
    })
}

fn write_direct_programs(
    world: &Path,
    task: &str,
    style: ProgramStyle,
    limit: usize,
    path: &Path,
) -> anyhow::Result<()> {
    let report = sdvp_data::loaders::load_task(world, task, "test")?;
    let mut text = String::new();
    for ex in report.examples.iter().take(limit) {
        let p = direct_program(&ex.question, style);
        text.push_str(&serde_json::to_string(&json!({"id": ex.id, "program": p}))?);
        text.push('\n');
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

type Results<'a> = BTreeMap<(ProgramStyle, &'a str, String), Cell>;

const COLUMNS: [(&str, &str); 7] = [
    ("base", "Base"),
    ("step1", "+SDVP step 1 (gqa vqa)"),
    ("step2", "+SDVP step 2 (gqa detect)"),
    ("step3", "+SDVP step 3 (gqa classify)"),
    ("step4", "+SDVP step 4 (nlvr vqa)"),
    ("replace", "Replace-with-teacher"),
    ("teacher", "Teacher alone"),
];

/// The report's tables, one per style.
fn get_table(results: &Results) -> Vec<sdvp_report::comparison::Table> {
    STYLES
        .iter()
        .map(|&style| sdvp_report::comparison::Table {
            title: match style {
                ProgramStyle::Step => "Step programs (VisProg-style)".into(),
                ProgramStyle::Python => "Python programs (ViperGPT-style)".into(),
            },
            row_header: "task".into(),
            columns: COLUMNS.iter().map(|(_, c)| c.to_string()).collect(),
            rows: TASKS
                .iter()
                .map(|&task| {
                    let cell = |col: &str| results.get(&(style, task, col.to_string())).copied();
                    sdvp_report::comparison::Row {
                        task: task.to_string(),
                        unseen: task == UNSEEN,
                        cells: COLUMNS
                            .iter()
                            .map(|(k, _)| cell(k).map(|c| c.accuracy))
                            .collect(),
                        n: cell("base").map_or(0, |c| c.n),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Per question type of `task`/`style`: Base, after the last step, replace-with-teacher.
fn type_table(
    out: &Path,
    task: &str,
    style: ProgramStyle,
) -> anyhow::Result<sdvp_report::comparison::Table> {
    let last = format!("sdvp-step{}", STEPS.len());
    let runs = [
        ("base", "Base"),
        (last.as_str(), "+SDVP (last step)"),
        ("replace-teacher", "Replace-with-teacher"),
    ];
    let mut per: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (run, _)) in runs.iter().enumerate() {
        let path = out
            .join("eval")
            .join(format!("{run}-{task}-{}", style.as_str()))
            .join("metrics.json");
        let m: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: not JSON", path.display()))?;
        for (qt, v) in m["per_question_type"].as_object().into_iter().flatten() {
            let row = per
                .entry(qt.clone())
                .or_insert_with(|| vec![None; runs.len()]);
            row[i] = v["accuracy"].as_f64();
            counts.insert(qt.clone(), v["total"].as_u64().unwrap_or(0) as usize);
        }
    }
    Ok(sdvp_report::comparison::Table {
        title: format!(
            "{task}, {} programs: accuracy per question type",
            style.as_str()
        ),
        row_header: "question type".into(),
        columns: runs.iter().map(|(_, c)| c.to_string()).collect(),
        rows: per
            .into_iter()
            .map(|(qt, cells)| sdvp_report::comparison::Row {
                n: counts.get(&qt).copied().unwrap_or(0),
                task: qt,
                unseen: false,
                cells,
            })
            .collect(),
    })
}

fn write_report(
    out: &Path,
    world: &Path,
    tables: &[sdvp_report::comparison::Table],
    limit: usize,
    programs: &str,
) -> anyhow::Result<()> {
    let mut all = tables.to_vec();
    for style in STYLES {
        all.push(type_table(out, TARGETS[0], style)?);
    }
    // Rationales of the target task's answers that SDVP fixed or broke.
    let mut links = Vec::new();
    let mut resolver = sdvp_report::ImageResolver::new(vec![world.to_path_buf()]);
    for style in STYLES {
        let read = |run: &str| {
            sdvp_core::trace::read_traces(
                &out.join("eval")
                    .join(format!("{run}-{}-{}", TARGETS[0], style.as_str()))
                    .join("traces.jsonl"),
            )
        };
        let (fixed, broken) = sdvp_report::comparison::changed_answers(
            &read("base")?,
            &read(&format!("sdvp-step{}", STEPS.len()))?,
        );
        for (what, traces) in [("fixed", fixed), ("broken", broken)] {
            let dir = format!("html/{what}-{}-{}", TARGETS[0], style.as_str());
            sdvp_report::render_traces(&traces, &mut resolver, &out.join(&dir))?;
            links.push((
                format!(
                    "{} {} programs {what} by SDVP: {} questions",
                    TARGETS[0],
                    style.as_str(),
                    traces.len()
                ),
                format!("{dir}/index.html"),
            ));
        }
    }
    let images: Vec<(String, String)> = STEPS
        .iter()
        .enumerate()
        .map(|(i, step)| {
            (
                format!(
                    "SDVP step {}: fine-tuning {} on {} (loss and validation)",
                    i + 1,
                    step.module,
                    step.task
                ),
                format!("sdvp/step-{}/train/curves.png", i + 1),
            )
        })
        .filter(|(_, p)| out.join(p).is_file())
        .collect();
    let note = format!(
        "{} programs on each task's test split ({limit} questions per cell) with the embedded \
         default; SDVP distils each target task's teachers into the student behind one \
         module at a time (vqa: BLIP; detect: OWL-ViT, from the teacher detector's boxes; \
         classify: CLIP, the teacher ranking the options as answers), one task after the \
         other; a step whose checkpoints never beat the \
         untouched student on val keeps it; attr-world is never trained on.",
        if programs == "gold" {
            "Gold"
        } else {
            "Embedded-generator"
        }
    );
    let html = sdvp_report::comparison::comparison_html(
        "sdvp demo: stepwise distillation on the embedded default",
        &note,
        &all,
        &links,
        &images,
    );
    let path = out.join("report.html");
    std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))
}

fn cell_json(c: Option<Cell>) -> Value {
    c.map_or(Value::Null, |c| json!(c.accuracy))
}

fn fmt(c: Option<Cell>) -> String {
    c.map_or("—".into(), |c| format!("{:.1}", 100.0 * c.accuracy))
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let start = Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let world = match &args.world {
        Some(w) => w.clone(),
        None => args.out.join("world"),
    };
    if world.join("scenes.jsonl").is_file() {
        println!("[1/{}] world: reusing {}", STAGES, world.display());
    } else if args.world.is_some() {
        anyhow::bail!("--world {}: no scenes.jsonl there", world.display());
    } else {
        let scale = Scale::parse(&args.scale)
            .with_context(|| format!("--scale {:?}: expected tiny, small or full", args.scale))?;
        println!(
            "[1/{STAGES}] world: generating ({} scale, seed {})",
            args.scale, args.world_seed
        );
        let bar = sdvp_core::progress::bar(0, "questions");
        let cfg = WorldConfig {
            seed: args.world_seed,
            scale,
            size: 128,
            threads: 0,
        };
        generate_world(&world, &cfg, &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        bar.finish_and_clear();
    }
    let ctx = Ctx {
        world: &world,
        out: &args.out,
        limit: args.limit,
        programs: &args.programs,
    };
    // results[style][task][column]
    let mut results: Results = BTreeMap::new();

    println!(
        "[2/{STAGES}] base: {} programs on the embedded default (test)",
        if args.programs == "gold" {
            "gold"
        } else {
            "generated"
        }
    );
    for task in TASKS {
        for style in STYLES {
            let c = ctx.eval(
                "base",
                task,
                style,
                "embedded",
                &ctx.test_programs(task, style)?,
            )?;
            results.insert((style, task, "base".into()), c);
        }
    }

    let mut modules = "embedded".to_string();
    let mut earlier: Vec<PathBuf> = Vec::new();
    let mut step_lines = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        let task = step.task;
        let dir = args.out.join("sdvp").join(format!("step-{}", i + 1));
        println!(
            "[{}/{STAGES}] SDVP step {}: distil the {task} teacher into {} (from {modules})",
            3 + i,
            i + 1,
            step.module
        );
        let d = DistillArgs {
            data: world.clone(),
            task: task.to_string(),
            module: step.module.into(),
            modules: modules.clone(),
            teacher: Some(teacher_dir(task)),
            programs: args.programs.clone(),
            style: step.style.into(),
            mine_limit: args.mine_limit,
            min_confidence: None,
            no_consistency: false,
            no_dedup: false,
            labels: "soft".into(),
            lambda: args.lambda,
            steps: args.distill_steps,
            batch: 16,
            replay_batch: 16,
            lr: 5e-4,
            replay_items: 800,
            earlier: earlier.clone(),
            val_items: 300,
            eval_every: args.distill_steps.div_ceil(2),
            seed: args.seed,
            ship_trained: false,
            shard: None,
            out: dir.clone(),
        };
        let report = sdvp_distill::step::run_step(&d.spec()?)?;
        let line = describe(&report);
        println!("  {line}");
        step_lines.push(line);
        modules = dir.display().to_string();
        earlier.push(dir);
        for t in TASKS {
            for style in STYLES {
                let programs = ctx.test_programs(t, style)?;
                let c = ctx.eval(
                    &format!("sdvp-step{}", i + 1),
                    t,
                    style,
                    &modules,
                    &programs,
                )?;
                results.insert((style, t, format!("step{}", i + 1)), c);
            }
        }
    }

    println!(
        "[{}/{STAGES}] replace-with-teacher: vqa, detect and classify answered by the teacher",
        STAGES - 1
    );
    let last_teacher = TARGETS[TARGETS.len() - 1];
    for task in TASKS {
        let teacher = if TARGETS.contains(&task) {
            task
        } else {
            last_teacher
        };
        for style in STYLES {
            let t = teacher_dir(teacher);
            let spec = format!("embedded,vqa={t},detect={t},classify=blip-vqa:{t}/vqa");
            let c = ctx.eval(
                "replace-teacher",
                task,
                style,
                &spec,
                &ctx.test_programs(task, style)?,
            )?;
            results.insert((style, task, "replace".into()), c);
        }
    }

    println!(
        "[{STAGES}/{STAGES}] teacher alone: the question asked of the teacher, whole image in"
    );
    // The NLVR-style statements are about two images; the VQA teacher cannot judge them.
    for style in STYLES {
        let task = "gqa-world";
        let path = args
            .out
            .join("teacher-alone")
            .join(format!("{task}-{}.jsonl", style.as_str()));
        write_direct_programs(&world, task, style, args.limit, &path)?;
        let spec = format!("embedded,vqa={}", teacher_dir(task));
        let c = ctx.eval(
            "teacher-alone",
            task,
            style,
            &spec,
            &path.display().to_string(),
        )?;
        results.insert((style, task, "teacher".into()), c);
    }

    // The table, the summary.
    let last = format!("step{}", STEPS.len());
    let get = |style: ProgramStyle, task: &str, col: &str| {
        results.get(&(style, task, col.to_string())).copied()
    };
    let mut md = String::from("# sdvp demo: stepwise distillation on the embedded default\n\n");
    let _ = writeln!(
        md,
        "World `{}`; test split, {} questions per task and style (accuracy in %), {} programs. SDVP steps: \
         vqa, detect and classify on gqa-world, then vqa on nlvr-world (each from the last); attr-world is unseen. \
         Replace-with-teacher: vqa, detect and classify answered by the task's teachers (unseen: the last target's). \
         Teacher alone: the question asked of the teacher on the whole image.\n",
        world.display(),
        args.limit,
        if args.programs == "gold" { "gold" } else { "embedded-generator" }
    );
    let tasks_json = |style: ProgramStyle| -> Value {
        let mut m = serde_json::Map::new();
        for task in TASKS {
            m.insert(
                task.to_string(),
                json!({
                    "base": cell_json(get(style, task, "base")),
                    "sdvp": cell_json(get(style, task, &last)),
                    "replace_teacher": cell_json(get(style, task, "replace")),
                    "teacher": cell_json(get(style, task, "teacher")),
                }),
            );
        }
        Value::Object(m)
    };
    let summary = json!({
        "tasks": tasks_json(ProgramStyle::Step),
        "unseen": [UNSEEN],
        "python": {"tasks": tasks_json(ProgramStyle::Python)},
        "details": {
            "questions_per_cell": args.limit,
            "steps": STEPS.iter().map(|s| json!({"task": s.task, "module": s.module, "style": s.style})).collect::<Vec<_>>(),
            "after_each_step": STYLES.iter().map(|&s| (s.as_str().to_string(), TASKS.iter().map(|&t| (t.to_string(), (1..=STEPS.len()).map(|i| cell_json(get(s, t, &format!("step{i}")))).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>())).collect::<BTreeMap<_, _>>(),
            "programs": args.programs,
            "mine_limit": args.mine_limit,
            "distill_steps": args.distill_steps,
            "lambda": args.lambda,
            "seed": args.seed,
        },
    });
    for style in STYLES {
        let heads: Vec<&str> = COLUMNS.iter().map(|(_, h)| *h).collect();
        let _ = writeln!(
            md,
            "## {} programs\n\n| task | {} | n | errors (base) |\n|---|{}---|---|",
            if style == ProgramStyle::Step {
                "Step (VisProg-style)"
            } else {
                "Python (ViperGPT-style)"
            },
            heads.join(" | "),
            "---|".repeat(heads.len())
        );
        for task in TASKS {
            let base = get(style, task, "base");
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|(k, _)| fmt(get(style, task, k)))
                .collect();
            let _ = writeln!(
                md,
                "| {task}{} | {} | {} | {} |",
                if task == UNSEEN { " (unseen)" } else { "" },
                cells.join(" | "),
                base.map_or(0, |c| c.n),
                base.map_or(0, |c| c.errors),
            );
        }
        md.push('\n');
    }
    md.push_str("## SDVP steps\n\n");
    for l in &step_lines {
        let _ = writeln!(md, "- {l}");
    }
    let _ = writeln!(md, "\nTotal time: {:.0} s", start.elapsed().as_secs_f64());
    write_report(
        &args.out,
        &world,
        &get_table(&results),
        args.limit,
        &args.programs,
    )?;
    println!("\n{md}");
    sdvp_eval::write_json_atomic(&args.out.join("summary.json"), &summary)?;
    let path = args.out.join("summary.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "summary: {}, {} and {}",
        path.display(),
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(0)
}
