//! Loading helpers: safetensors checkpoints and Hugging Face `config.json` files.
//!
//! candle's own safetensors `VarBuilder` reports a missing tensor or a shape mismatch
//! without saying which file was read, which makes a wrong checkpoint hard to diagnose.
//! The backend here keeps the file names and puts both the tensor name and the files in
//! every error. Config errors name the offending field path and the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;

/// Errors raised while reading checkpoints or configs.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The safetensors file is malformed.
    #[error("cannot parse safetensors file {path}: {message}")]
    Safetensors { path: PathBuf, message: String },
    /// A config field is missing, has the wrong type or an unsupported value.
    #[error("invalid config {path}: field `{field}`: {message}")]
    Config {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Parses a JSON config file into `T`; a failure names the field path (e.g.
/// `vision_config.patch_size`) and the file.
pub fn load_config<T: DeserializeOwned>(path: &Path) -> Result<T, WeightsError> {
    let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text, path)
}

/// Parses JSON text into `T`; `path` is only used in error messages.
pub fn parse_config<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, WeightsError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        WeightsError::Config {
            path: path.to_path_buf(),
            field: if field.is_empty() || field == "." {
                "<root>".to_string()
            } else {
                field
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// Builds the error used when a config value parses but is not supported.
pub fn config_error(path: &Path, field: &str, message: impl Into<String>) -> WeightsError {
    WeightsError::Config {
        path: path.to_path_buf(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// All tensors of one or more safetensors files, kept with the file names for errors.
pub struct CheckpointBackend {
    tensors: HashMap<String, Tensor>,
    files: String,
}

impl CheckpointBackend {
    /// Reads every tensor of `paths` onto the CPU (converted to the requested dtype and
    /// device lazily, tensor by tensor, when the model asks for it).
    pub fn open(paths: &[PathBuf]) -> Result<Self, WeightsError> {
        let mut tensors = HashMap::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
                path: path.clone(),
                source,
            })?;
            let loaded =
                candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
                    WeightsError::Safetensors {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
            tensors.extend(loaded);
        }
        let files = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self { tensors, files })
    }

    /// Builds from in-memory tensors; `origin` stands for the file name in errors.
    pub fn from_tensors(tensors: HashMap<String, Tensor>, origin: &str) -> Self {
        Self {
            tensors,
            files: origin.to_string(),
        }
    }

    /// Names of all tensors held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Consumes the backend into a `VarBuilder` for `dtype` on `device`.
    pub fn into_var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }
}

impl SimpleBackend for CheckpointBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.shape() != &s {
            candle_core::bail!(
                "tensor `{name}` in {}: shape mismatch, the model expects {:?} but the checkpoint has {:?}",
                self.files,
                s.dims(),
                t.dims()
            );
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match self.tensors.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => candle_core::bail!(
                "tensor `{name}` is missing from {} ({} tensors present)",
                self.files,
                self.tensors.len()
            ),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// A `VarBuilder` over the safetensors files `paths` with errors that name tensor and file.
pub fn var_builder(
    paths: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, WeightsError> {
    Ok(CheckpointBackend::open(paths)?.into_var_builder(dtype, device))
}
