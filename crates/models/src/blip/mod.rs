//! BLIP for visual question answering (`BlipForQuestionAnswering`), the VQA student.
//!
//! Three parts, each named as in the Hugging Face checkpoint so that a real
//! `model.safetensors` (blip-vqa-base, blip-vqa-capfilt-large) loads unchanged:
//! `vision_model` (ViT), `text_encoder` (BERT whose layers cross-attend to the image
//! tokens: the question encoding) and `text_decoder` (causal BERT cross-attending to the
//! question encoding, with an LM head tied to its word embeddings). All code paths are
//! differentiable (see [`crate::ops`]), so the same model serves inference and
//! fine-tuning. Inference and losses live in [`vqa`].

pub mod text;
pub mod vision;
pub mod vqa;

use crate::ops::{self, LayerNorm, Linear};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use text::{TextCache, TextModel};
pub use vision::VisionModel;

fn d_vocab() -> usize {
    30524
}
fn d_768() -> usize {
    768
}
fn d_3072() -> usize {
    3072
}
fn d_12() -> usize {
    12
}
fn d_8() -> usize {
    8
}
fn d_512() -> usize {
    512
}
fn d_384() -> usize {
    384
}
fn d_16() -> usize {
    16
}
fn d_gelu() -> String {
    "gelu".into()
}
fn d_eps_text() -> f64 {
    1e-12
}
fn d_eps_vision() -> f64 {
    1e-5
}
fn d_bos() -> u32 {
    30522
}
fn d_eos() -> u32 {
    2
}
fn d_pad() -> u32 {
    0
}
fn d_sep() -> u32 {
    102
}

/// `text_config` of a BLIP `config.json`; defaults are transformers' `BlipTextConfig`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TextConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_768")]
    pub hidden_size: usize,
    /// Width of the states cross-attended to; transformers overwrites it with the
    /// vision width, and so does [`Config::normalise`].
    #[serde(default = "d_768")]
    pub encoder_hidden_size: usize,
    #[serde(default = "d_3072")]
    pub intermediate_size: usize,
    #[serde(default = "d_12")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_8")]
    pub num_attention_heads: usize,
    #[serde(default = "d_512")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps_text")]
    pub layer_norm_eps: f64,
    /// The decoder's start token (`[DEC]`), `decoder_start_token_id` of the VQA model.
    #[serde(default = "d_bos")]
    pub bos_token_id: u32,
    #[serde(default = "d_eos")]
    pub eos_token_id: u32,
    #[serde(default = "d_pad")]
    pub pad_token_id: u32,
    /// `[SEP]`, which ends a generated answer.
    #[serde(default = "d_sep")]
    pub sep_token_id: u32,
    /// Label smoothing of the answer cross-entropy (transformers ≥ 4.3x reads it from
    /// here, default 0; older releases hard-coded 0.1).
    #[serde(default)]
    pub label_smoothing: f64,
}

/// `vision_config` of a BLIP `config.json`; defaults are transformers' `BlipVisionConfig`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VisionConfig {
    #[serde(default = "d_768")]
    pub hidden_size: usize,
    #[serde(default = "d_3072")]
    pub intermediate_size: usize,
    #[serde(default = "d_12")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_12")]
    pub num_attention_heads: usize,
    #[serde(default = "d_384")]
    pub image_size: usize,
    #[serde(default = "d_16")]
    pub patch_size: usize,
    #[serde(default = "d_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps_vision")]
    pub layer_norm_eps: f64,
}

fn default_text() -> TextConfig {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable_text())
}
fn default_vision() -> VisionConfig {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable_vision())
}
// serde fills every field from its default, so parsing `{}` cannot fail; these exist
// only to avoid a panic path.
fn unreachable_text() -> TextConfig {
    TextConfig {
        vocab_size: d_vocab(),
        hidden_size: 768,
        encoder_hidden_size: 768,
        intermediate_size: 3072,
        num_hidden_layers: 12,
        num_attention_heads: 8,
        max_position_embeddings: 512,
        hidden_act: d_gelu(),
        layer_norm_eps: 1e-12,
        bos_token_id: d_bos(),
        eos_token_id: d_eos(),
        pad_token_id: d_pad(),
        sep_token_id: d_sep(),
        label_smoothing: 0.0,
    }
}
fn unreachable_vision() -> VisionConfig {
    VisionConfig {
        hidden_size: 768,
        intermediate_size: 3072,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        image_size: 384,
        patch_size: 16,
        hidden_act: d_gelu(),
        layer_norm_eps: 1e-5,
    }
}

