//! `sdvp trace`: look at traces.

use anyhow::Context;
use clap::{Args, Subcommand};
use sdvp_report::{render_traces, ImageResolver};
use std::path::PathBuf;

#[derive(Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Render a visual rationale per program: each step's line, its images with crop regions
    /// and boxes drawn, the crops, outputs, model calls, and errors highlighted.
    Html {
        traces: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Folders to look for source images in (a world directory, an image folder).
        /// The traces file's folder is tried as well; no image outside these is read.
        #[arg(long = "images")]
        images: Vec<PathBuf>,
        /// Render at most this many programs (1 to 100000000).
        #[arg(long, value_parser = crate::cmd_world::usize_range(1, 100_000_000))]
        limit: Option<usize>,
    },
}

pub fn run(args: TraceArgs) -> anyhow::Result<i32> {
    match args.command {
        TraceCommand::Html {
            traces,
            out,
            mut images,
            limit,
        } => {
            let (mut all, skipped) = sdvp_core::trace::read_traces_skipping(&traces)?;
            for e in &skipped {
                eprintln!("skipped {e}");
            }
            if let Some(n) = limit {
                all.truncate(n);
            }
            if let Some(dir) = traces.parent() {
                images.push(if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir.to_path_buf()
                });
            }
            let mut resolver = ImageResolver::new(images);
            let summary = render_traces(&all, &mut resolver, &out)
                .with_context(|| format!("rendering into {}", out.display()))?;
            println!(
                "{} page(s) in {}",
                summary.pages,
                out.join("index.html").display()
            );
            if !summary.missing_images.is_empty() {
                eprintln!(
                    "warning: {} source image(s) not found (e.g. {}); pass --images DIR",
                    summary.missing_images.len(),
                    summary.missing_images[0]
                );
            }
            Ok(0)
        }
    }
}
