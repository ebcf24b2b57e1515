//! Neural module backends: the models of `sdvp-models` behind the [`Backend`] trait.
//!
//! * [`blip_vqa`] (`vqa`), [`owlvit_detect`] (`detect`), [`clip_match`] (`verify`,
//!   `classify`), [`dpt_depth`] (`depth`), [`llm`] (`llm`): each loads a checkpoint directory in the Hugging Face
//!   layout and answers a whole batch of requests with one forward pass per tower;
//! * [`images`]: module inputs rebuilt from provenance (source image + crop chain),
//!   decoded sources in an LRU bounded in bytes;
//! * [`set`]: module sets (`modules.json`) and the `--modules` specification every command
//!   takes, with lazy loading and per-kind replacement.
//!
//! Batched and one-at-a-time answers agree: every model input is padded and masked per
//! row, so no request sees another (tests/batching.rs checks each backend).
//!
//! [`Backend`]: sdvp_core::Backend

pub mod blip_vqa;
pub mod clip_match;
pub mod common;
pub mod dpt_depth;
pub mod images;
pub mod inspect;
pub mod llm;
pub mod owlvit_detect;
pub mod set;

pub use set::{ModulesSpec, Resolved};
