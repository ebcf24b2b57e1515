//! `sdvp world` (not built yet).

#[derive(clap::Args)]
pub struct WorldArgs {}

pub fn run(_args: WorldArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sdvp world` is not built yet")
}
