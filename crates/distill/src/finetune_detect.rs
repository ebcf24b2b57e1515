//! Fine-tuning the OWL-ViT student behind `detect` on the teacher's boxes, with the
//! forgetting guard.
//!
//! The task term is the detector's own training loss (greedy DETR matching, sigmoid focal
//! classification, L1 and GIoU on the boxes) with the teacher's boxes as targets; a query
//! the teacher found nothing for is a negative everywhere. The guard keeps the frozen
//! pre-step student's outputs on replay regions (the generic corpus and earlier detect
//! steps): per (patch, query) the Bernoulli KL from the frozen score to the student's, plus
//! the L1 distance of each patch's box from the frozen one weighted by how sure the frozen
//! model was that the patch shows a queried object. Both are zero at the start of the step;
//! λ = 0 switches the guard off.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use image::RgbImage;
use sdvp_core::detection::{average_precision, best_f1_threshold};
use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use sdvp_models::owlvit::{
    detection_loss, query_inputs, Config, DetectionOutput, LossWeights, OwlVit, Target,
};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use sdvp_models::train::ParamFilter;
use sdvp_train::detect::score_queries;
use sdvp_train::runner::Trainee;
use std::path::{Path, PathBuf};

/// Queries asked of one region per item (items with more phrases are split).
pub const QUERIES: usize = 4;

/// A region as `detect` sees it and the object phrases asked of it, each with its target
/// boxes in source-image coordinates.
#[derive(Clone, Debug)]
pub struct RegionItem {
    pub pixels: RgbImage,
    /// Top-left corner of the region in the source image.
    pub origin: (f32, f32),
    pub phrases: Vec<String>,
    pub targets: Vec<Vec<BBox>>,
}

impl RegionItem {
    fn size(&self) -> (f32, f32) {
        (self.pixels.width() as f32, self.pixels.height() as f32)
    }
    /// A source-image box as normalised `(cx, cy, w, h)` of this region.
    fn normalised(&self, b: &BBox) -> [f32; 4] {
        let (w, h) = self.size();
        let (w, h) = (w.max(1.0), h.max(1.0));
        let (cx, cy) = b.center();
        [
            (cx - self.origin.0) / w,
            (cy - self.origin.1) / h,
            b.width() / w,
            b.height() / h,
        ]
    }
}

/// Splits items so none asks more than [`QUERIES`] phrases.
pub fn chunk_queries(items: Vec<RegionItem>) -> Vec<RegionItem> {
    let mut out = Vec::new();
    for it in items {
        if it.phrases.len() <= QUERIES {
            out.push(it);
            continue;
        }
        for (ps, ts) in it.phrases.chunks(QUERIES).zip(it.targets.chunks(QUERIES)) {
            out.push(RegionItem {
                pixels: it.pixels.clone(),
                origin: it.origin,
                phrases: ps.to_vec(),
                targets: ts.to_vec(),
            });
        }
    }
    out
}

/// A replay region with the frozen student's outputs on it.
struct Frozen {
    item: RegionItem,
    /// Sigmoid scores `[patches, QUERIES]` (0 for padded queries).
    probs: Vec<f32>,
    /// Boxes `[patches, 4]`.
    boxes: Vec<f32>,
}

/// Settings of the detect fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectLoss {
    /// Weight of the forgetting guard.
    pub lambda: f64,
    /// Replay regions per step.
    pub replay_batch: usize,
}

/// The OWL-ViT student being distilled, its data and its validation sets.
pub struct DetectDistill {
    varmap: VarMap,
    model: OwlVit,
    student_dir: PathBuf,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    task: Vec<RegionItem>,
    replay: Vec<Frozen>,
    val_task: Vec<RegionItem>,
    val_generic: Vec<RegionItem>,
    loss: DetectLoss,
    device: Device,
}

/// AP@0.5 and the best-F1 threshold of scored detections.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub scored: Vec<(f32, bool)>,
    pub n_gt: usize,
}

impl Scored {
    pub fn ap50(&mut self) -> f64 {
        average_precision(&mut self.scored, self.n_gt)
    }
    pub fn best_f1(&mut self) -> (f32, f64) {
        best_f1_threshold(&mut self.scored, self.n_gt)
    }
}

