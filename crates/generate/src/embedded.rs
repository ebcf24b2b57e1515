//! The `embedded` backend: the project's own small program generator.
//!
//! The model itself is trained by a later issue; this file fixes the contract it must meet so
//! that work can plug in without touching the driver:
//!
//! * **Input.** The small model sees no in-context examples (it is trained on the tasks):
//!   it is conditioned on the task, the style and the question, in the token layout its
//!   training used ([`EmbeddedModel::condition`]).
//! * **Output.** The program text itself, token by token, until the model's end token or
//!   `max_tokens`; no prose, no fences (extraction still runs, so a stray fence is harmless).
//! * **Decoding.** Greedy when `temperature == 0`; otherwise softmax sampling with
//!   temperature and nucleus (`top_p`) cut, from a generator seeded by
//!   `seed + sample_index`, so a sample is reproducible.
//!
//! The shipped model is a Llama trained by `sdvp train generator` (`weights/generator`);
//! a missing or damaged checkpoint is a fatal error naming the file and the rebuild command.

use crate::backend::{GenError, GenRequest, Generator};
use crate::{ProgramStyle, Task};
use sdvp_core::rng::SplitMix64;
use std::path::Path;

/// What a trained small generator provides.
pub trait EmbeddedModel: Send + Sync {
    /// Identity of the weights (e.g. their sha256), part of the cache key.
    fn identity(&self) -> String;
    /// The token ids the model continues with a program for `question`.
    fn condition(
        &self,
        task: Task,
        style: ProgramStyle,
        question: &str,
    ) -> Result<Vec<u32>, String>;
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
    fn end_token(&self) -> u32;
    /// The longest sequence (condition and program) the model can read, if bounded:
    /// decoding stops there, and the cut program fails validation like any other.
    fn max_len(&self) -> Option<usize> {
        None
    }
    /// Logits over the vocabulary for the token following `ids` (conditioning + generated).
    fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>, String>;
    /// Sequences decoded together, starting from `conditions`; by default each row is
    /// stepped alone through [`EmbeddedModel::next_logits`].
    fn batch<'a>(&'a self, conditions: &[Vec<u32>]) -> Result<Box<dyn BatchLogits + 'a>, String> {
        let logits = conditions
            .iter()
            .map(|c| self.next_logits(c))
            .collect::<Result<_, _>>()?;
        Ok(Box::new(Sequential {
            model: self,
            rows: conditions.to_vec(),
            logits,
        }))
    }
}

/// A batch being decoded: the logits of each row's next token, and one token per row
/// appended at a time.
pub trait BatchLogits {
    fn logits(&self) -> &[Vec<f32>];
    fn push(&mut self, tokens: &[u32]) -> Result<(), String>;
}

struct Sequential<'a, M: ?Sized> {
    model: &'a M,
    rows: Vec<Vec<u32>>,
    logits: Vec<Vec<f32>>,
}

impl<M: EmbeddedModel + ?Sized> BatchLogits for Sequential<'_, M> {
    fn logits(&self) -> &[Vec<f32>] {
        &self.logits
    }
    fn push(&mut self, tokens: &[u32]) -> Result<(), String> {
        for (row, &t) in self.rows.iter_mut().zip(tokens) {
            row.push(t);
        }
        self.logits = self
            .rows
            .iter()
            .map(|r| self.model.next_logits(r))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Choose the next token from logits per the decoding contract above.
pub fn pick_token(
    logits: &[f32],
    temperature: f32,
    top_p: f32,
    rng: &mut SplitMix64,
) -> Option<u32> {
    let argmax = logits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)?;
    if temperature <= 0.0 {
        return Some(argmax);
    }
    let max = logits[argmax as usize];
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as u32, (((v - max) / temperature) as f64).exp()))
        .collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut kept = Vec::new();
    let mut mass = 0.0;
    for (id, p) in probs {
        let p = p / total;
        kept.push((id, p));
        mass += p;
        if mass >= top_p.clamp(0.0, 1.0) as f64 {
            break;
        }
    }
    let mut x = rng.next_f64() * mass;
    for (id, p) in &kept {
        if x < *p {
            return Some(*id);
        }
        x -= p;
    }
    kept.last().map(|k| k.0)
}

pub struct EmbeddedGenerator {
    model: Box<dyn EmbeddedModel>,
}

impl EmbeddedGenerator {
    pub fn new(model: Box<dyn EmbeddedModel>) -> Self {
        Self { model }
    }

    /// Load the trained generator from `dir` (`config.json`, `model.safetensors`,
    /// `tokenizer.json`).
    pub fn from_dir(dir: &Path) -> Result<Self, GenError> {
        let model = crate::embedded_model::LlamaProgramModel::load(dir)?;
        Ok(Self::new(Box::new(model)))
    }

