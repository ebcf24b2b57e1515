//! `dpt` → `depth`: DPT (`DPTForDepthEstimation`) behind the Backend trait.
//!
//! As ViperGPT's `compute_depth`: the model runs on the whole source image (once per
//! source in a batch), the predicted map is cut to the request's region, and the answer is
//! the median of the region (the lower median for an even count, as `torch.median`).
//! `options.output` says what the map holds: `depth` (a distance, larger = farther; what
//! the world's checkpoints are trained on) or `inverse_depth` (MiDaS-style, larger =
//! nearer; the answer is then `1 / max(median, 1e-6)` so it is a distance again).

use crate::common::{fail_all, Answers, Checkpoint};
use crate::images::ImageCache;
use candle_core::{DType, Device};
use sdvp_core::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_models::dpt::{Dpt, ImageProcessor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DepthOutput {
    #[default]
    Depth,
    InverseDepth,
}

/// `options` of a `dpt` module.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthOptions {
    #[serde(default)]
    pub output: DepthOutput,
}

pub struct DptDepth {
    model: Dpt,
    processor: ImageProcessor,
    images: Arc<ImageCache>,
    options: DepthOptions,
    checkpoint: Checkpoint,
    device: Device,
}

/// A predicted map `[h][w]` of an image processed to `(h, w)` from `source` pixels.
pub struct DepthMap {
    pub values: Vec<Vec<f32>>,
    /// Source size `(width, height)` the map covers.
    pub source: (u32, u32),
    /// Where the resized image sits in the (padded) map: `(top, left, height, width)`.
    pub placed: (usize, usize, usize, usize),
}

impl DepthMap {
    /// Lower median of the map over a source-coordinate region.
    pub fn median(&self, region: sdvp_core::BBox) -> f32 {
        let (top, left, h, w) = self.placed;
        let sx = w as f32 / self.source.0.max(1) as f32;
        let sy = h as f32 / self.source.1.max(1) as f32;
        let x0 = ((region.x0 * sx).floor().max(0.0) as usize).min(w.saturating_sub(1));
        let y0 = ((region.y0 * sy).floor().max(0.0) as usize).min(h.saturating_sub(1));
        let x1 = ((region.x1 * sx).ceil().max(0.0) as usize).clamp(x0 + 1, w.max(x0 + 1));
        let y1 = ((region.y1 * sy).ceil().max(0.0) as usize).clamp(y0 + 1, h.max(y0 + 1));
        let mut v: Vec<f32> = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (y, x)))
            .filter_map(|(y, x)| {
                self.values
                    .get(top + y)
                    .and_then(|r| r.get(left + x))
                    .copied()
            })
            .collect();
        if v.is_empty() {
            return f32::NAN;
        }
        v.sort_by(f32::total_cmp);
        v[(v.len() - 1) / 2]
    }
}

impl DptDepth {
    pub fn load(
        checkpoint: Checkpoint,
        options: DepthOptions,
        images: Arc<ImageCache>,
    ) -> anyhow::Result<Self> {
        let device = Device::Cpu;
        let model = Dpt::load(&checkpoint.dir, DType::F32, &device)?;
        let pp = checkpoint.file("preprocessor_config.json");
        let processor = if pp.is_file() {
            ImageProcessor::from_file(&pp)?
        } else {
            ImageProcessor::default()
        };
        Ok(Self {
            model,
            processor,
            images,
            options,
            checkpoint,
            device,
        })
    }

    pub fn model(&self) -> &Dpt {
        &self.model
    }
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Predicted maps of whole images (images of one processed size share a forward pass).
    pub fn maps(&self, images: &[&image::RgbImage]) -> anyhow::Result<Vec<DepthMap>> {
        let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, img) in images.iter().enumerate() {
            let size = self
                .processor
                .output_size(img.height() as usize, img.width() as usize);
            groups.entry(size).or_default().push(i);
        }
        let mut out: Vec<Option<DepthMap>> = (0..images.len()).map(|_| None).collect();
        for ((h, w), idx) in groups {
            let batch: Vec<image::RgbImage> = idx.iter().map(|&i| images[i].clone()).collect();
            let pixels = self.processor.to_tensor(&batch, &self.device)?;
            let (_, _, ph, pw) = pixels.dims4()?;
            let depth = self.model.forward(&pixels)?;
            let (_, mh, mw) = depth.dims3()?;
            let maps: Vec<Vec<Vec<f32>>> = depth.to_vec3()?;
            // The head may not return the input size exactly; scale the placement with it.
            let (top, left) = ((ph - h) / 2, (pw - w) / 2);
            let fy = mh as f32 / ph as f32;
            let fx = mw as f32 / pw as f32;
            let placed = (
                (top as f32 * fy) as usize,
                (left as f32 * fx) as usize,
                ((h as f32 * fy).round() as usize).max(1),
                ((w as f32 * fx).round() as usize).max(1),
            );
            for (m, &i) in maps.into_iter().zip(&idx) {
                out[i] = Some(DepthMap {
                    values: m,
                    source: images[i].dimensions(),
                    placed,
                });
            }
        }
        out.into_iter()
            .map(|m| m.ok_or_else(|| anyhow::anyhow!("an image got no depth map")))
            .collect()
    }
}

impl Backend for DptDepth {
    fn name(&self) -> String {
        "dpt".into()
    }
    fn answered_by(&self, _kind: ModuleKind) -> String {
        self.checkpoint.identity()
    }
    fn run_batch(&self, kind: ModuleKind, requests: &[Request]) -> Answers {
        if kind != ModuleKind::Depth {
            return fail_all(kind, requests.len(), "dpt answers only depth calls");
        }
        let mut answers: Vec<Option<Result<Response, ModuleError>>> =
            (0..requests.len()).map(|_| None).collect();
        let mut sources: Vec<String> = Vec::new();
        let mut loaded = Vec::new();
        let mut wanted: Vec<(usize, usize)> = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let Request::Depth { image } = r else {
                answers[i] = Some(Err(ModuleError::new(kind, "not a depth request")));
                continue;
            };
            let at = match sources.iter().position(|s| *s == image.source) {
                Some(p) => p,
                None => match self.images.source(&image.source) {
                    Ok(img) => {
                        sources.push(image.source.clone());
                        loaded.push(img);
                        sources.len() - 1
                    }
                    Err(e) => {
                        answers[i] = Some(Err(ModuleError::new(kind, format!("{e:#}"))));
                        continue;
                    }
                },
            };
            wanted.push((i, at));
        }
        let refs: Vec<&image::RgbImage> = loaded.iter().map(|a| a.as_ref()).collect();
        match self.maps(&refs) {
            Ok(maps) => {
                for (i, at) in wanted {
                    let Request::Depth { image } = &requests[i] else {
                        continue;
                    };
                    let m = maps[at].median(image.region());
                    let value = match self.options.output {
                        DepthOutput::Depth => m,
                        DepthOutput::InverseDepth => 1.0 / m.max(1e-6),
                    };
                    answers[i] = Some(Ok(Response::Depth { value }));
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                for (i, _) in wanted {
                    answers[i] = Some(Err(ModuleError::new(kind, msg.clone())));
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(ModuleError::new(kind, "request not answered"))))
            .collect()
    }
}
