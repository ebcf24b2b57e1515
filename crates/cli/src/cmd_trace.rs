//! `sdvp trace` (not built yet).

#[derive(clap::Args)]
pub struct TraceArgs {}

pub fn run(_args: TraceArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sdvp trace` is not built yet")
}
