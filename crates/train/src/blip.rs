//! BLIP VQA on the world: the general student (pretrained on the generic corpus) and the
//! small task-specific VQA teachers (trained on one task's training scenes only).
//!
//! Items are the sub-tasks the programs send to `vqa`: a crop around one object (the box
//! jittered as a detector would return it, redrawn every time the item is drawn) and an
//! attribute question naming the object by a phrase that singles it out ("What color is
//! the large star?"), answered from the scene graph. One item in ten asks about the whole
//! image, as ViperGPT's `simple_query` fallback does.

use crate::export::write_checkpoint;
use crate::runner::Trainee;
use crate::scenes::{crop, jitter_box, SplitScenes};
use crate::vocab::{write_bert_tokenizer, write_json};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use sdvp_data::scene::Attr;
use sdvp_data::tasks::{attr_question, unique_phrase};
use sdvp_models::blip::{BlipForQuestionAnswering, Config};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use sdvp_models::train::{seeded_init, NamedParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Sizes of a BLIP VQA model (both towers share one width, as transformers requires).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct BlipSize {
    pub hidden: usize,
    pub heads: usize,
    pub vision_layers: usize,
    pub text_layers: usize,
    pub image_size: usize,
    pub patch_size: usize,
}

impl BlipSize {
    /// The student: the large general model of the embedded default.
    pub const STUDENT: BlipSize = BlipSize {
        hidden: 128,
        heads: 4,
        vision_layers: 4,
        text_layers: 3,
        image_size: 64,
        patch_size: 16,
    };
    /// A task-specific teacher: a tenth of the student's parameters.
    pub const TEACHER: BlipSize = BlipSize {
        hidden: 48,
        heads: 4,
        vision_layers: 2,
        text_layers: 2,
        image_size: 64,
        patch_size: 16,
    };
}

/// Source pixels a VQA teacher's crops are widened to (the `blip-vqa` module option
/// `min_crop_px`): a tight crop resized to the model's input shows a small and a large
/// object alike, so a teacher trained on tight crops never learns size (val acc_size stayed
/// at the answer prior, 0.55, for all 5000 steps). 48 holds the largest object jittered.
pub const TEACHER_MIN_CROP_PX: u32 = 36;

/// `config.json` of a `BlipForQuestionAnswering` with `size` and a `vocab`-word tokenizer.
pub fn config_json(size: &BlipSize, vocab: usize) -> serde_json::Value {
    json!({
        "architectures": ["BlipForQuestionAnswering"],
        "model_type": "blip",
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "projection_dim": size.hidden,
        "image_text_hidden_size": size.hidden,
        "label_smoothing": 0.0,
        "tie_word_embeddings": true,
        "text_config": {
            "model_type": "blip_text_model",
            "vocab_size": vocab,
            "hidden_size": size.hidden,
            "encoder_hidden_size": size.hidden,
            "intermediate_size": 4 * size.hidden,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.heads,
            "max_position_embeddings": 40,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "bos_token_id": 5,
            "eos_token_id": 3,
            "sep_token_id": 3,
            "pad_token_id": 0,
            "is_decoder": true,
            "use_cache": true,
            "tie_word_embeddings": true
        },
        "vision_config": {
            "model_type": "blip_vision_model",
            "hidden_size": size.hidden,
            "intermediate_size": 4 * size.hidden,
            "num_hidden_layers": size.vision_layers,
            "num_attention_heads": size.heads,
            "image_size": size.image_size,
            "patch_size": size.patch_size,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "attention_dropout": 0.0,
            "initializer_range": 0.02
        }
    })
}

/// One VQA sub-task: scene `scene` of the split, the object's box (jittered when drawn),
/// the question and its answer.
#[derive(Debug, Clone)]
pub struct VqaItem {
    pub scene: usize,
    /// `None`: the whole image.
    pub object_box: Option<BBox>,
    pub question: String,
    pub answer: String,
}

/// Every attribute question of every object of `scenes` that a phrase can ask unambiguously.
pub fn vqa_items(scenes: &SplitScenes, seed: u64) -> Vec<VqaItem> {
    let mut out = Vec::new();
    for (si, scene) in scenes.scenes.iter().enumerate() {
        let mut rng = SplitMix64::derive_named(seed, &["vqa-items", &scene.id], 0);
        for o in &scene.objects {
            for a in Attr::ALL {
                let Some(p) = unique_phrase(o, &scene.objects, Some(a), &mut rng) else {
                    continue;
                };
                let whole = rng.chance(0.1);
                out.push(VqaItem {
                    scene: si,
                    object_box: (!whole).then_some(o.bbox),
                    question: attr_question(a, &p.text()),
                    answer: o.attr(a).to_string(),
                });
            }
        }
    }
    out
}

/// Validation items with their boxes jittered once (from the `stream` of `seed`), shuffled,
/// the first `limit` kept.
fn val_regions(
    val: &SplitScenes,
    items: Vec<VqaItem>,
    seed: u64,
    stream: &str,
    limit: usize,
) -> Vec<(VqaItem, BBox)> {
    let mut rng = SplitMix64::derive_named(seed, &[stream], 0);
    let mut out: Vec<(VqaItem, BBox)> = items
        .into_iter()
        .map(|it| {
            let s = &val.scenes[it.scene];
            let b = it.object_box.map_or(s.full_box(), |b| {
                jitter_box(b, s.width, s.height, 0.15, &mut rng)
            });
            (it, b)
        })
        .collect();
    rng.shuffle(&mut out);
    out.truncate(limit);
    out
}

/// The kind of a question for the per-kind scores: the attribute a "What …" question asks
/// for, else `yes_no_or_choice`.
fn question_kind(question: &str) -> &str {
    if question.starts_with("What ") {
        question.split_whitespace().nth(1).unwrap_or("?")
    } else {
        "yes_no_or_choice"
    }
}

/// A BLIP VQA model with its training and validation items.
pub struct BlipTrainee {
    pub varmap: VarMap,
    pub model: BlipForQuestionAnswering,
    pub config_json: serde_json::Value,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    assets: PathBuf,
    train: SplitScenes,
    train_items: Vec<VqaItem>,
    val: SplitScenes,
    val_items: Vec<(VqaItem, BBox)>,
    /// Crops are widened to this many source pixels (`None`: tight crops).
    min_crop_px: Option<u32>,
    device: Device,
}

impl BlipTrainee {
    /// A freshly initialised model of `size`; the tokenizer over `words` is written to
    /// `assets` (and copied into every export).
    pub fn new(
        size: BlipSize,
        words: &BTreeSet<String>,
        assets: &Path,
        train: SplitScenes,
        val: SplitScenes,
        seed: u64,
        val_limit: usize,
    ) -> Result<Self> {
        std::fs::create_dir_all(assets)
            .with_context(|| format!("creating {}", assets.display()))?;
        let vocab = write_bert_tokenizer(words, assets)?;
        let config_json = config_json(&size, vocab);
        let config: Config = serde_json::from_value(config_json.clone())?;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = BlipForQuestionAnswering::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &device),
            &config,
        )?;
        seeded_init(&NamedParams::from_varmap(&varmap)?, seed, 0.02)?;
        let tokenizer =
            TextTokenizer::from_file(&assets.join("tokenizer.json"), 40, 0, Padding::Longest)?;
        let processor = ImageProcessor::blip(size.image_size);
        let train_items = vqa_items(&train, seed);
        let val_items = val_regions(&val, vqa_items(&val, seed), seed, "vqa-val", val_limit);
        Ok(Self {
            varmap,
            model,
            config_json,
            tokenizer,
            processor,
            assets: assets.to_path_buf(),
            train,
            train_items,
            val,
            val_items,
            min_crop_px: None,
            device,
        })
    }

    /// Trains and validates on crops widened to `px` source pixels, as the `blip-vqa`
    /// module's `min_crop_px` option serves them.
    pub fn with_min_crop(mut self, px: u32) -> Self {
        self.min_crop_px = Some(px);
        self
    }

    /// Adds items beyond the attribute questions (a teacher's task sub-tasks): `train` to
    /// the training items, the first `val_limit` of `val` (boxes jittered once, seeded) to
    /// the validation items.
    pub fn add_items(
        &mut self,
        train: Vec<VqaItem>,
        val: Vec<VqaItem>,
        val_limit: usize,
        seed: u64,
    ) {
        self.train_items.extend(train);
        let extra = val_regions(&self.val, val, seed, "vqa-val-extra", val_limit);
        self.val_items.extend(extra);
    }

    /// Validation accuracy of answering every question with its kind's most frequent
    /// training answer: what a model that ignores the image reaches.
    pub fn answer_prior(&self) -> f64 {
        let mut counts: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, usize>> =
            Default::default();
        for it in &self.train_items {
            *counts
                .entry(question_kind(&it.question))
                .or_default()
                .entry(it.answer.as_str())
                .or_default() += 1;
        }
        let majority = |kind: &str| {
            counts.get(kind).and_then(|c| {
                c.iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map(|(a, _)| *a)
            })
        };
        let right = self
            .val_items
            .iter()
            .filter(|(it, _)| majority(question_kind(&it.question)) == Some(it.answer.as_str()))
            .count();
        right as f64 / self.val_items.len().max(1) as f64
    }

    fn pixels(&self, scenes: &SplitScenes, regions: &[(usize, BBox)]) -> Result<Tensor> {
        let crops: Vec<image::RgbImage> = regions
            .iter()
            .map(|(si, b)| {
                let img = &scenes.images[*si];
                let b = match self.min_crop_px {
                    Some(px) => b.widen_to(
                        px as f32,
                        &BBox::new(0.0, 0.0, img.width() as f32, img.height() as f32),
                    ),
                    None => *b,
                };
                crop(img, b)
            })
            .collect();
        Ok(self.processor.to_tensor(&crops, &self.device)?)
    }

    fn answer_ids(&self, answers: &[&str]) -> Result<(Tensor, Tensor)> {
        let bos = self.model.config().text_config.bos_token_id;
        sdvp_models::blip::vqa::answer_rows(&self.tokenizer, answers, bos, &self.device)
    }

    /// Greedy answers of `(scene, region, question)` triples of `scenes`.
    pub fn answer(
        &self,
        scenes: &SplitScenes,
        items: &[(usize, BBox, String)],
    ) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(64) {
            let regions: Vec<(usize, BBox)> = chunk.iter().map(|(s, b, _)| (*s, *b)).collect();
            let px = self.pixels(scenes, &regions)?;
            let qs: Vec<&str> = chunk.iter().map(|(_, _, q)| q.as_str()).collect();
            let q = self.tokenizer.encode_batch(&qs, &self.device)?;
            let gen = self
                .model
                .generate_greedy(&px, &q.input_ids, Some(&q.attention_mask), 5)?;
            for ids in gen {
                let body: Vec<u32> = ids.into_iter().filter(|&t| t > 5).collect();
                out.push(self.tokenizer.decode(&body)?.trim().to_string());
            }
        }
        Ok(out)
    }
}

