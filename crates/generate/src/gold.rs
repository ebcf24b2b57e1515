//! The `gold` backend: the dataset's own programs, looked up by question id.
//!
//! It lets every later stage (execution, tracing, distillation) run without a language model
//! and gives the upper bound a generator is measured against. Nothing is generated, so
//! nothing is cached.

use crate::backend::{GenError, GenRequest, Generator};
use crate::questions::Question;
use crate::ProgramStyle;
use std::collections::HashMap;

pub struct GoldGenerator {
    step: HashMap<String, String>,
    python: HashMap<String, String>,
}

impl GoldGenerator {
    /// Gold programs of the given records (records without one are answered with an error).
    pub fn from_questions(questions: &[Question]) -> Self {
        let mut step = HashMap::new();
        let mut python = HashMap::new();
        for q in questions {
            if let Some(p) = &q.gold_step {
                step.insert(q.id.clone(), p.clone());
            }
            if let Some(p) = &q.gold_python {
                python.insert(q.id.clone(), p.clone());
            }
        }
        Self { step, python }
    }

    /// Add (or replace) a gold program, e.g. one converted from GQA's annotation.
    pub fn insert(&mut self, id: &str, style: ProgramStyle, program: String) {
        match style {
            ProgramStyle::Step => self.step.insert(id.to_string(), program),
            ProgramStyle::Python => self.python.insert(id.to_string(), program),
        };
    }
}

impl Generator for GoldGenerator {
    fn backend(&self) -> String {
        "gold".into()
    }
    fn model(&self) -> String {
        "dataset".into()
    }
    fn cacheable(&self) -> bool {
        false
    }
    fn can_resample(&self) -> bool {
        false
    }
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        requests
            .iter()
            .map(|r| {
                let table = match r.style {
                    ProgramStyle::Step => &self.step,
                    ProgramStyle::Python => &self.python,
                };
                table.get(&r.id).cloned().ok_or_else(|| {
                    GenError::request(format!("example {} has no gold {} program", r.id, r.style))
                })
            })
            .collect()
    }
}
