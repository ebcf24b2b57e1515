//! The model-call core, shared by every program style and every model backend.
//!
//! * [`module`]: the [`Backend`] trait, [`Request`]/[`Response`] and [`ModuleKind`];
//! * [`value`]: values between steps, images as provenance ([`ImageRef`]: source + crops);
//! * [`scheduler`]: many programs at once, their model calls batched per module kind;
//! * [`trace`]: the record of a run (`sdvp.trace/1`), from which everything else derives;
//! * [`problem`]: problems found in a program before it runs;
//! * [`rng`], [`progress`], [`ProgramStyle`]: the one copy of each for the workspace.
//!
//! Nothing here parses a program or holds a tensor: step programs, Python programs and
//! neural backends all depend on this crate, never on each other.

pub mod detection;
pub mod job;
pub mod module;
pub mod num;
pub mod problem;
pub mod progress;
pub mod rng;
pub mod scheduler;
pub mod scripted;
pub mod trace;
pub mod value;

pub use job::Job;
pub use module::{Backend, ModuleError, ModuleKind, Request, Response};
pub use problem::{Pos, Problem, ProblemKind};
pub use scheduler::{ModuleCtx, Scheduler, SchedulerConfig};
pub use trace::ProgramStyle;
pub use value::{BBox, ImageRef, Value, ValueType};
