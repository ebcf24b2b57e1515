//! One program to run, in either style.

use crate::trace::{ProgramStyle, Trace, TraceError};
use crate::value::Value;
use std::collections::BTreeMap;

/// A program's text, its inputs and whatever the caller wants kept in the trace.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub source: String,
    pub inputs: BTreeMap<String, Value>,
    pub meta: BTreeMap<String, serde_json::Value>,
}

impl Job {
    /// A trace for `style` with this job's id, program, inputs and meta, and nothing run.
    pub fn empty_trace(&self, style: ProgramStyle) -> Trace {
        let mut t = Trace::new(self.id.clone(), style, self.source.clone());
        t.inputs = self.inputs.clone();
        t.meta = self.meta.clone();
        t
    }

    /// The trace of a program the scheduler could not finish (a scheduler bug, never a panic).
    pub fn stalled_trace(&self, style: ProgramStyle) -> Trace {
        let mut t = self.empty_trace(style);
        t.error = Some(TraceError {
            kind: "stalled".into(),
            message: "program waited on something the scheduler does not provide".into(),
            line: None,
            problems: Vec::new(),
        });
        t
    }
}
