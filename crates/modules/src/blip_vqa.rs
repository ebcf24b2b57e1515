//! `blip-vqa` → `vqa`: BLIP VQA (`BlipForQuestionAnswering`) behind the Backend trait.
//!
//! Answers are generated greedily (default) or by beam search, or ranked over a fixed
//! answer list when the module set gives one (`options.answers`), as BLIP's VQA evaluation
//! does. `score` is the answer's probability: `exp` of its summed token log-probabilities
//! when generated, its softmax share over the list when ranked.

use crate::common::{fail_all, Answers, BatchCrops, Checkpoint};
use crate::images::ImageCache;
use candle_core::{DType, Device, Tensor};
use sdvp_core::module::Alternative;
use sdvp_core::{Backend, ModuleKind, Request, Response};
use sdvp_models::blip::vqa::answer_rows;
use sdvp_models::blip::BlipForQuestionAnswering;
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    #[default]
    Greedy,
    Beam,
}

/// `options` of a `blip-vqa` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaOptions {
    #[serde(default)]
    pub decode: Decode,
    #[serde(default = "default_beams")]
    pub num_beams: usize,
    /// Tokens of an answer, `[DEC]` and `[SEP]` included.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Rank these answers instead of generating (closed-vocabulary VQA).
    #[serde(default)]
    pub answers: Vec<String>,
}

fn default_beams() -> usize {
    3
}
fn default_max_length() -> usize {
    10
}

impl Default for VqaOptions {
    fn default() -> Self {
        Self {
            decode: Decode::Greedy,
            num_beams: default_beams(),
            max_length: default_max_length(),
            answers: Vec::new(),
        }
    }
}

impl VqaOptions {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=16).contains(&self.num_beams) {
            anyhow::bail!("num_beams must be in 1..=16, got {}", self.num_beams);
        }
        if !(2..=64).contains(&self.max_length) {
            anyhow::bail!("max_length must be in 2..=64, got {}", self.max_length);
        }
        Ok(())
    }
}

pub struct BlipVqa {
    model: BlipForQuestionAnswering,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    images: Arc<ImageCache>,
    options: VqaOptions,
    /// `[n, t]` ids and mask of the ranked answers (`[DEC] … [SEP]`).
    candidates: Option<(Tensor, Tensor)>,
    checkpoint: Checkpoint,
    device: Device,
}

impl BlipVqa {
    pub fn load(
        checkpoint: Checkpoint,
        options: VqaOptions,
        images: Arc<ImageCache>,
    ) -> anyhow::Result<Self> {
        options.check()?;
        let device = Device::Cpu;
        let model = BlipForQuestionAnswering::from_dir(&checkpoint.dir, &device)?;
        let cfg = model.config().clone();
        let tokenizer = checkpoint.tokenizer(
            cfg.text_config.max_position_embeddings,
            cfg.text_config.pad_token_id,
            Padding::Longest,
        )?;
        let processor =
            checkpoint.image_processor(ImageProcessor::blip(cfg.vision_config.image_size))?;
        let candidates = if options.answers.is_empty() {
            None
        } else {
            Some(answer_rows(
                &tokenizer,
                &options.answers,
                cfg.text_config.bos_token_id,
                &device,
            )?)
        };
        Ok(Self {
            model,
            tokenizer,
            processor,
            images,
            options,
            candidates,
            checkpoint,
            device,
        })
    }

    pub fn model(&self) -> &BlipForQuestionAnswering {
        &self.model
    }
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// The response of one row of probabilities over `options.answers`: the best answer
    /// (the first on ties) with the whole distribution, best first.
    fn ranked(&self, probs: &[f32]) -> Response {
        let mut alternatives: Vec<Alternative> = self
            .options
            .answers
            .iter()
            .zip(probs)
            .map(|(text, &p)| Alternative {
                text: text.clone(),
                p,
            })
            .collect();
        // Stable: equal probabilities keep the list's order.
        alternatives.sort_by(|a, b| b.p.total_cmp(&a.p));
        let (text, score) = alternatives
            .first()
            .map(|a| (a.text.clone(), a.p))
            .unwrap_or_default();
        Response::Answer {
            text,
            score,
            alternatives,
        }
    }

