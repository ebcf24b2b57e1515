//! DPT on the world: the depth model behind `compute_depth`, trained on the `pretrain`
//! scenes and selected on how well the `dpt` module's answers order objects.
//!
//! The module answers with the lower median of the map over an object's box (ViperGPT's
//! rule). On the rendered depth map itself ([`sdvp_data::render::render_depth`]) that rule
//! answers the background for stars, triangles and most diamonds (their shapes cover at
//! most half of their boxes), and orders only 58% of the val pairs of the small world
//! right. So the default target ([`DepthTarget::Box`]) gives every pixel of an object's box
//! the object's depth (nearest box wins); the rule then orders every val pair right.
//!
//! The model predicts distance in world units (larger = farther, the background at
//! [`BACKGROUND_DEPTH`]), so the module set's default `dpt` option, `output: depth`, answers
//! in the oracle's units and order. The loss is plain L1: a scale-and-shift-invariant loss
//! would also accept the map upside down (a negative scale). Selection reads `ordering`:
//! the share of object pairs of val scenes (depths at least [`DEPTH_MARGIN`] apart) whose
//! module answers order them as their depths do.

use crate::runner::Trainee;
use crate::scenes::SplitScenes;
use crate::vocab::write_json;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use sdvp_core::rng::SplitMix64;
use sdvp_core::BBox;
use sdvp_data::render::render_depth;
use sdvp_data::scene::{Scene, BACKGROUND_DEPTH, DEPTH_MARGIN};
use sdvp_models::dpt::{l1_loss, Config, Dpt, ImageProcessor, Readout};
use sdvp_models::train::{seeded_init, NamedParams, ParamFilter};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sizes of a DPT depth model (four neck stages, one per encoder layer kept).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct DptSize {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub neck: [usize; 4],
    /// Resolution of each neck stage relative to the patch grid (finest first).
    pub factors: [f64; 4],
    pub fusion: usize,
}

impl DptSize {
    /// The embedded model: the world's 128 px images at full resolution (the only depth
    /// cue is an object's size, a few pixels over the whole depth range), 16 px patches,
    /// and a neck at half the usual scale, so the map is 64 px (a quarter of the cost of
    /// a 128 px map).
    pub const STUDENT: DptSize = DptSize {
        hidden: 64,
        layers: 4,
        heads: 4,
        image_size: 128,
        patch_size: 16,
        neck: [16, 32, 64, 64],
        factors: [2.0, 1.0, 0.5, 0.25],
        fusion: 32,
    };
}

/// What the model learns to predict at each pixel, in world depth units (the `ceiling`
/// metric is the module rule's ordering accuracy on the target itself).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum DepthTarget {
    /// The rendered depth map: the nearest object whose shape covers the pixel centre.
    Pixel,
    /// The nearest object whose bounding box holds the pixel centre.
    Box,
}

impl DepthTarget {
    /// The target map of `scene` at its own size (row-major).
    pub fn map(self, scene: &Scene) -> Vec<f32> {
        match self {
            Self::Pixel => render_depth(scene),
            Self::Box => box_depth(scene),
        }
    }
}

/// Row-major map of the depth of the nearest object whose box holds each pixel centre.
pub fn box_depth(scene: &Scene) -> Vec<f32> {
    let (w, h) = (scene.width as usize, scene.height as usize);
    let mut out = vec![BACKGROUND_DEPTH; w * h];
    for o in &scene.objects {
        // Pixel x's centre x + 0.5 lies in [x0, x1) exactly for x in [ceil(x0 - 0.5), ceil(x1 - 0.5)).
        let span = |a: f32, b: f32, n: usize| {
            let lo = ((a - 0.5).ceil().max(0.0) as usize).min(n);
            let hi = ((b - 0.5).ceil().max(0.0) as usize).min(n);
            lo..hi.max(lo)
        };
        let xs = span(o.bbox.x0, o.bbox.x1, w);
        for y in span(o.bbox.y0, o.bbox.y1, h) {
            for d in &mut out[y * w + xs.start..y * w + xs.end] {
                *d = d.min(o.depth);
            }
        }
    }
    out
}

