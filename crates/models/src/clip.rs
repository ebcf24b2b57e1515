//! CLIP (`CLIPModel`): text and vision transformers with projections, as in the Hugging
//! Face checkpoints, so a real `openai/clip-vit-*` `model.safetensors` loads unchanged.
//!
//! The towers are also used by OWL-ViT (see `owlvit.rs`), which differs only in the name
//! of the vision pre-norm (`pre_layernorm` there, `pre_layrnorm` [sic] here) and in always
//! pooling the text at the argmax of the input ids.
//!
//! Every op is differentiable (see `ops.rs`), so the same code fine-tunes the model.

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::ops::{self, LayerNorm, Linear};
use crate::weights::{self, WeightsError};

/// The MLP activation named by `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (the original OpenAI CLIP).
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact (erf) GELU.
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluTanh,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => ops::quick_gelu(x),
            Self::Gelu => ops::gelu_erf(x),
            Self::GeluTanh => x.gelu(),
        }
    }
}

/// `text_config` of a CLIP / OWL-ViT config; missing fields take the HF defaults of the
/// architecture (see [`TextConfig::clip_default`] and the OWL-ViT counterpart).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// `int` or list of ints in HF configs; the first one is used for pooling.
    #[serde(deserialize_with = "int_or_first_of_list")]
    pub eos_token_id: Option<i64>,
}

fn int_or_first_of_list<'de, De: serde::Deserializer<'de>>(
    d: De,
) -> std::result::Result<Option<i64>, De::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrList {
        Int(i64),
        List(Vec<i64>),
    }
    Ok(match Option::<IntOrList>::deserialize(d)? {
        None => None,
        Some(IntOrList::Int(i)) => Some(i),
        Some(IntOrList::List(l)) => l.first().copied(),
    })
}

impl TextConfig {
    /// `CLIPTextConfig()` defaults (clip-vit-base-patch32 text tower).
    pub fn clip_default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: Some(49407),
        }
    }
}

/// `vision_config` of a CLIP / OWL-ViT config.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    /// `CLIPVisionConfig()` defaults (clip-vit-base-patch32 vision tower).
    pub fn clip_default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    /// Patches per side of the (square) input image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// Merges a JSON object over defaults, so that absent fields keep the HF default values.