    /// Decodes `requests` together (one batch), each with its own sampling settings and
    /// random stream.
    fn batch(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        let mut results: Vec<Option<Result<String, GenError>>> = vec![None; requests.len()];
        let mut rows = Vec::new();
        let mut conditions = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            match self.model.condition(r.task, r.style, &r.question) {
                Ok(c) => {
                    rows.push(i);
                    conditions.push(c);
                }
                Err(e) => results[i] = Some(Err(GenError::request(e))),
            }
        }
        if let Err(e) = self.decode_rows(requests, &rows, &conditions, &mut results) {
            for &i in &rows {
                results[i].get_or_insert_with(|| Err(GenError::request(e.clone())));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GenError::request("not decoded"))))
            .collect()
    }

    fn decode_rows(
        &self,
        requests: &[GenRequest],
        rows: &[usize],
        conditions: &[Vec<u32>],
        results: &mut [Option<Result<String, GenError>>],
    ) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let eos = self.model.end_token();
        let mut dec = self.model.batch(conditions)?;
        let mut rngs: Vec<SplitMix64> = rows
            .iter()
            .map(|&i| {
                let s = &requests[i].sampling;
                SplitMix64::new(s.seed.wrapping_add(requests[i].sample_index as u64))
            })
            .collect();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
        let mut done = vec![false; rows.len()];
        let longest = conditions.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0.. {
            let mut next = vec![eos; rows.len()];
            for (k, &i) in rows.iter().enumerate() {
                let s = &requests[i].sampling;
                if done[k] {
                    continue;
                }
                if step >= s.max_tokens as usize {
                    done[k] = true;
                    continue;
                }
                match pick_token(&dec.logits()[k], s.temperature, s.top_p, &mut rngs[k]) {
                    None => {
                        results[i] = Some(Err(GenError::request(
                            "the model produced no finite logits",
                        )));
                        done[k] = true;
                    }
                    Some(t) if t == eos => done[k] = true,
                    Some(t) => {
                        out[k].push(t);
                        next[k] = t;
                    }
                }
            }
            let full = self
                .model
                .max_len()
                .is_some_and(|m| longest + step + 1 >= m);
            if done.iter().all(|d| *d) || full {
                break;
            }
            dec.push(&next)?;
        }
        for (k, &i) in rows.iter().enumerate() {
            if results[i].is_none() {
                results[i] = Some(self.model.decode(&out[k]).map_err(GenError::request));
            }
        }
        Ok(())
    }
}

/// How many requests are decoded together.
const BATCH: usize = 32;

/// Re-samples of a question whose program is invalid, by default. A sample of this model
/// costs milliseconds (a server's costs seconds and money: those default to 2), and on
/// phrasings the training split never had, more of them turn into valid programs
/// (`bench/generator.sh`: nlvr-world held-out step programs, 58 of 500 without a valid
/// program after 2, 24 after 8).
pub const RESAMPLES: usize = 8;

impl Generator for EmbeddedGenerator {
    fn backend(&self) -> String {
        "embedded".into()
    }
    fn model(&self) -> String {
        self.model.identity()
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        requests.chunks(BATCH).flat_map(|c| self.batch(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Sampling;
    use crate::prompt::Prompt;

    /// A "model" over bytes that spells a fixed text and then ends.
    struct Speller(Vec<u8>);
    impl EmbeddedModel for Speller {
        fn identity(&self) -> String {
            "speller".into()
        }
        fn condition(
            &self,
            _task: Task,
            _style: ProgramStyle,
            question: &str,
        ) -> Result<Vec<u32>, String> {
            Ok(question.bytes().map(u32::from).collect())
        }
        fn decode(&self, ids: &[u32]) -> Result<String, String> {
            Ok(ids.iter().map(|&i| i as u8 as char).collect())
        }
        fn end_token(&self) -> u32 {
            0
        }
        fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>, String> {
            let pos = ids.len() - 1;
            let want = self.0.get(pos).copied().map(u32::from).unwrap_or(0);
            let mut l = vec![0.0; 256];
            l[want as usize] = 50.0;
            Ok(l)
        }
    }

    fn request(temperature: f32) -> GenRequest {
        GenRequest {
            id: "1".into(),
            question: "q".into(),
            task: Task::GqaWorld,
            style: ProgramStyle::Step,
            prompt: Prompt::default(),
            sampling: Sampling {
                temperature,
                ..Sampling::default()
            },
            sample_index: 0,
        }
    }

    #[test]
    fn decodes_until_the_end_token() {
        let g = EmbeddedGenerator::new(Box::new(Speller(b"A=B()".to_vec())));
        for t in [0.0, 0.7] {
            assert_eq!(g.generate(&[request(t)])[0].as_deref(), Ok("A=B()"));
        }
    }

    #[test]
    fn missing_weights_is_a_clear_fatal_error() {
        let err = EmbeddedGenerator::from_dir(Path::new("/nowhere"))
            .err()
            .unwrap();
        assert!(err.stops_run());
        assert!(err.message.contains("/nowhere"), "{}", err.message);
        assert!(
            err.message.contains("sdvp train generator"),
            "{}",
            err.message
        );
    }

    #[test]
    fn sampling_respects_top_p_and_seed() {
        let logits = [1.0, 3.0, 2.9, -5.0];
        let mut a = SplitMix64::new(9);
        let mut b = SplitMix64::new(9);
        let xs: Vec<_> = (0..50)
            .map(|_| pick_token(&logits, 1.0, 0.6, &mut a))
            .collect();
        let ys: Vec<_> = (0..50)
            .map(|_| pick_token(&logits, 1.0, 0.6, &mut b))
            .collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| matches!(x, Some(1) | Some(2))));
        assert_eq!(pick_token(&logits, 0.0, 1.0, &mut a), Some(1));
        assert_eq!(pick_token(&[f32::NAN], 0.0, 1.0, &mut a), None);
    }
}