/// The `DPTConfig` of `s` (transformers' defaults elsewhere).
pub fn dpt_config(s: &DptSize) -> Config {
    Config {
        hidden_size: s.hidden,
        num_hidden_layers: s.layers,
        num_attention_heads: s.heads,
        intermediate_size: 4 * s.hidden,
        image_size: s.image_size,
        patch_size: s.patch_size,
        backbone_out_indices: (0..4).map(|i| (i + 1) * s.layers / 4 - 1).collect(),
        readout_type: Readout::Project,
        neck_hidden_sizes: s.neck.to_vec(),
        reassemble_factors: s.factors.to_vec(),
        fusion_hidden_size: s.fusion,
        ..Config::default()
    }
}

/// The processor of an `image_size` model: square resize, mean and std 0.5.
pub fn dpt_processor(image_size: usize) -> ImageProcessor {
    ImageProcessor {
        size: Some((image_size, image_size)),
        ..ImageProcessor::default()
    }
}

/// `depth` (row-major, `src` = `(width, height)`) at `h × w`: each map pixel takes the source
/// pixel under its centre.
pub fn resample_nearest(depth: &[f32], src: (usize, usize), h: usize, w: usize) -> Vec<f32> {
    let (sw, sh) = src;
    if (sw, sh) == (w, h) {
        return depth.to_vec();
    }
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        let sy = (((y as f32 + 0.5) * sh as f32 / h as f32) as usize).min(sh.saturating_sub(1));
        for x in 0..w {
            let sx = (((x as f32 + 0.5) * sw as f32 / w as f32) as usize).min(sw.saturating_sub(1));
            out.push(depth.get(sy * sw + sx).copied().unwrap_or(BACKGROUND_DEPTH));
        }
    }
    out
}

/// The module's answer for `region` (source pixels) of a map `values` (`mh × mw`) predicted
/// for a `source` (`width`, `height`) image processed to `processed` (`h`, `w`): the lower
/// median over the region, mapped to map pixels as `sdvp_modules::dpt_depth` maps it (the
/// processor here never pads, so the image fills the map).
pub fn module_median(
    values: &[f32],
    map: (usize, usize),
    processed: (usize, usize),
    source: (u32, u32),
    region: BBox,
) -> f32 {
    let (mh, mw) = map;
    let (ph, pw) = processed;
    let fy = mh as f32 / ph as f32;
    let fx = mw as f32 / pw as f32;
    let h = ((ph as f32 * fy).round() as usize).max(1);
    let w = ((pw as f32 * fx).round() as usize).max(1);
    let sx = w as f32 / source.0.max(1) as f32;
    let sy = h as f32 / source.1.max(1) as f32;
    let x0 = ((region.x0 * sx).floor().max(0.0) as usize).min(w.saturating_sub(1));
    let y0 = ((region.y0 * sy).floor().max(0.0) as usize).min(h.saturating_sub(1));
    let x1 = ((region.x1 * sx).ceil().max(0.0) as usize).clamp(x0 + 1, w.max(x0 + 1));
    let y1 = ((region.y1 * sy).ceil().max(0.0) as usize).clamp(y0 + 1, h.max(y0 + 1));
    let mut v: Vec<f32> = (y0..y1.min(mh))
        .flat_map(|y| (x0..x1.min(mw)).map(move |x| y * mw + x))
        .filter_map(|i| values.get(i).copied())
        .collect();
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    v[(v.len() - 1) / 2]
}

/// Pairs of objects whose depths differ by at least [`DEPTH_MARGIN`] and how many of them
/// `answer` (per object) orders as their depths.
pub fn ordering_counts(scene: &Scene, answer: &[f32]) -> (usize, usize) {
    let (mut right, mut pairs) = (0, 0);
    for (i, a) in scene.objects.iter().enumerate() {
        for (j, b) in scene.objects.iter().enumerate().skip(i + 1) {
            if (a.depth - b.depth).abs() < DEPTH_MARGIN {
                continue;
            }
            pairs += 1;
            let (near, far) = if a.depth < b.depth { (i, j) } else { (j, i) };
            // A tie answers "no" to both "in front" and "behind": wrong either way.
            if let (Some(n), Some(f)) = (answer.get(near), answer.get(far)) {
                right += usize::from(n < f);
            }
        }
    }
    (right, pairs)
}

fn flip_rows(v: &mut [f32], w: usize) {
    for row in v.chunks_mut(w.max(1)) {
        row.reverse();
    }
}

