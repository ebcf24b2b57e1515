//! Fine-tuning the BLIP VQA student on the kept teacher labels, with the forgetting guard.
//!
//! The student is scored on the teacher's closed answer vocabulary: for every candidate
//! answer `a`, `s(a)` is the log-probability of its whole token sequence under the
//! student's decoder (BLIP's answer ranking). The task term is the cross-entropy of those
//! sequence probabilities against the teacher's distribution (soft labels) or its top answer
//! (hard labels): it raises the student's generated answer itself, not only a ranking. The
//! guard is `λ · KL(q ‖ softmax(s))` on replay items (the generic corpus and earlier tasks),
//! where `q` is the frozen pre-step student's distribution over the same candidates,
//! computed once before training. λ = 0 switches it off.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use sdvp_core::rng::SplitMix64;
use sdvp_models::blip::vqa::{answer_rows, soft_target_loss};
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use sdvp_models::train::checkpoint::assign_varmap;
use sdvp_train::runner::Trainee;
use std::path::{Path, PathBuf};

/// One question about one crop with a target distribution over the candidate answers.
#[derive(Clone)]
pub struct SoftItem {
    pub pixels: RgbImage,
    pub question: String,
    /// One probability per candidate answer, summing to 1.
    pub target: Vec<f32>,
}

/// One question about one crop with its reference answer (validation).
#[derive(Clone)]
pub struct GoldItem {
    pub pixels: RgbImage,
    pub question: String,
    pub answer: String,
}

/// What the fine-tuning optimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VqaLoss {
    /// Hard labels: the teacher's top answer only.
    pub hard: bool,
    /// Weight of the forgetting guard.
    pub lambda: f64,
    /// Replay items per step (drawn with the step's rng).
    pub replay_batch: usize,
}

/// The student being distilled, its data and its validation sets.
pub struct VqaDistill {
    varmap: VarMap,
    model: BlipForQuestionAnswering,
    student_dir: PathBuf,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    candidates: (Tensor, Tensor),
    task: Vec<SoftItem>,
    replay: Vec<SoftItem>,
    /// Validation: the target task's sub-tasks, then the generic corpus's.
    val_task: Vec<GoldItem>,
    val_generic: Vec<GoldItem>,
    loss: VqaLoss,
    device: Device,
}

/// A checkpoint directory's model, built by `build` on a trainable VarMap that then gets
/// the weights of `dir/model.safetensors`.
pub(crate) fn load_trainable<M>(
    dir: &Path,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<M>,
) -> Result<(VarMap, M)> {
    let varmap = VarMap::new();
    let model = build(VarBuilder::from_varmap(&varmap, DType::F32, device))
        .with_context(|| format!("building the student of {}", dir.display()))?;
    let path = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, device)
        .with_context(|| format!("reading {}", path.display()))?;
    assign_varmap(&varmap, &tensors, &path)?;
    Ok((varmap, model))
}

/// `task + λ · guard(picks)` with both parts logged, `picks` being `loss.replay_batch`
/// indices into `replay_len` replay items drawn with `rng`; the task alone when λ = 0 or
/// there is nothing to replay.
pub(crate) fn with_guard(
    task: Tensor,
    loss: &VqaLoss,
    replay_len: usize,
    rng: &mut SplitMix64,
    guard: impl FnOnce(&[usize]) -> Result<Tensor>,
) -> Result<(Tensor, Vec<(String, f64)>)> {
    let task_value = f64::from(task.to_scalar::<f32>()?);
    if loss.lambda == 0.0 || replay_len == 0 {
        return Ok((task, vec![("loss_task".into(), task_value)]));
    }
    let picks: Vec<usize> = (0..loss.replay_batch.max(1))
        .map(|_| rng.below(replay_len))
        .collect();
    let guard = guard(&picks)?;
    let guard_value = f64::from(guard.to_scalar::<f32>()?);
    let total = task.add(&(guard * loss.lambda)?)?;
    Ok((
        total,
        vec![
            ("loss_task".into(), task_value),
            ("loss_guard".into(), guard_value),
        ],
    ))
}

