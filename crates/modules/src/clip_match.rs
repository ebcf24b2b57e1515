//! `clip` → `verify` and `classify`: CLIP image–text matching behind the Backend trait.
//!
//! * `classify` (SELECT, CLASSIFY, best_text_match): softmax over the scaled cosine
//!   similarities of the options (`logits_per_image`); the best option wins, `scores` are
//!   the probabilities.
//! * `verify` (verify_property): CLIP has no calibrated "yes"; the decision rule is stated
//!   in `options.verify`:
//!   - `negation` (default): the text against a negative text (`negative_template`,
//!     `"a photo of no {}"`), P(yes) = softmax of the two logits; yes when P(yes) > 0.5;
//!   - `threshold`: yes when the text's logit exceeds `threshold` (calibrated on val by
//!     whoever trained the checkpoint), P(yes) = sigmoid(logit − threshold).
//!
//! The response's `score` is the confidence in the verdict given (P(yes) or 1 − P(yes)).

use crate::common::{fail_all, Answers, BatchCrops, Checkpoint};
use crate::images::ImageCache;
use candle_core::{DType, Device};
use sdvp_core::{Backend, ModuleKind, Request, Response};
use sdvp_models::clip::{ClipModel, Config};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VerifyRule {
    #[default]
    Negation,
    Threshold,
}

/// `options` of a `clip` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipOptions {
    /// The text scored against the image; `{}` is the option or property.
    #[serde(default = "default_template")]
    pub template: String,
    #[serde(default)]
    pub verify: VerifyRule,
    #[serde(default = "default_negative")]
    pub negative_template: String,
    #[serde(default)]
    pub threshold: f32,
}

fn default_template() -> String {
    "a photo of {}".into()
}
fn default_negative() -> String {
    "a photo of no {}".into()
}

impl Default for ClipOptions {
    fn default() -> Self {
        Self {
            template: default_template(),
            verify: VerifyRule::Negation,
            negative_template: default_negative(),
            threshold: 0.0,
        }
    }
}

pub struct ClipMatch {
    model: ClipModel,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    images: Arc<ImageCache>,
    options: ClipOptions,
    checkpoint: Checkpoint,
    device: Device,
}

impl ClipMatch {
    pub fn load(
        checkpoint: Checkpoint,
        options: ClipOptions,
        images: Arc<ImageCache>,
    ) -> anyhow::Result<Self> {
        if !options.threshold.is_finite() {
            anyhow::bail!("threshold must be a finite number");
        }
        let device = Device::Cpu;
        let cfg = Config::from_file(&checkpoint.file("config.json"))?;
        let model = ClipModel::load(&checkpoint.dir, DType::F32, &device)?;
        // Pooling reads the EOS position and attention is causal, so padding never changes
        // a text's embedding; pad id 0 keeps the legacy argmax-EOS pooling right.
        let tokenizer =
            checkpoint.tokenizer(cfg.text_config.max_position_embeddings, 0, Padding::Longest)?;
        let processor =
            checkpoint.image_processor(ImageProcessor::clip(cfg.vision_config.image_size))?;
        Ok(Self {
            model,
            tokenizer,
            processor,
            images,
            options,
            checkpoint,
            device,
        })
    }

    /// `logits_per_image` `[images, texts]` as rows.
    pub fn logits(
        &self,
        images: &[image::RgbImage],
        texts: &[String],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if images.is_empty() || texts.is_empty() {
            return Ok(vec![Vec::new(); images.len()]);
        }
        let pixels = self.processor.to_tensor(images, &self.device)?;
        let t = self.tokenizer.encode_batch(texts, &self.device)?;
        let logits =
            self.model
                .image_text_scores(&pixels, &t.input_ids, Some(&t.attention_mask))?;
        Ok(logits.to_vec2::<f32>()?)
    }

    fn prompt(&self, template: &str, x: &str) -> String {
        template.replace("{}", x)
    }

    /// The texts each loaded request needs, as (text list) per request.
    fn texts_for(&self, r: &Request) -> Result<Vec<String>, String> {
        match r {
            Request::Verify { text, .. } => {
                let mut v = vec![self.prompt(&self.options.template, text)];
                if self.options.verify == VerifyRule::Negation {
                    v.push(self.prompt(&self.options.negative_template, text));
                }
                Ok(v)
            }
            Request::Classify { options, .. } if options.is_empty() => {
                Err("no options to choose from".into())
            }
            Request::Classify { options, .. } => Ok(options
                .iter()
                .map(|o| self.prompt(&self.options.template, o))
                .collect()),
            _ => Err("clip answers verify and classify calls".into()),
        }
    }

    fn answer(
        &self,
        kind: ModuleKind,
        items: &[(&image::RgbImage, Vec<String>)],
    ) -> anyhow::Result<Answers> {
        // All distinct texts of the batch in one text-tower pass, every crop in one image pass.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut texts: Vec<String> = Vec::new();
        for (_, ts) in items {
            for t in ts {
                if !index.contains_key(t.as_str()) {
                    index.insert(t.as_str(), texts.len());
                    texts.push(t.clone());
                }
            }
        }
        let images: Vec<image::RgbImage> = items.iter().map(|(i, _)| (*i).clone()).collect();
        let logits = self.logits(&images, &texts)?;
        let mut out = Vec::with_capacity(items.len());
        for ((_, ts), row) in items.iter().zip(&logits) {
            let l: Vec<f32> = ts.iter().map(|t| row[index[t.as_str()]]).collect();
            out.push(Ok(match kind {
                ModuleKind::Verify => {
                    let p_yes = match self.options.verify {
                        VerifyRule::Negation => {
                            let m = l[0].max(l[1]);
                            let (a, b) = ((l[0] - m).exp(), (l[1] - m).exp());
                            a / (a + b)
                        }
                        VerifyRule::Threshold => {
                            1.0 / (1.0 + (self.options.threshold - l[0]).exp())
                        }
                    };
                    let yes = p_yes > 0.5;
                    Response::Verdict {
                        yes,
                        score: if yes { p_yes } else { 1.0 - p_yes },
                    }
                }
                _ => {
                    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = l.iter().map(|x| (x - m).exp()).collect();
                    let z: f32 = e.iter().sum();
                    let scores: Vec<f32> = e.iter().map(|x| x / z).collect();
                    let index = crate::common::best_index(&scores);
                    Response::Choice { index, scores }
                }
            }));
        }
        Ok(out)
    }
}

impl Backend for ClipMatch {
    fn name(&self) -> String {
        "clip".into()
    }
    fn answered_by(&self, _kind: ModuleKind) -> String {
        self.checkpoint.identity()
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        if !matches!(kind, ModuleKind::Verify | ModuleKind::Classify) {
            return fail_all(
                kind,
                requests.len(),
                "clip answers only verify and classify calls",
            );
        }
        let batch = BatchCrops::load(kind, requests, &self.images, |r| self.texts_for(r));
        let items: Vec<(&image::RgbImage, Vec<String>)> = batch
            .ok
            .iter()
            .map(|(_, c, t)| (&c.pixels, t.clone()))
            .collect();
        let results = self.answer(kind, &items);
        batch.finish(kind, results)
    }
}
