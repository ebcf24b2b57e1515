//! `sdvp model`: look at one checkpoint directly.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Run a checkpoint on one image and print its raw outputs as one JSON object:
    /// blip-vqa `token_ids`, `answer`, `first_step_top5`; clip `logits_per_image`;
    /// owlvit `detections` (top 10 patches per query, pixel boxes); dpt `depth`; llama (the
    /// program generator; --text QUESTION [TASK] [STYLE], --image unused) `condition_ids`,
    /// `token_ids`, `program`, `first_step_top5`.
    Run {
        #[arg(long)]
        arch: String,
        /// Checkpoint directory (config.json, model.safetensors, tokenizer/processor files).
        #[arg(long)]
        weights: PathBuf,
        /// The image (every architecture but llama).
        #[arg(long)]
        image: Option<PathBuf>,
        /// The question (blip-vqa), texts (clip) or queries (owlvit); repeatable.
        #[arg(long)]
        text: Vec<String>,
        /// Print JSON (the only output format; accepted for scripts that pass it).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ModelArgs) -> anyhow::Result<i32> {
    match args.command {
        ModelCommand::Run {
            arch,
            weights,
            image,
            text,
            json: _,
        } => {
            let out = sdvp_modules::inspect::model_run(&arch, &weights, image.as_deref(), &text)?;
            println!("{}", serde_json::to_string(&out)?);
            Ok(0)
        }
    }
}