impl DetectDistill {
    /// The student of `student_dir` (a Hugging Face OWL-ViT checkpoint) fine-tuned on `task`
    /// regions; `replay` regions' targets are ignored: the frozen student's outputs on them
    /// are computed here, before any update.
    pub fn new(
        student_dir: &Path,
        task: Vec<RegionItem>,
        replay: Vec<RegionItem>,
        val_task: Vec<RegionItem>,
        val_generic: Vec<RegionItem>,
        loss: DetectLoss,
    ) -> Result<Self> {
        for (what, items) in [("training", &task), ("validation", &val_task)] {
            if let Some((i, it)) = items.iter().enumerate().find(|(_, it)| {
                it.phrases.is_empty()
                    || it.phrases.len() > QUERIES
                    || it.targets.len() != it.phrases.len()
            }) {
                bail!(
                    "{what} region {i} asks {} phrases with {} target lists (1 to {QUERIES} \
                     phrases, one target list each)",
                    it.phrases.len(),
                    it.targets.len()
                );
            }
        }
        let device = Device::Cpu;
        let config_path = student_dir.join("config.json");
        let cfg = Config::from_file(&config_path)?;
        let (varmap, model) =
            crate::finetune::load_trainable(student_dir, &device, |vb| OwlVit::new(vb, &cfg))?;
        let ck = sdvp_modules::common::Checkpoint::open("owlvit", student_dir)?;
        let tokenizer = ck.tokenizer(
            cfg.text_config.max_position_embeddings,
            0,
            Padding::MaxLength,
        )?;
        let processor = ck.image_processor(ImageProcessor::owlvit(cfg.vision_config.image_size))?;
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
        let replay = chunk_queries(replay);
        let mut frozen = Vec::with_capacity(replay.len());
        for chunk in replay.chunks(32) {
            let refs: Vec<&RegionItem> = chunk.iter().collect();
            let out = me.forward(&refs)?;
            let probs = sdvp_models::ops::sigmoid(&out.logits)?.to_vec3::<f32>()?;
            let boxes = out.pred_boxes.to_vec3::<f32>()?;
            for ((it, p), b) in chunk.iter().zip(probs).zip(boxes) {
                let probs = p
                    .iter()
                    .flat_map(|row| {
                        row.iter()
                            .enumerate()
                            .map(|(q, &v)| if q < it.phrases.len() { v } else { 0.0 })
                    })
                    .collect();
                frozen.push(Frozen {
                    item: it.clone(),
                    probs,
                    boxes: b.concat(),
                });
            }
        }
        me.replay = frozen;
        Ok(me)
    }

    /// The model on `items`, each padded to [`QUERIES`] queries (padding masked).
    fn forward(&self, items: &[&RegionItem]) -> Result<DetectionOutput> {
        let crops: Vec<RgbImage> = items.iter().map(|it| it.pixels.clone()).collect();
        let px = self.processor.to_tensor(&crops, &self.device)?;
        let lists: Vec<&[String]> = items.iter().map(|it| it.phrases.as_slice()).collect();
        let (ids, mask) = query_inputs(&self.tokenizer, &lists, QUERIES, &self.device)?;
        Ok(self.model.forward(&px, &ids, Some(&mask))?)
    }

    /// Detections of every (item, phrase) scored against its targets at IoU 0.5 (score
    /// above 0.01, at most 10 per query, NMS as the module does).
    pub fn score(&self, items: &[RegionItem]) -> Result<Scored> {
        let mut s = Scored::default();
        for chunk in items.chunks(32) {
            let refs: Vec<&RegionItem> = chunk.iter().collect();
            let out = self.forward(&refs)?;
            for (i, it) in chunk.iter().enumerate() {
                let size = (it.pixels.height() as usize, it.pixels.width() as usize);
                s.n_gt += score_queries(
                    &out.logits.get(i)?,
                    &out.pred_boxes.get(i)?,
                    size,
                    it.origin,
                    &it.targets,
                    &mut s.scored,
                )?;
            }
        }
        Ok(s)
    }

