//! Training the embedded default on the world: the general students (BLIP VQA, OWL-ViT,
//! CLIP, DPT) on the generic `pretrain` corpus and the small task-specific teachers on one
//! task's training split each, through one resumable loop with model selection on val.
//!
//! Data flows one way: world scenes → items → [`runner::train`] → a Hugging Face checkpoint
//! in `RUN/best`. A teacher also learns its task's own sub-tasks: the calls the task's gold
//! programs make on the oracle ([`subtask_items`]); nothing here knows about module sets.

pub mod blip;
pub mod chart;
pub mod clip;
pub mod depth;
pub mod detect;
pub mod export;
pub mod generator;
pub mod package;
pub mod plan;
pub mod runner;
pub mod scenes;
pub mod subtask_items;
pub mod vocab;

pub use plan::{train_model, ModelName, TrainOptions};
pub use runner::{RunDir, RunSummary, Schedule, Trainee};
