//! The interpreter behind [`super::eval`]: coercions between module outputs and operators.
//!
//! Recursion follows the tree, whose depth the parser bounds by [`super::MAX_DEPTH`].

use super::{err, BinOp, CmpOp, ExprError, Kind, Node, Part};
use sdvp_core::value::Value;

fn describe(v: &Value) -> String {
    match v {
        Value::Text(s) => format!("text '{s}'"),
        Value::Number(_) | Value::Bool(_) => format!("{} {}", v.value_type(), v.to_answer()),
        Value::Boxes(_) => "a box list".to_string(),
        Value::Image(_) => "an image".to_string(),
    }
}

/// Numeric text, restricted to plain decimal notation so answers like "inf" stay text.
fn numeric_text(s: &str) -> Option<f64> {
    let t = s.trim();
    let plain = !t.is_empty()
        && t.chars().any(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !plain {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Text(s) => numeric_text(s),
        _ => None,
    }
}

fn yes_no(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn truth(v: &Value, column: usize) -> Result<bool, ExprError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(*n != 0.0),
        Value::Text(s) => {
            if let Some(b) = yes_no(s) {
                Ok(b)
            } else if let Some(n) = numeric_text(s) {
                Ok(n != 0.0)
            } else if s.trim().is_empty() {
                Ok(false)
            } else {
                err(
                    column,
                    format!(
                        "{} is not yes or no, so it cannot be a condition",
                        describe(v)
                    ),
                )
            }
        }
        Value::Boxes(b) => Ok(!b.boxes.is_empty()),
        Value::Image(_) => err(column, "an image cannot be a condition"),
    }
}

fn number(v: &Value, op: &str, column: usize) -> Result<f64, ExprError> {
    numeric(v).ok_or_else(|| ExprError {
        column,
        message: format!("`{op}` needs numbers, got {}", describe(v)),
    })
}

fn finite(n: f64, column: usize) -> Result<Value, ExprError> {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        err(column, "the result is too large to be a number")
    }
}

fn normalized(s: &str) -> String {
    s.trim().to_lowercase()
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bool(x), o) | (o, Value::Bool(x)) => match o {
            Value::Bool(y) => x == y,
            Value::Text(t) => match yes_no(t) {
                Some(y) => *x == y,
                None => numeric_text(t) == Some(if *x { 1.0 } else { 0.0 }),
            },
            Value::Number(n) => *n == if *x { 1.0 } else { 0.0 },
            _ => false,
        },
        _ => match (numeric(a), numeric(b)) {
            (Some(x), Some(y)) => x == y,
            _ => match (a, b) {
                (Value::Text(x), Value::Text(y)) => normalized(x) == normalized(y),
                _ => a == b,
            },
        },
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value, column: usize) -> Result<bool, ExprError> {
    let ord = match op {
        CmpOp::Eq => return Ok(equal(a, b)),
        CmpOp::Ne => return Ok(!equal(a, b)),
        _ => match (numeric(a), numeric(b), a, b) {
            (Some(x), Some(y), _, _) => x.partial_cmp(&y),
            (None, None, Value::Text(x), Value::Text(y)) => Some(normalized(x).cmp(&normalized(y))),
            _ => None,
        },
    };
    let Some(ord) = ord else {
        return err(
            column,
            format!("cannot order {} and {}", describe(a), describe(b)),
        );
    };
    Ok(match op {
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

pub(super) fn eval_node(
    n: &Node,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, ExprError> {
    let var = |name: &str, column: usize| {
        lookup(name).ok_or_else(|| ExprError {
            column,
            message: format!("variable `{name}` is not defined"),
        })
    };
    match &n.kind {
        Kind::Num(x) => Ok(Value::Number(*x)),
        Kind::Bool(b) => Ok(Value::Bool(*b)),
        Kind::Var(name) => var(name, n.column),
        Kind::Str(parts) => {
            let mut s = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => s.push_str(t),
                    Part::Var(name, column) => s.push_str(&var(name, *column)?.to_answer()),
                }
            }
            Ok(Value::Text(s))
        }
        Kind::Not(inner) => {
            let v = eval_node(inner, lookup)?;
            Ok(Value::Bool(!truth(&v, inner.column)?))
        }
        Kind::Neg(inner) => {
            let v = eval_node(inner, lookup)?;
            finite(-number(&v, "-", inner.column)?, n.column)
        }
        Kind::Pos(inner) => {
            let v = eval_node(inner, lookup)?;
            finite(number(&v, "+", inner.column)?, n.column)
        }
        Kind::Cond {
            then,
            cond,
            otherwise,
        } => {
            let c = eval_node(cond, lookup)?;
            if truth(&c, cond.column)? {
                eval_node(then, lookup)
            } else {
                eval_node(otherwise, lookup)
            }
        }
        Kind::Compare(first, rest) => {
            let mut left = eval_node(first, lookup)?;
            for (op, column, right) in rest {
                let r = eval_node(right, lookup)?;
                if !compare(*op, &left, &r, *column)? {
                    return Ok(Value::Bool(false));
                }
                left = r;
            }
            Ok(Value::Bool(true))
        }
        Kind::Binary(op, a, b) => eval_binary(*op, a, b, n.column, lookup),
    }
}

fn eval_binary(
    op: BinOp,
    a: &Node,
    b: &Node,
    column: usize,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, ExprError> {
    let left = eval_node(a, lookup)?;
    match op {
        BinOp::And | BinOp::Or => {
            let l = truth(&left, a.column)?;
            // Short-circuit as Python does, so `{X} and {Y}` never touches Y when X is no.
            if l == (op == BinOp::Or) {
                return Ok(Value::Bool(l));
            }
            let right = eval_node(b, lookup)?;
            return Ok(Value::Bool(truth(&right, b.column)?));
        }
        BinOp::Xor => {
            let right = eval_node(b, lookup)?;
            return Ok(Value::Bool(
                truth(&left, a.column)? != truth(&right, b.column)?,
            ));
        }
        _ => {}
    }
    let right = eval_node(b, lookup)?;
    let sym = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        _ => "%",
    };
    if op == BinOp::Add {
        if let (Value::Text(x), Value::Text(y)) = (&left, &right) {
            if numeric_text(x).is_none() || numeric_text(y).is_none() {
                return Ok(Value::Text(format!("{x}{y}")));
            }
        }
    }
    let x = number(&left, sym, a.column)?;
    let y = number(&right, sym, b.column)?;
    match op {
        BinOp::Add => finite(x + y, column),
        BinOp::Sub => finite(x - y, column),
        BinOp::Mul => finite(x * y, column),
        BinOp::Div | BinOp::Rem if y == 0.0 => err(column, format!("`{sym}` by zero")),
        BinOp::Div => finite(x / y, column),
        // Python's modulo takes the divisor's sign.
        _ => finite(((x % y) + y) % y, column),
    }
}
