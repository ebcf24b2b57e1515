//! The generation driver: prompts → (cache | generator) → extraction and validation →
//! re-sampling → one [`Outcome`] per question.
//!
//! Questions go to the generator in chunks so a server sees many requests at once (the
//! OpenAI backend runs them concurrently) while outcomes still stream out steadily. A
//! question whose samples are all invalid is re-sampled up to `max_resamples` times, at a
//! temperature of at least `resample_temperature` (re-asking a greedy decoder would only
//! repeat the same mistake); then it is recorded as a failure with its raw texts kept.

use crate::backend::{GenError, GenRequest, Generator, Sampling};
use crate::cache::{Cache, CacheStats};
use crate::extract::Checker;
use crate::prompt::{self, PromptOptions};
use crate::questions::Question;
use sdvp_core::value::normalize_answer;
use sdvp_program::steps::Registry;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub prompt: PromptOptions,
    pub sampling: Sampling,
    /// Samples per question (at least 1).
    pub samples: usize,
    /// Extra samples per question when none of its samples is valid.
    pub max_resamples: usize,
    pub resample_temperature: f32,
    /// Questions per batch handed to the generator.
    pub chunk: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            prompt: PromptOptions::default(),
            sampling: Sampling::default(),
            samples: 1,
            max_resamples: 2,
            resample_temperature: 0.7,
            chunk: 32,
        }
    }
}

/// One sample of one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRecord {
    pub index: usize,
    /// The generated text (absent when the request itself failed).
    pub raw: Option<String>,
    /// The extracted program (present also when invalid, to show what was rejected).
    pub program: Option<String>,
    pub valid: bool,
    pub error: Option<String>,
    pub cached: bool,
    /// The answer this sample's program gave when executed for a vote (absent when no vote
    /// ran, or the program was invalid or failed to run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// The result for one question: the `programs.jsonl` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub id: String,
    /// The selected valid program (the first valid sample, or the vote's winner), or null.
    pub program: Option<String>,
    /// The raw text of the selected sample, or of the last sample when none is valid.
    pub raw: Option<String>,
    /// Why there is no program, or null.
    pub failure: Option<String>,
    pub samples: Vec<SampleRecord>,
    /// Index into `samples` of the selected sample, or null.
    pub selected: Option<usize>,
}

/// How the program of a question with several valid samples is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Select {
    /// The first valid sample.
    First,
    /// The sample whose executed answer wins the majority ([`vote`]).
    Vote,
}

impl std::str::FromStr for Select {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Select::First),
            "vote" => Ok(Select::Vote),
            _ => Err(format!("unknown selection `{s}` (expected first or vote)")),
        }
    }
}

impl Outcome {
    /// Record the executed answers of the samples (aligned with `samples`; invalid samples
    /// are not run and should be `None`) and select the majority's program. When no sample
    /// produced an answer the first valid sample stays selected, so a question whose
    /// programs all fail to run keeps a program rather than losing it.
    pub fn apply_vote(&mut self, answers: &[Option<String>]) {
        let mut ballot: Vec<Option<String>> = Vec::with_capacity(self.samples.len());
        for (i, s) in self.samples.iter_mut().enumerate() {
            s.answer = if s.valid {
                answers.get(i).cloned().flatten()
            } else {
                None
            };
            ballot.push(s.answer.clone());
        }
        if let Some(winner) = vote(&ballot) {
            let s = &self.samples[winner];
            self.program = s.program.clone();
            self.raw = s.raw.clone();
            self.selected = Some(winner);
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    pub questions: usize,
    pub with_program: usize,
    pub failures: usize,
    /// Requests that reached the generator (cache misses).
    pub requests: usize,
    pub cache: CacheStats,
}

/// The index of the sample whose answer is the most common; ties go to the answer that
/// occurs first in sample order, and the sample returned is that answer's first occurrence.
/// Samples without an answer (failed to run) do not vote. `None` when nobody voted.
/// Answers are compared as scoring compares them ([`normalize_answer`]: `True` is `yes`).
pub fn vote(answers: &[Option<String>]) -> Option<usize> {
    let norm = normalize_answer;
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, a) in answers.iter().enumerate() {
        if let Some(a) = a {
            counts.entry(norm(a)).or_insert((0, i)).0 += 1;
        }
    }
    counts
        .into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, first)| first)
}

struct Pending<'q> {
    question: &'q Question,
    prompt: prompt::Prompt,
    samples: Vec<SampleRecord>,
    resamples_left: usize,
    next_index: usize,
}