pub(crate) fn merge_defaults<T>(
    defaults: &T,
    given: Option<&serde_json::Value>,
) -> serde_json::Value
where
    T: serde::Serialize,
{
    let mut base = serde_json::to_value(defaults).unwrap_or(serde_json::Value::Null);
    if let (Some(obj), Some(serde_json::Value::Object(given))) = (base.as_object_mut(), given) {
        for (k, v) in given {
            if obj.contains_key(k) && !v.is_null() {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// Parses a two-tower config (`CLIPConfig` / `OwlViTConfig`) with per-architecture
/// defaults for the fields a `config.json` leaves out.
pub(crate) fn parse_two_tower(
    path: &Path,
    text_default: &TextConfig,
    vision_default: &VisionConfig,
) -> std::result::Result<(TextConfig, VisionConfig, usize, f64), WeightsError> {
    let raw: serde_json::Value = weights::load_config(path)?;
    let text_json = merge_defaults(text_default, raw.get("text_config"));
    let vision_json = merge_defaults(vision_default, raw.get("vision_config"));
    let text: TextConfig = weights::parse_config(&text_json.to_string(), path)
        .map_err(|e| prefix_field(e, "text_config"))?;
    let vision: VisionConfig = weights::parse_config(&vision_json.to_string(), path)
        .map_err(|e| prefix_field(e, "vision_config"))?;
    let projection_dim = match raw.get("projection_dim") {
        None | Some(serde_json::Value::Null) => 512,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| weights::config_error(path, "projection_dim", "expected an integer"))?
            as usize,
    };
    let logit_scale_init = match raw.get("logit_scale_init_value") {
        None | Some(serde_json::Value::Null) => 2.6592,
        Some(v) => v.as_f64().ok_or_else(|| {
            weights::config_error(path, "logit_scale_init_value", "expected a number")
        })?,
    };
    for (field, hidden, heads) in [
        (
            "text_config.num_attention_heads",
            text.hidden_size,
            text.num_attention_heads,
        ),
        (
            "vision_config.num_attention_heads",
            vision.hidden_size,
            vision.num_attention_heads,
        ),
    ] {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(weights::config_error(
                path,
                field,
                format!("{heads} heads do not divide hidden_size {hidden}"),
            ));
        }
    }
    if vision.patch_size == 0 || !vision.image_size.is_multiple_of(vision.patch_size) {
        return Err(weights::config_error(
            path,
            "vision_config.patch_size",
            format!(
                "patch_size {} does not divide image_size {}",
                vision.patch_size, vision.image_size
            ),
        ));
    }
    Ok((text, vision, projection_dim, logit_scale_init))
}

fn prefix_field(e: WeightsError, prefix: &str) -> WeightsError {
    match e {
        WeightsError::Config {
            path,
            field,
            message,
        } => WeightsError::Config {
            path,
            field: format!("{prefix}.{field}"),
            message,
        },
        other => other,
    }
}

/// `CLIPConfig`: both towers plus the shared projection size.
#[derive(Clone, Debug)]
pub struct Config {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub projection_dim: usize,
    pub logit_scale_init_value: f64,
}

impl Config {
    /// Reads a HF `CLIPModel` `config.json`.
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let (text_config, vision_config, projection_dim, logit_scale_init_value) = parse_two_tower(
            path,
            &TextConfig::clip_default(),
            &VisionConfig::clip_default(),
        )?;
        Ok(Self {
            text_config,
            vision_config,
            projection_dim,
            logit_scale_init_value,
        })
    }
}

/// Multi-head self-attention with `q_proj`, `k_proj`, `v_proj`, `out_proj`.
#[derive(Clone, Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q_proj: ops::linear(vb.pp("q_proj"), hidden, hidden, true)?,
            k_proj: ops::linear(vb.pp("k_proj"), hidden, hidden, true)?,
            v_proj: ops::linear(vb.pp("v_proj"), hidden, hidden, true)?,
            out_proj: ops::linear(vb.pp("out_proj"), hidden, hidden, true)?,
            heads,
            head_dim: hidden / heads,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.q_proj.forward(x)?;
        let k = self.k_proj.forward(x)?;
        let v = self.v_proj.forward(x)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let out = ops::multi_head_attention(&q, &k, &v, mask, self.heads, scale)?;
        self.out_proj.forward(&out)
    }
}

/// Pre-norm transformer layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Clone, Debug)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl EncoderLayer {
    fn new(
        vb: VarBuilder,
        hidden: usize,
        inter: usize,
        heads: usize,
        act: Activation,
        eps: f64,
    ) -> Result<Self> {
        Ok(Self {
            layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), hidden, eps)?,
            self_attn: Attention::new(vb.pp("self_attn"), hidden, heads)?,
            layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), hidden, eps)?,
            fc1: ops::linear(vb.pp("mlp").pp("fc1"), hidden, inter, true)?,
            fc2: ops::linear(vb.pp("mlp").pp("fc2"), inter, hidden, true)?,
            act,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.layer_norm1.forward(x)?, mask)?;
        let x = (x + h)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        let h = self.fc2.forward(&self.act.apply(&h)?)?;
        x + h
    }
}

fn encoder(
    vb: VarBuilder,
    n: usize,
    hidden: usize,
    inter: usize,
    heads: usize,
    act: Activation,
    eps: f64,
) -> Result<Vec<EncoderLayer>> {
    let vb = vb.pp("encoder").pp("layers");
    (0..n)
        .map(|i| EncoderLayer::new(vb.pp(i), hidden, inter, heads, act, eps))
        .collect()
}

/// A value that drives `exp` to exactly zero in `dtype`, used for additive masks.
pub(crate) fn mask_value(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.0e38,
        _ => f32::MIN as f64,
    }
}

