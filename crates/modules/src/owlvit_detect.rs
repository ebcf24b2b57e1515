//! `owlvit` → `detect`: OWL-ViT (`OwlViTForObjectDetection`) behind the Backend trait.
//!
//! A batch runs each distinct crop through the image tower once, with every object name
//! asked of that crop as one of its text queries (padded queries are masked), so batching
//! never changes a result. Post-processing is the reference one ([`post_process`]:
//! sigmoid score, `score > threshold`, greedy NMS), then boxes go from the crop's pixels
//! back into **source-image** coordinates, best first.

use crate::common::{fail_all, Answers, BatchCrops, Checkpoint};
use crate::images::ImageCache;
use candle_core::{DType, Device, Tensor};
use sdvp_core::{BBox, Backend, ModuleKind, Request, Response};
use sdvp_models::owlvit::{post_process, query_inputs, Config, OwlVit, DEFAULT_NMS_IOU};
use sdvp_models::preprocess::ImageProcessor;
use sdvp_models::tokenize::{Padding, TextTokenizer};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// `options` of an `owlvit` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectOptions {
    /// Keep boxes with sigmoid score above this (VisProg's LOC uses 0.1).
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// IoU above which a lower box is suppressed (1.0 disables NMS).
    #[serde(default = "default_nms")]
    pub nms_iou: f32,
    /// At most this many boxes per call.
    #[serde(default = "default_max")]
    pub max_detections: usize,
    /// The text query; `{}` is the object name.
    #[serde(default = "default_template")]
    pub query_template: String,
}

fn default_threshold() -> f32 {
    0.1
}
fn default_nms() -> f32 {
    DEFAULT_NMS_IOU
}
fn default_max() -> usize {
    10
}
fn default_template() -> String {
    "{}".into()
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            nms_iou: default_nms(),
            max_detections: default_max(),
            query_template: default_template(),
        }
    }
}

impl DetectOptions {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            anyhow::bail!("threshold must be in [0, 1], got {}", self.threshold);
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            anyhow::bail!("nms_iou must be in [0, 1], got {}", self.nms_iou);
        }
        if !(1..=1000).contains(&self.max_detections) {
            anyhow::bail!(
                "max_detections must be in 1..=1000, got {}",
                self.max_detections
            );
        }
        Ok(())
    }
}

pub struct OwlVitDetect {
    model: OwlVit,
    tokenizer: TextTokenizer,
    processor: ImageProcessor,
    images: Arc<ImageCache>,
    options: DetectOptions,
    checkpoint: Checkpoint,
    device: Device,
}

/// Raw outputs for one query on one image: per-patch logits and `(cx, cy, w, h)` boxes
/// normalised to the processed image.
pub struct QueryOutput {
    pub logits: Vec<f32>,
    pub boxes: Vec<[f32; 4]>,
}

impl QueryOutput {
    /// Sigmoid score per patch.
    pub fn scores(&self) -> Vec<f32> {
        self.logits
            .iter()
            .map(|l| 1.0 / (1.0 + (-l).exp()))
            .collect()
    }
}

impl OwlVitDetect {
    pub fn load(
        checkpoint: Checkpoint,
        options: DetectOptions,
        images: Arc<ImageCache>,
    ) -> anyhow::Result<Self> {
        options.check()?;
        let device = Device::Cpu;
        let cfg = Config::from_file(&checkpoint.file("config.json"))?;
        let model = OwlVit::load(&checkpoint.dir, DType::F32, &device)?;
        let tokenizer = checkpoint.tokenizer(
            cfg.text_config.max_position_embeddings,
            0,
            Padding::MaxLength,
        )?;
        let processor =
            checkpoint.image_processor(ImageProcessor::owlvit(cfg.vision_config.image_size))?;
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

    /// Raw per-patch results of `queries[i]` (texts, each image's list) on `images[i]`.
    pub fn query_outputs(
        &self,
        images: &[image::RgbImage],
        queries: &[Vec<String>],
    ) -> anyhow::Result<Vec<Vec<QueryOutput>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let q = queries.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let lists: Vec<&[String]> = queries.iter().map(Vec::as_slice).collect();
        let (ids, mask) = query_inputs(&self.tokenizer, &lists, q, &self.device)?;
        let pixels = self.processor.to_tensor(images, &self.device)?;
        let out = self.model.forward(&pixels, &ids, Some(&mask))?;
        let logits: Vec<Vec<Vec<f32>>> = out.logits.to_vec3()?;
        let boxes: Vec<Vec<Vec<f32>>> = out.pred_boxes.to_vec3()?;
        Ok(queries
            .iter()
            .enumerate()
            .map(|(i, list)| {
                let b: Vec<[f32; 4]> = boxes[i].iter().map(|b| [b[0], b[1], b[2], b[3]]).collect();
                (0..list.len())
                    .map(|j| QueryOutput {
                        logits: logits[i].iter().map(|row| row[j]).collect(),
                        boxes: b.clone(),
                    })
                    .collect()
            })
            .collect())
    }

