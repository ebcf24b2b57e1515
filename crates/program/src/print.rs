//! Canonical text of a step program.
//!
//! Programs are stored, shown in prompts and diffed after repair, so one spelling per program
//! keeps caches and comparisons stable: `parse(print_program(p))` gives `p` back, up to
//! source positions.

use crate::ast::{ArgValue, Literal, Pos, Program};
use std::fmt::Write;

/// One step per line, each line ending in `\n`; strings single-quoted with escapes.
///
/// A variable named `True` or `False` cannot round-trip (it reads back as a boolean), and
/// non-finite floats have no spelling; the parser never produces either.
pub fn print_program(program: &Program) -> String {
    let mut out = String::new();
    for step in &program.steps {
        let _ = write!(out, "{}={}(", step.output, step.module);
        for (i, arg) in step.args.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}=", arg.name);
            print_value(&mut out, &arg.value);
        }
        out.push_str(")\n");
    }
    out
}

fn print_value(out: &mut String, value: &ArgValue) {
    match value {
        ArgValue::Var(name) => out.push_str(name),
        ArgValue::Lit(Literal::Str(s)) => out.push_str(&quote(s)),
        ArgValue::Lit(Literal::Int(n)) => {
            let _ = write!(out, "{n}");
        }
        // `{:?}` always keeps a `.` or an exponent, so the value reads back as a float.
        ArgValue::Lit(Literal::Float(f)) => {
            let _ = write!(out, "{f:?}");
        }
        ArgValue::Lit(Literal::Bool(b)) => out.push_str(if *b { "True" } else { "False" }),
    }
}

/// A single-quoted string literal the parser reads back as `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The program with every line and column zeroed, for comparing programs by content.
pub fn strip_positions(program: &Program) -> Program {
    let mut p = program.clone();
    for step in &mut p.steps {
        step.line = 0;
        step.output_pos = Pos::default();
        step.module_pos = Pos::default();
        for arg in &mut step.args {
            arg.name_pos = Pos::default();
            arg.value_pos = Pos::default();
        }
    }
    p
}

/// Whether two programs say the same thing, wherever their steps were written.
pub fn same_program(a: &Program, b: &Program) -> bool {
    strip_positions(a) == strip_positions(b)
}
