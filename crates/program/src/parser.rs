//! Step-program parser (owned by the parser work; placeholder signature).
use crate::ast::{Problem, Program};

/// Parse a whole program. Every line is parsed, so all syntax problems are reported at once;
/// the returned program holds the steps that parsed.
pub fn parse(_source: &str) -> (Program, Vec<Problem>) {
    (Program::default(), Vec::new())
}
