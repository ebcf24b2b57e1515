//! The interface between programs and vision models.
//!
//! Programs (step or Python style) never call a model directly: they issue a [`Request`]
//! through the scheduler, which gathers requests of the same [`ModuleKind`] from many programs
//! and hands them to a [`Backend`] as one batch. Every backend (scripted, oracle, neural,
//! teacher) implements this one trait.

use crate::value::{BBox, ImageRef};
use serde::{Deserialize, Serialize};

/// The kinds of model call. Batches never mix kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Open-vocabulary detection: LOC, ImagePatch.find/exists.
    Detect,
    /// Visual question answering: VQA, simple_query.
    Vqa,
    /// Does the image show `text`? verify_property.
    Verify,
    /// Which of several texts fits the image best? best_text_match, SELECT, CLASSIFY.
    Classify,
    /// Median depth of an image region: compute_depth.
    Depth,
    /// Text-only language model: llm_query.
    Llm,
}

impl ModuleKind {
    pub const ALL: [ModuleKind; 6] = [
        ModuleKind::Detect,
        ModuleKind::Vqa,
        ModuleKind::Verify,
        ModuleKind::Classify,
        ModuleKind::Depth,
        ModuleKind::Llm,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Detect => "detect",
            ModuleKind::Vqa => "vqa",
            ModuleKind::Verify => "verify",
            ModuleKind::Classify => "classify",
            ModuleKind::Depth => "depth",
            ModuleKind::Llm => "llm",
        }
    }
}

impl std::fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model call: everything needed to rebuild the model's input exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    Detect {
        image: ImageRef,
        object: String,
    },
    Vqa {
        image: ImageRef,
        question: String,
    },
    Verify {
        image: ImageRef,
        text: String,
    },
    Classify {
        image: ImageRef,
        options: Vec<String>,
    },
    Depth {
        image: ImageRef,
    },
    Llm {
        prompt: String,
    },
}

impl Request {
    pub fn kind(&self) -> ModuleKind {
        match self {
            Request::Detect { .. } => ModuleKind::Detect,
            Request::Vqa { .. } => ModuleKind::Vqa,
            Request::Verify { .. } => ModuleKind::Verify,
            Request::Classify { .. } => ModuleKind::Classify,
            Request::Depth { .. } => ModuleKind::Depth,
            Request::Llm { .. } => ModuleKind::Llm,
        }
    }
    pub fn image(&self) -> Option<&ImageRef> {
        match self {
            Request::Detect { image, .. }
            | Request::Vqa { image, .. }
            | Request::Verify { image, .. }
            | Request::Classify { image, .. }
            | Request::Depth { image } => Some(image),
            Request::Llm { .. } => None,
        }
    }
}

/// What a model answered.
///
/// Every `score` is a confidence in [0, 1] in what the response says, so distillation can
/// filter any module's labels by one rule ([`Response::confidence`]):
/// * `Detections.scores`: per box, the detector's probability that the box shows the object;
/// * `Answer.score`: the probability of `text` under the model; a closed-vocabulary model
///   also gives `alternatives`, its whole distribution (best first), which soft-label
///   distillation learns from;
/// * `Verdict.score`: the confidence in `yes` as given (P(yes) when yes, 1 − P(yes) when
///   not), so a sure "no" scores 1, never 0;
/// * `Choice.scores`: per option, the model's probability (or relative score) of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Boxes in source coordinates, best first.
    Detections {
        boxes: Vec<BBox>,
        #[serde(with = "crate::num::vec_f32_json")]
        scores: Vec<f32>,
    },
    Answer {
        text: String,
        #[serde(with = "crate::num::f32_json")]
        score: f32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alternatives: Vec<Alternative>,
    },
    Verdict {
        yes: bool,
        #[serde(with = "crate::num::f32_json")]
        score: f32,
    },
    Choice {
        index: usize,
        #[serde(with = "crate::num::vec_f32_json")]
        scores: Vec<f32>,
    },
    Depth {
        #[serde(with = "crate::num::f32_json")]
        value: f32,
    },
    Text {
        text: String,
    },
}

/// One answer of a closed-vocabulary model's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub text: String,
    #[serde(with = "crate::num::f32_json")]
    pub p: f32,
}

