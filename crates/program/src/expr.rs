//! EVAL's expression language (placeholder signature).
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    /// 1-based character column inside the expression text.
    pub column: usize,
    pub message: String,
}

pub fn parse(_text: &str) -> Result<Expr, ExprError> {
    Err(ExprError {
        column: 1,
        message: "not implemented".into(),
    })
}

/// Names of the `{VAR}` placeholders, in order of appearance.
pub fn placeholders(_expr: &Expr) -> Vec<String> {
    Vec::new()
}

pub fn eval(_expr: &Expr, _lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, ExprError> {
    Err(ExprError {
        column: 1,
        message: "not implemented".into(),
    })
}
