//! `--modules` for every command that runs programs: glue over `sdvp_modules::ModulesSpec`.

use sdvp_core::Backend;
use sdvp_data::{Example, ImageStore};
use std::path::Path;

/// The backend of a `--modules` spec. Images resolve through `data`'s `images/` (a world)
/// and the files of `examples` (real datasets), or as file paths.
pub fn build(
    spec: &str,
    data: Option<&Path>,
    examples: &[Example],
) -> anyhow::Result<Box<dyn Backend>> {
    build_parsed(
        &sdvp_modules::ModulesSpec::parse(spec, data)?,
        data,
        examples,
    )
}

/// The backend of a parsed spec (which a caller may have changed), as [`build`] makes it.
pub fn build_parsed(
    parsed: &sdvp_modules::ModulesSpec,
    data: Option<&Path>,
    examples: &[Example],
) -> anyhow::Result<Box<dyn Backend>> {
    let mut store = match data {
        Some(d) => ImageStore::for_world(d),
        None => ImageStore::new(Vec::new()),
    };
    store.register_examples(examples);
    parsed.build(store)
}