/// A BLIP `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default = "default_text")]
    pub text_config: TextConfig,
    #[serde(default = "default_vision")]
    pub vision_config: VisionConfig,
}

impl Config {
    /// Reads and checks `config.json`; errors name the field and the file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let c: Config = crate::weights::load_config(path)?;
        let c = c.normalise();
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        Ok(c)
    }

    /// Applies transformers' post-init rule: the text model cross-attends to states of
    /// the vision width.
    pub fn normalise(mut self) -> Self {
        self.text_config.encoder_hidden_size = self.vision_config.hidden_size;
        self
    }

    /// Checks the shape constraints the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (t, v) = (&self.text_config, &self.vision_config);
        if t.num_attention_heads == 0 || t.hidden_size % t.num_attention_heads != 0 {
            return Err("text_config.hidden_size must be a multiple of num_attention_heads".into());
        }
        if v.num_attention_heads == 0 || v.hidden_size % v.num_attention_heads != 0 {
            return Err(
                "vision_config.hidden_size must be a multiple of num_attention_heads".into(),
            );
        }
        if v.patch_size == 0 || v.image_size % v.patch_size != 0 {
            return Err("vision_config.image_size must be a multiple of patch_size".into());
        }
        if t.hidden_size != v.hidden_size {
            // The decoder cross-attends to the question encoding with key/value layers
            // of width encoder_hidden_size (= vision width), as in transformers.
            return Err("text_config.hidden_size must equal vision_config.hidden_size".into());
        }
        for act in [&t.hidden_act, &v.hidden_act] {
            if !matches!(act.as_str(), "gelu" | "quick_gelu" | "relu") {
                return Err(format!("unsupported hidden_act {act:?}"));
            }
        }
        Ok(())
    }
}

/// Applies the activation named in the config.
pub(crate) fn activation(name: &str, x: &Tensor) -> Result<Tensor> {
    match name {
        "quick_gelu" => ops::quick_gelu(x),
        "relu" => x.relu(),
        _ => ops::gelu_erf(x),
    }
}

/// The LM head `text_decoder.cls.predictions.*`.
struct LmHead {
    dense: Linear,
    layer_norm: LayerNorm,
    decoder_weight: Tensor,
    bias: Tensor,
    act: String,
}

impl LmHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = activation(&self.act, &self.dense.forward(x)?)?;
        let h = self.layer_norm.forward(&h)?;
        h.broadcast_matmul(&self.decoder_weight.t()?)?
            .broadcast_add(&self.bias)
    }
}

/// BLIP VQA: image encoder, question encoder, answer decoder.
pub struct BlipForQuestionAnswering {
    pub(crate) vision: VisionModel,
    pub(crate) text_encoder: TextModel,
    pub(crate) text_decoder: TextModel,
    head: LmHead,
    pub(crate) config: Config,
}