impl VqaDistill {
    /// The student of `student_dir` (a Hugging Face BLIP VQA checkpoint), distilled on
    /// `task` toward distributions over `answers`; `replay` holds the guard's items with
    /// empty targets, filled here from the frozen student.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        student_dir: &Path,
        answers: &[String],
        task: Vec<SoftItem>,
        mut replay: Vec<SoftItem>,
        val_task: Vec<GoldItem>,
        val_generic: Vec<GoldItem>,
        loss: VqaLoss,
    ) -> Result<Self> {
        if answers.len() < 2 {
            bail!("distillation needs at least two candidate answers");
        }
        if let Some((i, it)) = task
            .iter()
            .enumerate()
            .find(|(_, it)| it.target.len() != answers.len())
        {
            bail!(
                "training item {i} ({:?}) has {} target probabilities for {} candidate answers",
                it.question,
                it.target.len(),
                answers.len()
            );
        }
        let device = Device::Cpu;
        let config = Config::from_file(&student_dir.join("config.json"))?;
        let (varmap, model) = load_trainable(student_dir, &device, |vb| {
            BlipForQuestionAnswering::new(vb, &config)
        })?;
        // The checkpoint's own tokenizer and image processor, as the `blip-vqa` module loads them.
        let ck = sdvp_modules::common::Checkpoint::open("blip-vqa", student_dir)?;
        let cfg = model.config().clone();
        let tokenizer = ck.tokenizer(
            cfg.text_config.max_position_embeddings,
            cfg.text_config.pad_token_id,
            Padding::Longest,
        )?;
        let processor = ck.image_processor(ImageProcessor::blip(cfg.vision_config.image_size))?;
        let candidates = answer_rows(&tokenizer, answers, cfg.text_config.bos_token_id, &device)?;
        let mut me = Self {
            varmap,
            model,
            student_dir: student_dir.to_path_buf(),
            tokenizer,
            processor,
            candidates,
            task,
            replay: Vec::new(),
            val_task,
            val_generic,
            loss,
            device,
        };
        // The frozen student's distributions: the weights are untouched until training.
        for chunk in replay.chunks_mut(64) {
            let refs: Vec<&SoftItem> = chunk.iter().collect();
            let scores = me.scores(&refs)?;
            let probs = sdvp_models::ops::softmax_last_dim(&scores)?.to_vec2::<f32>()?;
            for (it, p) in chunk.iter_mut().zip(probs) {
                it.target = p;
            }
        }
        me.replay = replay;
        Ok(me)
    }

    /// Pixel values and question tokens of `(crop, question)` pairs.
    fn inputs<'a>(
        &self,
        items: impl Iterator<Item = (&'a RgbImage, &'a str)>,
    ) -> Result<(Tensor, sdvp_models::tokenize::Batch)> {
        let (crops, qs): (Vec<RgbImage>, Vec<&str>) = items.map(|(p, q)| (p.clone(), q)).unzip();
        let px = self.processor.to_tensor(&crops, &self.device)?;
        Ok((px, self.tokenizer.encode_batch(&qs, &self.device)?))
    }

    /// Sequence log-probabilities `[b, n]` of every candidate answer.
    fn scores(&self, items: &[&SoftItem]) -> Result<Tensor> {
        let (px, q) = self.inputs(items.iter().map(|it| (&it.pixels, it.question.as_str())))?;
        let emb = self
            .model
            .encode(&px, &q.input_ids, Some(&q.attention_mask))?;
        let (cand, cmask) = &self.candidates;
        Ok(self
            .model
            .rank_answers(&emb, Some(&q.attention_mask), cand, Some(cmask))?)
    }

    fn targets(&self, items: &[&SoftItem], hard: bool) -> Result<Tensor> {
        let n = self.candidates.0.dims()[0];
        let mut flat = Vec::with_capacity(items.len() * n);
        for it in items {
            if hard {
                let best = it
                    .target
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |a, (i, &p)| if p > a.1 { (i, p) } else { a },
                    )
                    .0;
                flat.extend((0..n).map(|i| if i == best { 1.0f32 } else { 0.0 }));
            } else {
                flat.extend_from_slice(&it.target);
            }
        }
        Ok(Tensor::from_vec(flat, (items.len(), n), &self.device)?)
    }

    /// Greedy answers, as the `blip-vqa` module gives them by default.
    pub fn answer(&self, items: &[GoldItem]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(64) {
            let (px, q) = self.inputs(chunk.iter().map(|it| (&it.pixels, it.question.as_str())))?;
            let gen = self
                .model
                .generate_greedy(&px, &q.input_ids, Some(&q.attention_mask), 10)?;
            for ids in gen {
                out.push(self.tokenizer.decode(&ids)?.trim().to_string());
            }
        }
        Ok(out)
    }

    fn accuracy(&self, items: &[GoldItem]) -> Result<f64> {
        if items.is_empty() {
            return Ok(0.0);
        }
        let got = self.answer(items)?;
        let right = items
            .iter()
            .zip(&got)
            .filter(|(it, g)| g.trim().eq_ignore_ascii_case(it.answer.trim()))
            .count();
        Ok(right as f64 / items.len() as f64)
    }
}

impl Trainee for VqaDistill {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn train_len(&self) -> usize {
        self.task.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let items: Vec<&SoftItem> = batch.iter().map(|&i| &self.task[i]).collect();
        let scores = self.scores(&items)?;
        let target = self.targets(&items, self.loss.hard)?;
        let task = ((target * scores)?.sum_all()?.neg()? / items.len() as f64)?;
        with_guard(task, &self.loss, self.replay.len(), rng, |picks| {
            let picks: Vec<&SoftItem> = picks.iter().map(|&i| &self.replay[i]).collect();
            let rs = self.scores(&picks)?;
            let q = self.targets(&picks, false)?;
            Ok(soft_target_loss(&rs, &q, 1.0)?)
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
