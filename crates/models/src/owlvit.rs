//! OWL-ViT (`OwlViTForObjectDetection`): open-vocabulary detection behind LOC / `find`.
//!
//! The CLIP towers sit under `owlvit.`; every vision token (not just CLS) goes through
//! `owlvit.vision_model.post_layernorm`, is multiplied by the class token and normalised
//! by `layer_norm`; each patch then predicts one box (`box_head` plus a fixed bias that
//! puts the untrained box on its own patch) and one logit per text query (`class_head`).

use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::clip::{
    self, l2_normalize, TextConfig, TextPooling, TextTransformer, VisionConfig, VisionTransformer,
};
use crate::ops::{self, LayerNorm, Linear};
use crate::weights::{self, WeightsError};

/// `OwlViTConfig`.
#[derive(Clone, Debug)]
pub struct Config {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub projection_dim: usize,
    pub logit_scale_init_value: f64,
}

impl Config {
    /// Reads a HF `OwlViTForObjectDetection` `config.json` (missing fields take the
    /// `OwlViT*Config()` defaults: text max positions 16, image size 768).
    pub fn from_file(path: &Path) -> std::result::Result<Self, WeightsError> {
        let mut text = TextConfig::clip_default();
        text.max_position_embeddings = 16;
        let mut vision = VisionConfig::clip_default();
        vision.image_size = 768;
        let (text_config, vision_config, projection_dim, logit_scale_init_value) =
            clip::parse_two_tower(path, &text, &vision)?;
        Ok(Self {
            text_config,
            vision_config,
            projection_dim,
            logit_scale_init_value,
        })
    }
}

/// Outputs of [`OwlVit::forward`].
#[derive(Clone, Debug)]
pub struct DetectionOutput {
    /// `[batch, patches, queries]`; padded queries hold `f32::MIN`.
    pub logits: Tensor,
    /// `[batch, patches, 4]` as normalised (cx, cy, w, h).
    pub pred_boxes: Tensor,
    /// L2-normalised query embeddings `[batch, queries, projection_dim]`.
    pub text_embeds: Tensor,
    /// Feature map `[batch, grid, grid, vision_hidden]`.
    pub image_embeds: Tensor,
    /// Per-patch class embeddings `[batch, patches, projection_dim]` (normalised).
    pub class_embeds: Tensor,
}

/// `OwlViTForObjectDetection`.
#[derive(Clone, Debug)]
pub struct OwlVit {
    pub text_model: TextTransformer,
    pub vision_model: VisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
    logit_scale: Tensor,
    layer_norm: LayerNorm,
    box_dense: [Linear; 3],
    class_dense0: Linear,
    logit_shift: Linear,
    class_logit_scale: Linear,
    box_bias: Tensor,
    grid: usize,
}

/// `log(x + 1e-4) - log1p(-x + 1e-4)`: the inverse sigmoid transformers uses for the bias.
fn inv_sigmoid(x: f64) -> f64 {
    (x + 1e-4).ln() - (-x + 1e-4).ln_1p()
}

/// Box bias `[grid * grid, 4]`: patch `(row, col)` is biased to centre
/// `((col + 1) / grid, (row + 1) / grid)` and size `1 / grid`, in logit space.
pub fn box_bias(grid: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let g = grid as f64;
    let size = inv_sigmoid(1.0 / g);
    let mut data = Vec::with_capacity(grid * grid * 4);
    for row in 0..grid {
        for col in 0..grid {
            let cx = ((col + 1) as f64 / g).clamp(0.0, 1.0);
            let cy = ((row + 1) as f64 / g).clamp(0.0, 1.0);
            data.extend([inv_sigmoid(cx), inv_sigmoid(cy), size, size]);
        }
    }
    Tensor::from_vec(data, (grid * grid, 4), device)?.to_dtype(dtype)
}