/// A DPT depth model with its scenes.
pub struct DepthTrainee {
    pub varmap: VarMap,
    pub model: Dpt,
    pub config: Config,
    pub processor: ImageProcessor,
    pub target: DepthTarget,
    train: SplitScenes,
    val: SplitScenes,
    /// Validation scenes scored (a prefix of `val`).
    val_limit: usize,
    device: Device,
}

impl DepthTrainee {
    /// A freshly initialised model of `size` learning `target`; validation scores the
    /// first `val_limit` val scenes.
    pub fn new(
        size: DptSize,
        target: DepthTarget,
        train: SplitScenes,
        val: SplitScenes,
        seed: u64,
        val_limit: usize,
    ) -> Result<Self> {
        let config = dpt_config(&size);
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let model = Dpt::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &device),
            &config,
        )?;
        let params = NamedParams::from_varmap(&varmap)?;
        seeded_init(&params, seed, 0.02)?;
        fan_in_init(&params, &config, seed)?;
        Ok(Self {
            varmap,
            model,
            processor: dpt_processor(size.image_size),
            config,
            target,
            val_limit: val_limit.clamp(1, val.len().max(1)),
            train,
            val,
            device,
        })
    }

    /// Pixels of `images`, flipped left-right where `flip` says.
    fn pixels(&self, images: &[&RgbImage], flip: &[bool]) -> Result<Tensor> {
        let imgs: Vec<RgbImage> = images
            .iter()
            .zip(flip)
            .map(|(img, &f)| {
                if f {
                    image::imageops::flip_horizontal(*img)
                } else {
                    (*img).clone()
                }
            })
            .collect();
        Ok(self.processor.to_tensor(&imgs, &self.device)?)
    }

    /// Target maps of `scenes` at the map size `(h, w)`, flipped as `flip` says.
    fn targets(&self, scenes: &[&Scene], flip: &[bool], h: usize, w: usize) -> Result<Tensor> {
        let mut data = Vec::with_capacity(scenes.len() * h * w);
        for (s, &f) in scenes.iter().zip(flip) {
            let src = (s.width as usize, s.height as usize);
            let mut d = resample_nearest(&self.target.map(s), src, h, w);
            if f {
                flip_rows(&mut d, w);
            }
            data.extend(d);
        }
        Ok(Tensor::from_vec(data, (scenes.len(), h, w), &self.device)?)
    }

    /// L1 loss of scenes `idx` of `split`.
    fn split_loss(&self, split: &SplitScenes, idx: &[usize], flip: &[bool]) -> Result<Tensor> {
        let images: Vec<&RgbImage> = idx.iter().map(|&i| &split.images[i]).collect();
        let scenes: Vec<&Scene> = idx.iter().map(|&i| &split.scenes[i]).collect();
        let pred = self.model.forward(&self.pixels(&images, flip)?)?;
        let (_, h, w) = pred.dims3()?;
        let target = self.targets(&scenes, flip, h, w)?;
        let mask = Tensor::ones_like(&target)?;
        Ok(l1_loss(&pred, &target, &mask)?)
    }

    /// Ordering accuracy of the module rule on the predicted maps, and of the same rule on
    /// the true maps (the best a perfect model could score with it), plus the val loss.
    pub fn evaluate(&self) -> Result<EvalCounts> {
        let mut c = EvalCounts::default();
        let idx: Vec<usize> = (0..self.val_limit).collect();
        for chunk in idx.chunks(32) {
            let images: Vec<&RgbImage> = chunk.iter().map(|&i| &self.val.images[i]).collect();
            let flip = vec![false; chunk.len()];
            let px = self.pixels(&images, &flip)?;
            let (_, _, ph, pw) = px.dims4()?;
            let pred = self.model.forward(&px)?;
            let (_, mh, mw) = pred.dims3()?;
            let scenes: Vec<&Scene> = chunk.iter().map(|&i| &self.val.scenes[i]).collect();
            let target = self.targets(&scenes, &flip, mh, mw)?;
            let l1 = l1_loss(&pred, &target, &Tensor::ones_like(&target)?)?;
            c.loss_sum += f64::from(l1.to_scalar::<f32>()?) * chunk.len() as f64;
            let maps: Vec<Vec<f32>> = pred.flatten_from(1)?.to_vec2()?;
            for (k, (scene, img)) in scenes.iter().zip(&images).enumerate() {
                let src = img.dimensions();
                let truth = self.target.map(scene);
                let (tw, th) = (scene.width as usize, scene.height as usize);
                let mut ans = Vec::new();
                let mut best = Vec::new();
                for o in &scene.objects {
                    ans.push(module_median(&maps[k], (mh, mw), (ph, pw), src, o.bbox));
                    best.push(module_median(&truth, (th, tw), (th, tw), src, o.bbox));
                }
                let (r, n) = ordering_counts(scene, &ans);
                let (rb, _) = ordering_counts(scene, &best);
                c.right += r;
                c.ceiling_right += rb;
                c.pairs += n;
            }
            c.images += chunk.len();
        }
        Ok(c)
    }
}

