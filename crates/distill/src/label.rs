//! Teacher labelling: the teacher answers the sub-tasks' requests in batches.

use crate::mine::SubTask;
use sdvp_core::module::{Backend, ModuleKind, Request, Response};
use serde::{Deserialize, Serialize};

/// A teacher's answer to one sub-task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub subtask: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    /// The teacher's confidence in [0, 1] (answer score, verdict score, top choice score).
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Confidence carried by a response ([`Response::confidence`]).
pub fn confidence(r: &Response) -> f32 {
    r.confidence()
}

/// Maps sub-tasks onto a teacher's interface and its answers back (e.g. rephrasing a question
/// for a teacher trained on one template, or mapping its label vocabulary to answers).
pub trait Adapter: Send + Sync {
    /// The request to send the teacher, or `None` when the teacher cannot answer this sub-task.
    fn to_teacher(&self, request: &Request) -> Option<Request>;
    fn answer_back(&self, request: &Request, response: Response) -> Response {
        let _ = request;
        response
    }
}

/// Sends requests unchanged.
pub struct Identity;
impl Adapter for Identity {
    fn to_teacher(&self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }
}

/// Label every sub-task with the teacher, `batch` requests at a time, in order.
pub fn label(
    subtasks: &[SubTask],
    teacher: &dyn Backend,
    adapter: &dyn Adapter,
    batch: usize,
) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::with_capacity(subtasks.len());
    // Grouped by the kind of the teacher's request, which an adapter may change (a verify
    // call asked of a VQA teacher).
    let adapted: Vec<(usize, Request)> = subtasks
        .iter()
        .enumerate()
        .filter_map(|(i, s)| adapter.to_teacher(&s.request).map(|r| (i, r)))
        .collect();
    for kind in ModuleKind::ALL {
        let mine: Vec<&(usize, Request)> =
            adapted.iter().filter(|(_, r)| r.kind() == kind).collect();
        for chunk in mine.chunks(batch.max(1)) {
            let requests: Vec<Request> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let mut answers = teacher.run_batch(kind, &requests);
            if answers.len() != chunk.len() {
                // A short (or long) reply must not silently drop or shift labels.
                let msg = format!(
                    "teacher {} returned {} answers for a batch of {}",
                    teacher.name(),
                    answers.len(),
                    chunk.len()
                );
                answers = chunk
                    .iter()
                    .map(|_| Err(sdvp_core::ModuleError::new(kind, msg.clone())))
                    .collect();
            }
            for ((i, _), answer) in chunk.iter().zip(answers) {
                let s = &subtasks[*i];
                out.push(match answer {
                    Ok(r) => {
                        let r = adapter.answer_back(&s.request, r);
                        Label {
                            subtask: s.id.clone(),
                            confidence: confidence(&r),
                            response: Some(r),
                            error: None,
                        }
                    }
                    Err(e) => Label {
                        subtask: s.id.clone(),
                        response: None,
                        confidence: 0.0,
                        error: Some(e.message),
                    },
                });
            }
        }
    }
    // Keep the sub-tasks' order whatever the module grouping was.
    let order: std::collections::HashMap<&str, usize> = subtasks
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    out.sort_by_key(|l| order.get(l.subtask.as_str()).copied().unwrap_or(usize::MAX));
    out
}
