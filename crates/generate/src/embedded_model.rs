//! The shipped [`EmbeddedModel`]: `sdvp_models::program_lm`'s Llama with its tokenizer,
//! loaded from a checkpoint directory and checked against the weights' `manifest.json`.

use crate::backend::GenError;
use crate::embedded::{BatchLogits, EmbeddedModel};
use crate::{ProgramStyle, Task};
use sdvp_models::program_lm::{BatchDecoder, Decoding, ProgramLm};
use sha2::{Digest, Sha256};
use std::path::Path;

const REBUILD: &str =
    "rebuild it with `sdvp train all --only generator` (or `sdvp train generator`)";

pub struct LlamaProgramModel {
    lm: ProgramLm,
    sha256: String,
}

fn sha256_file(path: &Path) -> Result<String, GenError> {
    let bytes = std::fs::read(path)
        .map_err(|e| GenError::fatal(format!("{}: {e}; {REBUILD}", path.display())))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// The sha256 that `manifest.json` next to `dir` (in the weights folder holding it) records
/// for `dir/model.safetensors`, if any.
fn manifest_sha(dir: &Path) -> Option<String> {
    let weights = dir.parent()?;
    let text = std::fs::read_to_string(weights.join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = dir.file_name()?.to_string_lossy();
    v["files"][format!("{name}/model.safetensors")]
        .as_str()
        .map(str::to_string)
}

impl LlamaProgramModel {
    pub fn load(dir: &Path) -> Result<Self, GenError> {
        let weights = dir.join("model.safetensors");
        if !dir.join("config.json").is_file() || !weights.is_file() {
            return Err(GenError::fatal(format!(
                "the embedded program generator is not built: no {}/config.json and \
                 model.safetensors; {REBUILD}",
                dir.display()
            )));
        }
        let sha256 = sha256_file(&weights)?;
        if let Some(want) = manifest_sha(dir) {
            if want != sha256 {
                return Err(GenError::fatal(format!(
                    "{} does not match its manifest (sha256 {sha256} instead of {want}): the \
                     file is truncated, corrupt or from another build; {REBUILD}",
                    weights.display()
                )));
            }
        }
        let lm = ProgramLm::load(dir).map_err(|e| GenError::fatal(format!("{e}; {REBUILD}")))?;
        Ok(Self { lm, sha256 })
    }
}

impl EmbeddedModel for LlamaProgramModel {
    fn identity(&self) -> String {
        format!("llama@sha256:{}", &self.sha256[..16])
    }
    fn condition(
        &self,
        task: Task,
        style: ProgramStyle,
        question: &str,
    ) -> Result<Vec<u32>, String> {
        self.lm.condition(task.as_str(), style, question)
    }
    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.lm.decode(ids)
    }
    fn end_token(&self) -> u32 {
        self.lm.specials.eos
    }
    fn max_len(&self) -> Option<usize> {
        Some(self.lm.model.config().max_position_embeddings)
    }
    fn batch<'a>(&'a self, conditions: &[Vec<u32>]) -> Result<Box<dyn BatchLogits + 'a>, String> {
        Ok(Box::new(Batch(BatchDecoder::new(
            &self.lm.model,
            conditions,
        )?)))
    }
    /// One sequence from scratch: decoding goes through [`EmbeddedModel::batch`].
    fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>, String> {
        self.lm.next_logits(ids, &mut Decoding::default())
    }
}

struct Batch<'a>(BatchDecoder<'a>);

impl BatchLogits for Batch<'_> {
    fn logits(&self) -> &[Vec<f32>] {
        self.0.logits()
    }
    fn push(&mut self, tokens: &[u32]) -> Result<(), String> {
        self.0.push(tokens)
    }
}