impl OwlVit {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let t = &cfg.text_config;
        let v = &cfg.vision_config;
        let ov = vb.pp("owlvit");
        let vh = v.hidden_size;
        let bh = vb.pp("box_head");
        let ch = vb.pp("class_head");
        Ok(Self {
            text_model: TextTransformer::new(ov.pp("text_model"), t, TextPooling::ArgMax)?,
            vision_model: VisionTransformer::new(ov.pp("vision_model"), v, "pre_layernorm")?,
            text_projection: ops::linear(
                ov.pp("text_projection"),
                t.hidden_size,
                cfg.projection_dim,
                false,
            )?,
            visual_projection: ops::linear(
                ov.pp("visual_projection"),
                vh,
                cfg.projection_dim,
                false,
            )?,
            logit_scale: ov.get_with_hints(
                (),
                "logit_scale",
                candle_nn::Init::Const(cfg.logit_scale_init_value),
            )?,
            layer_norm: LayerNorm::new(vb.pp("layer_norm"), vh, v.layer_norm_eps)?,
            box_dense: [
                ops::linear(bh.pp("dense0"), vh, vh, true)?,
                ops::linear(bh.pp("dense1"), vh, vh, true)?,
                ops::linear(bh.pp("dense2"), vh, 4, true)?,
            ],
            class_dense0: ops::linear(ch.pp("dense0"), vh, t.hidden_size, true)?,
            logit_shift: ops::linear(ch.pp("logit_shift"), vh, 1, true)?,
            class_logit_scale: ops::linear(ch.pp("logit_scale"), vh, 1, true)?,
            box_bias: box_bias(v.grid(), vb.dtype(), vb.device())?,
            grid: v.grid(),
        })
    }

    /// Loads `config.json` and `model.safetensors` from a directory.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> anyhow::Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let vb = weights::var_builder(&[dir.join("model.safetensors")], dtype, device)?;
        Ok(Self::new(vb, &cfg)?)
    }

    /// Image features `[b, patches, hidden]`: `layer_norm(post_ln(patch) * post_ln(cls))`;
    /// also returns the CLS-pooled tower output for the CLIP-style head.
    fn image_feats(&self, pixel_values: &Tensor) -> Result<(Tensor, Tensor)> {
        let (last, pooled) = self.vision_model.forward(pixel_values)?;
        let x = self.vision_model.post_layernorm().forward(&last)?;
        let n = x.dim(1)?;
        let cls = x.narrow(1, 0, 1)?;
        let patches = x.narrow(1, 1, n - 1)?.broadcast_mul(&cls)?;
        Ok((self.layer_norm.forward(&patches)?, pooled))
    }

    /// Normalised query embeddings `[n_queries_total, projection_dim]`.
    pub fn text_embeds(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (_, pooled) = self.text_model.forward(input_ids, attention_mask)?;
        l2_normalize(&self.text_projection.forward(&pooled)?)
    }

    /// Text-queried detection. `input_ids` is `[batch * queries, seq]` (queries of image
    /// `i` are rows `i * queries ..`); a query whose first id is 0 is padding.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<DetectionOutput> {
        let (feats, _) = self.image_feats(pixel_values)?;
        let (b, p, h) = feats.dims3()?;
        let (nq_total, _) = input_ids.dims2()?;
        if b == 0 || !nq_total.is_multiple_of(b) {
            candle_core::bail!(
                "input_ids: {nq_total} query rows is not a multiple of the batch size {b}"
            );
        }
        let q = nq_total / b;
        let text = self.text_embeds(input_ids, attention_mask)?;
        let text = text.reshape((b, q, ()))?;
        let first: Vec<i64> = input_ids
            .narrow(1, 0, 1)?
            .to_dtype(DType::I64)?
            .flatten_all()?
            .to_vec1()?;
        let valid: Vec<u8> = first.iter().map(|&v| u8::from(v > 0)).collect();
        let valid = Tensor::from_vec(valid, (b, 1, q), feats.device())?;
        let (logits, class_embeds) = self.class_logits(&feats, &text, Some(&valid))?;
        let pred_boxes = self.boxes(&feats)?;
        let image_embeds = feats.reshape((b, self.grid, self.grid, h))?;
        debug_assert_eq!(p, self.grid * self.grid);
        Ok(DetectionOutput {
            logits,
            pred_boxes,
            text_embeds: text,
            image_embeds,
            class_embeds,
        })
    }

    /// `box_head` plus the grid bias, through a sigmoid: `[b, patches, 4]` (cx, cy, w, h).
    fn boxes(&self, feats: &Tensor) -> Result<Tensor> {
        let x = ops::gelu_erf(&self.box_dense[0].forward(feats)?)?;
        let x = ops::gelu_erf(&self.box_dense[1].forward(&x)?)?;
        let x = self.box_dense[2].forward(&x)?;
        ops::sigmoid(&x.broadcast_add(&self.box_bias)?)
    }

    /// `class_head`: cosine similarity of patch and query embeddings, shifted and scaled
    /// per patch; masked queries get `f32::MIN`.
    fn class_logits(
        &self,
        feats: &Tensor,
        queries: &Tensor,
        valid: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let emb = self.class_dense0.forward(feats)?;
        let norm = |t: &Tensor| -> Result<Tensor> {
            t.broadcast_div(&(t.sqr()?.sum_keepdim(D::Minus1)?.sqrt()? + 1e-6)?)
        };
        let emb = norm(&emb)?;
        let queries = norm(queries)?;
        let sim = emb.matmul(&queries.transpose(1, 2)?.contiguous()?)?;
        let shift = self.logit_shift.forward(feats)?;
        let scale = (self.class_logit_scale.forward(feats)?.elu(1.0)? + 1.0)?;
        let logits = sim.broadcast_add(&shift)?.broadcast_mul(&scale)?;
        let logits = match valid {
            Some(v) => {
                let fill = Tensor::full(f32::MIN, logits.shape(), logits.device())?
                    .to_dtype(logits.dtype())?;
                v.broadcast_as(logits.shape())?.where_cond(&logits, &fill)?
            }
            None => logits,
        };
        Ok((logits, emb))
    }

    /// CLIP-style image-text logits `[n_images, n_texts]` from the pooled towers (the
    /// `OwlViTModel` head); fine-tuning can add a contrastive term through it.
    pub fn image_text_logits(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (_, pooled) = self.vision_model.forward(pixel_values)?;
        let img = l2_normalize(&self.visual_projection.forward(&pooled)?)?;
        let txt = self.text_embeds(input_ids, attention_mask)?;
        img.matmul(&txt.t()?)?
            .broadcast_mul(&self.logit_scale.exp()?)
    }
}

