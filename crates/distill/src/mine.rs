//! Sub-task mining: traces → the model calls worth labelling.

use sdvp_core::module::{ModuleKind, Request, Response};
use sdvp_core::trace::Trace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One recorded model call, addressable inside its trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubTask {
    /// `TRACE_ID/STEP/CALL`, stable across runs of the same traces.
    pub id: String,
    pub trace_id: String,
    pub step: usize,
    pub call: usize,
    pub module: ModuleKind,
    pub request: Request,
    /// What the student answered when the program ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<Response>,
    /// The question and gold answer of the whole program, when the trace carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold_answer: Option<String>,
}

/// Which calls to mine.
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// Module kinds to keep (e.g. only `vqa` when distilling the VQA student).
    pub modules: BTreeSet<ModuleKind>,
    /// Drop exact duplicate requests (the same crop and question asked twice).
    pub dedup: bool,
}

impl MineOptions {
    pub fn only(kind: ModuleKind) -> Self {
        Self {
            modules: [kind].into_iter().collect(),
            dedup: true,
        }
    }
}

/// All calls of the chosen modules that returned an answer (failed calls have nothing to
/// correct against and are skipped).
pub fn mine(traces: &[Trace], options: &MineOptions) -> Vec<SubTask> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in traces {
        for (step_index, step) in t.steps.iter().enumerate() {
            for (call_index, c) in step.calls.iter().enumerate() {
                let kind = c.request.kind();
                if !options.modules.contains(&kind) || c.response.is_none() {
                    continue;
                }
                if options.dedup {
                    let key = serde_json::to_string(&c.request).unwrap_or_default();
                    if !seen.insert(key) {
                        continue;
                    }
                }
                out.push(SubTask {
                    id: format!("{}/{}/{}", t.id, step_index, call_index),
                    trace_id: t.id.clone(),
                    step: step_index,
                    call: call_index,
                    module: kind,
                    request: c.request.clone(),
                    student: c.response.clone(),
                    question: t.meta_text("question"),
                    gold_answer: t.gold_answer(),
                });
            }
        }
    }
    out
}
