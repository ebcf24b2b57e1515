//! Text tokenisation for CLIP and OWL-ViT through a Hugging Face `tokenizer.json`.
//!
//! Both models need fixed-width batches (position embeddings stop at
//! `max_position_embeddings`) with an attention mask; truncation keeps the final special
//! token because pooling reads the EOS position.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

/// Errors of loading or running the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot load tokenizer {path}: {message}")]
    Load { path: String, message: String },
    #[error("tokenizing {text:?}: {message}")]
    Encode { text: String, message: String },
    #[error("building the {what} tensor: {source}")]
    Tensor {
        what: &'static str,
        source: candle_core::Error,
    },
}

/// How batches are padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Always `max_length` tokens (OWL-ViT's processor uses 16).
    MaxLength,
    /// The longest sequence of the batch (at most `max_length`).
    Longest,
}

/// Token ids and attention masks, one row per text.
pub type IdsAndMask = (Vec<Vec<u32>>, Vec<Vec<u32>>);

/// A tokenizer with the padding and truncation rules of one model.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
    pad_id: u32,
    padding: Padding,
}

/// A padded batch: `input_ids` and `attention_mask`, both `[n, len]` of dtype u32.
#[derive(Clone, Debug)]
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences are cut to `max_length` and padded with `pad_id`.
    pub fn from_file(
        path: &Path,
        max_length: usize,
        pad_id: u32,
        padding: Padding,
    ) -> Result<Self, TokenizeError> {
        let inner = Tokenizer::from_file(path).map_err(|e| TokenizeError::Load {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner,
            max_length,
            pad_id,
            padding,
        })
    }

    /// Token ids of one text, with special tokens, truncated to `max_length` while keeping
    /// the last (EOS) token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| TokenizeError::Encode {
                text: text.to_string(),
                message: e.to_string(),
            })?;
        let mut ids = enc.get_ids().to_vec();
        if ids.len() > self.max_length && self.max_length > 0 {
            let last = ids[ids.len() - 1];
            ids.truncate(self.max_length - 1);
            ids.push(last);
        }
        Ok(ids)
    }

    /// Text of `ids` with special tokens left out (transformers' `decode(...,
    /// skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizeError::Encode {
                text: format!("{ids:?}"),
                message: e.to_string(),
            })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Token ids and masks as plain vectors (each `len` long).
    pub fn encode_batch_vec<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<IdsAndMask, TokenizeError> {
        let seqs = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let len = match self.padding {
            Padding::MaxLength => self.max_length,
            Padding::Longest => seqs.iter().map(Vec::len).max().unwrap_or(0),
        };
        let mut ids = Vec::with_capacity(seqs.len());
        let mut mask = Vec::with_capacity(seqs.len());
        for s in seqs {
            let n = s.len();
            let mut row = s;
            row.resize(len, self.pad_id);
            ids.push(row);
            mask.push((0..len).map(|i| u32::from(i < n)).collect());
        }
        Ok((ids, mask))
    }

    /// A padded batch as tensors on `device`.
    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        device: &Device,
    ) -> Result<Batch, TokenizeError> {
        let (ids, mask) = self.encode_batch_vec(texts)?;
        let n = ids.len();
        let len = ids.first().map_or(0, Vec::len);
        let t = |what: &'static str, v: Vec<Vec<u32>>| {
            Tensor::from_vec(v.concat(), (n, len), device)
                .map_err(|source| TokenizeError::Tensor { what, source })
        };
        Ok(Batch {
            input_ids: t("input_ids", ids)?,
            attention_mask: t("attention_mask", mask)?,
        })
    }
}
