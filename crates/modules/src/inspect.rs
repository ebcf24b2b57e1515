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
    image: Option<&Path>,
    texts: &[String],
) -> anyhow::Result<serde_json::Value> {
    if arch == "llama" {
        return program_lm_run(dir, texts);
    }
    let Some(image) = image else {
        bail!("--arch {arch} needs --image");
    };
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
        other => bail!("unknown --arch `{other}` (blip-vqa, owlvit, clip, dpt, llama)"),
    }
}

/// The program generator on `texts` = `[question, task, style]` (task and style default to
/// gqa-world and step): the condition ids, the greedy ids and program, and the top five
/// logits after the condition.
fn program_lm_run(dir: &Path, texts: &[String]) -> anyhow::Result<serde_json::Value> {
    use sdvp_models::program_lm::{greedy, Decoding, ProgramLm};
    let Some(question) = texts.first() else {
        bail!("llama needs the question as the first --text (then task and style)");
    };
    let task = texts.get(1).map_or("gqa-world", String::as_str);
    let style: sdvp_core::ProgramStyle = texts
        .get(2)
        .map_or("step", String::as_str)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let lm = ProgramLm::load(dir)?;
    let cond = lm
        .condition(task, style, question)
        .map_err(anyhow::Error::msg)?;
    let first = lm
        .next_logits(&cond, &mut Decoding::default())
        .map_err(anyhow::Error::msg)?;
    let mut order: Vec<usize> = (0..first.len()).collect();
    order.sort_by(|&a, &b| first[b].total_cmp(&first[a]).then(a.cmp(&b)));
    let top5: Vec<serde_json::Value> = order
        .iter()
        .take(5)
        .map(|&i| json!({"id": i, "logit": first[i]}))
        .collect();
    let ids = greedy(&lm.model, &cond, lm.specials.eos, 400).map_err(anyhow::Error::msg)?;
    Ok(json!({
        "arch": "llama",
        "condition_ids": cond,
        "token_ids": ids,
        "program": lm.decode(&ids).map_err(anyhow::Error::msg)?,
        "first_step_top5": top5,
    }))
}
