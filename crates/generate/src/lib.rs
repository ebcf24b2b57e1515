//! Program generation: turning questions into step or Python programs.
//!
//! The pieces, each in its own module:
//! * [`prompt`]: the project's own prompt library (module header + in-context examples) per
//!   task and program style;
//! * [`backend`]: the [`Generator`] trait every program writer implements, with the
//!   [`openai`] (HTTP), [`local`] (in-process LLM, cargo feature `local`), [`embedded`] and
//!   [`gold`] backends;
//! * [`extract`]: pulling the program out of whatever prose a model wrapped it in, and
//!   validating it;
//! * [`cache`]: the on-disk, content-addressed cache of raw generations;
//! * [`run`]: the driver that ties them together (samples, re-sampling of invalid programs,
//!   caching, selection) and the majority vote over executed answers;
//! * [`gqa`]: the converter from GQA's `semantic` annotation to step programs;
//! * [`questions`]: reading questions from the documented JSONL layout.

pub mod backend;
pub mod cache;
pub mod embedded;
pub mod embedded_model;
pub mod extract;
pub mod gold;
pub mod gqa;
pub mod local;
#[cfg(feature = "local")]
pub mod local_model;
pub mod openai;
pub mod prompt;
mod prompt_examples;
pub mod questions;
pub use sdvp_core::rng;
pub mod run;

pub use backend::{GenError, GenErrorKind, GenRequest, Generator, Sampling};
pub use prompt::{Prompt, PromptOptions};
pub use run::{vote, Outcome, RunConfig, RunStats, SampleRecord, Select};

use sdvp_core::ValueType;
use serde::{Deserialize, Serialize};

/// The tasks programs are generated for. The task decides the program's inputs (one image or
/// an image pair) and which in-context examples the prompt shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Task {
    /// GQA-style questions about one world scene.
    #[serde(rename = "gqa-world")]
    GqaWorld,
    /// NLVR-style true/false statements about a pair of world scenes.
    #[serde(rename = "nlvr-world")]
    NlvrWorld,
    /// Attribute questions about one world scene in wordings of their own (the task no
    /// module is distilled on); prompts share gqa-world's examples.
    #[serde(rename = "attr-world")]
    AttrWorld,
    /// Real GQA (everyday photographs).
    #[serde(rename = "gqa")]
    Gqa,
    /// Real NLVR2 (pairs of everyday photographs).
    #[serde(rename = "nlvr2")]
    Nlvr2,
}

impl Task {
    pub const ALL: [Task; 5] = [
        Task::GqaWorld,
        Task::NlvrWorld,
        Task::AttrWorld,
        Task::Gqa,
        Task::Nlvr2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::GqaWorld => "gqa-world",
            Task::NlvrWorld => "nlvr-world",
            Task::AttrWorld => "attr-world",
            Task::Gqa => "gqa",
            Task::Nlvr2 => "nlvr2",
        }
    }

    /// Whether the task looks at an image pair (`LEFT`/`RIGHT`) rather than one `IMAGE`.
    pub fn is_pair(self) -> bool {
        matches!(self, Task::NlvrWorld | Task::Nlvr2)
    }

    /// The step-program inputs the validator must accept for this task.
    pub fn step_inputs(self) -> Vec<(&'static str, ValueType)> {
        if self.is_pair() {
            vec![("LEFT", ValueType::Image), ("RIGHT", ValueType::Image)]
        } else {
            vec![("IMAGE", ValueType::Image)]
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown task `{s}` (expected gqa-world, nlvr-world, attr-world, gqa or nlvr2)"
                )
            })
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two program styles (see ARCHITECTURE.md), one enum for the workspace.
pub use sdvp_core::ProgramStyle;
