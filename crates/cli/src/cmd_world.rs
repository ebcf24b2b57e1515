//! `sdvp world`: generate the procedural world and look at it.

use anyhow::Context;
use sdvp_data::world::{generate_world, Scale, WorldConfig, MAX_THREADS};
use sdvp_data::{load_split, ImageStore};
use std::path::PathBuf;
use std::time::Instant;

/// A `usize` flag limited to `min..=max` (clap reports the flag and the range).
pub fn usize_range(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..=max)
}

#[derive(clap::Args)]
pub struct WorldArgs {
    #[command(subcommand)]
    command: WorldCommand,
}

#[derive(clap::Subcommand)]
enum WorldCommand {
    /// Write every task and split (images, scene graphs, questions) into a directory.
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// tiny (seconds, for tests), small (10k questions per task), full (training).
        #[arg(long, default_value = "small")]
        scale: String,
        /// Image side in pixels (32 to 1024).
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(32..=1024))]
        size: u32,
        /// Worker threads (0: all cores; at most 256); the output does not depend on it.
        #[arg(long, default_value_t = 0, value_parser = usize_range(0, MAX_THREADS as u64))]
        threads: usize,
    },
    /// Draw a contact sheet of examples with their question and answer.
    Sheet {
        /// World (or any sdvp.example/1) directory.
        dir: PathBuf,
        #[arg(long)]
        task: String,
        #[arg(long, default_value = "val")]
        split: String,
        #[arg(long)]
        out: PathBuf,
        /// Number of examples shown (1 to 1024).
        #[arg(long, default_value_t = 16, value_parser = usize_range(1, 1024))]
        count: usize,
        /// Columns of the grid (1 to 64).
        #[arg(long, default_value_t = 4, value_parser = usize_range(1, 64))]
        cols: usize,
        /// Thumbnail side in pixels (16 to 1024).
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(16..=1024))]
        thumb: u32,
    },
}

pub fn run(args: WorldArgs) -> anyhow::Result<i32> {
    match args.command {
        WorldCommand::Generate {
            out,
            seed,
            scale,
            size,
            threads,
        } => {
            let scale = Scale::parse(&scale)
                .with_context(|| format!("--scale {scale:?}: expected tiny, small or full"))?;
            let cfg = WorldConfig {
                seed,
                scale,
                size,
                threads,
            };
            let bar = sdvp_core::progress::bar(0, "questions");
            let start = Instant::now();
            let summary = generate_world(&out, &cfg, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            for (task, split, n) in &summary.splits {
                println!("{task}/{split}: {n} questions");
            }
            println!(
                "{} images in {} ({:.1} s)",
                summary.images,
                out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        WorldCommand::Sheet {
            dir,
            task,
            split,
            out,
            count,
            cols,
            thumb,
        } => {
            let report = load_split(&dir, &task, &split)?;
            for e in &report.skipped {
                eprintln!("skipped {e}");
            }
            let examples: Vec<_> = report.examples.into_iter().take(count).collect();
            if examples.is_empty() {
                anyhow::bail!("{task}/{split} in {} has no examples", dir.display());
            }
            let mut store = ImageStore::for_world(&dir);
            store.register_examples(&examples);
            let sheet = sdvp_data::sheet::contact_sheet(&examples, &store, cols, thumb)?;
            sheet
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{} examples -> {}", examples.len(), out.display());
            Ok(0)
        }
    }
}
