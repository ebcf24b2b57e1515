//! Static validation of a parsed program against a registry (placeholder signature).
use crate::ast::{Problem, Program};
use crate::steps::Registry;
use crate::value::ValueType;

/// All problems of `program`; `inputs` are the names the program may read (e.g. `IMAGE`).
pub fn validate(
    _program: &Program,
    _registry: &Registry,
    _inputs: &[(&str, ValueType)],
) -> Vec<Problem> {
    Vec::new()
}
