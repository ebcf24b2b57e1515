//! ViperGPT-style Python programs in a sandboxed interpreter with batched model calls.
//!
//! A program is `def execute_command(image): ...` written against ViperGPT's `ImagePatch`
//! API ([`patch`] documents the API, its coordinate convention and the request each method
//! sends). [`check_program`] parses and checks it, rejecting unsupported syntax and sandbox
//! escapes *before* anything runs; [`run_python_program`] runs it as a Rust future on the
//! [`sdvp_core::Scheduler`], so model calls of many programs are batched exactly as step
//! programs' are, and records a [`sdvp_core::trace::Trace`].
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
//! Functions (nested, closures, defaults, keyword-only parameters, `*args`/`**kwargs`,
//! `f(*xs, **kw)`, `nonlocal`/`global`), lambda, `if/elif/else`, `for`/`while` (with
//! `else`, `break`, `continue`), list/set/dict comprehensions and generator expressions
//! (materialised, then handed out by an iterator; `any(...)`/`all(...)` over a generator
//! stop early as in Python), f-strings (with `=`), `str.format`, `%`-formatting, lists,
//! tuples, dicts (and their live views), sets and frozensets (iterated in CPython's order),
//! slicing and
//! slice assignment, starred unpacking, the walrus operator, `try/except/else/finally`,
//! `raise … from …`, `assert`, `del`, `import math`, and the builtins in [`builtins`].
//! Ints have arbitrary precision (as in CPython, converting more than 4300 digits to or
//! from text raises ValueError); recursion goes to CPython's depth of 1000, then raises
//! RecursionError. `tests/differential.rs` compares the sandbox with CPython 3.11 over a
//! corpus of several hundred programs and prints the agreement per category.
//!
//! # Deliberate refusals
//!
//! Everything that could reach host state is refused, always with an error that names the
//! reason. This is the one list:
//!
//! | refused | error | why |
//! |---|---|---|
//! | `import` of any module but `math`; `from math import *` | `forbidden` before running | other modules reach files, processes, the network, the interpreter |
//! | names starting with `__`; attributes starting with `_` | `forbidden` before running | dunder walks (`().__class__.__bases__[0].__subclasses__()`) lead to the interpreter's internals |
//! | `eval`, `exec`, `compile` | `forbidden` before running | they run code from text |
//! | `open`, `input`, `breakpoint`, `help`, `exit`, `quit` | `forbidden` before running | they reach the host's files, terminal, debugger or process |
//! | `globals`, `locals`, `vars`, `dir`, `getattr`, `setattr`, `delattr`, `hasattr`, `type`, `object`, `super`, `classmethod`, `staticmethod`, `property`, `id`, `hash`, `memoryview`, `bytearray` | `forbidden` before running | introspection: namespaces, computed attribute access, the class tree, addresses, raw memory ([`lower::FORBIDDEN_NAMES`] gives each reason) |
//! | attribute or index access in `str.format` fields (`'{0.__class__}'`, `'{0[k]}'`) | ValueError when formatting | the classic format-string escape |
//! | exceeding a budget of [`Limits`] (steps, memory, output, model calls, wall time) | `limit`, which no `except` can catch | one hostile program must not take down a batch |
//!
//! Not supported (refused before running as `unsupported_syntax`, or raising at run time), for
//! want of need rather than for safety: classes, `with`, `yield` and generator functions,
//! `async`/`await`, `match`, decorators, type aliases, complex numbers (a negative number to
//! a fractional power raises ValueError instead of returning a complex), bytes, lone surrogate
//! characters.
//!
//! # Sandbox
//!
//! The interpreter has no file, network, environment or clock access to offer. Budgets end a
//! program with a `limit` error that Python code cannot catch. Memory is charged *before*
//! results are built (string and list bombs, `splitlines`, padding widths, big-int results),
//! hashing and comparing deep or shared structures is charged to the step budget and bounded
//! in depth, error texts are cut to the output budget, and the interpreter grows its own
//! stack as it recurses, so no program can overflow the host's.

pub mod ast;
pub mod builtins;
mod builtins_num;
mod compare;
pub mod format;
mod index;
mod interp;
pub mod lower;
mod methods;
mod num;
mod obj;
mod ops;
pub mod patch;
mod percent;
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
