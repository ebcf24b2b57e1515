//! Stepwise distillation (SDVP), the model-agnostic half.
//!
//! 1. [`mine`]: every model call recorded in the traces of a task's training programs becomes
//!    a [`SubTask`](mine::SubTask), with the exact request the student saw and its answer;
//! 2. [`label`]: a task-specific teacher (any [`Backend`](sdvp_core::Backend), usually
//!    wrapped in an adapter) answers the same requests, batched;
//! 3. [`replay`]: a label is kept only if it is confident enough and, substituted back into
//!    its program in place of the student's answer, leads to the gold final answer. The
//!    program is re-executed with every other call answered from the trace (a request the
//!    substitution leads to goes to the pipeline);
//! 4. [`finetune`]: the student behind `vqa` learns the kept labels (soft or hard) with a
//!    guard against forgetting: KL to the frozen pre-step student on replay data;
//!    [`finetune_detect`]: the detector behind `detect` learns the teacher's boxes, with
//!    the same kind of guard on replay regions; [`finetune_clip`]: the CLIP student
//!    behind `verify` or `classify` learns the VQA teacher's answers to those calls, with
//!    the same kind of guard;
//! 5. [`step`]: one step of the whole (one module, one task), resumable, writing a module
//!    set that the next step starts from; [`shard`]: its mining and labelling split over
//!    processes and merged.

pub mod finetune;
pub mod finetune_clip;
pub mod finetune_detect;
pub mod label;
pub mod mine;
pub mod replay;
pub mod shard;
pub mod step;
mod step_clip;
mod step_detect;
mod step_vqa;