impl Response {
    /// An answer without a distribution.
    pub fn answer(text: impl Into<String>, score: f32) -> Self {
        Response::Answer {
            text: text.into(),
            score,
            alternatives: Vec::new(),
        }
    }
    /// The model's confidence in this response, in [0, 1] (see the type's docs): the top
    /// box's score for detections (0 when nothing was found: an empty list carries no score
    /// to trust), the chosen option's score for a choice, 1 for depth and text.
    pub fn confidence(&self) -> f32 {
        match self {
            Response::Answer { score, .. } | Response::Verdict { score, .. } => *score,
            Response::Choice { index, scores } => scores.get(*index).copied().unwrap_or(0.0),
            Response::Detections { scores, .. } => scores.first().copied().unwrap_or(0.0),
            Response::Depth { .. } | Response::Text { .. } => 1.0,
        }
    }
    pub fn kind_name(&self) -> &'static str {
        match self {
            Response::Detections { .. } => "detections",
            Response::Answer { .. } => "answer",
            Response::Verdict { .. } => "verdict",
            Response::Choice { .. } => "choice",
            Response::Depth { .. } => "depth",
            Response::Text { .. } => "text",
        }
    }
}

/// A model call that failed. It fails the one program that made it, never the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{module} backend: {message}")]
pub struct ModuleError {
    pub module: ModuleKind,
    pub message: String,
}

impl ModuleError {
    pub fn new(module: ModuleKind, message: impl Into<String>) -> Self {
        Self {
            module,
            message: message.into(),
        }
    }
}

/// A set of models answering batches of requests.
///
/// `run_batch` receives requests of one kind only and must return one result per request,
/// in the same order. Batched and one-at-a-time calls must give the same answers.
pub trait Backend: Send + Sync {
    /// A short name recorded in traces (e.g. `oracle`, `scripted`, `blip+owlvit`).
    fn name(&self) -> String;
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>>;
    /// What answers calls of `kind`, recorded with every call in traces: the architecture
    /// and the weights (path and sha256 of the checkpoint) for a neural backend.
    fn answered_by(&self, kind: ModuleKind) -> String {
        let _ = kind;
        self.name()
    }
}

impl<B: Backend + ?Sized> Backend for &B {
    fn name(&self) -> String {
        (**self).name()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        (**self).run_batch(kind, requests)
    }
    fn answered_by(&self, kind: ModuleKind) -> String {
        (**self).answered_by(kind)
    }
}

impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        (**self).run_batch(kind, requests)
    }
    fn answered_by(&self, kind: ModuleKind) -> String {
        (**self).answered_by(kind)
    }
}

/// Routes each module kind to its own backend (e.g. detector from one model, VQA from another).
#[derive(Default)]
pub struct Router {
    routes: Vec<(ModuleKind, Box<dyn Backend>)>,
    fallback: Option<Box<dyn Backend>>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_fallback(mut self, backend: Box<dyn Backend>) -> Self {
        self.fallback = Some(backend);
        self
    }
    pub fn route(mut self, kind: ModuleKind, backend: Box<dyn Backend>) -> Self {
        self.routes.retain(|(k, _)| *k != kind);
        self.routes.push((kind, backend));
        self
    }
    fn backend_for(&self, kind: ModuleKind) -> Option<&dyn Backend> {
        self.routes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, b)| b.as_ref())
            .or(self.fallback.as_deref())
    }
}

impl Backend for Router {
    fn name(&self) -> String {
        let mut parts: Vec<String> = self
            .routes
            .iter()
            .map(|(k, b)| format!("{k}={}", b.name()))
            .collect();
        if let Some(f) = &self.fallback {
            parts.push(format!("*={}", f.name()));
        }
        parts.join(",")
    }
    fn answered_by(&self, kind: ModuleKind) -> String {
        self.backend_for(kind)
            .map_or_else(|| "none".to_string(), |b| b.answered_by(kind))
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        match self.backend_for(kind) {
            Some(b) => b.run_batch(kind, requests),
            None => requests
                .iter()
                .map(|_| {
                    Err(ModuleError::new(
                        kind,
                        "no backend configured for this module",
                    ))
                })
                .collect(),
        }
    }
}