impl Pending<'_> {
    fn has_valid(&self) -> bool {
        self.samples.iter().any(|s| s.valid)
    }
}

/// Everything the driver needs besides the questions.
pub struct Driver<'a> {
    pub generator: &'a dyn Generator,
    pub cache: &'a Cache,
    pub checker: &'a Checker,
    pub registry: &'a Registry,
    pub config: RunConfig,
}

impl Driver<'_> {
    fn cache_key(&self, r: &GenRequest) -> String {
        Cache::key(&json!({
            "v": 1,
            "backend": self.generator.backend(),
            "model": self.generator.model(),
            "prompt": r.prompt,
            "sampling": r.sampling,
            "sample_index": r.sample_index,
        }))
    }

    fn request(&self, p: &Pending, index: usize) -> GenRequest {
        let mut sampling = self.config.sampling.clone();
        if index >= self.config.samples.max(1) {
            sampling.temperature = sampling.temperature.max(self.config.resample_temperature);
        }
        GenRequest {
            id: p.question.id.clone(),
            question: p.question.question.clone(),
            task: self.checker.task,
            style: self.checker.style,
            prompt: p.prompt.clone(),
            sampling,
            sample_index: index,
        }
    }

    /// Answer requests from the cache where possible, the generator otherwise.
    fn fetch(
        &self,
        requests: &[GenRequest],
        stats: &mut RunStats,
    ) -> Vec<(Result<String, GenError>, bool)> {
        let cacheable = self.generator.cacheable();
        let keys: Vec<Option<String>> = requests
            .iter()
            .map(|r| cacheable.then(|| self.cache_key(r)))
            .collect();
        let mut out: Vec<Option<(Result<String, GenError>, bool)>> = keys
            .iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| self.cache.get(k))
                    .map(|t| (Ok(t), true))
            })
            .collect();
        let missing: Vec<usize> = (0..requests.len()).filter(|&i| out[i].is_none()).collect();
        let batch: Vec<GenRequest> = missing.iter().map(|&i| requests[i].clone()).collect();
        stats.requests += batch.len();
        let answers = if batch.is_empty() {
            Vec::new()
        } else {
            self.generator.generate(&batch)
        };
        for (slot, answer) in missing.into_iter().zip(answers) {
            if let (Ok(text), Some(key)) = (&answer, &keys[slot]) {
                self.cache.put(key, text);
            }
            out[slot] = Some((answer, false));
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    (
                        Err(GenError::request("the generator returned too few results")),
                        false,
                    )
                })
            })
            .collect()
    }

    fn record(
        &self,
        index: usize,
        answer: Result<String, GenError>,
        cached: bool,
    ) -> Result<SampleRecord, GenError> {
        let mut rec = SampleRecord {
            index,
            raw: None,
            program: None,
            valid: false,
            error: None,
            cached,
            answer: None,
        };
        match answer {
            Ok(raw) => {
                match self.checker.check(&raw) {
                    Ok(program) => {
                        rec.program = Some(program);
                        rec.valid = true;
                    }
                    Err((program, why)) => {
                        rec.program = program;
                        rec.error = Some(why.to_string());
                    }
                }
                rec.raw = Some(raw);
            }
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => rec.error = Some(e.message),
        }
        Ok(rec)
    }

    /// Generate for every question, handing each outcome to `done` in question order.
    /// A fatal backend error or the deadline stops the run with that error; outcomes already
    /// handed over stay valid.
    pub fn run(
        &self,
        questions: &[Question],
        mut done: impl FnMut(Outcome),
    ) -> Result<RunStats, GenError> {
        let mut stats = RunStats::default();
        let samples = self.config.samples.max(1);
        for chunk in questions.chunks(self.config.chunk.max(1)) {
            let mut pending: Vec<Pending> = chunk
                .iter()
                .map(|q| Pending {
                    question: q,
                    prompt: prompt::build(
                        self.checker.task,
                        self.checker.style,
                        self.registry,
                        self.config.prompt,
                        &q.question,
                    ),
                    samples: Vec::new(),
                    resamples_left: if self.generator.can_resample() {
                        self.config.max_resamples
                    } else {
                        0
                    },
                    next_index: samples,
                })
                .collect();
            let mut wanted: Vec<(usize, usize)> = (0..pending.len())
                .flat_map(|p| (0..samples).map(move |s| (p, s)))
                .collect();
            while !wanted.is_empty() {
                let requests: Vec<GenRequest> = wanted
                    .iter()
                    .map(|&(p, s)| self.request(&pending[p], s))
                    .collect();
                let answers = self.fetch(&requests, &mut stats);
                for (&(p, s), (answer, cached)) in wanted.iter().zip(answers) {
                    let rec = self.record(s, answer, cached)?;
                    pending[p].samples.push(rec);
                }
                wanted.clear();
                for (i, p) in pending.iter_mut().enumerate() {
                    if !p.has_valid() && p.resamples_left > 0 && p.samples.len() >= samples {
                        p.resamples_left -= 1;
                        wanted.push((i, p.next_index));
                        p.next_index += 1;
                    }
                }
            }
            for p in pending {
                let outcome = finish(p);
                stats.questions += 1;
                if outcome.program.is_some() {
                    stats.with_program += 1;
                } else {
                    stats.failures += 1;
                }
                done(outcome);
            }
        }
        stats.cache = self.cache.stats();
        Ok(stats)
    }
}

