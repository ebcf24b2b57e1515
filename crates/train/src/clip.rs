//! CLIP on the world, for `verify` (verify_property) and `classify` (best_text_match).
//!
//! Each step draws object crops (boxes jittered as a detector returns them) and trains
//! three objectives that match how the `clip` module is used:
//! * contrastive: crops against descriptions of a random subset of their attributes
//!   ("a photo of large red star"); every description a crop satisfies is a positive;
//! * classify: softmax over one attribute's values ("a photo of matte/metal/striped"),
//!   as best_text_match asks;
//! * verify: ViperGPT's text `"{property} {name}"` against `"no {property} {name}"`, the
//!   module's default `negation` rule, with a true property half the time.

use crate::export::{clip_style_assets, write_checkpoint};
use crate::runner::Trainee;
use crate::scenes::{crop, jitter_box, SplitScenes};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use sdvp_data::phrase::Phrase;
use sdvp_data::scene::{Attr, Object};
use sdvp_models::clip::{ClipModel, Config};
use sdvp_models::ops::log_softmax_last_dim;
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use sdvp_models::train::{seeded_init, NamedParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ClipSize {
    pub vision_hidden: usize,
    pub vision_layers: usize,
    pub text_hidden: usize,
    pub text_layers: usize,
    pub heads: usize,
    pub projection: usize,
    pub image_size: usize,
    pub patch_size: usize,
}

impl ClipSize {
    pub const STUDENT: ClipSize = ClipSize {
        vision_hidden: 96,
        vision_layers: 4,
        text_hidden: 64,
        text_layers: 2,
        heads: 4,
        projection: 64,
        image_size: 64,
        patch_size: 16,
    };
}

/// `config.json` of a `CLIPModel`.
pub fn config_json(s: &ClipSize, vocab: usize, bos: u32, eos: u32) -> serde_json::Value {
    json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": s.projection,
        "logit_scale_init_value": 2.6592,
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": vocab,
            "hidden_size": s.text_hidden,
            "intermediate_size": 4 * s.text_hidden,
            "num_hidden_layers": s.text_layers,
            "num_attention_heads": s.heads,
            "max_position_embeddings": 16,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": 0,
            "projection_dim": s.projection
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": s.vision_hidden,
            "intermediate_size": 4 * s.vision_hidden,
            "num_hidden_layers": s.vision_layers,
            "num_attention_heads": s.heads,
            "image_size": s.image_size,
            "patch_size": s.patch_size,
            "num_channels": 3,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": s.projection
        }
    })
}

/// Every `(attribute, value)` of the world, in a fixed order.
fn attribute_values() -> Vec<(Attr, &'static str)> {
    Attr::ALL
        .into_iter()
        .flat_map(|a| a.values().iter().map(move |v| (a, *v)))
        .collect()
}

/// A phrase of a random non-empty subset of `o`'s attributes.
fn description(o: &Object, rng: &mut SplitMix64) -> Phrase {
    loop {
        let attrs: Vec<Attr> = Attr::ALL.into_iter().filter(|_| rng.chance(0.5)).collect();
        if !attrs.is_empty() {
            return Phrase::of(o, &attrs);
        }
    }
}

/// ViperGPT's verify text `"{property} {name}"` about `o`: a colour, size or material
/// with the object's shape, true with probability one half.
pub fn verify_text(o: &Object, rng: &mut SplitMix64) -> (String, bool) {
    let attr = [Attr::Color, Attr::Material, Attr::Size][rng.below(3)];
    let truth = rng.chance(0.5);
    let value = if truth {
        o.attr(attr).to_string()
    } else {
        let others: Vec<&&str> = attr
            .values()
            .iter()
            .filter(|v| **v != o.attr(attr))
            .collect();
        others[rng.below(others.len())].to_string()
    };
    (format!("{value} {}", o.shape), truth)
}

pub struct ClipTrainee {
    pub varmap: VarMap,
    pub model: ClipModel,
    config_json: serde_json::Value,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    assets: PathBuf,
    train: SplitScenes,
    /// `(scene, object index)` of every object.
    train_objects: Vec<(usize, usize)>,
    val: SplitScenes,
    val_items: Vec<(usize, usize, BBox, String, bool)>,
    device: Device,
}

fn objects_of(s: &SplitScenes) -> Vec<(usize, usize)> {
    s.scenes
        .iter()
        .enumerate()
        .flat_map(|(si, sc)| (0..sc.objects.len()).map(move |oi| (si, oi)))
        .collect()
}