impl Trainee for BlipTrainee {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn train_len(&self) -> usize {
        self.train_items.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let items: Vec<&VqaItem> = batch.iter().map(|&i| &self.train_items[i]).collect();
        let regions: Vec<(usize, BBox)> = items
            .iter()
            .map(|it| {
                let s = &self.train.scenes[it.scene];
                let b = it
                    .object_box
                    .map_or(s.full_box(), |b| jitter_box(b, s.width, s.height, 0.3, rng));
                (it.scene, b)
            })
            .collect();
        let px = self.pixels(&self.train, &regions)?;
        let qs: Vec<&str> = items.iter().map(|it| it.question.as_str()).collect();
        let q = self.tokenizer.encode_batch(&qs, &self.device)?;
        let answers: Vec<&str> = items.iter().map(|it| it.answer.as_str()).collect();
        let (a, am) = self.answer_ids(&answers)?;
        let loss = self.model.vqa_loss(
            &px,
            &q.input_ids,
            Some(&q.attention_mask),
            &a,
            Some(&am),
            0.1,
        )?;
        Ok((loss, Vec::new()))
    }
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        let triples: Vec<(usize, BBox, String)> = self
            .val_items
            .iter()
            .map(|(it, b)| (it.scene, *b, it.question.clone()))
            .collect();
        let got = self.answer(&self.val, &triples)?;
        let mut by_attr: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        let mut correct = 0usize;
        for ((it, _), g) in self.val_items.iter().zip(&got) {
            let e = by_attr.entry(question_kind(&it.question)).or_default();
            e.1 += 1;
            if *g == it.answer {
                correct += 1;
                e.0 += 1;
            }
        }
        let n = self.val_items.len().max(1);
        let mut out = vec![("accuracy".to_string(), correct as f64 / n as f64)];
        for (k, (c, t)) in by_attr {
            out.push((format!("acc_{k}"), c as f64 / t.max(1) as f64));
        }
        out.push(("prior".to_string(), self.answer_prior()));
        Ok(out)
    }
    fn export(&self, dir: &Path) -> Result<()> {
        write_checkpoint(
            dir,
            &self.config_json,
            &self.varmap,
            &self.assets,
            "BlipImageProcessor",
        )?;
        write_json(
            &json!({"_from_model_config": true, "bos_token_id": 5, "eos_token_id": 3,
                    "pad_token_id": 0, "max_length": 10}),
            &dir.join("generation_config.json"),
        )
    }
}
