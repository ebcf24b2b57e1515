//! Scores from traces. The denominator is every example of the run: a question without a
//! program, with an invalid program or whose program failed is a wrong answer, and is also
//! counted apart.

use sdvp_core::trace::Trace;
use sdvp_core::value::normalize_answer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How one example ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Correct,
    Wrong,
    /// No program was given or generated for the question.
    NoProgram,
    /// The program does not parse or validate.
    InvalidProgram,
    /// The program ran and failed (a step, a module, a budget, a Python exception).
    ExecutionError,
}

/// The error kind a trace records for a question without a program.
pub const NO_PROGRAM: &str = "no_program";

pub fn outcome(t: &Trace) -> Outcome {
    match &t.error {
        Some(e) if e.kind == NO_PROGRAM => Outcome::NoProgram,
        Some(e) if e.kind == "invalid_program" => Outcome::InvalidProgram,
        Some(_) => Outcome::ExecutionError,
        None => match (&t.answer, t.gold_answer()) {
            (Some(a), Some(g)) if normalize_answer(a) == normalize_answer(&g) => Outcome::Correct,
            _ => Outcome::Wrong,
        },
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub total: usize,
    pub correct: usize,
    pub no_program: usize,
    pub invalid_program: usize,
    pub execution_error: usize,
}

impl Tally {
    pub fn add(&mut self, o: Outcome) {
        self.total += 1;
        match o {
            Outcome::Correct => self.correct += 1,
            Outcome::Wrong => {}
            Outcome::NoProgram => self.no_program += 1,
            Outcome::InvalidProgram => self.invalid_program += 1,
            Outcome::ExecutionError => self.execution_error += 1,
        }
    }
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
    pub fn merge(&mut self, o: &Tally) {
        self.total += o.total;
        self.correct += o.correct;
        self.no_program += o.no_program;
        self.invalid_program += o.invalid_program;
        self.execution_error += o.execution_error;
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "accuracy": self.accuracy(),
            "correct": self.correct,
            "total": self.total,
            "no_program": self.no_program,
            "invalid_program": self.invalid_program,
            "execution_error": self.execution_error,
        })
    }
}

/// Running totals over a stream of traces (nothing but counts is held).
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub overall: Tally,
    pub per_type: BTreeMap<String, Tally>,
    pub error_kinds: BTreeMap<String, usize>,
}

impl Scores {
    pub fn add(&mut self, t: &Trace) {
        let o = outcome(t);
        let qtype = t
            .meta_text("question_type")
            .unwrap_or_else(|| "unknown".into());
        self.overall.add(o);
        self.per_type.entry(qtype).or_default().add(o);
        if let Some(e) = &t.error {
            *self.error_kinds.entry(e.kind.clone()).or_default() += 1;
        }
    }

    /// Examples of the run that have no trace (an interrupted run): wrong, counted apart.
    pub fn json(&self, examples: usize) -> serde_json::Value {
        let mut overall = self.overall.clone();
        let missing = examples.saturating_sub(overall.total);
        overall.total = overall.total.max(examples);
        let mut o = overall.json();
        o["missing"] = serde_json::json!(missing);
        serde_json::json!({
            "overall": o,
            "per_question_type": self.per_type.iter().map(|(k, t)| (k.clone(), t.json())).collect::<BTreeMap<_, _>>(),
            "error_kinds": self.error_kinds,
        })
    }
}
