//! Checkpoints that survive a kill at any instant and resume a run exactly.
//!
//! A checkpoint folder holds `model-stepN.safetensors` (the `VarMap`, tensors under
//! their checkpoint names, loadable as a Hugging Face state dict), `optim-stepN.safetensors`
//! (AdamW moments) and `trainer_state.json`, which names those two files. Every file is
//! written to a temporary name in the same folder, fsynced and renamed, and the JSON is
//! written last: it is the commit point. A run killed before the rename of the JSON
//! leaves the previous checkpoint whole; older step files are deleted only after.

use super::optim::{AdamW, AdamWState};
use anyhow::{anyhow, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Optimizer updates taken so far.
    pub step: u64,
    /// The run's seed (data order and initialisation derive from it and `step`).
    pub seed: u64,
    /// Optimizer hyper-parameters and per-parameter step counts.
    pub optimizer: AdamWState,
    /// Free-form data of the caller (epoch, data cursor, best metric…).
    #[serde(default)]
    pub extra: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    model_file: String,
    optim_file: String,
    #[serde(flatten)]
    state: TrainerState,
}

/// What [`load_checkpoint`] found.
#[derive(Debug)]
pub struct Checkpoint {
    /// The trainer state.
    pub state: TrainerState,
    /// Path of the weights file that was loaded.
    pub model_path: PathBuf,
}

const STATE_FILE: &str = "trainer_state.json";

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "checkpoint".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Making the rename itself durable needs an fsync of the folder (POSIX).
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync of folder {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn commit(tmp: &Path, path: &Path) -> Result<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("fsync of {}", tmp.display()))?;
    std::fs::rename(tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `tensors` to `path` as safetensors atomically (temporary file in the same
/// folder, fsync, rename).
pub fn save_safetensors_atomic(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = tmp_path(path);
    candle_core::safetensors::save(tensors, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(bytes: &[u8], path: &Path) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    commit(&tmp, path)
}

/// The variables of `varmap` as a name → tensor map (detached copies of the handles).
pub fn varmap_tensors(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow!("the VarMap lock is poisoned"))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect())
}

/// Sets every variable of `varmap` from `tensors`. Every variable must be present with
/// its shape; the error names the variable and `source`.
pub fn assign_varmap(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    source: &Path,
) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow!("the VarMap lock is poisoned"))?;
    for (name, var) in data.iter() {
        let t = tensors
            .get(name)
            .ok_or_else(|| anyhow!("{} has no tensor {name}", source.display()))?;
        if t.dims() != var.dims() {
            return Err(anyhow!(
                "{}: tensor {name} has shape {:?}, the model expects {:?}",
                source.display(),
                t.dims(),
                var.dims()
            ));
        }
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)
            .with_context(|| format!("{}: setting {name}", source.display()))?;
    }
    Ok(())
}

/// Saves the model, the optimizer and `state` into `dir` (created if needed).
pub fn save_checkpoint(
    dir: &Path,
    varmap: &VarMap,
    optim: &AdamW,
    state: &TrainerState,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating checkpoint folder {}", dir.display()))?;
    let model_file = format!("model-step{:08}.safetensors", state.step);
    let optim_file = format!("optim-step{:08}.safetensors", state.step);
    save_safetensors_atomic(&varmap_tensors(varmap)?, &dir.join(&model_file))?;
    save_safetensors_atomic(&optim.moment_tensors()?, &dir.join(&optim_file))?;
    let file = StateFile {
        model_file: model_file.clone(),
        optim_file: optim_file.clone(),
        state: state.clone(),
    };
    write_atomic(&serde_json::to_vec_pretty(&file)?, &dir.join(STATE_FILE))?;
    // The new checkpoint is committed; the previous step files are garbage now.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale = (name.starts_with("model-step") || name.starts_with("optim-step"))
                && name.ends_with(".safetensors")
                && name != model_file
                && name != optim_file;
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// Whether `dir` holds a committed checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file()
}

/// Loads the checkpoint in `dir` into `varmap` and `optim` (both built as for the
/// original run) and returns its trainer state.
pub fn load_checkpoint(dir: &Path, varmap: &VarMap, optim: &mut AdamW) -> Result<Checkpoint> {
    let state_path = dir.join(STATE_FILE);
    let bytes =
        std::fs::read(&state_path).with_context(|| format!("reading {}", state_path.display()))?;
    let file: StateFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing {}", state_path.display()))?;
    let model_path = dir.join(&file.model_file);
    let optim_path = dir.join(&file.optim_file);
    let device = Device::Cpu;
    let weights = candle_core::safetensors::load(&model_path, &device)
        .with_context(|| format!("reading {}", model_path.display()))?;
    assign_varmap(varmap, &weights, &model_path)?;
    let moments = candle_core::safetensors::load(&optim_path, &device)
        .with_context(|| format!("reading {}", optim_path.display()))?;
    optim
        .restore(&file.state.optimizer, &moments)
        .with_context(|| format!("restoring optimizer from {}", optim_path.display()))?;
    Ok(Checkpoint {
        state: file.state,
        model_path,
    })
}
