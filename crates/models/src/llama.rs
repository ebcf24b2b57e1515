//! Llama causal language model (`LlamaForCausalLM`; Touvron et al. 2023, "LLaMA"), the shape
//! of the embedded program generator: a checkpoint transformers loads as is, and one a
//! user can swap for a real one.
//!
//! Tensor names are the checkpoint's (`model.embed_tokens`, `model.layers.N.self_attn.*`,
//! `model.layers.N.mlp.{gate,up,down}_proj`, `model.norm`, `lm_head` unless tied). Every
//! op here is differentiable: RMS norm, rotary embeddings and the attention softmax are
//! written out instead of candle's fused kernels, which have no backward pass, so the
//! same code trains and decodes (with a KV cache).

use crate::ops::{self, Linear};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face Llama `config.json` this implementation reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_act() -> String {
    "silu".into()
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Checks what this implementation supports, naming the offending field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let h = self.num_attention_heads;
        let kv = self.kv_heads();
        if h == 0 || kv == 0 || !h.is_multiple_of(kv) {
            return Err(format!(
                "num_attention_heads ({h}) must be a positive multiple of num_key_value_heads ({kv})"
            ));
        }
        if !self.head_dim().is_multiple_of(2) || self.head_dim() == 0 {
            return Err(format!("head_dim ({}) must be even", self.head_dim()));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act `{}` is not supported (expected silu)",
                self.hidden_act
            ));
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 {
            return Err("vocab_size and max_position_embeddings must be positive".into());
        }
        Ok(())
    }
}

/// `x / sqrt(mean(x^2) + eps) * weight` over the last dimension, in f32.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(weight)
}

/// `cat(-x2, x1)` of the two halves of the last dimension.
fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
}

/// The keys and values of earlier positions, per layer (`[batch, kv_heads, len, head_dim]`).
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// Positions already held.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|(k, _)| k.dim(2).unwrap_or(0))
            .unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, c: &Config) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let (h, kv) = (c.num_attention_heads, c.kv_heads());
        Ok(Self {
            q_proj: ops::linear(vb.pp("q_proj"), d, h * hd, false)?,
            k_proj: ops::linear(vb.pp("k_proj"), d, kv * hd, false)?,
            v_proj: ops::linear(vb.pp("v_proj"), d, kv * hd, false)?,
            o_proj: ops::linear(vb.pp("o_proj"), h * hd, d, false)?,
            heads: h,
            kv_heads: kv,
            head_dim: hd,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, self.head_dim))?.transpose(1, 2)
        };
        let (cos, sin) = rope;
        let roped = |y: &Tensor| -> Result<Tensor> {
            y.broadcast_mul(cos)? + rotate_half(y)?.broadcast_mul(sin)?
        };
        let q = roped(&split(self.q_proj.forward(x)?, self.heads)?)?;
        let mut k = roped(&split(self.k_proj.forward(x)?, self.kv_heads)?)?;
        let mut v = split(self.v_proj.forward(x)?, self.kv_heads)?;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let rep = self.heads / self.kv_heads;
        if rep > 1 {
            let expand = |y: &Tensor| -> Result<Tensor> {
                let (b, n, s, hd) = y.dims4()?;
                y.unsqueeze(2)?
                    .broadcast_as((b, n, rep, s, hd))?
                    .reshape((b, n * rep, s, hd))
            };
            k = expand(&k)?;
            v = expand(&v)?;
        }
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let y = ops::attention(&q, &k, &v, mask, scale)?;
        let y = y
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.o_proj.forward(&y)
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(vb: VarBuilder, c: &Config) -> Result<Self> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            gate_proj: ops::linear(vb.pp("gate_proj"), d, f, false)?,
            up_proj: ops::linear(vb.pp("up_proj"), d, f, false)?,
            down_proj: ops::linear(vb.pp("down_proj"), f, d, false)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate_proj.forward(x)?.silu()?;
        self.down_proj.forward(&(g * self.up_proj.forward(x)?)?)
    }
}

struct Layer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: Tensor,
    post_attention_layernorm: Tensor,
}

/// `LlamaForCausalLM`.
pub struct Llama {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
    config: Config,
    device: Device,
}

