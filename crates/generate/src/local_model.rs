//! The network half of the `local` backend (feature `local`): loading a checkpoint into a
//! candle-transformers model and decoding with its KV cache. See [`crate::local`] for what
//! is supported and why.

use crate::backend::{GenError, GenRequest, Generator, Sampling};
use crate::embedded::pick_token;
use crate::local::{cut_at_stop, detect_template, normalise_config, token_ids, ChatTemplate};
use crate::prompt::Prompt;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2};
use sdvp_core::rng::SplitMix64;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokenizers::Tokenizer;

/// The supported networks. Qwen2 keeps its KV cache inside the model; Llama keeps it in a
/// separate `Cache`, of which a fresh copy (rotary tables shared) is used per request.
enum Net {
    Qwen2(Box<qwen2::ModelForCausalLM>),
    Llama {
        model: Box<llama::Llama>,
        fresh: Box<llama::Cache>,
        cache: Box<llama::Cache>,
    },
}

impl Net {
    fn reset(&mut self) {
        match self {
            Net::Qwen2(m) => m.clear_kv_cache(),
            Net::Llama { fresh, cache, .. } => *cache = fresh.clone(),
        }
    }

    /// Logits for the position after `ids`, which start at position `offset` (everything
    /// before is in the KV cache).
    fn forward(&mut self, ids: &[u32], offset: usize) -> candle_core::Result<Vec<f32>> {
        let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Net::Qwen2(m) => m.forward(&input, offset)?,
            Net::Llama { model, cache, .. } => model.forward(&input, offset, cache)?,
        };
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}

/// A checkpoint loaded for generation.
pub struct LocalGenerator {
    net: Mutex<Net>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    end_ids: BTreeSet<u32>,
    max_positions: usize,
    identity: String,
}

fn fatal(path: &Path, what: impl std::fmt::Display) -> GenError {
    GenError::fatal(format!("{}: {what}", path.display()))
}

fn unsupported(config_path: &Path, model_type: &str) -> GenError {
    fatal(
        config_path,
        format!("field `model_type`: `{model_type}` is not supported (expected qwen2 or llama)"),
    )
}

fn read_json(path: &Path) -> Result<Value, GenError> {
    let text = std::fs::read_to_string(path).map_err(|e| fatal(path, e))?;
    serde_json::from_str(&text).map_err(|e| fatal(path, format!("not valid JSON: {e}")))
}

fn read_json_if_present(path: &Path) -> Result<Option<Value>, GenError> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The safetensors files of a checkpoint: the shards named by the index when there is one,
/// else every `*.safetensors` file, in name order.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, GenError> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v = read_json(&index)?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| fatal(&index, "field `weight_map` missing or not an object"))?;
        let names: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
        return Ok(names.into_iter().map(|n| dir.join(n)).collect());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| fatal(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(fatal(dir, "no *.safetensors weights in this directory"));
    }
    Ok(files)
}

/// Every tensor of the checkpoint, and the sha256 over the files' bytes (the weights'
/// identity in the cache key: a fine-tune with the same shapes must not reuse generations).
fn read_weights(files: &[PathBuf]) -> Result<(HashMap<String, Tensor>, String), GenError> {
    let mut tensors = HashMap::new();
    let mut hash = Sha256::new();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| fatal(path, e))?;
        hash.update(&bytes);
        let loaded = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| fatal(path, format!("not a readable safetensors file: {e}")))?;
        tensors.extend(loaded);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((tensors, hex))
}

