//! `--modules` specifications shared by every command that runs programs.

use anyhow::{bail, Context};
use sdvp_program::scripted::ScriptedBackend;
use sdvp_program::Backend;
use std::path::PathBuf;

/// Where module answers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModulesSpec {
    /// Answers from a JSON script (tests, demos).
    Scripted(PathBuf),
    /// Answers from the world's scene graphs.
    Oracle(PathBuf),
}

impl ModulesSpec {
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        match spec.split_once(':') {
            Some(("scripted", path)) => Ok(ModulesSpec::Scripted(PathBuf::from(path))),
            Some(("oracle", path)) => Ok(ModulesSpec::Oracle(PathBuf::from(path))),
            _ => {
                bail!("unknown --modules {spec:?}: expected oracle, oracle:WORLD_DIR or scripted:FILE.json")
            }
        }
    }

    /// Like [`parse`](Self::parse), with a bare `oracle` meaning the scenes of `data`.
    pub fn parse_for(spec: &str, data: &std::path::Path) -> anyhow::Result<Self> {
        if spec == "oracle" {
            Ok(ModulesSpec::Oracle(data.to_path_buf()))
        } else {
            Self::parse(spec)
        }
    }

    pub fn build(&self) -> anyhow::Result<Box<dyn Backend>> {
        match self {
            ModulesSpec::Scripted(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read script {}", path.display()))?;
                let backend = ScriptedBackend::from_json(&text)
                    .with_context(|| format!("{}: not a module script", path.display()))?;
                Ok(Box::new(backend))
            }
            ModulesSpec::Oracle(dir) => {
                let backend = sdvp_data::oracle::OracleBackend::load(dir).with_context(|| {
                    format!("cannot load the world's scenes from {}", dir.display())
                })?;
                Ok(Box::new(backend))
            }
        }
    }
}
