//! Syntax tree of step programs (`OUT=MODULE(arg=value,...)`, one per line).
//!
//! Positions are 1-based line and column (in characters) of the source text, so every
//! problem can point at the exact spot a person or a language model has to fix.

use serde::{Deserialize, Serialize};

pub use sdvp_core::problem::{Pos, Problem, ProblemKind};

/// A literal argument value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArgValue {
    /// A reference to an earlier step's output or to a program input (`IMAGE`, `LEFT`, `RIGHT`).
    Var(String),
    Lit(Literal),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub name: String,
    pub name_pos: Pos,
    pub value: ArgValue,
    pub value_pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based source line.
    pub line: usize,
    pub output: String,
    pub output_pos: Pos,
    pub module: String,
    pub module_pos: Pos,
    pub args: Vec<Arg>,
}

impl Step {
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Program {
    pub steps: Vec<Step>,
}
