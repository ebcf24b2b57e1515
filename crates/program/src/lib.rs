//! Step programs and their batched execution.
//!
//! * [`parser`] and [`validate`] turn text into a checked [`ast::Program`], reporting every
//!   problem with its line and column;
//! * [`steps`] holds the module registry (LOC, VQA, CROP…, EVAL, RESULT);
//! * [`scheduler`] runs many programs at once, batching their model calls per module;
//! * [`exec`] runs step programs on the scheduler and records a [`trace::Trace`] per program;
//! * the model-call core (backends, values, scheduler, traces) lives in `sdvp_core`.
//!
//! No tensor code lives here: models come in through [`module::Backend`].

pub mod ast;
pub mod exec;
pub mod expr;
pub mod parser;
pub mod print;
pub mod steps;
pub mod validate;

pub use ast::{Problem, ProblemKind, Program};
// The model-call core, re-exported for step-language users; other crates use `sdvp_core`.
pub use sdvp_core::{module, scheduler, scripted, trace, value};
pub use sdvp_core::{BBox, Backend, ImageRef, ModuleCtx, ModuleError, ModuleKind, Request};
pub use sdvp_core::{Response, Scheduler, SchedulerConfig, Value, ValueType};
