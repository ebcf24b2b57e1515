//! `sdvp generate` (not built yet).

#[derive(clap::Args)]
pub struct GenerateArgs {}

pub fn run(_args: GenerateArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`sdvp generate` is not built yet")
}