fn finish(p: Pending) -> Outcome {
    let selected = p.samples.iter().position(|s| s.valid);
    let (program, raw, failure) = match selected.map(|i| &p.samples[i]) {
        Some(s) => (s.program.clone(), s.raw.clone(), None),
        None => {
            let last = p.samples.last();
            let why = last
                .and_then(|s| s.error.clone())
                .unwrap_or_else(|| "no sample".into());
            (
                None,
                last.and_then(|s| s.raw.clone()),
                Some(format!(
                    "no valid program in {} samples; last: {why}",
                    p.samples.len()
                )),
            )
        }
    };
    Outcome {
        id: p.question.id.clone(),
        program,
        raw,
        failure,
        samples: p.samples,
        selected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(x: &[Option<&str>]) -> Vec<Option<String>> {
        x.iter().map(|s| s.map(String::from)).collect()
    }

    #[test]
    fn vote_majority_and_ties_by_sample_order() {
        assert_eq!(vote(&a(&[Some("no"), Some("yes"), Some("yes")])), Some(1));
        assert_eq!(
            vote(&a(&[Some("red"), Some("blue"), Some("blue"), Some("red")])),
            Some(0)
        );
        assert_eq!(
            vote(&a(&[None, Some("2"), Some(" 3"), Some("3 ")])),
            Some(2)
        );
        assert_eq!(vote(&a(&[Some("Yes"), Some("yes"), Some("no")])), Some(0));
        assert_eq!(vote(&a(&[None, None])), None);
        // Scoring's normalisation: "True" and "yes" are one answer, as are "no." and "False".
        assert_eq!(
            vote(&a(&[Some("no."), Some("True"), Some("yes"), Some("False")])),
            Some(0)
        );
        assert_eq!(
            vote(&a(&[Some("no"), Some("True"), Some(" yes ")])),
            Some(1)
        );
        assert_eq!(vote(&[]), None);
    }

    fn sample(index: usize, program: &str, valid: bool) -> SampleRecord {
        SampleRecord {
            index,
            raw: Some(format!("raw {program}")),
            program: Some(program.into()),
            valid,
            error: None,
            cached: false,
            answer: None,
        }
    }

    fn outcome(samples: Vec<SampleRecord>) -> Outcome {
        let selected = samples.iter().position(|s| s.valid);
        Outcome {
            id: "q".into(),
            program: selected.and_then(|i| samples[i].program.clone()),
            raw: selected.and_then(|i| samples[i].raw.clone()),
            failure: None,
            samples,
            selected,
        }
    }

    #[test]
    fn apply_vote_selects_the_majority_and_ignores_invalid_samples() {
        let mut o = outcome(vec![
            sample(0, "A", true),
            sample(1, "B", false),
            sample(2, "C", true),
            sample(3, "D", true),
        ]);
        // The invalid sample's "answer" must not count even if one is passed.
        o.apply_vote(&a(&[Some("1"), Some("2"), Some("2"), Some("2")]));
        assert_eq!(o.selected, Some(2));
        assert_eq!(o.program.as_deref(), Some("C"));
        assert_eq!(o.raw.as_deref(), Some("raw C"));
        assert_eq!(o.samples[1].answer, None);
        assert_eq!(o.samples[3].answer.as_deref(), Some("2"));
        // Nobody answered: the first valid sample stays.
        let mut o = outcome(vec![sample(0, "A", false), sample(1, "B", true)]);
        o.apply_vote(&a(&[None, None]));
        assert_eq!((o.selected, o.program.as_deref()), (Some(1), Some("B")));
        assert_eq!("vote".parse::<Select>(), Ok(Select::Vote));
        assert!("best".parse::<Select>().is_err());
    }
}
