//! The interface every program writer implements.
//!
//! A [`Generator`] turns a batch of [`GenRequest`]s into raw texts, one result per request
//! in request order. It does no extraction, validation or caching: the driver in
//! [`crate::run`] does those the same way for every backend, so backends stay small and
//! their behaviour comparable.

use crate::prompt::Prompt;
use crate::{ProgramStyle, Task};
use serde::{Deserialize, Serialize};

/// Sampling parameters; all of them are part of the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    /// Texts at which generation stops (completions prompts stop before the next example).
    pub stop: Vec<String>,
    /// Base seed; sample `i` uses `seed + i` where the backend supports seeding.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: 512,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

/// One text to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    /// The question's id (the gold backend looks programs up by it).
    pub id: String,
    pub question: String,
    pub task: Task,
    pub style: ProgramStyle,
    pub prompt: Prompt,
    pub sampling: Sampling,
    /// Which sample of this question this is (0-based; re-samples continue the count).
    pub sample_index: usize,
}

/// How bad a failed request is, which decides what the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenErrorKind {
    /// The backend cannot work at all (server down, wrong URL, bad key, not an OpenAI API,
    /// missing weights): every further request would fail the same way, so the run stops.
    Fatal,
    /// This request failed (after retries); others may succeed. Recorded as a failure.
    Request,
    /// The run's total deadline passed; the run stops.
    Deadline,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct GenError {
    pub kind: GenErrorKind,
    pub message: String,
}

impl GenError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            kind: GenErrorKind::Fatal,
            message: message.into(),
        }
    }
    pub fn request(message: impl Into<String>) -> Self {
        Self {
            kind: GenErrorKind::Request,
            message: message.into(),
        }
    }
    pub fn deadline(message: impl Into<String>) -> Self {
        Self {
            kind: GenErrorKind::Deadline,
            message: message.into(),
        }
    }
    /// Whether the run should stop.
    pub fn stops_run(&self) -> bool {
        self.kind != GenErrorKind::Request
    }
}

/// A program writer.
pub trait Generator: Send + Sync {
    /// Backend name for the cache key and reports, including anything that changes what the
    /// same prompt yields (e.g. `openai/chat` vs `openai/completions`).
    fn backend(&self) -> String;
    /// Model name (or weights identity) for the cache key.
    fn model(&self) -> String;
    /// Whether results may be cached (false for backends that only look things up).
    fn cacheable(&self) -> bool {
        true
    }
    /// Whether asking again can give a different text (false for look-ups such as gold,
    /// so invalid results are not pointlessly re-sampled).
    fn can_resample(&self) -> bool {
        true
    }
    /// Raw texts, one per request, in order.
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>>;
}
