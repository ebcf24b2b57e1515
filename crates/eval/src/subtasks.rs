//! Sub-task scoring: how well a module set answers the model calls a task's programs make.
//!
//! The sub-tasks of a split are the calls its gold programs make when run on the oracle
//! (inputs rebuilt from provenance, labels from the scene graphs), in both program styles,
//! de-duplicated. Any module set then answers the same requests, and each kind is scored
//! against the oracle: `vqa` and `classify` by exact answer, `verify` by verdict, `detect`
//! by AP@0.5 over all calls pooled (boxes as the module returns them, so a thresholded
//! detector is scored at its operating point).

use crate::{evaluate, EvalSpec, Programs};
use anyhow::Context;
use sdvp_core::detection::{average_precision, match_detections};
use sdvp_core::trace::{read_traces, ProgramStyle};
use sdvp_core::{Backend, ModuleKind, Request, Response};
use sdvp_data::Example;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// The kinds scored.
pub const SCORED: [ModuleKind; 4] = [
    ModuleKind::Vqa,
    ModuleKind::Detect,
    ModuleKind::Verify,
    ModuleKind::Classify,
];

/// The calls of `examples`' gold programs (both styles) run on `oracle`, with the oracle's
/// answers as labels, de-duplicated by request. Runs are kept under `work`.
pub fn gold_subtasks(
    examples: &[Example],
    task: &str,
    split: &str,
    oracle: &dyn Backend,
    work: &Path,
) -> anyhow::Result<Vec<(Request, Response)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for style in [ProgramStyle::Step, ProgramStyle::Python] {
        let dir = work.join(format!("oracle-{}", style.as_str()));
        let spec = EvalSpec {
            task: task.to_string(),
            split: split.to_string(),
            style,
            programs: Programs::Gold,
            modules: "oracle".into(),
            out: dir.clone(),
            limit: None,
            shard: None,
            max_batch: 64,
            restart: true,
            quiet: true,
        };
        evaluate(&spec, examples, oracle)?;
        let traces = read_traces(&dir.join("traces.jsonl"))
            .with_context(|| format!("reading {}", dir.display()))?;
        for t in &traces {
            for (_, c) in t.calls() {
                if !SCORED.contains(&c.request.kind()) {
                    continue;
                }
                let Some(r) = &c.response else { continue };
                if seen.insert(serde_json::to_string(&c.request)?) {
                    out.push((c.request.clone(), r.clone()));
                }
            }
        }
    }
    Ok(out)
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The form of a VQA sub-question, for the per-form breakdown: its first two words
/// ("what color", "is the"), lower-cased, without punctuation.
pub fn question_form(question: &str) -> String {
    question
        .split_whitespace()
        .take(2)
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scores `backend` on `subtasks` (`batch` requests per call); one JSON object per kind.
pub fn score_subtasks(
    subtasks: &[(Request, Response)],
    backend: &dyn Backend,
    batch: usize,
) -> Value {
    let mut report = serde_json::Map::new();
    for kind in SCORED {
        let items: Vec<&(Request, Response)> =
            subtasks.iter().filter(|(r, _)| r.kind() == kind).collect();
        if items.is_empty() {
            continue;
        }
        let mut correct = 0usize;
        let mut failed = 0usize;
        let mut scored: Vec<(f32, bool)> = Vec::new();
        let mut n_gt = 0usize;
        // Per question form (vqa only): (n, correct).
        let mut forms: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for chunk in items.chunks(batch.max(1)) {
            let requests: Vec<Request> = chunk.iter().map(|(r, _)| r.clone()).collect();
            let answers = backend.run_batch(kind, &requests);
            for ((request, label), got) in chunk.iter().zip(answers) {
                let form = match request {
                    Request::Vqa { question, .. } => Some(question_form(question)),
                    _ => None,
                };
                if let Some(f) = &form {
                    forms.entry(f.clone()).or_default().0 += 1;
                }
                let Ok(got) = got else {
                    failed += 1;
                    if let Response::Detections { boxes, .. } = label {
                        n_gt += boxes.len();
                    }
                    continue;
                };
                match (label, &got) {
                    (Response::Answer { text: a, .. }, Response::Answer { text: b, .. }) => {
                        let right = norm(a) == norm(b);
                        correct += usize::from(right);
                        if let (true, Some(f)) = (right, &form) {
                            if let Some(e) = forms.get_mut(f) {
                                e.1 += 1;
                            }
                        }
                    }
                    (Response::Verdict { yes: a, .. }, Response::Verdict { yes: b, .. }) => {
                        correct += usize::from(a == b);
                    }
                    (Response::Choice { index: a, .. }, Response::Choice { index: b, .. }) => {
                        correct += usize::from(a == b);
                    }
                    (
                        Response::Detections { boxes: gt, .. },
                        Response::Detections { boxes, scores },
                    ) => {
                        n_gt += gt.len();
                        let preds: Vec<(f32, sdvp_core::BBox)> =
                            scores.iter().copied().zip(boxes.iter().copied()).collect();
                        scored.extend(match_detections(&preds, gt, 0.5));
                        // A call is "right" when it finds exactly the labelled objects.
                        let hits = match_detections(&preds, gt, 0.5)
                            .iter()
                            .filter(|(_, h)| *h)
                            .count();
                        correct += usize::from(hits == gt.len() && preds.len() == gt.len());
                    }
                    _ => failed += 1,
                }
            }
        }
        let n = items.len();
        let mut entry = json!({
            "n": n,
            "correct": correct,
            "failed": failed,
            "accuracy": correct as f64 / n as f64,
        });
        if !forms.is_empty() {
            entry["by_form"] = forms
                .into_iter()
                .map(|(f, (n, c))| {
                    (
                        f,
                        json!({"n": n, "correct": c, "accuracy": c as f64 / n.max(1) as f64}),
                    )
                })
                .collect::<serde_json::Map<String, Value>>()
                .into();
        }
        if kind == ModuleKind::Detect {
            entry["boxes"] = json!(n_gt);
            entry["ap50"] = json!(average_precision(&mut scored, n_gt));
        }
        report.insert(kind.as_str().to_string(), entry);
    }
    Value::Object(report)
}