    /// Answers for `(image, question)` pairs, in order.
    pub fn answer(
        &self,
        images: &[image::RgbImage],
        questions: &[String],
    ) -> anyhow::Result<Vec<Response>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let pixels = self.processor.to_tensor(images, &self.device)?;
        let q = self.tokenizer.encode_batch(questions, &self.device)?;
        let text = &self.model.config().text_config;
        if let Some((cand, cmask)) = &self.candidates {
            let emb = self
                .model
                .encode(&pixels, &q.input_ids, Some(&q.attention_mask))?;
            let scores =
                self.model
                    .rank_answers(&emb, Some(&q.attention_mask), cand, Some(cmask))?;
            let probs = sdvp_models::ops::softmax_last_dim(&scores)?.to_vec2::<f32>()?;
            return Ok(probs.into_iter().map(|row| self.ranked(&row)).collect());
        }
        let scored: Vec<(Vec<u32>, f64)> = match self.options.decode {
            Decode::Greedy => self.model.generate_greedy_scored(
                &pixels,
                &q.input_ids,
                Some(&q.attention_mask),
                self.options.max_length,
            )?,
            Decode::Beam => {
                let ids = self.model.generate_beam(
                    &pixels,
                    &q.input_ids,
                    Some(&q.attention_mask),
                    self.options.num_beams,
                    self.options.max_length,
                    1.0,
                )?;
                let t = ids.iter().map(Vec::len).max().unwrap_or(1);
                let b = ids.len();
                let mut flat = Vec::with_capacity(b * t);
                let mut mask = Vec::with_capacity(b * t);
                for row in &ids {
                    flat.extend(row.iter().copied());
                    flat.extend(std::iter::repeat_n(text.pad_token_id, t - row.len()));
                    mask.extend(std::iter::repeat_n(1u32, row.len()));
                    mask.extend(std::iter::repeat_n(0u32, t - row.len()));
                }
                let a = Tensor::from_vec(flat, (b, t), &self.device)?;
                let am = Tensor::from_vec(mask, (b, t), &self.device)?;
                let emb = self
                    .model
                    .encode(&pixels, &q.input_ids, Some(&q.attention_mask))?;
                let lp = self
                    .model
                    .answer_logprobs(&emb, Some(&q.attention_mask), &a, Some(&am))?
                    .to_dtype(DType::F64)?
                    .to_vec1::<f64>()?;
                ids.into_iter().zip(lp).collect()
            }
        };
        scored
            .into_iter()
            .map(|(ids, lp)| {
                Ok(Response::answer(
                    self.tokenizer.decode(&ids)?.trim(),
                    lp.exp() as f32,
                ))
            })
            .collect()
    }
}

impl Backend for BlipVqa {
    fn name(&self) -> String {
        "blip-vqa".into()
    }
    fn answered_by(&self, _kind: ModuleKind) -> String {
        self.checkpoint.identity()
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        if kind != ModuleKind::Vqa {
            return fail_all(kind, requests.len(), "blip-vqa answers only vqa calls");
        }
        let batch = BatchCrops::load(kind, requests, &self.images, |r| match r {
            Request::Vqa { question, .. } => Ok(question.clone()),
            _ => Err("not a vqa request".into()),
        });
        let imgs: Vec<image::RgbImage> =
            batch.ok.iter().map(|(_, c, _)| c.pixels.clone()).collect();
        let qs: Vec<String> = batch.ok.iter().map(|(_, _, q)| q.clone()).collect();
        let results = self
            .answer(&imgs, &qs)
            .map(|v| v.into_iter().map(Ok).collect());
        batch.finish(kind, results)
    }
}