/// Counts behind [`DepthTrainee::evaluate`].
#[derive(Debug, Clone, Default)]
pub struct EvalCounts {
    pub right: usize,
    pub ceiling_right: usize,
    pub pairs: usize,
    pub loss_sum: f64,
    pub images: usize,
}

impl EvalCounts {
    pub fn ordering(&self) -> f64 {
        self.right as f64 / self.pairs.max(1) as f64
    }
    pub fn ceiling(&self) -> f64 {
        self.ceiling_right as f64 / self.pairs.max(1) as f64
    }
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.images.max(1) as f64
    }
}

/// Convolutions (neck and head) drawn with standard deviation `1 / sqrt(fan_in)` instead of
/// 0.02: at 0.02 the initial map of [`DptSize::STUDENT`] is constant to f32 precision
/// (standard deviation 0 over 8 val images; 0.016 with this scaling). The last bias starts
/// at the background depth, above the head's final ReLU, so that every pixel passes gradient.
fn fan_in_init(params: &NamedParams, cfg: &Config, seed: u64) -> Result<()> {
    let transposed: Vec<String> = cfg
        .reassemble_factors
        .iter()
        .enumerate()
        .filter(|(_, f)| **f > 1.0)
        .map(|(i, _)| format!("neck.reassemble_stage.layers.{i}.resize.weight"))
        .collect();
    for (name, var) in params.iter() {
        let dims = var.dims().to_vec();
        if name == "head.head.4.bias" {
            var.set(&Tensor::full(
                BACKGROUND_DEPTH,
                dims.as_slice(),
                var.device(),
            )?)?;
            continue;
        }
        if dims.len() != 4 || !(name.starts_with("neck.") || name.starts_with("head.")) {
            continue;
        }
        let fan_in = if transposed.iter().any(|t| t == name) {
            dims[0]
        } else {
            dims[1] * dims[2] * dims[3]
        };
        let std = 1.0 / (fan_in.max(1) as f64).sqrt();
        let mut rng = SplitMix64::derive_named(seed, &["dpt-init", name], 0);
        let v: Vec<f32> = (0..var.elem_count())
            .map(|_| (rng.next_normal() * std) as f32)
            .collect();
        var.set(&Tensor::from_vec(v, dims.as_slice(), var.device())?)
            .with_context(|| format!("initialising {name}"))?;
    }
    Ok(())
}

impl Trainee for DepthTrainee {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn frozen(&self) -> ParamFilter {
        ParamFilter::new(&self.config.frozen_patterns()).unwrap_or_default()
    }
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)> {
        let flip: Vec<bool> = batch.iter().map(|_| rng.chance(0.5)).collect();
        Ok((self.split_loss(&self.train, batch, &flip)?, Vec::new()))
    }
    fn validate(&self) -> Result<Vec<(String, f64)>> {
        let c = self.evaluate()?;
        Ok(vec![
            ("ordering".to_string(), c.ordering()),
            ("l1".to_string(), c.loss()),
            ("ceiling".to_string(), c.ceiling()),
            ("pairs".to_string(), c.pairs as f64),
        ])
    }
    fn export(&self, dir: &Path) -> Result<()> {
        write_json(&self.config.to_hf_json(), &dir.join("config.json"))?;
        crate::export::write_weights(&self.varmap, dir)?;
        write_json(
            &self.processor.to_hf_json(),
            &dir.join("preprocessor_config.json"),
        )
    }
}
