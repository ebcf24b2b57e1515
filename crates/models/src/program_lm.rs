//! The embedded program generator: a [`Llama`] with a byte-level BPE tokenizer trained on the
//! world's questions and programs, and the input layout both training and decoding use.
//!
//! A sequence is `<s> <task:T> <style:S> question <program> program </s>`. The tokenizer
//! splits words (`red`, ` cube`, `What`) from the punctuation and all-caps scaffolding
//! between them (`BOX0=LOC(`, `')\nIMAGE0=CROP(`), so a phrase of the question and the same
//! phrase inside the program are the same tokens: copying it is an identity the model
//! learns once, not a mapping per phrase. Byte-level encoding makes any text encodable
//! and decoding exact.

use crate::llama::{Config, KvCache, Llama};
use crate::weights::{load_config, var_builder, WeightsError};
use candle_core::{DType, Device, Tensor};
use sdvp_core::ProgramStyle;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

/// Tasks the generator is conditioned on.
pub const TASKS: [&str; 3] = ["gqa-world", "nlvr-world", "attr-world"];

pub const PAD: &str = "<pad>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const PROGRAM: &str = "<program>";

/// Words (lower-case runs with underscores, or one capital and lower-case letters), each
/// with its leading space; everything between them is left to BPE merges.
pub const WORD_PATTERN: &str = r" ?[a-z][a-z_]*| ?[A-Z][a-z]+";

fn task_token(task: &str) -> String {
    format!("<task:{task}>")
}
fn style_token(style: ProgramStyle) -> String {
    format!("<style:{}>", style.as_str())
}

/// Every special token, in id order (`<pad>` is 0).
pub fn special_tokens() -> Vec<String> {
    let mut v = vec![PAD.to_string(), BOS.into(), EOS.into(), PROGRAM.into()];
    v.extend(TASKS.iter().map(|t| task_token(t)));
    v.extend(
        [ProgramStyle::Step, ProgramStyle::Python]
            .into_iter()
            .map(style_token),
    );
    v
}

/// Trains the tokenizer on `texts` (questions and programs, each a separate text).
pub fn train_tokenizer<I>(texts: I, vocab_size: usize) -> tokenizers::Result<Tokenizer>
where
    I: Iterator<Item = String> + Send,
{
    let split = Split::new(
        SplitPattern::Regex(WORD_PATTERN.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )?;
    let bytes = ByteLevel::default()
        .add_prefix_space(false)
        .trim_offsets(false)
        .use_regex(false);
    let pre = Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(bytes),
    ]);
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(pre));
    tok.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    let specials: Vec<AddedToken> = special_tokens()
        .into_iter()
        .map(|s| AddedToken::from(s, true))
        .collect();
    let mut trainer = TrainerWrapper::BpeTrainer(
        BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials.clone())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build(),
    );
    tok.train(&mut trainer, texts)?;
    tok.add_special_tokens(&specials);
    Ok(tok)
}

/// Ids of the special tokens in a trained tokenizer.
#[derive(Debug, Clone)]
pub struct Specials {
    pub pad: u32,
    pub bos: u32,
    pub eos: u32,
    pub program: u32,
    tasks: Vec<(String, u32)>,
    styles: Vec<(ProgramStyle, u32)>,
}

impl Specials {
    pub fn of(tok: &Tokenizer) -> Result<Self, String> {
        let id = |s: &str| {
            tok.token_to_id(s)
                .ok_or_else(|| format!("the tokenizer has no special token {s}"))
        };
        Ok(Self {
            pad: id(PAD)?,
            bos: id(BOS)?,
            eos: id(EOS)?,
            program: id(PROGRAM)?,
            tasks: TASKS
                .iter()
                .map(|t| Ok((t.to_string(), id(&task_token(t))?)))
                .collect::<Result<_, String>>()?,
            styles: [ProgramStyle::Step, ProgramStyle::Python]
                .into_iter()
                .map(|s| Ok((s, id(&style_token(s))?)))
                .collect::<Result<_, String>>()?,
        })
    }
}

/// Token ids of `text` (no special tokens added).
pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
    tok.encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| format!("tokenizing {text:?}: {e}"))
}

