//! BLIP's BERT text model with cross-attention (`text_encoder.*`, `text_decoder.bert.*`).
//!
//! The same module serves the question encoder (bidirectional self-attention,
//! cross-attention over image tokens) and the answer decoder (causal self-attention,
//! cross-attention over the question encoding). Masks are additive
//! (`0` keep, [`MASKED`] drop) and built by [`padding_mask`] and [`causal_mask`].

use super::{activation, TextConfig};
use crate::ops::{self, LayerNorm, Linear};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

/// The additive value that removes a key from attention. Large enough that `exp` of it
/// is exactly zero in f32, small enough that adding a score never overflows to `-inf`.
pub const MASKED: f32 = -1.0e9;

/// `[batch, k]` 1/0 mask (any dtype) to an additive `[batch, 1, 1, k]` f32 mask.
pub fn padding_mask(mask: &Tensor) -> Result<Tensor> {
    let (b, k) = mask.dims2()?;
    let keep = mask.to_dtype(DType::F32)?;
    ((keep - 1.0)? * f64::from(-MASKED))?.reshape((b, 1, 1, k))
}

/// Additive causal mask `[batch, 1, q, offset + q]`: query `i` (absolute position
/// `offset + i`) sees keys `0..=offset + i`, further restricted by an optional 1/0
/// padding mask over all `offset + q` keys.
pub fn causal_mask(
    batch: usize,
    q: usize,
    offset: usize,
    key_padding: Option<&Tensor>,
    device: &Device,
) -> Result<Tensor> {
    let k = offset + q;
    let vals: Vec<f32> = (0..q)
        .flat_map(|i| (0..k).map(move |j| if j <= offset + i { 0.0 } else { MASKED }))
        .collect();
    let causal = Tensor::from_vec(vals, (1, 1, q, k), device)?;
    let causal = causal.broadcast_as((batch, 1, q, k))?;
    match key_padding {
        Some(p) => causal.broadcast_add(&padding_mask(p)?),
        None => causal.contiguous(),
    }
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    layer_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, c: &TextConfig, kv_dim: usize) -> Result<Self> {
        let d = c.hidden_size;
        let s = vb.pp("self");
        Ok(Self {
            query: ops::linear(s.pp("query"), d, d, true)?,
            key: ops::linear(s.pp("key"), kv_dim, d, true)?,
            value: ops::linear(s.pp("value"), kv_dim, d, true)?,
            dense: ops::linear(vb.pp("output.dense"), d, d, true)?,
            layer_norm: LayerNorm::new(vb.pp("output.LayerNorm"), d, c.layer_norm_eps)?,
            heads: c.num_attention_heads,
            head_dim: d / c.num_attention_heads,
        })
    }

    fn kv(&self, src: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.key.forward(src)?, self.value.forward(src)?))
    }

    /// `kv` are the keys/values to attend to (`[b, k, d]`, heads side by side).
    fn forward(&self, x: &Tensor, kv: &(Tensor, Tensor), mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.query.forward(x)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let ctx = ops::multi_head_attention(&q, &kv.0, &kv.1, mask, self.heads, scale)?;
        self.layer_norm.forward(&(self.dense.forward(&ctx)? + x)?)
    }
}

struct Layer {
    attention: Attention,
    crossattention: Attention,
    intermediate: Linear,
    output: Linear,
    output_ln: LayerNorm,
    act: String,
}

/// Keys and values kept between decoding steps: self-attention grows by one position a
/// step; cross-attention over the fixed question encoding is computed once.
#[derive(Clone, Default)]
pub struct LayerCache {
    self_kv: Option<(Tensor, Tensor)>,
    cross_kv: Option<(Tensor, Tensor)>,
}

/// The decoding cache of a whole text model.
#[derive(Clone, Default)]
pub struct TextCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl TextCache {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first step.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps rows `index` (u32 `[n]`) of every cached tensor, for beam search.
    pub fn reorder(&mut self, index: &Tensor) -> Result<()> {
        for l in &mut self.layers {
            for kv in [&mut l.self_kv, &mut l.cross_kv].into_iter().flatten() {
                *kv = (
                    kv.0.contiguous()?.index_select(index, 0)?,
                    kv.1.contiguous()?.index_select(index, 0)?,
                );
            }
        }
        Ok(())
    }
}