impl Llama {
    /// Builds the model from `vb` rooted at the checkpoint's top level.
    pub fn new(vb: VarBuilder, config: &Config) -> Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        let c = config;
        let d = c.hidden_size;
        let m = vb.pp("model");
        let embed = m.pp("embed_tokens").get((c.vocab_size, d), "weight")?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = m.pp("layers").pp(i);
                Ok(Layer {
                    self_attn: Attention::new(l.pp("self_attn"), c)?,
                    mlp: Mlp::new(l.pp("mlp"), c)?,
                    input_layernorm: l.pp("input_layernorm").get_with_hints(
                        d,
                        "weight",
                        candle_nn::Init::Const(1.0),
                    )?,
                    post_attention_layernorm: l.pp("post_attention_layernorm").get_with_hints(
                        d,
                        "weight",
                        candle_nn::Init::Const(1.0),
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = m
            .pp("norm")
            .get_with_hints(d, "weight", candle_nn::Init::Const(1.0))?;
        let lm_head = if c.tie_word_embeddings {
            embed.clone()
        } else {
            vb.pp("lm_head").get((c.vocab_size, d), "weight")?
        };
        // Rotary tables as transformers builds them: inv_freq_i = theta^(-2i/hd), and the
        // angle table repeated over both halves of the head dimension.
        let hd = c.head_dim();
        let inv: Vec<f32> = (0..hd / 2)
            .map(|i| (1.0 / c.rope_theta.powf(2.0 * i as f64 / hd as f64)) as f32)
            .collect();
        let n = c.max_position_embeddings;
        let mut angles = Vec::with_capacity(n * hd);
        for p in 0..n {
            for _ in 0..2 {
                angles.extend(inv.iter().map(|f| p as f32 * f));
            }
        }
        let angles = Tensor::from_vec(angles, (n, hd), vb.device())?;
        Ok(Self {
            embed_tokens: Embedding::new(embed, d),
            layers,
            norm,
            lm_head,
            cos: angles.cos()?,
            sin: angles.sin()?,
            config: c.clone(),
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Final hidden states `[batch, t, hidden]` of `ids` (`[batch, t]`, u32), which sit at
    /// positions `cache.len()..` when a cache is given (and are appended to it). Without a
    /// cache the attention is causal over `ids` alone.
    pub fn hidden(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let offset = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        self.check_positions(offset + t)?;
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let mask = if t > 1 {
            Some(crate::blip::text::causal_mask(
                1,
                t,
                offset,
                None,
                &self.device,
            )?)
        } else {
            None
        };
        self.layers_forward(ids, (&cos, &sin), mask.as_ref(), cache)
    }

    /// Hidden states of a left-padded batch: `ids` `[batch, t]` at per-token `positions`
    /// (`[batch, t]` u32, each row counting its own tokens from 0), with `keep` `[batch, k]`
    /// (1 a real token, 0 padding) over every key: the cache's and these `t`.
    pub fn hidden_padded(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        keep: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.len();
        let max = positions.max_all()?.to_scalar::<u32>()? as usize;
        self.check_positions(max + 1)?;
        let hd = self.config.head_dim();
        let flat = positions.flatten_all()?;
        let cos = self.cos.index_select(&flat, 0)?.reshape((b, 1, t, hd))?;
        let sin = self.sin.index_select(&flat, 0)?.reshape((b, 1, t, hd))?;
        let mask = crate::blip::text::causal_mask(b, t, offset, Some(keep), &self.device)?;
        self.layers_forward(ids, (&cos, &sin), Some(&mask), Some(cache))
    }

    fn check_positions(&self, n: usize) -> Result<()> {
        if n > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {n} tokens exceeds max_position_embeddings ({})",
                self.config.max_position_embeddings
            );
        }
        Ok(())
    }

    fn layers_forward(
        &self,
        ids: &Tensor,
        rope: (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let eps = self.config.rms_norm_eps;
        let mut x = self.embed_tokens.forward(ids)?;
        if let Some(c) = cache.as_deref_mut() {
            if c.layers.len() != self.layers.len() {
                c.layers = vec![None; self.layers.len()];
            }
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = rms_norm(&x, &layer.input_layernorm, eps)?;
            let h = layer.self_attn.forward(&h, rope, mask, slot)?;
            x = (x + h)?;
            let h = rms_norm(&x, &layer.post_attention_layernorm, eps)?;
            x = (&x + layer.mlp.forward(&h)?)?;
        }
        rms_norm(&x, &self.norm, eps)
    }

    /// Logits `[batch, t, vocab]` of hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        hidden.broadcast_matmul(&self.lm_head.t()?)
    }

    /// Logits of the token after the last of `ids` (one sequence, u32 ids), appending to
    /// `cache`.
    pub fn next_logits(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        let t = ids.len();
        if t == 0 {
            candle_core::bail!("no input tokens");
        }
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let h = self.hidden(&input, Some(cache))?;
        let last = h.narrow(1, t - 1, 1)?;
        self.logits(&last)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1()
    }
}
