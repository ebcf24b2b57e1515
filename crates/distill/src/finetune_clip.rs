//! Fine-tuning the CLIP student behind `verify` or `classify` on the teacher's answers, with
//! the forgetting guard.
//!
//! Every item is a crop and the texts the `clip` module scores for it: for verify
//! (the `negation` rule) `template(text)` and `negative_template(text)`, for classify
//! `template(option)` per option. The student's distribution is the softmax of those logits,
//! exactly what the module answers from (P(yes), or the options' scores). The task term is
//! `KL(t ‖ student)`, `t` the teacher's distribution (soft labels) or its argmax (hard
//! labels); the guard is `λ · KL(q ‖ student)` on replay items, `q` the frozen pre-step
//! student's distribution, computed once before training. λ = 0 switches it off.

use crate::finetune::{load_trainable, with_guard, VqaLoss};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use image::RgbImage;
use sdvp_core::rng::SplitMix64;
use sdvp_models::clip::{ClipModel, Config};
use sdvp_models::ops::log_softmax_last_dim;
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use sdvp_modules::clip_match::{ClipOptions, VerifyRule};
use sdvp_modules::common::best_index;
use sdvp_train::runner::Trainee;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One crop, the texts the module scores for it (prompts already written) and a target
/// distribution over them (training: the teacher's; replay: the frozen student's;
/// validation: one-hot on the right text).
#[derive(Clone)]
pub struct ClipItem {
    pub pixels: RgbImage,
    pub texts: Vec<String>,
    pub target: Vec<f32>,
}

impl ClipItem {
    /// A verify_property call on `text` with P(yes) `p_yes`, as the `clip` module scores it.
    pub fn verify(pixels: RgbImage, options: &ClipOptions, text: &str, p_yes: f32) -> Self {
        Self {
            pixels,
            texts: vec![
                options.template.replace("{}", text),
                options.negative_template.replace("{}", text),
            ],
            target: vec![p_yes, 1.0 - p_yes],
        }
    }
    /// A best_text_match call over `choices` with target `scores`, as the module scores it.
    pub fn classify(
        pixels: RgbImage,
        options: &ClipOptions,
        choices: &[String],
        scores: Vec<f32>,
    ) -> Self {
        Self {
            pixels,
            texts: choices
                .iter()
                .map(|c| options.template.replace("{}", c))
                .collect(),
            target: scores,
        }
    }
}

/// The module options a distilled CLIP student must be scored under.
pub fn check_options(options: &ClipOptions) -> Result<()> {
    if options.verify != VerifyRule::Negation {
        bail!(
            "the clip student uses the `threshold` verify rule; distillation fine-tunes the \
             `negation` rule (the text against its negative template)"
        );
    }
    Ok(())
}

/// The CLIP student being distilled, its data and its validation sets.
pub struct ClipDistill {
    varmap: VarMap,
    model: ClipModel,
    student_dir: PathBuf,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    task: Vec<ClipItem>,
    replay: Vec<ClipItem>,
    /// Validation: the target task's sub-tasks, then the generic corpus's.
    val_task: Vec<ClipItem>,
    val_generic: Vec<ClipItem>,
    loss: VqaLoss,
    device: Device,
}