/// How the text tower picks the token whose state represents the sequence.
#[derive(Clone, Copy, Debug)]
pub enum TextPooling {
    /// Position of the largest token id (original CLIP: the EOS id is the largest).
    ArgMax,
    /// First position holding this token id (position 0 if absent, as transformers does).
    FirstEos(i64),
}

/// The text transformer (`text_model.*`).
#[derive(Clone, Debug)]
pub struct TextTransformer {
    token_embedding: Embedding,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    pooling: TextPooling,
}

impl TextTransformer {
    pub fn new(vb: VarBuilder, cfg: &TextConfig, pooling: TextPooling) -> Result<Self> {
        let h = cfg.hidden_size;
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: candle_nn::embedding(cfg.vocab_size, h, emb.pp("token_embedding"))?,
            position_embedding: emb.pp("position_embedding").get_with_hints(
                (cfg.max_position_embeddings, h),
                "weight",
                candle_nn::Init::Randn {
                    mean: 0.,
                    stdev: 0.02,
                },
            )?,
            layers: encoder(
                vb.clone(),
                cfg.num_hidden_layers,
                h,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.hidden_act,
                cfg.layer_norm_eps,
            )?,
            final_layer_norm: LayerNorm::new(vb.pp("final_layer_norm"), h, cfg.layer_norm_eps)?,
            pooling,
        })
    }

    /// Returns `(last_hidden_state [n, seq, h], pooled [n, h])` for integer `input_ids`
    /// `[n, seq]` and an optional 0/1 `attention_mask` `[n, seq]` (combined with the
    /// causal mask, as transformers does).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (n, seq) = input_ids.dims2()?;
        let max_pos = self.position_embedding.dim(0)?;
        if seq > max_pos {
            candle_core::bail!(
                "input_ids: sequence length {seq} exceeds max_position_embeddings {max_pos}"
            );
        }
        let x = self.token_embedding.forward(input_ids)?;
        let x = x.broadcast_add(&self.position_embedding.narrow(0, 0, seq)?)?;
        let dtype = x.dtype();
        let dev = x.device().clone();
        let mask = text_mask(n, seq, attention_mask, dtype, &dev)?;
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(&x, Some(&mask))?;
        }
        let x = self.final_layer_norm.forward(&x)?;
        let ids = input_ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
        let positions: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(row, r)| (row * seq + pool_position(r, self.pooling)) as u32)
            .collect();
        let idx = Tensor::from_vec(positions, n, &dev)?;
        let pooled = x.reshape((n * seq, ()))?.index_select(&idx, 0)?;
        Ok((x, pooled))
    }
}

