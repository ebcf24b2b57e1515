//! The EVAL step: combines earlier results with an expression (`'yes' if {ANSWER0} > 0 else 'no'`).
//!
//! The expression is interpreted by [`crate::expr`], never by a host `eval`. It is parsed again
//! on every run rather than cached: expressions are a few dozen characters, so parsing costs
//! far less than the model calls around it, and no shared cache has to be bounded or locked.

use super::{Signature, StepArgs, StepFuture, StepModule};
use crate::ast::{ArgValue, Literal, Pos, Problem, ProblemKind, Step};
use crate::expr;
use sdvp_core::scheduler::ModuleCtx;
use sdvp_core::value::{Value, ValueType};

pub struct Eval;

impl Eval {
    fn expr_arg(step: &Step) -> Option<&crate::ast::Arg> {
        // A case slip (`Expr=`) is reported by validation; still check the expression.
        step.arg("expr").or_else(|| {
            step.args
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case("expr"))
        })
    }
}

/// Where column `column` of a string literal's text sits in the source line: just after the
/// opening quote. Exact unless the literal contains escapes before that column.
fn source_pos(value_pos: Pos, column: usize) -> Pos {
    Pos::new(value_pos.line, value_pos.column + column)
}

impl StepModule for Eval {
    fn name(&self) -> &'static str {
        "EVAL"
    }
    fn doc(&self) -> &'static str {
        "Evaluate an expression over earlier results, e.g. \"'yes' if {ANSWER0} > 0 else 'no'\"; {VAR} is a variable's value."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![super::ArgSpec::required(
                "expr",
                ValueType::Text,
                "expression over {VAR} placeholders",
            )],
            output: ValueType::Any,
        }
    }

    fn check(&self, step: &Step, var_type: &dyn Fn(&str) -> Option<ValueType>) -> Vec<Problem> {
        let Some(arg) = Self::expr_arg(step) else {
            return Vec::new();
        };
        let ArgValue::Lit(Literal::Str(text)) = &arg.value else {
            // A variable holding the expression can only be checked when it runs.
            return Vec::new();
        };
        let parsed = match parse_cached(text) {
            Ok(p) => p,
            Err(e) => {
                return vec![Problem::new(
                    ProblemKind::BadExpression,
                    source_pos(arg.value_pos, e.column),
                    format!("in the EVAL expression: {}", e.message),
                )]
            }
        };
        let mut problems = Vec::new();
        for (name, column) in expr::placeholder_spans(&parsed) {
            let pos = source_pos(arg.value_pos, *column);
            match var_type(name) {
                None => problems.push(Problem::new(
                    ProblemKind::BadExpression,
                    pos,
                    format!("`{{{name}}}` in the EVAL expression is not defined before this step"),
                )),
                Some(ValueType::Image) => problems.push(Problem::new(
                    ProblemKind::BadExpression,
                    pos,
                    format!(
                        "`{{{name}}}` is an image; expressions work on text, numbers and yes/no values"
                    ),
                )),
                Some(_) => {}
            }
        }
        problems
    }

    fn run<'a>(&'a self, args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        let outcome = (|| {
            let text = match args.value("expr")? {
                Value::Text(s) => s.clone(),
                other => {
                    return Err(format!(
                        "argument `expr` must be text, got {}",
                        other.value_type()
                    ))
                }
            };
            let parsed = parse_cached(&text).map_err(|e| format!("expression `{text}`: {e}"))?;
            expr::eval(&parsed, &|name| args.env.get(name).cloned())
                .map_err(|e| format!("expression `{text}`: {e}"))
        })();
        Box::pin(std::future::ready(outcome))
    }
}

thread_local! {
    /// Parsed expressions by text. Programs of one task repeat a handful of EVAL templates,
    /// and every expression is parsed twice (check, then run), so parsing dominated EVAL.
    static PARSED: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<expr::Expr>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Entries kept before the cache starts over (bounds memory on endless distinct inputs).
const CACHE_LIMIT: usize = 4096;

fn parse_cached(text: &str) -> Result<std::rc::Rc<expr::Expr>, expr::ExprError> {
    if let Some(hit) = PARSED.with(|c| c.borrow().get(text).cloned()) {
        return Ok(hit);
    }
    let parsed = std::rc::Rc::new(expr::parse(text)?);
    PARSED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(text.to_string(), parsed.clone());
    });
    Ok(parsed)
}