    /// `crops`: (pixels, object, key), the key naming the region so equal crops share a pass.
    fn detect(&self, crops: &[(&crate::images::Crop, String, String)]) -> anyhow::Result<Answers> {
        // One image-tower pass per distinct crop; its objects become its queries.
        let mut by_key: HashMap<&str, usize> = HashMap::new();
        let mut images: Vec<image::RgbImage> = Vec::new();
        let mut queries: Vec<Vec<String>> = Vec::new();
        let mut slot = Vec::with_capacity(crops.len());
        for (crop, object, key) in crops {
            let u = *by_key.entry(key.as_str()).or_insert_with(|| {
                images.push(crop.pixels.clone());
                queries.push(Vec::new());
                images.len() - 1
            });
            let text = self.options.query_template.replace("{}", object);
            queries[u].push(text);
            slot.push((u, queries[u].len() - 1));
        }
        let outputs = self.query_outputs(&images, &queries)?;
        let mut out = Vec::with_capacity(crops.len());
        for ((crop, _, _), (u, j)) in crops.iter().zip(slot) {
            let qo = &outputs[u][j];
            let p = qo.logits.len();
            let logits = Tensor::from_vec(qo.logits.clone(), (p, 1), &self.device)?;
            let boxes = Tensor::from_vec(qo.boxes.concat(), (p, 4), &self.device)?;
            let (w, h) = (crop.pixels.width() as usize, crop.pixels.height() as usize);
            let mut dets = post_process(
                &logits,
                &boxes,
                (h, w),
                self.options.threshold,
                self.options.nms_iou,
            )?;
            dets.truncate(self.options.max_detections);
            // A predicted box may reach past the image it was found in; what a program
            // gets back is the part inside the crop, in source coordinates.
            let (ox, oy) = crop.origin;
            let (ex, ey) = (ox + w as f32, oy + h as f32);
            let boxes: Vec<BBox> = dets
                .iter()
                .map(|d| {
                    BBox::new(
                        (ox + d.bbox[0]).clamp(ox, ex),
                        (oy + d.bbox[1]).clamp(oy, ey),
                        (ox + d.bbox[2]).clamp(ox, ex),
                        (oy + d.bbox[3]).clamp(oy, ey),
                    )
                })
                .collect();
            out.push(Ok(Response::Detections {
                boxes,
                scores: dets.iter().map(|d| d.score).collect(),
            }));
        }
        Ok(out)
    }
}

impl Backend for OwlVitDetect {
    fn name(&self) -> String {
        "owlvit".into()
    }
    fn answered_by(&self, _kind: ModuleKind) -> String {
        self.checkpoint.identity()
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        if kind != ModuleKind::Detect {
            return fail_all(kind, requests.len(), "owlvit answers only detect calls");
        }
        let batch = BatchCrops::load(kind, requests, &self.images, |r| match r {
            Request::Detect { object, image } => Ok((
                object.clone(),
                format!("{}@{:?}", image.source, image.region()),
            )),
            _ => Err("not a detect request".into()),
        });
        let items: Vec<(&crate::images::Crop, String, String)> = batch
            .ok
            .iter()
            .map(|(_, c, (o, k))| (c, o.clone(), k.clone()))
            .collect();
        let results = self.detect(&items);
        batch.finish(kind, results)
    }
}
