//! Problems found in a program before it runs, in either style.
//!
//! Positions are 1-based line and column (in characters) of the source text, so every
//! problem can point at the exact spot a person or a language model has to fix.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }
}

/// What kind of mistake a problem reports. Stable names: tools match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The line is not `NAME=MODULE(args)`.
    Syntax,
    UnterminatedString,
    /// Text after the closing parenthesis.
    TrailingGarbage,
    UnknownModule,
    UnknownArgument,
    MissingArgument,
    DuplicateArgument,
    /// An argument or module name that only differs by case (`Image=` for `image=`).
    WrongArgumentCase,
    UndefinedVariable,
    ReassignedVariable,
    TypeMismatch,
    /// EVAL's expression does not parse or refers to an undefined `{VAR}`.
    BadExpression,
    /// No steps, or the last step is not `RESULT`.
    MissingResult,
    /// Valid Python that the sandbox does not run (rejected before running).
    UnsupportedSyntax,
    /// Anything a sandbox forbids (imports, dunder access, …), found statically.
    Forbidden,
    /// The program is over the size limit (lines or bytes) and was not parsed.
    TooLarge,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Syntax => "syntax",
            ProblemKind::UnterminatedString => "unterminated_string",
            ProblemKind::TrailingGarbage => "trailing_garbage",
            ProblemKind::UnknownModule => "unknown_module",
            ProblemKind::UnknownArgument => "unknown_argument",
            ProblemKind::MissingArgument => "missing_argument",
            ProblemKind::DuplicateArgument => "duplicate_argument",
            ProblemKind::WrongArgumentCase => "wrong_argument_case",
            ProblemKind::UndefinedVariable => "undefined_variable",
            ProblemKind::ReassignedVariable => "reassigned_variable",
            ProblemKind::TypeMismatch => "type_mismatch",
            ProblemKind::BadExpression => "bad_expression",
            ProblemKind::MissingResult => "missing_result",
            ProblemKind::UnsupportedSyntax => "unsupported_syntax",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::TooLarge => "too_large",
        }
    }
}

/// One mistake in a program, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            kind,
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line,
            self.column,
            self.kind.as_str(),
            self.message
        )
    }
}