/// Embeddings + BERT layers with cross-attention.
pub struct TextModel {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    layer_norm: LayerNorm,
    layers: Vec<Layer>,
    max_positions: usize,
}

impl TextModel {
    /// Reads `embeddings.*` and `encoder.layer.N.*` under `vb`.
    pub fn new(vb: VarBuilder, c: &TextConfig) -> Result<Self> {
        let d = c.hidden_size;
        let e = vb.pp("embeddings");
        let init = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let word = e.get_with_hints((c.vocab_size, d), "word_embeddings.weight", init)?;
        let pos = e.get_with_hints(
            (c.max_position_embeddings, d),
            "position_embeddings.weight",
            init,
        )?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            layers.push(Layer {
                attention: Attention::new(l.pp("attention"), c, d)?,
                crossattention: Attention::new(l.pp("crossattention"), c, c.encoder_hidden_size)?,
                intermediate: ops::linear(
                    l.pp("intermediate.dense"),
                    d,
                    c.intermediate_size,
                    true,
                )?,
                output: ops::linear(l.pp("output.dense"), c.intermediate_size, d, true)?,
                output_ln: LayerNorm::new(l.pp("output.LayerNorm"), d, c.layer_norm_eps)?,
                act: c.hidden_act.clone(),
            });
        }
        Ok(Self {
            word_embeddings: Embedding::new(word, d),
            position_embeddings: Embedding::new(pos, d),
            layer_norm: LayerNorm::new(e.pp("LayerNorm"), d, c.layer_norm_eps)?,
            layers,
            max_positions: c.max_position_embeddings,
        })
    }

    /// The word-embedding matrix (`[vocab, hidden]`), tied to the decoder's output layer.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }

    /// Runs the model on `input_ids` (`[b, s]` u32). `self_mask` is additive over the
    /// self-attention keys (`[b, 1, s or 1, k]`), `encoder_mask` additive over
    /// `encoder_hidden` tokens. With a `cache`, `input_ids` are the new positions only.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        self_mask: Option<&Tensor>,
        encoder_hidden: &Tensor,
        encoder_mask: Option<&Tensor>,
        mut cache: Option<&mut TextCache>,
    ) -> Result<Tensor> {
        let (_, s) = input_ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len);
        if offset + s > self.max_positions {
            candle_core::bail!(
                "text model: {} positions exceed max_position_embeddings {}",
                offset + s,
                self.max_positions
            );
        }
        let pos = Tensor::arange(offset as u32, (offset + s) as u32, input_ids.device())?;
        let x = self
            .word_embeddings
            .forward(input_ids)?
            .broadcast_add(&self.position_embeddings.forward(&pos)?)?;
        let mut x = self.layer_norm.forward(&x)?;
        if let Some(c) = cache.as_deref_mut() {
            if c.layers.len() != self.layers.len() {
                c.layers = vec![LayerCache::default(); self.layers.len()];
            }
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let mut self_kv = layer.attention.kv(&x)?;
            let mut cross_kv = None;
            if let Some(c) = cache.as_deref_mut() {
                let lc = &mut c.layers[i];
                if let Some((k0, v0)) = &lc.self_kv {
                    self_kv = (
                        Tensor::cat(&[k0, &self_kv.0], 1)?,
                        Tensor::cat(&[v0, &self_kv.1], 1)?,
                    );
                }
                lc.self_kv = Some(self_kv.clone());
                if lc.cross_kv.is_none() {
                    lc.cross_kv = Some(layer.crossattention.kv(encoder_hidden)?);
                }
                cross_kv = lc.cross_kv.clone();
            }
            let cross_kv = match cross_kv {
                Some(kv) => kv,
                None => layer.crossattention.kv(encoder_hidden)?,
            };
            let h = layer.attention.forward(&x, &self_kv, self_mask)?;
            let h = layer.crossattention.forward(&h, &cross_kv, encoder_mask)?;
            let m = activation(&layer.act, &layer.intermediate.forward(&h)?)?;
            x = layer.output_ln.forward(&(layer.output.forward(&m)? + h)?)?;
        }
        if let Some(c) = cache {
            c.len += s;
        }
        Ok(x)
    }
}