/// One detection in pixel coordinates of the original image.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Index of the query (text) this box matched best.
    pub label: usize,
    /// `sigmoid` of the best query logit.
    pub score: f32,
    /// `[x0, y0, x1, y1]` in pixels.
    pub bbox: [f32; 4],
}

/// `input_ids` and `attention_mask` `[images · per_image, len]` of per-image query lists,
/// each cut or padded to `per_image` queries. A padding query is all id 0 with only its
/// first position attended: the model reads a row whose first id is 0 as no query.
pub fn query_inputs(
    tokenizer: &crate::tokenize::TextTokenizer,
    queries: &[&[String]],
    per_image: usize,
    device: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let mut texts = Vec::with_capacity(queries.len() * per_image);
    let mut real = Vec::with_capacity(queries.len() * per_image);
    for list in queries {
        for j in 0..per_image {
            texts.push(list.get(j).map_or("", String::as_str));
            real.push(j < list.len());
        }
    }
    let (mut ids, mut mask) = tokenizer.encode_batch_vec(&texts)?;
    for ((row, m), r) in ids.iter_mut().zip(mask.iter_mut()).zip(&real) {
        if !r {
            row.iter_mut().for_each(|x| *x = 0);
            m.iter_mut().for_each(|x| *x = 0);
            if let Some(first) = m.first_mut() {
                *first = 1;
            }
        }
    }
    let (n, len) = (ids.len(), ids.first().map_or(0, Vec::len));
    Ok((
        Tensor::from_vec(ids.concat(), (n, len), device)?,
        Tensor::from_vec(mask.concat(), (n, len), device)?,
    ))
}

/// `(cx, cy, w, h)` to `(x0, y0, x1, y1)`.
pub fn center_to_corners(b: [f32; 4]) -> [f32; 4] {
    [
        b[0] - 0.5 * b[2],
        b[1] - 0.5 * b[3],
        b[0] + 0.5 * b[2],
        b[1] + 0.5 * b[3],
    ]
}

/// Intersection over union of two corner boxes (0 for degenerate boxes).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Default IoU above which a lower-scored box of the same label is suppressed; 0.3 is
/// transformers' default `nms_threshold` for OWL-ViT image-guided detection.
pub const DEFAULT_NMS_IOU: f32 = 0.3;

/// Reference post-processing for one image, as transformers'
/// `post_process_object_detection` (score = sigmoid of the max logit over queries, label
/// = its argmax, boxes scaled to `(height, width)` pixels, keep `score > threshold`)
/// followed by per-label greedy NMS at `nms_iou` (pass `1.0` to disable it; transformers
/// applies none for text queries). Results are sorted by descending score.
pub fn post_process(
    logits: &Tensor,
    pred_boxes: &Tensor,
    image_size: (usize, usize),
    threshold: f32,
    nms_iou: f32,
) -> Result<Vec<Detection>> {
    let logits: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
    let boxes: Vec<Vec<f32>> = pred_boxes.to_dtype(DType::F32)?.to_vec2()?;
    if logits.len() != boxes.len() {
        candle_core::bail!(
            "post_process: {} logit rows but {} boxes",
            logits.len(),
            boxes.len()
        );
    }
    let (h, w) = (image_size.0 as f32, image_size.1 as f32);
    let mut dets = Vec::new();
    for (row, b) in logits.iter().zip(&boxes) {
        let Some((label, &best)) =
            row.iter()
                .enumerate()
                .fold(None, |acc: Option<(usize, &f32)>, (i, v)| match acc {
                    Some((_, bv)) if *bv >= *v => acc,
                    _ => Some((i, v)),
                })
        else {
            continue;
        };
        let score = 1.0 / (1.0 + (-best).exp());
        if score <= threshold || b.len() != 4 {
            continue;
        }
        let c = center_to_corners([b[0], b[1], b[2], b[3]]);
        dets.push(Detection {
            label,
            score,
            bbox: [c[0] * w, c[1] * h, c[2] * w, c[3] * h],
        });
    }
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept
            .iter()
            .all(|k| k.label != d.label || iou(k.bbox, d.bbox) <= nms_iou)
        {
            kept.push(d);
        }
    }
    Ok(kept)
}

