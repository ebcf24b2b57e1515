//! `blip-vqa` → `vqa` and `verify`: BLIP VQA (`BlipForQuestionAnswering`) behind the
//! Backend trait.
//!
//! Answers are generated greedily (default) or by beam search, or ranked over a fixed
//! answer list when the module set gives one (`options.answers`), as BLIP's VQA evaluation
//! does. `score` is the answer's probability: `exp` of its summed token log-probabilities
//! when generated, its softmax share over the list when ranked.
//!
//! It also answers `verify` and `classify` calls, as a task-specific VQA teacher labels
//! them for distillation (or replaces the CLIP student outright): a verify_property call
//! (`"{property} {object}"`) is asked as the yes/no question [`verify_question`] writes, and
//! P(yes) is the softmax of the sequence scores of `yes` and `no`; a best_text_match call is
//! asked as [`classify_question`] writes, and the options' scores are the softmax of their
//! sequence scores. Both equal a closed vocabulary's distribution renormalised to the
//! answers in question.

use crate::common::{fail_all, Answers, BatchCrops, Checkpoint};
use crate::images::ImageCache;
use candle_core::{DType, Device, Tensor};
use sdvp_core::module::Alternative;
use sdvp_core::{Backend, ModuleKind, Request, Response};
use sdvp_data::scene::Attr;
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
    /// Widen crops smaller than this many source pixels on a side to it (about their
    /// centre), so that the model sees objects at the image's scale: a resized tight crop
    /// shows a small and a large object alike. The model must be trained with the same.
    #[serde(default)]
    pub min_crop_px: Option<u32>,
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
            min_crop_px: None,
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
        if let Some(px) = self.min_crop_px {
            if !(1..=4096).contains(&px) {
                anyhow::bail!("min_crop_px must be in 1..=4096, got {px}");
            }
        }
        Ok(())
    }
}

/// The yes/no question a VQA model is asked for verify text `"{property} {object}"`, in the
/// world's wording ("Is the small ball red?", "Is the thing a cube?"), or `None` when the
/// text is not two words or more.
pub fn verify_question(text: &str) -> Option<String> {
    let (value, phrase) = text.trim().split_once(' ')?;
    let phrase = phrase.trim();
    if value.is_empty() || phrase.is_empty() {
        return None;
    }
    let attr = Attr::ALL
        .into_iter()
        .find(|a| a.values().contains(&value))
        .unwrap_or(Attr::Color);
    Some(sdvp_data::tasks::gqa::verify_question(phrase, attr, value))
}

/// The question a VQA model is asked for a best_text_match call over `options`: the
/// world's either-or question ("Is the object red or blue?") for two values of one
/// attribute, its attribute question ("What material is the object?") for more, and
/// "Which is the object: a, b or c?" when the options are not values of one attribute.
pub fn classify_question(options: &[String]) -> Option<String> {
    if options.is_empty() {
        return None;
    }
    let attr = Attr::ALL
        .into_iter()
        .find(|a| options.iter().all(|o| a.values().contains(&o.trim())));
    Some(match (attr, options) {
        (Some(_), [x, y]) => format!("Is the object {} or {}?", x.trim(), y.trim()),
        (Some(a), _) => sdvp_data::tasks::attr_question(a, "object"),
        (None, [only]) => format!("Is the object {}?", only.trim()),
        (None, _) => {
            let (last, first) = options.split_last()?;
            format!(
                "Which is the object: {} or {}?",
                first
                    .iter()
                    .map(|o| o.trim())
                    .collect::<Vec<_>>()
                    .join(", "),
                last.trim()
            )
        }
    })
}