/// candle's Llama loader unwraps each layer's weights, so a missing tensor or wrong shape
/// would abort the process; check them first and report the tensor and the files.
fn check_llama_tensors(
    cfg: &llama::Config,
    tensors: &HashMap<String, Tensor>,
    files: &[PathBuf],
) -> Result<(), GenError> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let hd = h / cfg.num_attention_heads.max(1);
    let kv = cfg.num_key_value_heads * hd;
    let mut want: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![cfg.vocab_size, h]),
        ("model.norm.weight".into(), vec![h]),
    ];
    if !cfg.tie_word_embeddings {
        want.push(("lm_head.weight".into(), vec![cfg.vocab_size, h]));
    }
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        want.extend([
            (format!("{p}.self_attn.q_proj.weight"), vec![h, h]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, h]),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
        ]);
    }
    let where_ = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    for (name, shape) in want {
        match tensors.get(&name) {
            None => {
                return Err(GenError::fatal(format!(
                    "tensor `{name}` missing from {where_}"
                )))
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(GenError::fatal(format!(
                    "tensor `{name}` in {where_} has shape {:?}, config.json implies {shape:?}",
                    t.dims()
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn build_net(
    model_type: &str,
    config: Value,
    config_path: &Path,
    tensors: HashMap<String, Tensor>,
    files: &[PathBuf],
) -> Result<(Net, usize, Vec<u32>), GenError> {
    let bad_config = |e: serde_json::Error| fatal(config_path, e);
    let eos = token_ids(config.get("eos_token_id"));
    match model_type {
        "qwen2" => {
            let cfg: qwen2::Config = serde_json::from_value(config).map_err(bad_config)?;
            let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
            let model = qwen2::ModelForCausalLM::new(&cfg, vb)
                .map_err(|e| GenError::fatal(format!("loading Qwen2 weights: {e}")))?;
            Ok((
                Net::Qwen2(Box::new(model)),
                cfg.max_position_embeddings,
                eos,
            ))
        }
        "llama" => {
            let raw: llama::LlamaConfig = serde_json::from_value(config).map_err(bad_config)?;
            let cfg = raw.into_config(false);
            check_llama_tensors(&cfg, &tensors, files)?;
            let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                llama::Llama::load(vb, &cfg)
            }))
            .map_err(|_| GenError::fatal("loading Llama weights failed (see the message above)"))?
            .map_err(|e| GenError::fatal(format!("loading Llama weights: {e}")))?;
            let cache = llama::Cache::new(true, DType::F32, &cfg, &Device::Cpu)
                .map_err(|e| GenError::fatal(format!("building the Llama KV cache: {e}")))?;
            let net = Net::Llama {
                model: Box::new(loaded),
                fresh: Box::new(cache.clone()),
                cache: Box::new(cache),
            };
            Ok((net, cfg.max_position_embeddings, eos))
        }
        other => Err(unsupported(config_path, other)),
    }
}

impl LocalGenerator {
    /// Load `dir` (see [`crate::local`] for the layout); `template` overrides detection.
    pub fn load(dir: &Path, template: Option<ChatTemplate>) -> Result<Self, GenError> {
        if !dir.is_dir() {
            return Err(fatal(
                dir,
                "not a directory (expected a checkpoint directory)",
            ));
        }
        let config_path = dir.join("config.json");
        let config = normalise_config(read_json(&config_path)?);
        let model_type = config
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| fatal(&config_path, "field `model_type` missing"))?
            .to_string();
        if !matches!(model_type.as_str(), "qwen2" | "llama") {
            return Err(unsupported(&config_path, &model_type));
        }
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| fatal(&tok_path, format!("cannot load tokenizer: {e}")))?;
        let tok_config_path = dir.join("tokenizer_config.json");
        let tok_config = read_json_if_present(&tok_config_path)?;
        let gen_config = read_json_if_present(&dir.join("generation_config.json"))?;
        let has_token = |t: &str| tokenizer.token_to_id(t).is_some();
        let template = match template {
            Some(t) => t,
            None => detect_template(tok_config.as_ref(), &has_token, &tok_config_path)
                .map_err(GenError::fatal)?,
        };

        let files = weight_files(dir)?;
        let (tensors, digest) = read_weights(&files)?;
        let (net, max_positions, mut eos) =
            build_net(&model_type, config, &config_path, tensors, &files)?;
        eos.extend(token_ids(
            gen_config.as_ref().and_then(|g| g.get("eos_token_id")),
        ));
        let eos_token = tok_config.as_ref().and_then(|c| c.get("eos_token"));
        let eos_text = eos_token.and_then(Value::as_str).or_else(|| {
            eos_token
                .and_then(|v| v.get("content"))
                .and_then(Value::as_str)
        });
        let end_ids: BTreeSet<u32> = eos
            .into_iter()
            .chain(eos_text.and_then(|t| tokenizer.token_to_id(t)))
            .chain(
                template
                    .end_markers()
                    .iter()
                    .filter_map(|m| tokenizer.token_to_id(m)),
            )
            .collect();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(Self {
            net: Mutex::new(net),
            tokenizer,
            template,
            end_ids,
            max_positions,
            identity: format!("{name}:{model_type}:sha256-{digest}"),
        })
    }

    pub fn template(&self) -> ChatTemplate {
        self.template
    }

    /// Token ids the loop stops at.
    pub fn end_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.end_ids.iter().copied()
    }

    /// The prompt's token ids under the chat template.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Vec<u32>, GenError> {
        let text = self.template.render(prompt);
        let enc = self
            .tokenizer
            .encode(text, self.template.add_special_tokens())
            .map_err(|e| GenError::request(format!("tokenizing the prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Logits for the first generated position (exposed to compare against a reference).
    pub fn first_logits(&self, prompt_ids: &[u32]) -> Result<Vec<f32>, GenError> {
        let mut net = self.net.lock().unwrap_or_else(|p| p.into_inner());
        net.reset();
        net.forward(prompt_ids, 0)
            .map_err(|e| GenError::request(format!("model forward pass: {e}")))
    }

    /// Decode from `prompt_ids`: the generated ids (without the end token) and the text,
    /// cut at the first stop string.
    pub fn generate_ids(
        &self,
        prompt_ids: &[u32],
        sampling: &Sampling,
        sample_index: usize,
    ) -> Result<(Vec<u32>, String), GenError> {
        if prompt_ids.is_empty() {
            return Err(GenError::request("the prompt encodes to no tokens"));
        }
        if prompt_ids.len() >= self.max_positions {
            return Err(GenError::request(format!(
                "the prompt has {} tokens; the model's context is {} (max_position_embeddings)",
                prompt_ids.len(),
                self.max_positions
            )));
        }
        let forward_err = |e: candle_core::Error| GenError::request(format!("model forward: {e}"));
        let decode_err = |e: tokenizers::Error| GenError::request(format!("decoding: {e}"));
        let mut rng = SplitMix64::new(sampling.seed.wrapping_add(sample_index as u64));
        let mut net = self.net.lock().unwrap_or_else(|p| p.into_inner());
        net.reset();
        let mut logits = net.forward(prompt_ids, 0).map_err(forward_err)?;
        let mut generated: Vec<u32> = Vec::new();
        let budget = (sampling.max_tokens as usize).min(self.max_positions - prompt_ids.len());
        while generated.len() < budget {
            let next = pick_token(&logits, sampling.temperature, sampling.top_p, &mut rng)
                .ok_or_else(|| GenError::request("the model produced no finite logits"))?;
            if self.end_ids.contains(&next) {
                break;
            }
            generated.push(next);
            if !sampling.stop.is_empty() {
                let text = self
                    .tokenizer
                    .decode(&generated, true)
                    .map_err(decode_err)?;
                let (cut, stopped) = cut_at_stop(&text, &sampling.stop);
                if stopped {
                    return Ok((generated, cut.to_string()));
                }
            }
            if generated.len() < budget {
                let offset = prompt_ids.len() + generated.len() - 1;
                logits = net.forward(&[next], offset).map_err(forward_err)?;
            }
        }
        let text = self
            .tokenizer
            .decode(&generated, true)
            .map_err(decode_err)?;
        Ok((generated, text))
    }

    fn one(&self, r: &GenRequest) -> Result<String, GenError> {
        let ids = self.encode_prompt(&r.prompt)?;
        self.generate_ids(&ids, &r.sampling, r.sample_index)
            .map(|(_, text)| text)
    }
}

impl Generator for LocalGenerator {
    fn backend(&self) -> String {
        format!("local/{}", self.template.as_str())
    }
    fn model(&self) -> String {
        self.identity.clone()
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        requests.iter().map(|r| self.one(r)).collect()
    }
}