impl ClipTrainee {
    pub fn new(
        size: ClipSize,
        words: &BTreeSet<String>,
        assets: &Path,
        train: SplitScenes,
        val: SplitScenes,
        seed: u64,
        val_limit: usize,
    ) -> Result<Self> {
        let (config_json, config_path) = clip_style_assets(words, assets, |vocab, bos, eos| {
            config_json(&size, vocab, bos, eos)
        })?;
        let cfg = Config::from_file(&config_path)?;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = ClipModel::new(VarBuilder::from_varmap(&varmap, DType::F32, &device), &cfg)?;
        seeded_init(&NamedParams::from_varmap(&varmap)?, seed, 0.02)?;
        let tokenizer =
            TextTokenizer::from_file(&assets.join("tokenizer.json"), 16, 0, Padding::Longest)?;
        let processor = ImageProcessor::clip(size.image_size);
        let train_objects = objects_of(&train);
        let mut vrng = SplitMix64::derive_named(seed, &["clip-val"], 0);
        let mut val_objects = objects_of(&val);
        vrng.shuffle(&mut val_objects);
        val_objects.truncate(val_limit);
        let val_items = val_objects
            .into_iter()
            .map(|(si, oi)| {
                let sc = &val.scenes[si];
                let o = &sc.objects[oi];
                let b = jitter_box(o.bbox, sc.width, sc.height, 0.15, &mut vrng);
                let (text, truth) = verify_text(o, &mut vrng);
                (si, oi, b, text, truth)
            })
            .collect();
        Ok(Self {
            varmap,
            model,
            config_json,
            tokenizer,
            processor,
            assets: assets.to_path_buf(),
            train,
            train_objects,
            val,
            val_items,
            device,
        })
    }

    fn prompt(t: &str) -> String {
        format!("a photo of {t}")
    }

    /// Image and text embeddings (normalised) and the logit scale.
    fn embed(
        &self,
        crops: &[image::RgbImage],
        texts: &[String],
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let px = self.processor.to_tensor(crops, &self.device)?;
        let t = self.tokenizer.encode_batch(texts, &self.device)?;
        let out = self
            .model
            .forward(&px, &t.input_ids, Some(&t.attention_mask))?;
        // logits_per_image = scale · img · txtᵀ; recover the scale from the first entry.
        Ok((
            out.image_embeds,
            out.text_embeds,
            out.logits_per_image.contiguous()?,
        ))
    }

    /// Per-image log-softmax over the columns `cols` of `logits` `[b, n]`.
    fn group_logp(logits: &Tensor, cols: &[usize]) -> Result<Tensor> {
        let idx = Tensor::from_vec(
            cols.iter().map(|&c| c as u32).collect::<Vec<_>>(),
            cols.len(),
            logits.device(),
        )?;
        Ok(log_softmax_last_dim(&logits.index_select(&idx, 1)?)?)
    }
}

/// Mean cross-entropy of `logp` `[b, n]` against soft targets `target` `[b, n]`.
fn soft_ce(logp: &Tensor, target: Vec<f32>) -> Result<Tensor> {
    let (b, n) = logp.dims2()?;
    let t = Tensor::from_vec(target, (b, n), logp.device())?;
    Ok(((logp * t)?.sum_all()?.neg()? / b as f64)?)
}

