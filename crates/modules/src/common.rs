//! What every neural backend shares: loading a checkpoint directory, its identity for
//! traces, per-request failure and the crops of a batch.

use crate::images::{Crop, ImageCache};
use anyhow::Context;
use sdvp_core::{ModuleError, ModuleKind, Request, Response};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub type Answers = Vec<Result<Response, ModuleError>>;

/// The index of the largest score, the first on ties (0 for none): the option a module
/// answers with.
pub fn best_index(scores: &[f32]) -> usize {
    scores
        .iter()
        .enumerate()
        .fold(0, |best, (i, s)| if *s > scores[best] { i } else { best })
}

/// Every request of a batch fails with the same message (a model error is the batch's).
pub fn fail_all(kind: ModuleKind, n: usize, message: &str) -> Answers {
    (0..n)
        .map(|_| Err(ModuleError::new(kind, message)))
        .collect()
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// A checkpoint directory in the Hugging Face layout and who it is.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub arch: &'static str,
    pub dir: PathBuf,
    pub sha256: String,
}

impl Checkpoint {
    /// Checks that `dir` holds `config.json` and `model.safetensors` and hashes the weights.
    pub fn open(arch: &'static str, dir: &Path) -> anyhow::Result<Self> {
        for f in ["config.json", "model.safetensors"] {
            let p = dir.join(f);
            if !p.is_file() {
                anyhow::bail!("{arch} checkpoint {}: no {f}", dir.display());
            }
        }
        let sha256 = sha256_file(&dir.join("model.safetensors"))?;
        Ok(Self {
            arch,
            dir: dir.to_path_buf(),
            sha256,
        })
    }

    /// `ARCH:DIR@sha256:0123456789ab` for traces.
    pub fn identity(&self) -> String {
        format!(
            "{}:{}@sha256:{}",
            self.arch,
            self.dir.display(),
            &self.sha256[..self.sha256.len().min(16)]
        )
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `tokenizer.json` with the model's padding rule.
    pub fn tokenizer(
        &self,
        max_length: usize,
        pad_id: u32,
        padding: sdvp_models::tokenize::Padding,
    ) -> anyhow::Result<sdvp_models::tokenize::TextTokenizer> {
        sdvp_models::tokenize::TextTokenizer::from_file(
            &self.file("tokenizer.json"),
            max_length,
            pad_id,
            padding,
        )
        .with_context(|| format!("{} checkpoint {}", self.arch, self.dir.display()))
    }

    /// `preprocessor_config.json` when the checkpoint has one, else `default`.
    pub fn image_processor(
        &self,
        default: sdvp_models::preprocess::ImageProcessor,
    ) -> anyhow::Result<sdvp_models::preprocess::ImageProcessor> {
        let pp = self.file("preprocessor_config.json");
        Ok(if pp.is_file() {
            sdvp_models::preprocess::ImageProcessor::from_file(&pp)?
        } else {
            default
        })
    }
}

/// The crops of a batch: the ones that loaded, with their request index, and the errors.
pub struct BatchCrops<T> {
    pub ok: Vec<(usize, Crop, T)>,
    pub answers: Vec<Option<Result<Response, ModuleError>>>,
}

impl<T> BatchCrops<T> {
    /// Loads each request's crop; `extra` takes what the request carries besides its image
    /// (its question, object, texts) or refuses the request with a message.
    pub fn load(
        kind: ModuleKind,
        requests: &[Request],
        images: &ImageCache,
        extra: impl FnMut(&Request) -> Result<T, String>,
    ) -> Self {
        Self::load_widened(kind, requests, images, None, extra)
    }

    /// As [`BatchCrops::load`], with crops widened to at least `min_side` source pixels.
    pub fn load_widened(
        kind: ModuleKind,
        requests: &[Request],
        images: &ImageCache,
        min_side: Option<f32>,
        mut extra: impl FnMut(&Request) -> Result<T, String>,
    ) -> Self {
        let mut ok = Vec::new();
        let mut answers: Vec<Option<Result<Response, ModuleError>>> =
            (0..requests.len()).map(|_| None).collect();
        for (i, r) in requests.iter().enumerate() {
            if r.kind() != kind {
                answers[i] = Some(Err(ModuleError::new(
                    kind,
                    format!("a {} request in a {kind} batch", r.kind()),
                )));
                continue;
            }
            let Some(image) = r.image() else {
                answers[i] = Some(Err(ModuleError::new(kind, "request has no image")));
                continue;
            };
            let item = match extra(r) {
                Ok(x) => x,
                Err(m) => {
                    answers[i] = Some(Err(ModuleError::new(kind, m)));
                    continue;
                }
            };
            match images.crop_widened(image, min_side) {
                Ok(c) => ok.push((i, c, item)),
                Err(e) => answers[i] = Some(Err(ModuleError::new(kind, format!("{e:#}")))),
            }
        }
        Self { ok, answers }
    }

    /// Fills the loaded requests' answers (`results` in the order of `ok`; a model error
    /// fails them all) and returns one answer per request.
    pub fn finish(mut self, kind: ModuleKind, results: anyhow::Result<Answers>) -> Answers {
        match results {
            Ok(rs) if rs.len() == self.ok.len() => {
                for ((i, _, _), r) in self.ok.iter().zip(rs) {
                    self.answers[*i] = Some(r);
                }
            }
            Ok(rs) => {
                let m = format!("model returned {} answers for {}", rs.len(), self.ok.len());
                for (i, _, _) in &self.ok {
                    self.answers[*i] = Some(Err(ModuleError::new(kind, m.clone())));
                }
            }
            Err(e) => {
                let m = format!("{e:#}");
                for (i, _, _) in &self.ok {
                    self.answers[*i] = Some(Err(ModuleError::new(kind, m.clone())));
                }
            }
        }
        self.answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(ModuleError::new(kind, "request not answered"))))
            .collect()
    }
}

/// `architectures[0]` / `model_type` of a `config.json`, for checking a checkpoint is of
/// the architecture a module set says.
pub fn config_architecture(dir: &Path) -> anyhow::Result<(Option<String>, Option<String>)> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let arch = v["architectures"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|a| a.as_str())
        .map(str::to_string);
    let model_type = v["model_type"].as_str().map(str::to_string);
    Ok((arch, model_type))
}