/// A ground-truth (or teacher) box for one query of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Index of the query (text) this object belongs to.
    pub query: usize,
    /// Normalised `(cx, cy, w, h)`, the same convention as `pred_boxes`.
    pub bbox: [f32; 4],
}

/// Weights of the fine-tuning loss. The defaults are the DETR / OWL-ViT recipe: focal
/// classification 1 (alpha 0.25, gamma 2), box L1 5, GIoU 2.
#[derive(Clone, Debug)]
pub struct LossWeights {
    pub class: f64,
    pub l1: f64,
    pub giou: f64,
    pub focal_alpha: f64,
    pub focal_gamma: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            class: 1.0,
            l1: 5.0,
            giou: 2.0,
            focal_alpha: 0.25,
            focal_gamma: 2.0,
        }
    }
}

/// The fine-tuning loss and its parts (all scalars), plus the `(image, patch, target)`
/// matches used.
#[derive(Clone, Debug)]
pub struct DetectionLoss {
    pub total: Tensor,
    pub class: Tensor,
    pub l1: Tensor,
    pub giou: Tensor,
    pub matches: Vec<(usize, usize, usize)>,
}

/// Generalised IoU of paired `(cx, cy, w, h)` boxes `[m, 4]`, differentiable: `[m]`.
pub fn generalized_iou(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let corners = |t: &Tensor| -> Result<[Tensor; 4]> {
        let c = |i| t.narrow(1, i, 1);
        let (cx, cy, w, h) = (c(0)?, c(1)?, c(2)?, c(3)?);
        Ok([
            (&cx - (&w * 0.5)?)?,
            (&cy - (&h * 0.5)?)?,
            (&cx + (&w * 0.5)?)?,
            (&cy + (&h * 0.5)?)?,
        ])
    };
    let [ax0, ay0, ax1, ay1] = corners(a)?;
    let [bx0, by0, bx1, by1] = corners(b)?;
    let iw = (ax1.minimum(&bx1)? - ax0.maximum(&bx0)?)?.relu()?;
    let ih = (ay1.minimum(&by1)? - ay0.maximum(&by0)?)?.relu()?;
    let inter = (iw * ih)?;
    let area_a = ((&ax1 - &ax0)? * (&ay1 - &ay0)?)?;
    let area_b = ((&bx1 - &bx0)? * (&by1 - &by0)?)?;
    let union = ((area_a + area_b)? - &inter)?;
    let ew = (ax1.maximum(&bx1)? - ax0.minimum(&bx0)?)?;
    let eh = (ay1.maximum(&by1)? - ay0.minimum(&by0)?)?;
    let enclosing = (ew * eh)?;
    let iou = (inter / &union)?;
    (iou - ((&enclosing - &union)? / enclosing)?)?.squeeze(1)
}