    /// The guard on `picks`: Bernoulli KL of the scores plus the confidence-weighted box L1.
    fn guard(&self, picks: &[&Frozen]) -> Result<Tensor> {
        let items: Vec<&RegionItem> = picks.iter().map(|f| &f.item).collect();
        let out = self.forward(&items)?;
        let (b, p, q) = out.logits.dims3()?;
        let mut probs = Vec::with_capacity(b * p * q);
        let mut valid = Vec::with_capacity(b * p * q);
        let mut boxes = Vec::with_capacity(b * p * 4);
        let mut weight = Vec::with_capacity(b * p);
        for f in picks {
            probs.extend_from_slice(&f.probs);
            for _ in 0..p {
                valid.extend((0..q).map(|j| f32::from(u8::from(j < f.item.phrases.len()))));
            }
            boxes.extend_from_slice(&f.boxes);
            weight.extend(
                f.probs
                    .chunks(q)
                    .map(|row| row.iter().copied().fold(0.0f32, f32::max)),
            );
        }
        let dev = &self.device;
        let t = Tensor::from_vec(probs, (b, p, q), dev)?;
        let valid = Tensor::from_vec(valid, (b, p, q), dev)?;
        let n_valid = valid.sum_all()?.to_scalar::<f32>()?.max(1.0);
        // Padded queries hold f32::MIN: zero them before any arithmetic.
        let x = valid
            .ge(0.5)?
            .where_cond(&out.logits, &out.logits.zeros_like()?)?;
        // BCE with soft targets minus the targets' entropy: the KL, 0 at the frozen model.
        let bce = ((x.relu()? - (&x * &t)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        let eps = 1e-6;
        let tc = t.clamp(eps, 1.0 - eps)?;
        let entropy = ((&tc * tc.log()?)? + ((1.0 - &tc)? * (1.0 - &tc)?.log()?)?)?.neg()?;
        let kl = ((bce - entropy)? * &valid)?
            .sum_all()?
            .affine(1.0 / f64::from(n_valid), 0.0)?;
        let w = Tensor::from_vec(weight, (b, p, 1), dev)?;
        let total_w = w.sum_all()?.to_scalar::<f32>()?.max(1e-6);
        let fb = Tensor::from_vec(boxes, (b, p, 4), dev)?;
        let l1 = (out.pred_boxes - fb)?
            .abs()?
            .broadcast_mul(&w)?
            .sum_all()?
            .affine(1.0 / f64::from(total_w), 0.0)?;
        Ok((kl + l1)?)
    }
}

impl Trainee for DetectDistill {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn frozen(&self) -> ParamFilter {
        // Not on the detection path (as in the detector's own training).
        ParamFilter::new(&["owlvit.logit_scale", "owlvit.visual_projection.*"]).unwrap_or_default()
    }
    fn train_len(&self) -> usize {
        self.task.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let items: Vec<&RegionItem> = batch.iter().map(|&i| &self.task[i]).collect();
        let out = self.forward(&items)?;
        let targets: Vec<Vec<Target>> = items
            .iter()
            .map(|it| {
                it.targets
                    .iter()
                    .enumerate()
                    .flat_map(|(q, bs)| {
                        bs.iter().map(move |b| Target {
                            query: q,
                            bbox: it.normalised(b),
                        })
                    })
                    .collect()
            })
            .collect();
        let l = detection_loss(&out, &targets, &LossWeights::default())?;
        let task_value = f64::from(l.total.to_scalar::<f32>()?);
        let mut parts = vec![("loss_task".to_string(), task_value)];
        if self.loss.lambda == 0.0 || self.replay.is_empty() {
            return Ok((l.total, parts));
        }
        let picks: Vec<&Frozen> = (0..self.loss.replay_batch.max(1))
            .map(|_| &self.replay[rng.below(self.replay.len())])
            .collect();
        let guard = self.guard(&picks)?;
        parts.push(("loss_guard".into(), f64::from(guard.to_scalar::<f32>()?)));
        Ok((l.total.add(&(guard * self.loss.lambda)?)?, parts))
    }
    /// Task AP@0.5 (the selection score), generic AP@0.5, and the best-F1 score threshold
    /// over both sets pooled (the module set's operating point).
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        let mut task = self.score(&self.val_task)?;
        let mut generic = self.score(&self.val_generic)?;
        let mut pooled = Scored {
            scored: task.scored.iter().chain(&generic.scored).copied().collect(),
            n_gt: task.n_gt + generic.n_gt,
        };
        let (threshold, f1) = pooled.best_f1();
        Ok(vec![
            ("task_ap50".into(), task.ap50()),
            ("generic_ap50".into(), generic.ap50()),
            ("threshold".into(), f64::from(threshold)),
            ("f1".into(), f1),
        ])
    }
    fn export(&self, dir: &Path) -> Result<()> {
        sdvp_train::export::write_weights(&self.varmap, dir)?;
        crate::step::copy_assets(&self.student_dir, dir)
    }
}