impl ClipDistill {
    /// The student of `student_dir` (a Hugging Face CLIP checkpoint); `replay` holds the
    /// guard's items, whose targets are replaced here by the frozen student's distribution.
    pub fn new(
        student_dir: &Path,
        task: Vec<ClipItem>,
        mut replay: Vec<ClipItem>,
        val_task: Vec<ClipItem>,
        val_generic: Vec<ClipItem>,
        loss: VqaLoss,
    ) -> Result<Self> {
        for (set, items) in [("training", &task), ("validation", &val_task)] {
            if let Some((i, it)) = items.iter().enumerate().find(|(_, it)| {
                it.texts.is_empty()
                    || it.texts.len() != it.target.len()
                    || it.target.iter().any(|p| !(0.0..=1.0).contains(p))
            }) {
                bail!(
                    "{set} item {i}: {} texts ({:?}) for target {:?}",
                    it.texts.len(),
                    it.texts,
                    it.target
                );
            }
        }
        let device = Device::Cpu;
        let config = Config::from_file(&student_dir.join("config.json"))?;
        let (varmap, model) =
            load_trainable(student_dir, &device, |vb| ClipModel::new(vb, &config))?;
        // The checkpoint's own tokenizer and processor, as the `clip` module loads them.
        let ck = sdvp_modules::common::Checkpoint::open("clip", student_dir)?;
        let tokenizer = ck.tokenizer(
            config.text_config.max_position_embeddings,
            0,
            Padding::Longest,
        )?;
        let processor =
            ck.image_processor(ImageProcessor::clip(config.vision_config.image_size))?;
        let mut me = Self {
            varmap,
            model,
            student_dir: student_dir.to_path_buf(),
            tokenizer,
            processor,
            task,
            replay: Vec::new(),
            val_task,
            val_generic,
            loss,
            device,
        };
        for chunk in replay.chunks_mut(64) {
            let refs: Vec<&ClipItem> = chunk.iter().collect();
            let logp = me.log_probs(&refs)?;
            for (it, lp) in chunk.iter_mut().zip(logp) {
                it.target = lp.exp()?.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        me.replay = replay;
        Ok(me)
    }

    /// Per item, the student's log-probabilities `[1, n]` over its own texts. Every distinct
    /// text of the batch goes through the text tower once.
    fn log_probs(&self, items: &[&ClipItem]) -> Result<Vec<Tensor>> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        for it in items {
            for t in &it.texts {
                if !index.contains_key(t.as_str()) {
                    index.insert(t.as_str(), texts.len());
                    texts.push(t.as_str());
                }
            }
        }
        let crops: Vec<RgbImage> = items.iter().map(|it| it.pixels.clone()).collect();
        let px = self.processor.to_tensor(&crops, &self.device)?;
        let t = self.tokenizer.encode_batch(&texts, &self.device)?;
        let logits = self
            .model
            .image_text_scores(&px, &t.input_ids, Some(&t.attention_mask))?
            .contiguous()?;
        items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let cols: Vec<u32> = it.texts.iter().map(|t| index[t.as_str()] as u32).collect();
                let n = cols.len();
                let row = logits.narrow(0, i, 1)?;
                let own = row.index_select(&Tensor::from_vec(cols, n, &self.device)?, 1)?;
                Ok(log_softmax_last_dim(&own)?)
            })
            .collect()
    }

    /// Mean `KL(target ‖ student)` over `items`.
    fn kl(&self, items: &[&ClipItem], hard: bool) -> Result<Tensor> {
        let mut total = Tensor::zeros((), DType::F32, &self.device)?;
        for (it, logp) in items.iter().zip(self.log_probs(items)?) {
            let n = it.target.len();
            let target: Vec<f32> = if hard {
                let best = best_index(&it.target);
                (0..n).map(|k| f32::from(u8::from(k == best))).collect()
            } else {
                it.target.clone()
            };
            // Σ t (log t − log p), with 0 log 0 = 0.
            let entropy_part: f32 = target
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| p * p.ln())
                .sum();
            let t = Tensor::from_vec(target, (1, n), &self.device)?;
            let cross = (t * logp)?.sum_all()?;
            total = (total + (cross.neg()? + f64::from(entropy_part))?)?;
        }
        Ok((total / items.len().max(1) as f64)?)
    }

    /// Share of items whose best text under the student is their target's best.
    fn accuracy(&self, items: &[ClipItem]) -> Result<f64> {
        if items.is_empty() {
            return Ok(0.0);
        }
        let mut right = 0usize;
        for chunk in items.chunks(64) {
            let refs: Vec<&ClipItem> = chunk.iter().collect();
            for (it, lp) in chunk.iter().zip(self.log_probs(&refs)?) {
                let lp = lp.flatten_all()?.to_vec1::<f32>()?;
                if best_index(&lp) == best_index(&it.target) {
                    right += 1;
                }
            }
        }
        Ok(right as f64 / items.len() as f64)
    }
}

impl Trainee for ClipDistill {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn train_len(&self) -> usize {
        self.task.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let items: Vec<&ClipItem> = batch.iter().map(|&i| &self.task[i]).collect();
        let task = self.kl(&items, self.loss.hard)?;
        with_guard(task, &self.loss, self.replay.len(), rng, |picks| {
            let picks: Vec<&ClipItem> = picks.iter().map(|&i| &self.replay[i]).collect();
            self.kl(&picks, false)
        })
    }
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        Ok(vec![
            ("task_accuracy".into(), self.accuracy(&self.val_task)?),
            ("generic_accuracy".into(), self.accuracy(&self.val_generic)?),
        ])
    }
    fn export(&self, dir: &Path) -> Result<()> {
        sdvp_train::export::write_weights(&self.varmap, dir)?;
        crate::step::copy_assets(&self.student_dir, dir)
    }
}
