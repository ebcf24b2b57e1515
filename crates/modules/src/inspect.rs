//! `sdvp model run`: one checkpoint on one image, raw outputs as JSON, for checking a
//! checkpoint against transformers (tools/check_model_run.py) and for looking at a model.

use crate::blip_vqa::{BlipVqa, VqaOptions};
use crate::clip_match::{ClipMatch, ClipOptions};
use crate::common::Checkpoint;
use crate::images::ImageCache;
use crate::owlvit_detect::{DetectOptions, OwlVitDetect};
use anyhow::{bail, Context};
use sdvp_data::ImageStore;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// How many patches `owlvit` reports per query.
pub const OWLVIT_TOP: usize = 10;

fn generation_max_length(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("generation_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["max_length"].as_u64())
        .map_or(20, |n| n.clamp(2, 512) as usize)
}

/// Runs `arch` from `dir` on the image file `image` with `texts`; see the CLI for the
/// output contract of each architecture.
pub fn model_run(
    arch: &str,
    dir: &Path,
    image: &Path,
    texts: &[String],
) -> anyhow::Result<serde_json::Value> {
    let img = image::open(image)
        .with_context(|| format!("cannot read image {}", image.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let cache = Arc::new(ImageCache::new(ImageStore::new(Vec::new()), 1));
    match arch {
        "blip-vqa" => {
            let Some(question) = texts.first() else {
                bail!("blip-vqa needs the question as the first --text");
            };
            let options = VqaOptions {
                max_length: generation_max_length(dir).min(64),
                ..Default::default()
            };
            let m = BlipVqa::load(Checkpoint::open("blip-vqa", dir)?, options, cache)?;
            let device = candle_core::Device::Cpu;
            let pixels = m
                .processor()
                .to_tensor(std::slice::from_ref(&img), &device)?;
            let q = m.tokenizer().encode_batch(&[question.as_str()], &device)?;
            let ids = m.model().generate_greedy(
                &pixels,
                &q.input_ids,
                Some(&q.attention_mask),
                generation_max_length(dir),
            )?;
            let ids = ids.into_iter().next().unwrap_or_default();
            let logits = m
                .model()
                .first_step_logits(&pixels, &q.input_ids, Some(&q.attention_mask))?
                .squeeze(0)?;
            let order = logits.arg_sort_last_dim(false)?.to_vec1::<u32>()?;
            let values = logits.to_vec1::<f32>()?;
            let top5: Vec<serde_json::Value> = order
                .iter()
                .take(5)
                .map(|&i| json!({"id": i, "logit": values[i as usize]}))
                .collect();
            Ok(json!({
                "arch": arch,
                "token_ids": ids,
                "answer": m.tokenizer().decode(&ids)?.trim(),
                "first_step_top5": top5,
            }))
        }
        "clip" => {
            if texts.is_empty() {
                bail!("clip needs at least one --text");
            }
            let m = ClipMatch::load(
                Checkpoint::open("clip", dir)?,
                ClipOptions::default(),
                cache,
            )?;
            let logits = m.logits(std::slice::from_ref(&img), texts)?;
            Ok(json!({
                "arch": arch,
                "logits_per_image": logits.into_iter().next().unwrap_or_default(),
            }))
        }
        "owlvit" => {
            if texts.is_empty() {
                bail!("owlvit needs at least one --text (a query)");
            }
            let m = OwlVitDetect::load(
                Checkpoint::open("owlvit", dir)?,
                DetectOptions::default(),
                cache,
            )?;
            let out = m.query_outputs(std::slice::from_ref(&img), &[texts.to_vec()])?;
            let per = out.into_iter().next().unwrap_or_default();
            let detections: Vec<serde_json::Value> = texts
                .iter()
                .zip(per)
                .map(|(t, q)| {
                    let scores = q.scores();
                    let mut idx: Vec<usize> = (0..scores.len()).collect();
                    idx.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
                    idx.truncate(OWLVIT_TOP);
                    let boxes: Vec<[f32; 4]> = idx
                        .iter()
                        .map(|&i| {
                            let c = sdvp_models::owlvit::center_to_corners(q.boxes[i]);
                            [
                                c[0] * w as f32,
                                c[1] * h as f32,
                                c[2] * w as f32,
                                c[3] * h as f32,
                            ]
                        })
                        .collect();
                    json!({
                        "query": t,
                        "scores": idx.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
                        "boxes": boxes,
                    })
                })
                .collect();
            Ok(json!({"arch": arch, "detections": detections}))
        }
        "dpt" => {
            let m = crate::dpt_depth::DptDepth::load(
                Checkpoint::open("dpt", dir)?,
                Default::default(),
                cache,
            )?;
            let device = candle_core::Device::Cpu;
            let pixels = m
                .processor()
                .to_tensor(std::slice::from_ref(&img), &device)?;
            let depth = m.model().forward(&pixels)?;
            let dims = depth.dims().to_vec();
            let flat = depth.flatten_all()?.to_vec1::<f32>()?;
            let n = flat.len().max(1) as f64;
            let mean = flat.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let min = flat.iter().copied().fold(f32::INFINITY, f32::min);
            let max = flat.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            Ok(json!({
                "arch": arch,
                "depth": {"shape": dims, "mean": mean, "min": min, "max": max},
            }))
        }
        other => bail!("unknown --arch `{other}` (blip-vqa, owlvit, clip, dpt)"),
    }
}
