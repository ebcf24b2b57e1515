//! ViperGPT-style Python programs in a sandboxed interpreter with batched model calls.
//!
//! A program is `def execute_command(image): ...` written against ViperGPT's `ImagePatch`
//! API ([`patch`] documents the API, its coordinate convention and the request each method
//! sends). [`check_program`] parses and checks it, rejecting unsupported syntax and sandbox
//! escapes *before* anything runs; [`run_python_program`] runs it as a Rust future on the
//! [`sdvp_program::Scheduler`], so model calls of many programs are batched exactly as step
//! programs' are, and records a [`sdvp_program::trace::Trace`].
//!
//! # Why an own interpreter (evaluation of about 15 minutes)
//!
//! * **monty 0.0.23** (pydantic's sandboxed interpreter): `cargo check` builds (62 crates,
//!   ~2 min on one core; rust 1.95). It can pause at external function calls and at method
//!   calls on host objects (`RunProgress::FunctionCall`) and has resource limits. Not
//!   chosen: a program would be a snapshot/resume state machine driven from outside rather
//!   than a future that awaits `ModuleCtx::call`, it runs a much larger Python (dataclasses,
//!   asyncio, OS-call hooks, ~88k lines) whose surface we would have to audit and fence, its
//!   static rejection and error locations do not map onto our `Problem` kinds, and its API
//!   is pre-1.0. Its runtime behaviour was not tried.
//! * **Own async tree-walker over `ruff_python_parser =0.0.10`** (Astral's parser, published
//!   to crates.io as 0.0.x; builds with rust 1.95): chosen. Parsing is exact CPython
//!   grammar; [`lower`] keeps the subset below and reports everything else with line and
//!   column; every budget ([`Limits`]) is counted in the one place values are created and
//!   statements run; a model call is a plain `.await`.
//!
//! # Subset
//!
//! Functions (nested, closures, defaults, keyword arguments), lambda, `if/elif/else`,
//! `for`/`while` (with `else`, `break`, `continue`), list/set/dict comprehensions and
//! generator expressions (materialised, except that `any(...)`/`all(...)` over a generator
//! stop early as in Python), f-strings, `str.format`, `%`-formatting, lists, tuples, dicts,
//! sets, slicing, `try/except/else/finally`, `raise`, `assert`, `del`, `import math`, and the
//! builtins in [`builtins`]. Ints are 64-bit: overflow raises `OverflowError`.
//!
//! # Sandbox
//!
//! No imports but `math`; no names or attributes starting with `__` (attributes starting with
//! `_` at all); no `eval`, `exec`, `compile`, `open`, `globals`, `locals`, `vars`, `dir`,
//! `getattr`, `type`, … (see [`lower::FORBIDDEN_NAMES`]); `str.format` fields cannot reach
//! attributes. The interpreter has no file, network, environment or clock access to offer.
//! Budgets end a program with a `limit` error that Python code cannot catch.

pub mod ast;
pub mod builtins;
mod builtins_num;
pub mod format;
mod interp;
pub mod lower;
mod methods;
mod num;
mod obj;
mod ops;
pub mod patch;
mod run;
mod setorder;
mod spec;
mod str_methods;

pub use run::{
    check_program, run_python_program, run_python_programs, run_python_programs_streaming,
    PyProgram, MAX_SOURCE_BYTES,
};

use std::time::Duration;

/// Budgets of one program. Exceeding any ends that program alone with a `limit` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Interpreter steps (statements, expression nodes, loop iterations, and a cost
    /// proportional to the size of bulk operations such as sorting or comparing).
    pub max_steps: u64,
    /// Total bytes of strings and containers created over the run (charged before
    /// allocating, so a memory bomb is refused rather than attempted).
    pub max_alloc_bytes: u64,
    /// Nested calls of Python functions (CPython's default recursion limit); deeper calls
    /// raise RecursionError. The interpreter grows its own stack as it recurses, so this
    /// cannot overflow the host's.
    pub max_depth: usize,
    /// Bytes of `print` output, and of the final answer.
    pub max_output_bytes: usize,
    /// Model calls (requests sent through the scheduler).
    pub max_calls: usize,
    /// Time spent interpreting (waiting for model batches does not count).
    pub max_wall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 2_000_000,
            max_alloc_bytes: 64 << 20,
            max_depth: 1000,
            max_output_bytes: 64 << 10,
            max_calls: 2_000,
            max_wall: Duration::from_secs(10),
        }
    }
}
