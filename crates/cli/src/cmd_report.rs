//! `sdvp report RUN... --out DIR`: an HTML comparison of evaluation runs.
//!
//! Runs are `sdvp eval` directories (`run.json`, `metrics.json`, `traces.jsonl`), grouped by
//! task and style in the order given. The page holds the accuracy table and bar chart
//! (rows: task and style; columns: runs), per group a per-question-type table and chart,
//! the training curves passed with `--curves`, and for every group with two or more runs
//! the visual rationales of the questions the last run answers differently from the first
//! (fixed / broken).

use anyhow::{bail, Context};
use sdvp_eval::RunConfig;
use sdvp_report::comparison::{changed_answers, comparison_html, Row, Table};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// `sdvp eval` run directories.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the report goes (DIR/index.html).
    #[arg(long)]
    out: PathBuf,
    /// A column name per run, in order (default: each run's folder name).
    #[arg(long = "name")]
    names: Vec<String>,
    /// Folders to find source images in for the rationales (a world directory).
    #[arg(long = "images")]
    images: Vec<PathBuf>,
    /// Training curves (PNG) to show, e.g. RUN/train/curves.png of a distillation step.
    #[arg(long = "curves")]
    curves: Vec<PathBuf>,
    /// Title of the page.
    #[arg(long, default_value = "sdvp report")]
    title: String,
}

struct Run {
    name: String,
    dir: PathBuf,
    config: RunConfig,
    metrics: Value,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn load(dir: &Path, name: String) -> anyhow::Result<Run> {
    let config: RunConfig = serde_json::from_value(read_json(&dir.join("run.json"))?)
        .with_context(|| format!("{}: not an eval run.json", dir.join("run.json").display()))?;
    let metrics = read_json(&dir.join("metrics.json")).with_context(|| {
        format!(
            "{} is not a finished eval run (no metrics.json)",
            dir.display()
        )
    })?;
    Ok(Run {
        name,
        dir: dir.to_path_buf(),
        config,
        metrics,
    })
}

fn group_key(r: &Run) -> String {
    format!(
        "{} ({}, {})",
        r.config.task,
        r.config.style.as_str(),
        r.config.split
    )
}

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    if !args.names.is_empty() && args.names.len() != args.runs.len() {
        bail!(
            "--name was given {} times for {} runs: give one per run or none",
            args.names.len(),
            args.runs.len()
        );
    }
    let runs: Vec<Run> = args
        .runs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let name = args.names.get(i).cloned().unwrap_or_else(|| {
                dir.file_name()
                    .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
            });
            load(dir, name)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut columns: Vec<String> = Vec::new();
    for r in &runs {
        if !columns.contains(&r.name) {
            columns.push(r.name.clone());
        }
    }
    let mut groups: Vec<(String, Vec<&Run>)> = Vec::new();
    for r in &runs {
        let k = group_key(r);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    let col = |name: &str| columns.iter().position(|c| c == name).unwrap_or(0);
    let overall = Table {
        title: "Accuracy per task and program style".into(),
        row_header: "task (style, split)".into(),
        columns: columns.clone(),
        rows: groups
            .iter()
            .map(|(k, rs)| {
                let mut cells = vec![None; columns.len()];
                for r in rs {
                    cells[col(&r.name)] = r.metrics["overall"]["accuracy"].as_f64();
                }
                Row {
                    task: k.clone(),
                    unseen: false,
                    cells,
                    n: rs[0].metrics["overall"]["total"].as_u64().unwrap_or(0) as usize,
                }
            })
            .collect(),
    };
    let mut tables = vec![overall];
    for (k, rs) in &groups {
        let mut per: BTreeMap<String, (Vec<Option<f64>>, usize)> = BTreeMap::new();
        for r in rs {
            for (qt, v) in r.metrics["per_question_type"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let e = per
                    .entry(qt.clone())
                    .or_insert_with(|| (vec![None; columns.len()], 0));
                e.0[col(&r.name)] = v["accuracy"].as_f64();
                e.1 = v["total"].as_u64().unwrap_or(0) as usize;
            }
        }
        tables.push(Table {
            title: format!("{k}: accuracy per question type"),
            row_header: "question type".into(),
            columns: columns.clone(),
            rows: per
                .into_iter()
                .map(|(qt, (cells, n))| Row {
                    task: qt,
                    unseen: false,
                    cells,
                    n,
                })
                .collect(),
        });
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut roots = args.images.clone();
    roots.extend(runs.iter().map(|r| r.dir.clone()));
    let mut resolver = sdvp_report::ImageResolver::new(roots);
    let mut links = Vec::new();
    for (i, (k, rs)) in groups.iter().enumerate() {
        let (Some(first), Some(last)) = (rs.first(), rs.last()) else {
            continue;
        };
        if rs.len() < 2 {
            continue;
        }
        let read = |r: &Run| sdvp_core::trace::read_traces(&r.dir.join("traces.jsonl"));
        let (fixed, broken) = changed_answers(&read(first)?, &read(last)?);
        for (what, traces) in [("fixed", fixed), ("broken", broken)] {
            let rel = format!("html/{i}-{what}");
            sdvp_report::render_traces(&traces, &mut resolver, &args.out.join(&rel))?;
            links.push((
                format!(
                    "{k}: {} questions {what} by {} (against {})",
                    traces.len(),
                    last.name,
                    first.name
                ),
                format!("{rel}/index.html"),
            ));
        }
    }
    let mut images = Vec::new();
    for (i, c) in args.curves.iter().enumerate() {
        let rel = format!("curves-{i}.png");
        std::fs::copy(c, args.out.join(&rel))
            .with_context(|| format!("copying {}", c.display()))?;
        images.push((format!("Training curves: {}", c.display()), rel));
    }
    let note = format!(
        "{} evaluation runs; each number is an accuracy over all the run's questions (a \
         question without a valid program counts as wrong); n is how many questions it rests on.",
        runs.len()
    );
    let html = comparison_html(&args.title, &note, &tables, &links, &images);
    let path = args.out.join("index.html");
    std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
    println!("report: {}", path.display());
    Ok(0)
}