pub struct BlipVqa {
    model: BlipForQuestionAnswering,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    images: Arc<ImageCache>,
    options: VqaOptions,
    /// `[n, t]` ids and mask of the ranked answers (`[DEC] … [SEP]`).
    candidates: Option<(Tensor, Tensor)>,
    /// `yes` and `no` as ranked answers, for verify calls.
    yes_no: (Tensor, Tensor),
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
        let yes_no = answer_rows(
            &tokenizer,
            &["yes".to_string(), "no".to_string()],
            cfg.text_config.bos_token_id,
            &device,
        )?;
        Ok(Self {
            model,
            tokenizer,
            processor,
            images,
            options,
            candidates,
            yes_no,
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

    /// Per `(image, question)` pair, the softmax over the candidate answers `candidates`
    /// (`[n, t]` ids and mask) of their sequence scores.
    fn rank<Q: AsRef<str>>(
        &self,
        images: &[image::RgbImage],
        questions: &[Q],
        candidates: &(Tensor, Tensor),
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let pixels = self.processor.to_tensor(images, &self.device)?;
        let q = self.tokenizer.encode_batch(questions, &self.device)?;
        let emb = self
            .model
            .encode(&pixels, &q.input_ids, Some(&q.attention_mask))?;
        let (cand, cmask) = candidates;
        let scores = self
            .model
            .rank_answers(&emb, Some(&q.attention_mask), cand, Some(cmask))?;
        Ok(sdvp_models::ops::softmax_last_dim(&scores)?.to_vec2::<f32>()?)
    }

    /// Verdicts for `(image, yes/no question)` pairs, in order: yes when P(yes) > 0.5.
    pub fn verdicts(
        &self,
        images: &[image::RgbImage],
        questions: &[String],
    ) -> anyhow::Result<Vec<Response>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let probs = self.rank(images, questions, &self.yes_no)?;
        Ok(probs
            .into_iter()
            .map(|row| {
                let yes = row[0] > 0.5;
                Response::Verdict {
                    yes,
                    score: if yes { row[0] } else { 1.0 - row[0] },
                }
            })
            .collect())
    }

    /// Choices for `(image, question, options)` triples, in order: the options ranked as
    /// answers, requests with the same options in one pass.
    pub fn choices(
        &self,
        images: &[image::RgbImage],
        questions: &[String],
        options: &[Vec<String>],
    ) -> anyhow::Result<Vec<Response>> {
        let mut out: Vec<Option<Response>> = vec![None; images.len()];
        let mut groups: Vec<(&Vec<String>, Vec<usize>)> = Vec::new();
        for (i, o) in options.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| *g == o) {
                Some((_, v)) => v.push(i),
                None => groups.push((o, vec![i])),
            }
        }
        let bos = self.model.config().text_config.bos_token_id;
        for (opts, rows) in groups {
            let imgs: Vec<image::RgbImage> = rows.iter().map(|&i| images[i].clone()).collect();
            let qs: Vec<&String> = rows.iter().map(|&i| &questions[i]).collect();
            let candidates = answer_rows(&self.tokenizer, opts, bos, &self.device)?;
            let probs = self.rank(&imgs, &qs, &candidates)?;
            for (&i, p) in rows.iter().zip(probs) {
                let index = crate::common::best_index(&p);
                out[i] = Some(Response::Choice { index, scores: p });
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| anyhow::anyhow!("a classify request got no answer")))
            .collect()
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
        if let Some(candidates) = &self.candidates {
            let probs = self.rank(images, questions, candidates)?;
            return Ok(probs.into_iter().map(|row| self.ranked(&row)).collect());
        }
        let pixels = self.processor.to_tensor(images, &self.device)?;
        let q = self.tokenizer.encode_batch(questions, &self.device)?;
        let text = &self.model.config().text_config;
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
        if !matches!(
            kind,
            ModuleKind::Vqa | ModuleKind::Verify | ModuleKind::Classify
        ) {
            return fail_all(
                kind,
                requests.len(),
                "blip-vqa answers only vqa, verify and classify calls",
            );
        }
        let min_side = self.options.min_crop_px.map(|px| px as f32);
        let batch = BatchCrops::load_widened(kind, requests, &self.images, min_side, |r| match r {
            Request::Vqa { question, .. } => Ok((question.clone(), Vec::new())),
            Request::Verify { text, .. } => verify_question(text)
                .map(|q| (q, Vec::new()))
                .ok_or_else(|| format!("verify text {text:?} is not \"PROPERTY OBJECT\"")),
            Request::Classify { options, .. } => classify_question(options)
                .map(|q| (q, options.clone()))
                .ok_or_else(|| "no options to choose from".to_string()),
            _ => Err("not a vqa, verify or classify request".into()),
        });
        let imgs: Vec<image::RgbImage> =
            batch.ok.iter().map(|(_, c, _)| c.pixels.clone()).collect();
        let qs: Vec<String> = batch.ok.iter().map(|(_, _, (q, _))| q.clone()).collect();
        let results = match kind {
            ModuleKind::Verify => self.verdicts(&imgs, &qs),
            ModuleKind::Classify => {
                let opts: Vec<Vec<String>> =
                    batch.ok.iter().map(|(_, _, (_, o))| o.clone()).collect();
                self.choices(&imgs, &qs, &opts)
            }
            _ => self.answer(&imgs, &qs),
        }
        .map(|v| v.into_iter().map(Ok).collect());
        batch.finish(kind, results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn verify_texts_become_the_worlds_verify_questions() {
        let cases = [
            ("red small ball", Some("Is the small ball red?")),
            ("metal cube", Some("Is the cube metal?")),
            ("star large object", Some("Is the large object a star?")),
            ("red", None),
            ("  ", None),
        ];
        for (text, want) in cases {
            assert_eq!(verify_question(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn classify_options_become_the_worlds_choice_questions() {
        let cases = [
            (vec!["red", "blue"], "Is the object red or blue?"),
            (
                vec!["matte", "metal", "striped"],
                "What material is the object?",
            ),
            (
                vec!["circle", "square", "triangle", "star", "hexagon", "diamond"],
                "What shape is the object?",
            ),
            (
                vec!["left", "right", "up"],
                "Which is the object: left, right or up?",
            ),
            (vec!["dog"], "Is the object dog?"),
        ];
        for (options, want) in cases {
            assert_eq!(
                classify_question(&strings(&options)).as_deref(),
                Some(want),
                "{options:?}"
            );
        }
        assert_eq!(classify_question(&[]), None);
    }
}
