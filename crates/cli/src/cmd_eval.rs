//! `sdvp eval` (not built yet).

#[derive(clap::Args)]
pub struct EvalArgs {}

pub fn run(_args: EvalArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sdvp eval` is not built yet")
}
