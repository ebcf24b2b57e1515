//! The `embedded` backend: the project's own small program generator.
//!
//! The model itself is trained by a later issue; this file fixes the contract it must meet so
//! that work can plug in without touching the driver:
//!
//! * **Input.** The small model sees no in-context examples (it is trained on the task): its
//!   conditioning text is [`condition_text`] — a task tag, a style tag and the question.
//! * **Output.** The program text itself, token by token, until the model's end token or
//!   `max_tokens`; no prose, no fences (extraction still runs, so a stray fence is harmless).
//! * **Decoding.** Greedy when `temperature == 0`; otherwise softmax sampling with
//!   temperature and nucleus (`top_p`) cut, from a generator seeded by
//!   `seed + sample_index`, so a sample is reproducible.
//!
//! Until weights exist, [`EmbeddedGenerator::from_dir`] fails with a clear message: a made-up
//! program would poison every measurement downstream.

use crate::backend::{GenError, GenRequest, Generator};
use crate::{ProgramStyle, Task};
use sdvp_core::rng::SplitMix64;
use std::path::Path;

/// What a trained small generator provides.
pub trait EmbeddedModel: Send + Sync {
    /// Identity of the weights (e.g. their sha256), part of the cache key.
    fn identity(&self) -> String;
    fn encode(&self, text: &str) -> Result<Vec<u32>, String>;
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
    fn end_token(&self) -> u32;
    /// Logits over the vocabulary for the token following `ids` (conditioning + generated).
    fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>, String>;
}

/// The conditioning text of the small generator.
pub fn condition_text(task: Task, style: ProgramStyle, question: &str) -> String {
    format!(
        "<task:{}> <style:{}>\n{}\n",
        task.as_str(),
        style.as_str(),
        question.trim()
    )
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

    /// Load the trained generator from `dir`. No trained generator exists yet, so this
    /// always explains what is missing instead of pretending.
    pub fn from_dir(dir: &Path) -> Result<Self, GenError> {
        Err(GenError::fatal(format!(
            "the embedded program generator has no weights yet (looked in {}): it is trained \
             by a later part of the project; use --generator gold or openai for now",
            dir.display()
        )))
    }

    fn one(&self, r: &GenRequest) -> Result<String, GenError> {
        let mut ids = self
            .model
            .encode(&condition_text(r.task, r.style, &r.question))
            .map_err(GenError::fatal)?;
        let start = ids.len();
        let mut rng = SplitMix64::new(r.sampling.seed.wrapping_add(r.sample_index as u64));
        for _ in 0..r.sampling.max_tokens {
            let logits = self.model.next_logits(&ids).map_err(GenError::request)?;
            let Some(next) =
                pick_token(&logits, r.sampling.temperature, r.sampling.top_p, &mut rng)
            else {
                return Err(GenError::request("the model produced no finite logits"));
            };
            if next == self.model.end_token() {
                break;
            }
            ids.push(next);
        }
        self.model.decode(&ids[start..]).map_err(GenError::request)
    }
}

impl Generator for EmbeddedGenerator {
    fn backend(&self) -> String {
        "embedded".into()
    }
    fn model(&self) -> String {
        self.model.identity()
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        requests.iter().map(|r| self.one(r)).collect()
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
        fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
            Ok(text.bytes().map(u32::from).collect())
        }
        fn decode(&self, ids: &[u32]) -> Result<String, String> {
            Ok(ids.iter().map(|&i| i as u8 as char).collect())
        }
        fn end_token(&self) -> u32 {
            0
        }
        fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>, String> {
            let prefix = condition_text(Task::GqaWorld, ProgramStyle::Step, "q").len();
            let pos = ids.len() - prefix;
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
        assert!(err.message.contains("no weights"));
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
