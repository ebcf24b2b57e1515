//! `sdvp train`: train one embedded model on a world, or rebuild every shipped checkpoint
//! (`sdvp train all`). Resumable and deterministic for a seed.

use crate::cmd_world::usize_range;
use anyhow::{bail, Context};
use clap::Args;
use sdvp_train::package::{train_all, WorldSpec};
use sdvp_train::{train_model, ModelName, TrainOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// `all` (every shipped checkpoint, installed into --out), or one of: vqa (BLIP VQA
    /// student), detect (OWL-ViT), clip, depth (DPT), generator (the program writer),
    /// teacher-vqa:TASK, teacher-detect:TASK.
    model: String,
    /// World directory (`sdvp world generate`); only its train and val splits are read.
    /// `all` generates its own world in --work when this is not given.
    #[arg(long)]
    data: Option<PathBuf>,
    /// One model: the run folder (checkpoint, metrics.jsonl, curves.png, best/ = the Hugging
    /// Face export). `all`: the weights folder to install into (default: the checkout's
    /// weights/, or $SDVP_WEIGHTS). Running the same command again resumes.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `all`: where the world and the runs are kept (default: target/sdvp-train next to
    /// the weights folder).
    #[arg(long)]
    work: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `all`: seed of the world it generates.
    #[arg(long, default_value_t = 0)]
    world_seed: u64,
    /// Optimizer steps (1 to 10 000 000; default: the model's schedule).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    steps: Option<u64>,
    /// Items per step (1 to 4096; default: the model's schedule).
    #[arg(long, value_parser = usize_range(1, 4096))]
    batch: Option<usize>,
    /// Peak learning rate (above 0, at most 1; default: the model's schedule).
    #[arg(long, value_parser = learning_rate)]
    lr: Option<f64>,
    /// Use at most this many training and validation scenes (1 to 10 000 000).
    #[arg(long, value_parser = usize_range(1, 10_000_000))]
    max_scenes: Option<usize>,
    /// Validation items scored at each validation (1 to 100 000; default 600).
    #[arg(long, value_parser = usize_range(1, 100_000))]
    val_items: Option<usize>,
    /// Validate and checkpoint every N steps (1 to 10 000 000; default: the schedule's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    eval_every: Option<u64>,
    /// `all`: rebuild only these models (comma-separated names, as for one model); the
    /// others keep their installed weights and manifest entries.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn learning_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number: {e}"))?;
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 1]"))
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<i32> {
    let opts = TrainOptions {
        seed: args.seed,
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        max_scenes: args.max_scenes,
        val_items: args.val_items.unwrap_or(0),
        eval_every: args.eval_every,
    };
    if args.model == "all" {
        let weights = args
            .out
            .clone()
            .unwrap_or_else(sdvp_modules::set::embedded_dir);
        let work = args.work.clone().unwrap_or_else(|| {
            weights
                .parent()
                .map_or_else(|| PathBuf::from("target"), |p| p.join("target"))
                .join("sdvp-train")
        });
        if let Some(d) = &args.data {
            bail!(
                "`sdvp train all` builds its own world in --work ({}); --data {} is for single models",
                work.display(),
                d.display()
            );
        }
        let world = WorldSpec {
            seed: args.world_seed,
            ..WorldSpec::default()
        };
        let models = if args.only.is_empty() {
            ModelName::all()
        } else {
            args.only
                .iter()
                .map(|m| ModelName::parse(m))
                .collect::<anyhow::Result<Vec<_>>>()
                .context("--only")?
        };
        let summaries = train_all(&world, &opts, &work, &weights, &models)?;
        println!(
            "{:<28} {:>10} {:>8}  best validation",
            "model", "params", "seconds"
        );
        for s in summaries.values() {
            println!(
                "{:<28} {:>10} {:>8.0}  {}",
                s.name,
                s.params,
                s.seconds,
                s.best
                    .iter()
                    .take(3)
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!("installed into {}", weights.display());
        return Ok(0);
    }
    let model = ModelName::parse(&args.model)?;
    let (Some(data), Some(out)) = (&args.data, &args.out) else {
        bail!(
            "`sdvp train {}` needs --data WORLD and --out RUN",
            args.model
        );
    };
    let s = train_model(&model, data, out, &opts)
        .with_context(|| format!("training {}", model.as_string()))?;
    println!(
        "{}: {} parameters, best at step {} ({}), {:.0} s; checkpoint {}",
        s.name,
        s.params,
        s.best_step,
        s.best
            .iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.seconds,
        out.join("best").display()
    );
    Ok(0)
}
