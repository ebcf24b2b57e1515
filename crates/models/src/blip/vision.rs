//! BLIP's ViT image encoder (`vision_model.*`).

use super::{activation, VisionConfig};
use crate::ops::{self, LayerNorm, Linear};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

struct VisionAttention {
    /// The query, key and value projections: views of the checkpoint's fused `qkv`
    /// (`[q; k; v]` along its output features), so that each projection's output is
    /// already contiguous.
    qkv: [Linear; 3],
    projection: Linear,
    heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    fn new(vb: VarBuilder, c: &VisionConfig) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Self {
            qkv: ops::linear(vb.pp("qkv"), d, 3 * d, true)?.split_outputs::<3>()?,
            projection: ops::linear(vb.pp("projection"), d, d, true)?,
            heads: c.num_attention_heads,
            head_dim: d / c.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [q, k, v] = [0, 1, 2].map(|i| self.qkv[i].forward(x));
        let (q, k, v) = (q?, k?, v?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let ctx = ops::multi_head_attention(&q, &k, &v, None, self.heads, scale)?;
        self.projection.forward(&ctx)
    }
}

struct VisionLayer {
    self_attn: VisionAttention,
    layer_norm1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    layer_norm2: LayerNorm,
    act: String,
}

impl VisionLayer {
    fn new(vb: VarBuilder, c: &VisionConfig) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Self {
            self_attn: VisionAttention::new(vb.pp("self_attn"), c)?,
            layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), d, c.layer_norm_eps)?,
            fc1: ops::linear(vb.pp("mlp.fc1"), d, c.intermediate_size, true)?,
            fc2: ops::linear(vb.pp("mlp.fc2"), c.intermediate_size, d, true)?,
            layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), d, c.layer_norm_eps)?,
            act: c.hidden_act.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = (self.self_attn.forward(&self.layer_norm1.forward(x)?)? + x)?;
        let m = self.fc1.forward(&self.layer_norm2.forward(&h)?)?;
        self.fc2.forward(&activation(&self.act, &m)?)? + h
    }
}

/// The ViT: patch embedding, class token, learned positions, pre-norm layers and a
/// final layer norm. Returns all tokens (`[batch, 1 + patches, hidden]`), which BLIP's
/// text encoder attends to.
pub struct VisionModel {
    class_embedding: Tensor,
    patch_weight: Tensor,
    patch_bias: Tensor,
    position_embedding: Tensor,
    layers: Vec<VisionLayer>,
    post_layernorm: LayerNorm,
    patch: usize,
    hidden: usize,
}

impl VisionModel {
    /// Reads `vision_model.*` tensors (`vb` already at that prefix).
    pub fn new(vb: VarBuilder, c: &VisionConfig) -> Result<Self> {
        let d = c.hidden_size;
        let p = c.patch_size;
        let n = (c.image_size / p).pow(2) + 1;
        let emb = vb.pp("embeddings");
        let init = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| VisionLayer::new(vb.pp(format!("encoder.layers.{i}")), c))
            .collect::<Result<_>>()?;
        Ok(Self {
            class_embedding: emb.get_with_hints((1, 1, d), "class_embedding", init)?,
            patch_weight: emb.get_with_hints((d, 3, p, p), "patch_embedding.weight", init)?,
            patch_bias: emb.get_with_hints(
                d,
                "patch_embedding.bias",
                candle_nn::Init::Const(0.0),
            )?,
            position_embedding: emb.get_with_hints((1, n, d), "position_embedding", init)?,
            layers,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), d, c.layer_norm_eps)?,
            patch: p,
            hidden: d,
        })
    }

    /// `pixel_values` `[batch, 3, H, W]` (normalised) to image tokens.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = pixel_values.dims4()?;
        let p = self.patch;
        let (gh, gw) = (h / p, w / p);
        // A stride-p convolution with a p×p kernel is a matmul over non-overlapping
        // patches; written so it is cheaper than candle's im2col and differentiable.
        let patches = pixel_values
            .reshape((b, c, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((b, gh * gw, c * p * p))?;
        let wmat = self.patch_weight.reshape((self.hidden, c * p * p))?;
        let x = patches
            .broadcast_matmul(&wmat.t()?)?
            .broadcast_add(&self.patch_bias)?;
        let cls = self.class_embedding.broadcast_as((b, 1, self.hidden))?;
        let x = Tensor::cat(&[&cls, &x], 1)?;
        let n = x.dim(1)?;
        if n > self.position_embedding.dim(1)? {
            candle_core::bail!(
                "vision_model: {n} tokens for an image {h}x{w} exceed the {} position embeddings",
                self.position_embedding.dim(1)?
            );
        }
        let mut x = x.broadcast_add(&self.position_embedding.narrow(1, 0, n)?)?;
        for l in &self.layers {
            x = l.forward(&x)?;
        }
        self.post_layernorm.forward(&x)
    }
}