/// Generalised IoU of two `(cx, cy, w, h)` boxes, for the matching cost.
fn giou_cxcywh(a: [f32; 4], b: [f32; 4]) -> f32 {
    let (ca, cb) = (center_to_corners(a), center_to_corners(b));
    let iw = (ca[2].min(cb[2]) - ca[0].max(cb[0])).max(0.0);
    let ih = (ca[3].min(cb[3]) - ca[1].max(cb[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] * a[3] + b[2] * b[3] - inter).max(1e-12);
    let enc =
        ((ca[2].max(cb[2]) - ca[0].min(cb[0])) * (ca[3].max(cb[3]) - ca[1].min(cb[1]))).max(1e-12);
    inter / union - (enc - union) / enc
}

/// Fine-tuning loss for text-queried detection.
///
/// Matching: each target is paired with one patch by greedy assignment on the DETR cost
/// (`-class * sigmoid(logit) + l1 * L1 - giou * GIoU`), cheapest pair first. Greedy is not
/// optimal like Hungarian matching but with the few objects per image of our tasks it
/// almost always agrees, and it is simple and deterministic. Classification: sigmoid focal
/// loss over every (patch, valid query) against 1 for matched pairs and 0 elsewhere,
/// summed and divided by the number of targets. Boxes: L1 and `1 - GIoU` averaged over
/// matched pairs. `targets[i]` are the objects of image `i`.
pub fn detection_loss(
    out: &DetectionOutput,
    targets: &[Vec<Target>],
    w: &LossWeights,
) -> Result<DetectionLoss> {
    let (b, p, q) = out.logits.dims3()?;
    if targets.len() != b {
        candle_core::bail!(
            "detection_loss: {} target lists for a batch of {b}",
            targets.len()
        );
    }
    let dev = out.logits.device().clone();
    let dtype = out.logits.dtype();
    let logits_v: Vec<Vec<Vec<f32>>> = out.logits.to_dtype(DType::F32)?.to_vec3()?;
    let boxes_v: Vec<Vec<Vec<f32>>> = out.pred_boxes.to_dtype(DType::F32)?.to_vec3()?;
    let mut labels = vec![0f32; b * p * q];
    let mut matches = Vec::new();
    let mut idx = Vec::new();
    let mut tgt = Vec::new();
    for (img, ts) in targets.iter().enumerate() {
        let mut pairs = Vec::new();
        for (ti, t) in ts.iter().enumerate() {
            if t.query >= q {
                candle_core::bail!(
                    "detection_loss: target {ti} of image {img} names query {} of {q}",
                    t.query
                );
            }
            for patch in 0..p {
                let pb = &boxes_v[img][patch];
                let pb = [pb[0], pb[1], pb[2], pb[3]];
                let prob = 1.0 / (1.0 + (-logits_v[img][patch][t.query]).exp());
                let l1: f32 = pb.iter().zip(t.bbox).map(|(a, b)| (a - b).abs()).sum();
                let g = giou_cxcywh(pb, t.bbox);
                let cost = -w.class as f32 * prob + w.l1 as f32 * l1 - w.giou as f32 * g;
                pairs.push((cost, ti, patch));
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut used_t, mut used_p) = (vec![false; ts.len()], vec![false; p]);
        for (_, ti, patch) in pairs {
            if used_t[ti] || used_p[patch] {
                continue;
            }
            used_t[ti] = true;
            used_p[patch] = true;
            matches.push((img, patch, ti));
            labels[(img * p + patch) * q + ts[ti].query] = 1.0;
            idx.push((img * p + patch) as u32);
            tgt.extend(ts[ti].bbox);
        }
    }
    let n_targets = matches.len().max(1) as f64;
    let t = Tensor::from_vec(labels, (b, p, q), &dev)?.to_dtype(dtype)?;
    let valid = out.logits.ge(-1e30)?;
    let x = valid.where_cond(&out.logits, &out.logits.zeros_like()?)?;
    let valid_f = valid.to_dtype(dtype)?;
    // Stable BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|)).
    let ce = ((x.relu()? - (&x * &t)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let prob = ops::sigmoid(&x)?;
    let one_minus_t = (1.0 - &t)?;
    let p_t = ((&prob * &t)? + ((1.0 - &prob)? * &one_minus_t)?)?;
    let modulator = (1.0 - p_t)?.relu()?.powf(w.focal_gamma)?;
    let alpha_t = ((&t * w.focal_alpha)? + (&one_minus_t * (1.0 - w.focal_alpha))?)?;
    let class = ((alpha_t * modulator)? * ce)?
        .mul(&valid_f)?
        .sum_all()?
        .affine(1.0 / n_targets, 0.0)?;
    let (l1, giou) = if idx.is_empty() {
        let z = Tensor::zeros((), dtype, &dev)?;
        (z.clone(), z)
    } else {
        let m = idx.len();
        let idx = Tensor::from_vec(idx, m, &dev)?;
        let pred = out.pred_boxes.reshape((b * p, 4))?.index_select(&idx, 0)?;
        let tgt = Tensor::from_vec(tgt, (m, 4), &dev)?.to_dtype(dtype)?;
        let l1 = ((&pred - &tgt)?.abs()?.sum_all()? / m as f64)?;
        let giou = (1.0 - generalized_iou(&pred, &tgt)?)?.mean_all()?;
        (l1, giou)
    };
    let total = (((&class * w.class)? + (&l1 * w.l1)?)? + (&giou * w.giou)?)?;
    Ok(DetectionLoss {
        total,
        class,
        l1,
        giou,
        matches,
    })
}