/// `<s> <task:T> <style:S> question <program>`: what the model continues with a program.
pub fn condition_ids(
    tok: &Tokenizer,
    sp: &Specials,
    task: &str,
    style: ProgramStyle,
    question: &str,
) -> Result<Vec<u32>, String> {
    // An unknown task (a real dataset) is conditioned as the closest world task.
    let task_id = sp
        .tasks
        .iter()
        .find(|(t, _)| t == task)
        .or_else(|| {
            let pair = matches!(task, "nlvr2" | "nlvr-world");
            sp.tasks
                .iter()
                .find(|(t, _)| t == if pair { "nlvr-world" } else { "gqa-world" })
        })
        .map(|(_, id)| *id)
        .ok_or("the tokenizer has no task tokens")?;
    let style_id = sp
        .styles
        .iter()
        .find(|(s, _)| *s == style)
        .map(|(_, id)| *id)
        .ok_or("the tokenizer has no style tokens")?;
    let mut ids = vec![sp.bos, task_id, style_id];
    ids.extend(encode(tok, question.trim())?);
    ids.push(sp.program);
    Ok(ids)
}

/// A trained generator loaded from a checkpoint directory (`config.json`,
/// `model.safetensors`, `tokenizer.json`).
pub struct ProgramLm {
    pub model: Llama,
    pub tokenizer: Tokenizer,
    pub specials: Specials,
    pub dir: PathBuf,
}

impl ProgramLm {
    pub fn load(dir: &Path) -> Result<Self, WeightsError> {
        let config: Config = load_config(&dir.join("config.json"))?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| {
            crate::weights::config_error(&tok_path, "tokenizer", format!("cannot load: {e}"))
        })?;
        let specials = Specials::of(&tokenizer)
            .map_err(|e| crate::weights::config_error(&tok_path, "added_tokens", e))?;
        if tokenizer.get_vocab_size(true) > config.vocab_size {
            return Err(crate::weights::config_error(
                &dir.join("config.json"),
                "vocab_size",
                format!(
                    "{} is smaller than the tokenizer's {} tokens",
                    config.vocab_size,
                    tokenizer.get_vocab_size(true)
                ),
            ));
        }
        let weights = dir.join("model.safetensors");
        let vb = var_builder(std::slice::from_ref(&weights), DType::F32, &Device::Cpu)?;
        let model = Llama::new(vb, &config).map_err(|e| WeightsError::Safetensors {
            path: weights,
            message: e.to_string(),
        })?;
        Ok(Self {
            model,
            tokenizer,
            specials,
            dir: dir.to_path_buf(),
        })
    }

    pub fn condition(
        &self,
        task: &str,
        style: ProgramStyle,
        question: &str,
    ) -> Result<Vec<u32>, String> {
        condition_ids(&self.tokenizer, &self.specials, task, style, question)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| format!("decoding {} tokens: {e}", ids.len()))
    }

    /// Logits after `ids`, reusing what `state` holds when `ids` extends it.
    pub fn next_logits(&self, ids: &[u32], state: &mut Decoding) -> Result<Vec<f32>, String> {
        state.next_logits(&self.model, ids)
    }
}

/// The KV cache of one sequence being decoded, with the ids it holds.
#[derive(Clone, Default)]
pub struct Decoding {
    ids: Vec<u32>,
    cache: KvCache,
}

impl Decoding {
    /// Logits after `ids`; the cache is reused when `ids` extends what it holds and
    /// rebuilt otherwise.
    pub fn next_logits(&mut self, model: &Llama, ids: &[u32]) -> Result<Vec<f32>, String> {
        if ids.len() <= self.ids.len() || !ids.starts_with(&self.ids) {
            *self = Decoding::default();
        }
        let logits = model
            .next_logits(&ids[self.ids.len()..], &mut self.cache)
            .map_err(|e| e.to_string())?;
        self.ids = ids.to_vec();
        Ok(logits)
    }
}

/// The id of the largest finite logit.
fn argmax(logits: &[f32]) -> Option<u32> {
    logits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
}

/// Greedy continuation of `condition` until `eos`, at most `max_tokens` tokens or the
/// model's positions; returns the generated ids (without `eos`).
pub fn greedy(
    model: &Llama,
    condition: &[u32],
    eos: u32,
    max_tokens: usize,
) -> Result<Vec<u32>, String> {
    let mut ids = condition.to_vec();
    let mut state = Decoding::default();
    let limit = model.config().max_position_embeddings;
    for _ in 0..max_tokens {
        if ids.len() >= limit {
            break;
        }
        let logits = state.next_logits(model, &ids)?;
        let next = argmax(&logits).ok_or("the model produced no finite logits")?;
        if next == eos {
            break;
        }
        ids.push(next);
    }
    Ok(ids[condition.len()..].to_vec())
}