impl Trainee for ClipTrainee {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn train_len(&self) -> usize {
        self.train_objects.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let b = batch.len();
        let objs: Vec<(usize, &Object)> = batch
            .iter()
            .map(|&k| {
                let (si, oi) = self.train_objects[k];
                (si, &self.train.scenes[si].objects[oi])
            })
            .collect();
        let crops: Vec<image::RgbImage> = objs
            .iter()
            .map(|(si, o)| {
                let sc = &self.train.scenes[*si];
                crop(
                    &self.train.images[*si],
                    jitter_box(o.bbox, sc.width, sc.height, 0.3, rng),
                )
            })
            .collect();
        let descs: Vec<Phrase> = objs.iter().map(|(_, o)| description(o, rng)).collect();
        let values = attribute_values();
        let verify: Vec<(String, bool)> = objs.iter().map(|(_, o)| verify_text(o, rng)).collect();
        let mut texts: Vec<String> = descs.iter().map(|p| Self::prompt(&p.text())).collect();
        texts.extend(values.iter().map(|(_, v)| Self::prompt(v)));
        for (t, _) in &verify {
            texts.push(Self::prompt(t));
            texts.push(Self::prompt(&format!("no {t}")));
        }
        let (_, _, logits) = self.embed(&crops, &texts)?;
        // Contrastive, both directions, every satisfied description a positive.
        let desc_logits = logits.narrow(1, 0, b)?.contiguous()?;
        let mut m = vec![0f32; b * b];
        for (i, (_, o)) in objs.iter().enumerate() {
            for (j, p) in descs.iter().enumerate() {
                m[i * b + j] = f32::from(u8::from(p.matches(o)));
            }
        }
        let norm_rows = |m: &[f32], transpose: bool| -> Vec<f32> {
            let mut out = vec![0f32; b * b];
            for i in 0..b {
                let row: Vec<f32> = (0..b)
                    .map(|j| {
                        if transpose {
                            m[j * b + i]
                        } else {
                            m[i * b + j]
                        }
                    })
                    .collect();
                let s: f32 = row.iter().sum::<f32>().max(1.0);
                for j in 0..b {
                    out[i * b + j] = row[j] / s;
                }
            }
            out
        };
        let con_i = soft_ce(&log_softmax_last_dim(&desc_logits)?, norm_rows(&m, false))?;
        let con_t = soft_ce(
            &log_softmax_last_dim(&desc_logits.t()?.contiguous()?)?,
            norm_rows(&m, true),
        )?;
        let contrastive = ((con_i + con_t)? / 2.0)?;
        // Classify: one softmax per attribute over its values.
        let mut classify = Tensor::zeros((), DType::F32, &self.device)?;
        for a in Attr::ALL {
            let cols: Vec<usize> = values
                .iter()
                .enumerate()
                .filter(|(_, (x, _))| *x == a)
                .map(|(k, _)| b + k)
                .collect();
            let logp = Self::group_logp(&logits, &cols)?;
            let mut target = vec![0f32; b * cols.len()];
            for (i, (_, o)) in objs.iter().enumerate() {
                if let Some(j) = a.values().iter().position(|v| *v == o.attr(a)) {
                    target[i * cols.len() + j] = 1.0;
                }
            }
            classify = (classify + soft_ce(&logp, target)?)?;
        }
        let classify = (classify / Attr::ALL.len() as f64)?;
        // Verify: the text against its negation, per crop (its own two columns).
        let base = b + values.len();
        let mut pos_idx = Vec::with_capacity(b);
        let mut neg_idx = Vec::with_capacity(b);
        for i in 0..b {
            pos_idx.push((i * (base + 2 * b) + base + 2 * i) as u32);
            neg_idx.push((i * (base + 2 * b) + base + 2 * i + 1) as u32);
        }
        let flat = logits.flatten_all()?;
        let pos = flat.index_select(&Tensor::from_vec(pos_idx, b, &self.device)?, 0)?;
        let neg = flat.index_select(&Tensor::from_vec(neg_idx, b, &self.device)?, 0)?;
        let pair = Tensor::stack(&[&pos, &neg], 1)?;
        let target: Vec<f32> = verify
            .iter()
            .flat_map(|(_, t)| if *t { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let verify_loss = soft_ce(&log_softmax_last_dim(&pair)?, target)?;
        let total = ((&contrastive + &classify)? + &verify_loss)?;
        let parts = vec![
            (
                "contrastive".to_string(),
                f64::from(contrastive.to_scalar::<f32>()?),
            ),
            (
                "classify".to_string(),
                f64::from(classify.to_scalar::<f32>()?),
            ),
            (
                "verify".to_string(),
                f64::from(verify_loss.to_scalar::<f32>()?),
            ),
        ];
        Ok((total, parts))
    }
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        let values = attribute_values();
        let mut correct = [0usize; 4];
        let mut verify_ok = 0usize;
        let n = self.val_items.len().max(1);
        for chunk in self.val_items.chunks(64) {
            let crops: Vec<image::RgbImage> = chunk
                .iter()
                .map(|(si, _, b, _, _)| crop(&self.val.images[*si], *b))
                .collect();
            let mut texts: Vec<String> = values.iter().map(|(_, v)| Self::prompt(v)).collect();
            for (_, _, _, t, _) in chunk {
                texts.push(Self::prompt(t));
                texts.push(Self::prompt(&format!("no {t}")));
            }
            let (_, _, logits) = self.embed(&crops, &texts)?;
            let l: Vec<Vec<f32>> = logits.to_vec2()?;
            for (i, (si, oi, _, _, truth)) in chunk.iter().enumerate() {
                let o = &self.val.scenes[*si].objects[*oi];
                for (ai, a) in Attr::ALL.into_iter().enumerate() {
                    let best = values
                        .iter()
                        .enumerate()
                        .filter(|(_, (x, _))| *x == a)
                        .max_by(|x, y| l[i][x.0].total_cmp(&l[i][y.0]))
                        .map(|(_, (_, v))| *v);
                    if best == Some(o.attr(a)) {
                        correct[ai] += 1;
                    }
                }
                let k = values.len() + 2 * i;
                let yes = l[i][k] > l[i][k + 1];
                if yes == *truth {
                    verify_ok += 1;
                }
            }
        }
        let acc: Vec<f64> = correct.iter().map(|&c| c as f64 / n as f64).collect();
        let zero_shot = acc.iter().sum::<f64>() / 4.0;
        let verify = verify_ok as f64 / n as f64;
        let mut out = vec![
            ("score".to_string(), (zero_shot + verify) / 2.0),
            ("attribute_accuracy".to_string(), zero_shot),
            ("verify_accuracy".to_string(), verify),
        ];
        for (a, v) in Attr::ALL.iter().zip(acc) {
            out.push((format!("acc_{}", a.name()), v));
        }
        Ok(out)
    }
    fn export(&self, dir: &Path) -> Result<()> {
        write_checkpoint(
            dir,
            &self.config_json,
            &self.varmap,
            &self.assets,
            "CLIPImageProcessor",
        )
    }
}
