//! `sdvp program` (not built yet).

#[derive(clap::Args)]
pub struct ProgramArgs {}

pub fn run(_args: ProgramArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sdvp program` is not built yet")
}