/// Sequences decoded together, one token per row per step: conditions left-padded to one
/// length, each row at its own positions, padding masked out of attention. A batch costs
/// about what one sequence costs on a CPU, where the small model's time is per-op overhead.
pub struct BatchDecoder<'a> {
    model: &'a Llama,
    cache: KvCache,
    keep: Vec<Vec<f32>>,
    next_pos: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

impl<'a> BatchDecoder<'a> {
    pub fn new(model: &'a Llama, conditions: &[Vec<u32>]) -> Result<Self, String> {
        let len = conditions.iter().map(Vec::len).max().unwrap_or(0);
        if len == 0 {
            return Err("no input tokens".into());
        }
        let b = conditions.len();
        let mut ids = Vec::with_capacity(b * len);
        let mut pos = Vec::with_capacity(b * len);
        let mut keep = Vec::with_capacity(b);
        for c in conditions {
            let pad = len - c.len();
            ids.extend(std::iter::repeat_n(0u32, pad).chain(c.iter().copied()));
            pos.extend(std::iter::repeat_n(0u32, pad).chain(0..c.len() as u32));
            keep.push(
                std::iter::repeat_n(0f32, pad)
                    .chain(std::iter::repeat_n(1f32, c.len()))
                    .collect::<Vec<_>>(),
            );
        }
        let mut d = Self {
            model,
            cache: KvCache::default(),
            keep,
            next_pos: conditions.iter().map(|c| c.len() as u32).collect(),
            logits: Vec::new(),
        };
        d.step(ids, pos, len)?;
        Ok(d)
    }

    fn step(&mut self, ids: Vec<u32>, pos: Vec<u32>, t: usize) -> Result<(), String> {
        let b = self.keep.len();
        let dev = Device::Cpu;
        let k = self.keep.first().map_or(0, Vec::len);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (b, t), &dev)?;
            let pos = Tensor::from_vec(pos, (b, t), &dev)?;
            let keep: Vec<f32> = self.keep.iter().flatten().copied().collect();
            let keep = Tensor::from_vec(keep, (b, k), &dev)?;
            let h = self
                .model
                .hidden_padded(&ids, &pos, &keep, &mut self.cache)?;
            let last = h.narrow(1, t - 1, 1)?;
            self.model
                .logits(&last)?
                .squeeze(1)?
                .to_dtype(DType::F32)?
                .to_vec2()
        };
        self.logits = run().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Logits of every row's next token.
    pub fn logits(&self) -> &[Vec<f32>] {
        &self.logits
    }

    /// The longest row (positions used), to stop before the model's limit.
    pub fn max_position(&self) -> usize {
        self.next_pos.iter().copied().max().unwrap_or(0) as usize
    }

    /// Appends one token to every row (a finished row's token is ignored by the caller).
    pub fn push(&mut self, tokens: &[u32]) -> Result<(), String> {
        if tokens.len() != self.keep.len() {
            return Err(format!(
                "{} tokens for {} rows",
                tokens.len(),
                self.keep.len()
            ));
        }
        for row in &mut self.keep {
            row.push(1.0);
        }
        let pos = self.next_pos.clone();
        for p in &mut self.next_pos {
            *p += 1;
        }
        self.step(tokens.to_vec(), pos, 1)
    }
}

/// Greedy continuations of `conditions`, decoded together (see [`greedy`]).
pub fn greedy_batch(
    model: &Llama,
    conditions: &[Vec<u32>],
    eos: u32,
    max_tokens: usize,
) -> Result<Vec<Vec<u32>>, String> {
    if conditions.is_empty() {
        return Ok(Vec::new());
    }
    let limit = model.config().max_position_embeddings;
    let mut d = BatchDecoder::new(model, conditions)?;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); conditions.len()];
    let mut done = vec![false; conditions.len()];
    for _ in 0..max_tokens {
        let next: Vec<u32> = d
            .logits()
            .iter()
            .map(|l| argmax(l).unwrap_or(eos))
            .collect();
        for (i, &t) in next.iter().enumerate() {
            if !done[i] {
                if t == eos {
                    done[i] = true;
                } else {
                    out[i].push(t);
                }
            }
        }
        if done.iter().all(|d| *d) || d.max_position() + 1 >= limit {
            break;
        }
        d.push(&next)?;
    }
    Ok(out)
}
