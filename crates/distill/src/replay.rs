//! Filtering labels by replay: does the program reach the gold answer with the teacher's
//! sub-answers in place of the student's?
//!
//! The program is executed again, but every model call is answered from its own trace (no
//! model runs); the calls the teacher labelled are answered with the labels instead. When a
//! substituted answer changes what the program asks next (a crop at a teacher's box, say),
//! the new request has no recorded answer: a fallback backend (the pipeline the traces came
//! from) answers it, or without one the replay is *undecided*.

use crate::label::Label;
use crate::mine::SubTask;
use sdvp_core::module::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_core::trace::Trace;
use sdvp_core::value::normalize_answer;
use sdvp_core::Job;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Answers requests from a trace, with some answers replaced; requests the trace never made
/// go to `fallback` when there is one.
pub struct ReplayBackend<'a> {
    answers: HashMap<String, Response>,
    fallback: Option<&'a dyn Backend>,
}

fn key(r: &Request) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

impl<'a> ReplayBackend<'a> {
    pub fn new(
        trace: &Trace,
        overrides: &[(Request, Response)],
        fallback: Option<&'a dyn Backend>,
    ) -> Self {
        let mut answers: HashMap<String, Response> = trace
            .calls()
            .filter_map(|(_, c)| c.response.clone().map(|r| (key(&c.request), r)))
            .collect();
        for (req, resp) in overrides {
            answers.insert(key(req), resp.clone());
        }
        Self { answers, fallback }
    }
}

/// Marker in the error of a request the trace never made.
pub const NOT_RECORDED: &str = "request not recorded in the trace";

impl Backend for ReplayBackend<'_> {
    fn name(&self) -> String {
        "replay".into()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        let mut out: Vec<Option<Result<Response, ModuleError>>> = requests
            .iter()
            .map(|r| self.answers.get(&key(r)).cloned().map(Ok))
            .collect();
        let missing: Vec<usize> = (0..requests.len()).filter(|&i| out[i].is_none()).collect();
        if let (Some(fb), false) = (self.fallback, missing.is_empty()) {
            let asked: Vec<Request> = missing.iter().map(|&i| requests[i].clone()).collect();
            let got = fb.run_batch(kind, &asked);
            if got.len() == asked.len() {
                for (i, g) in missing.iter().zip(got) {
                    out[*i] = Some(g);
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ModuleError::new(kind, NOT_RECORDED))))
            .collect()
    }
}

/// How one program fared with its labels substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    /// The final answer equals the gold answer.
    Agrees,
    /// The final answer differs from the gold answer.
    Disagrees,
    /// The substituted answers led to requests the trace never made.
    Undecided,
    /// The trace carries no gold answer.
    NoGold,
}

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct FilterOptions {
    /// Labels below this teacher confidence are dropped.
    pub min_confidence: f32,
    /// Keep labels only when their program's replay agrees with the gold answer.
    pub require_agreement: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            require_agreement: true,
        }
    }
}

/// The verdict on each label, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub subtask: String,
    pub keep: bool,
    pub replay: Replay,
    pub confidence: f32,
    /// `kept`, `low_confidence`, `no_label`, `disagrees`, `undecided`, `no_gold`.
    pub reason: String,
}

/// Runs one program against a backend (step or Python style; the caller knows which).
pub type Runner<'a> = dyn Fn(&dyn Backend, &Job) -> Trace + 'a;

fn job_of(trace: &Trace) -> Job {
    Job {
        id: trace.id.clone(),
        source: trace.program.clone(),
        inputs: trace.inputs.clone(),
        meta: trace.meta.clone(),
    }
}

/// Replay a trace with `overrides` (new requests answered by `fallback`, when given) and
/// judge the final answer.
pub fn replay(
    trace: &Trace,
    overrides: &[(Request, Response)],
    run: &Runner,
    fallback: Option<&dyn Backend>,
) -> Replay {
    let Some(gold) = trace.gold_answer() else {
        return Replay::NoGold;
    };
    let backend = ReplayBackend::new(trace, overrides, fallback);
    let out = run(&backend, &job_of(trace));
    match (&out.answer, &out.error) {
        (Some(a), _) if normalize_answer(a) == normalize_answer(&gold) => Replay::Agrees,
        (Some(_), _) => Replay::Disagrees,
        (None, Some(e)) if e.message.contains(NOT_RECORDED) => Replay::Undecided,
        (None, _) => Replay::Disagrees,
    }
}

/// Decide which labels to keep. All labels of one program are substituted together;
/// `fallback` answers the requests the substitution leads to (see [`ReplayBackend`]).
pub fn filter(
    traces: &[Trace],
    subtasks: &[SubTask],
    labels: &[Label],
    options: FilterOptions,
    run: &Runner,
    fallback: Option<&dyn Backend>,
) -> Vec<Decision> {
    let by_id: HashMap<&str, &Label> = labels.iter().map(|l| (l.subtask.as_str(), l)).collect();
    let mut per_trace: BTreeMap<&str, Vec<(&SubTask, Option<&Label>)>> = BTreeMap::new();
    for s in subtasks {
        per_trace
            .entry(s.trace_id.as_str())
            .or_default()
            .push((s, by_id.get(s.id.as_str()).copied()));
    }
    let traces_by_id: HashMap<&str, &Trace> = traces.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut out = Vec::with_capacity(subtasks.len());
    for (trace_id, items) in per_trace {
        let overrides: Vec<(Request, Response)> = items
            .iter()
            .filter_map(|(s, l)| {
                l.and_then(|l| l.response.clone())
                    .filter(|_| l.is_some_and(|l| l.confidence >= options.min_confidence))
                    .map(|r| (s.request.clone(), r))
            })
            .collect();
        let verdict = match traces_by_id.get(trace_id) {
            Some(t) if options.require_agreement && !overrides.is_empty() => {
                replay(t, &overrides, run, fallback)
            }
            Some(t) if t.gold_answer().is_none() => Replay::NoGold,
            _ => Replay::Undecided,
        };
        for (s, l) in items {
            let confidence = l.map(|l| l.confidence).unwrap_or(0.0);
            let reason = match l {
                None => "no_label",
                Some(l) if l.response.is_none() => "no_label",
                Some(l) if l.confidence < options.min_confidence => "low_confidence",
                Some(_) if !options.require_agreement => "kept",
                Some(_) => match verdict {
                    Replay::Agrees => "kept",
                    Replay::Disagrees => "disagrees",
                    Replay::Undecided => "undecided",
                    Replay::NoGold => "no_gold",
                },
            };
            out.push(Decision {
                subtask: s.id.clone(),
                keep: reason == "kept",
                replay: verdict,
                confidence,
                reason: reason.to_string(),
            });
        }
    }
    out
}