impl BlipForQuestionAnswering {
    /// Builds from a `VarBuilder` at the checkpoint root. The output layer is tied to
    /// `text_decoder.bert.embeddings.word_embeddings.weight` unless the checkpoint has
    /// its own `text_decoder.cls.predictions.decoder.weight`; the output bias is
    /// `text_decoder.cls.predictions.bias` (or its alias `...decoder.bias`).
    pub fn new(vb: VarBuilder, config: &Config) -> Result<Self> {
        let config = config.clone().normalise();
        if let Err(e) = config.validate() {
            candle_core::bail!("BLIP config: {e}");
        }
        let t = &config.text_config;
        let vision = VisionModel::new(vb.pp("vision_model"), &config.vision_config)?;
        let text_encoder = TextModel::new(vb.pp("text_encoder"), t)?;
        let dec = vb.pp("text_decoder");
        let text_decoder = TextModel::new(dec.pp("bert"), t)?;
        let p = dec.pp("cls.predictions");
        let decoder_weight = if p.contains_tensor("decoder.weight") {
            p.get((t.vocab_size, t.hidden_size), "decoder.weight")?
        } else {
            text_decoder.word_embeddings().clone()
        };
        let bias = if !p.contains_tensor("bias") && p.contains_tensor("decoder.bias") {
            p.get(t.vocab_size, "decoder.bias")?
        } else {
            p.get_with_hints(t.vocab_size, "bias", candle_nn::Init::Const(0.0))?
        };
        let head = LmHead {
            dense: ops::linear(p.pp("transform.dense"), t.hidden_size, t.hidden_size, true)?,
            layer_norm: LayerNorm::new(
                p.pp("transform.LayerNorm"),
                t.hidden_size,
                t.layer_norm_eps,
            )?,
            decoder_weight,
            bias,
            act: t.hidden_act.clone(),
        };
        Ok(Self {
            vision,
            text_encoder,
            text_decoder,
            head,
            config,
        })
    }

    /// Loads `config.json` and `model.safetensors` from a folder (f32, `device`).
    pub fn from_dir(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let config = Config::from_file(&dir.join("config.json"))?;
        let vb = crate::weights::var_builder(&[dir.join("model.safetensors")], DType::F32, device)?;
        Self::new(vb, &config)
            .map_err(|e| anyhow::anyhow!("loading BLIP from {}: {e}", dir.display()))
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Image tokens `[b, 1 + patches, d]` from normalised `pixel_values` `[b, 3, H, W]`.
    pub fn vision_embeds(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.vision.forward(pixel_values)
    }

    /// Question encoding `[b, s, d]`: `input_ids` (u32 `[b, s]`) with their 1/0
    /// `attention_mask`, cross-attending to all image tokens.
    pub fn encode_question(
        &self,
        image_embeds: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mask = attention_mask.map(text::padding_mask).transpose()?;
        self.text_encoder
            .forward(input_ids, mask.as_ref(), image_embeds, None, None)
    }

    /// Decoder logits `[b, t, vocab]` for teacher-forced `answer_ids` (starting with the
    /// `[DEC]` token), attending to `question_embeds` where `question_mask` is 1.
    pub fn decoder_logits(
        &self,
        question_embeds: &Tensor,
        question_mask: Option<&Tensor>,
        answer_ids: &Tensor,
        answer_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t) = answer_ids.dims2()?;
        let self_mask = text::causal_mask(b, t, 0, answer_mask, answer_ids.device())?;
        let enc_mask = question_mask.map(text::padding_mask).transpose()?;
        let h = self.text_decoder.forward(
            answer_ids,
            Some(&self_mask),
            question_embeds,
            enc_mask.as_ref(),
            None,
        )?;
        self.head.forward(&h)
    }

    /// One cached decoding step: logits `[b, vocab]` of the last position of `new_ids`.
    pub(crate) fn decode_step(
        &self,
        question_embeds: &Tensor,
        enc_mask: Option<&Tensor>,
        new_ids: &Tensor,
        cache: &mut TextCache,
    ) -> Result<Tensor> {
        let (b, s) = new_ids.dims2()?;
        let self_mask = text::causal_mask(b, s, cache.len(), None, new_ids.device())?;
        let h = self.text_decoder.forward(
            new_ids,
            Some(&self_mask),
            question_embeds,
            enc_mask,
            Some(cache),
        )?;
        let last = h.narrow(1, s - 1, 1)?.squeeze(1)?;
        self.head.forward(&last)
    }
}

/// BLIP's image processor (`BlipImageProcessor`): resize to `size`×`size` with PIL's
/// bicubic, scale to `[0, 1]`, normalise with the CLIP mean/std. Returns `[3, size, size]`.
pub fn preprocess_image(img: &image::DynamicImage, size: u32, device: &Device) -> Result<Tensor> {
    crate::preprocess::ImageProcessor::blip(size as usize)
        .to_tensor(&[img.to_rgb8()], device)?
        .squeeze(0)
}
