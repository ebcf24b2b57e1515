//! Step programs and their batched execution.
//!
//! * [`parser`] and [`validate`] turn text into a checked [`ast::Program`], reporting every
//!   problem with its line and column;
//! * [`steps`] holds the module registry (LOC, VQA, CROP…, EVAL, RESULT);
//! * [`scheduler`] runs many programs at once, batching their model calls per module;
//! * [`exec`] runs step programs on the scheduler and records a [`trace::Trace`] per program;
//! * [`module`] is the interface every model backend implements.
//!
//! No tensor code lives here: models come in through [`module::Backend`].

pub mod ast;
pub mod exec;
pub mod expr;
pub mod module;
pub mod parser;
pub mod print;
pub mod scheduler;
pub mod scripted;
pub mod steps;
pub mod trace;
pub mod validate;
pub mod value;

pub use ast::{Problem, ProblemKind, Program};
pub use module::{Backend, ModuleError, ModuleKind, Request, Response};
pub use scheduler::{ModuleCtx, Scheduler, SchedulerConfig};
pub use value::{BBox, ImageRef, Value, ValueType};
