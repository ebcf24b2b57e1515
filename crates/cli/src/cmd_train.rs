//! `sdvp train`: train one embedded model on a world (resumable, deterministic for a seed).

use crate::cmd_world::usize_range;
use anyhow::Context;
use clap::Args;
use sdvp_train::{train_model, ModelName, TrainOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// vqa (BLIP VQA student), detect (OWL-ViT student), depth (DPT), teacher-vqa:TASK or
    /// teacher-detect:TASK (TASK: gqa-world or nlvr-world).
    model: String,
    /// World directory (`sdvp world generate`); only its train and val splits are read.
    #[arg(long)]
    data: PathBuf,
    /// Run folder: checkpoint, metrics.jsonl, curves.png, best/ (the Hugging Face export).
    /// Running the same command again resumes it.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Optimizer steps (1 to 10 000 000; default: the model's schedule).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    steps: Option<u64>,
    /// Items per step (1 to 4096; default: the model's schedule).
    #[arg(long, value_parser = usize_range(1, 4096))]
    batch: Option<usize>,
    /// Use at most this many training and validation scenes (1 to 10 000 000).
    #[arg(long, value_parser = usize_range(1, 10_000_000))]
    max_scenes: Option<usize>,
    /// Validation items scored at each validation (1 to 100 000; default 600).
    #[arg(long, value_parser = usize_range(1, 100_000))]
    val_items: Option<usize>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<i32> {
    let model = ModelName::parse(&args.model)?;
    let opts = TrainOptions {
        seed: args.seed,
        steps: args.steps,
        batch: args.batch,
        max_scenes: args.max_scenes,
        val_items: args.val_items.unwrap_or(0),
    };
    let s = train_model(&model, &args.data, &args.out, &opts)
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
        args.out.join("best").display()
    );
    Ok(0)
}