fn pool_position(ids: &[i64], pooling: TextPooling) -> usize {
    match pooling {
        // First maximum, like torch.argmax.
        TextPooling::ArgMax => {
            ids.iter()
                .enumerate()
                .fold(
                    (0usize, i64::MIN),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0
        }
        TextPooling::FirstEos(eos) => ids.iter().position(|&v| v == eos).unwrap_or(0),
    }
}

/// Additive mask `[n, 1, seq, seq]`: key `k` is visible from query `q` when `k <= q` and
/// the key is not padding.
fn text_mask(
    n: usize,
    seq: usize,
    attention_mask: Option<&Tensor>,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let pad: Vec<Vec<i64>> = match attention_mask {
        Some(m) => {
            let m = m.to_dtype(DType::I64)?.to_vec2::<i64>()?;
            if m.len() != n || m.iter().any(|r| r.len() != seq) {
                candle_core::bail!("attention_mask: shape does not match input_ids [{n}, {seq}]");
            }
            m
        }
        None => vec![vec![1; seq]; n],
    };
    let neg = mask_value(dtype);
    let mut data = Vec::with_capacity(n * seq * seq);
    for row in &pad {
        for q in 0..seq {
            for (k, &keep) in row.iter().enumerate() {
                data.push(if k <= q && keep != 0 { 0.0 } else { neg });
            }
        }
    }
    Tensor::from_vec(data, (n, 1, seq, seq), dev)?.to_dtype(dtype)
}

/// The vision transformer (`vision_model.*`).
#[derive(Clone, Debug)]
pub struct VisionTransformer {
    class_embedding: Tensor,
    patch_weight: Tensor,
    position_embedding: Tensor,
    pre_layernorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    patch: usize,
    channels: usize,
    image_size: usize,
}

impl VisionTransformer {
    /// `pre_norm_name` is `pre_layrnorm` for CLIP, `pre_layernorm` for OWL-ViT.
    pub fn new(vb: VarBuilder, cfg: &VisionConfig, pre_norm_name: &str) -> Result<Self> {
        let h = cfg.hidden_size;
        let p = cfg.patch_size;
        let emb = vb.pp("embeddings");
        let num_positions = cfg.grid() * cfg.grid() + 1;
        Ok(Self {
            class_embedding: emb.get_with_hints(
                h,
                "class_embedding",
                candle_nn::Init::Randn {
                    mean: 0.,
                    stdev: 0.02,
                },
            )?,
            patch_weight: emb.pp("patch_embedding").get_with_hints(
                (h, cfg.num_channels, p, p),
                "weight",
                candle_nn::Init::Randn {
                    mean: 0.,
                    stdev: 0.02,
                },
            )?,
            position_embedding: emb.pp("position_embedding").get_with_hints(
                (num_positions, h),
                "weight",
                candle_nn::Init::Randn {
                    mean: 0.,
                    stdev: 0.02,
                },
            )?,
            pre_layernorm: LayerNorm::new(vb.pp(pre_norm_name), h, cfg.layer_norm_eps)?,
            layers: encoder(
                vb.clone(),
                cfg.num_hidden_layers,
                h,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.hidden_act,
                cfg.layer_norm_eps,
            )?,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), h, cfg.layer_norm_eps)?,
            patch: p,
            channels: cfg.num_channels,
            image_size: cfg.image_size,
        })
    }

    /// The post-norm, applied by OWL-ViT to every token.
    pub fn post_layernorm(&self) -> &LayerNorm {
        &self.post_layernorm
    }

    /// Returns `(last_hidden_state [b, 1 + patches, h], pooled = post_layernorm(CLS))`.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, c, hgt, wid) = pixel_values.dims4()?;
        if c != self.channels || hgt != self.image_size || wid != self.image_size {
            candle_core::bail!(
                "pixel_values: expected [batch, {}, {}, {}], got {:?}",
                self.channels,
                self.image_size,
                self.image_size,
                pixel_values.dims()
            );
        }
        let p = self.patch;
        let g = self.image_size / p;
        let hidden = self.class_embedding.dim(0)?;
        let x = pixel_values.to_dtype(self.patch_weight.dtype())?;
        // The stride-p, kernel-p convolution is a matmul over flattened patches; writing it
        // that way avoids im2col and keeps the backward pass simple.
        let patches = x
            .reshape((b, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, g * g, c * p * p))?;
        let w = self.patch_weight.reshape((hidden, c * p * p))?;
        let patch_embeds = patches.broadcast_matmul(&w.t()?)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .broadcast_as((b, 1, hidden))?;
        let x = Tensor::cat(&[&cls, &patch_embeds], 1)?;
        let x = x.broadcast_add(&self.position_embedding)?;
        let mut x = self.pre_layernorm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, None)?;
        }
        let pooled = self
            .post_layernorm
            .forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok((x, pooled))
    }
}

/// Divides each row by its L2 norm (differentiable).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Outputs of [`ClipModel::forward`].
#[derive(Clone, Debug)]
pub struct ClipOutput {
    /// `[n_images, n_texts]`, cosine similarity times `exp(logit_scale)`.
    pub logits_per_image: Tensor,
    /// Transpose of `logits_per_image`.
    pub logits_per_text: Tensor,
    /// L2-normalised projected text embeddings `[n_texts, projection_dim]`.
    pub text_embeds: Tensor,
    /// L2-normalised projected image embeddings `[n_images, projection_dim]`.
    pub image_embeds: Tensor,
}

/// `CLIPModel`.
#[derive(Clone, Debug)]
pub struct ClipModel {
    pub text_model: TextTransformer,
    pub vision_model: VisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
    logit_scale: Tensor,
}

impl ClipModel {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        // transformers keeps argmax pooling for configs with the pre-#24773 eos id 2.
        let pooling = match cfg.text_config.eos_token_id {
            Some(eos) if eos != 2 => TextPooling::FirstEos(eos),
            _ => TextPooling::ArgMax,
        };
        let t = &cfg.text_config;
        let v = &cfg.vision_config;
        Ok(Self {
            text_model: TextTransformer::new(vb.pp("text_model"), t, pooling)?,
            vision_model: VisionTransformer::new(vb.pp("vision_model"), v, "pre_layrnorm")?,
            text_projection: ops::linear(
                vb.pp("text_projection"),
                t.hidden_size,
                cfg.projection_dim,
                false,
            )?,
            visual_projection: ops::linear(
                vb.pp("visual_projection"),
                v.hidden_size,
                cfg.projection_dim,
                false,
            )?,
            logit_scale: vb.get_with_hints(
                (),
                "logit_scale",
                candle_nn::Init::Const(cfg.logit_scale_init_value),
            )?,
        })
    }

    /// Loads `config.json` and `model.safetensors` from a directory.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> anyhow::Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let vb = weights::var_builder(&[dir.join("model.safetensors")], dtype, device)?;
        Ok(Self::new(vb, &cfg)?)
    }

    /// Projected, unnormalised text features `[n, projection_dim]`.
    pub fn get_text_features(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (_, pooled) = self.text_model.forward(input_ids, attention_mask)?;
        self.text_projection.forward(&pooled)
    }

    /// Projected, unnormalised image features `[n, projection_dim]`.
    pub fn get_image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (_, pooled) = self.vision_model.forward(pixel_values)?;
        self.visual_projection.forward(&pooled)
    }

    /// Full forward pass, as `CLIPModel.forward`.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<ClipOutput> {
        let image_embeds = l2_normalize(&self.get_image_features(pixel_values)?)?;
        let text_embeds = l2_normalize(&self.get_text_features(input_ids, attention_mask)?)?;
        let scale = self.logit_scale.exp()?;
        let logits_per_text = text_embeds
            .matmul(&image_embeds.t()?)?
            .broadcast_mul(&scale)?;
        let logits_per_image = logits_per_text.t()?;
        Ok(ClipOutput {
            logits_per_image,
            logits_per_text,
            text_embeds,
            image_embeds,
        })
    }

    /// Scores `[n_images, n_texts]` used by SELECT, CLASSIFY, verify_property and
    /// best_text_match: the scaled cosine similarities (`logits_per_image`).
    pub fn image_text_scores(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        Ok(self
            .forward(pixel_values, input_ids, attention_mask)?
            .logits_per_image)
    }

    /// Per-image probabilities over the given texts (softmax of the scores).
    pub fn image_text_probs(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        ops::softmax_last_dim(&self.image_text_scores(pixel_values, input_ids, attention_mask)?)
    }
}

/// Symmetric InfoNCE loss of CLIP over a square `logits_per_image` (matching pairs on the
/// diagonal), as transformers' `clip_loss`.
pub fn contrastive_loss(logits_per_image: &Tensor) -> Result<Tensor> {
    let n = logits_per_image.dim(0)?;
    let eye = Tensor::eye(n, logits_per_image.dtype(), logits_per_image.device())?;
    let ce = |l: &Tensor| -> Result<Tensor> {
        (ops::log_softmax_last_dim(l)? * &eye)?.sum_all()?.neg()? / n as f64
    };
    (ce(logits_per_image)? + ce(&logits_per_image.t()?)?)? / 2.0
}
