//! Step-program parser: one `OUT=MODULE(arg=value,...)` per line.
//!
//! Programs come from language models, so the parser expects junk: every line is parsed on
//! its own and every bad line yields one problem with an actionable message (a stray
//! `Question:` line, a markdown fence, a missing `=`), so a person or a repair prompt can fix
//! all of them in one round instead of one per run.

use crate::ast::{Arg, ArgValue, Literal, Pos, Problem, ProblemKind, Program, Step};

/// The most lines a step program may have (VisProg programs have a handful; a model's runaway
/// output or a pasted file is refused before any work that grows with its length).
pub const MAX_PROGRAM_LINES: usize = 10_000;
/// The most bytes a step program may have (1 MiB).
pub const MAX_PROGRAM_BYTES: usize = 1 << 20;

/// `source` without a leading UTF-8 byte-order mark (editors on Windows write one).
pub fn strip_bom(source: &str) -> &str {
    source.strip_prefix('\u{feff}').unwrap_or(source)
}

/// A problem when `source` is over [`MAX_PROGRAM_BYTES`] or [`MAX_PROGRAM_LINES`].
pub fn size_problem(source: &str) -> Option<Problem> {
    if source.len() > MAX_PROGRAM_BYTES {
        return Some(Problem::new(
            ProblemKind::TooLarge,
            Pos::new(1, 1),
            format!(
                "the program is {} bytes; step programs may have at most {MAX_PROGRAM_BYTES} bytes",
                source.len()
            ),
        ));
    }
    // Counted without allocating; stops at the first line over the limit.
    if let Some((index, _)) = source.lines().enumerate().nth(MAX_PROGRAM_LINES) {
        return Some(Problem::new(
            ProblemKind::TooLarge,
            Pos::new(index + 1, 1),
            format!(
                "the program has more than {MAX_PROGRAM_LINES} lines; step programs may have at most {MAX_PROGRAM_LINES}"
            ),
        ));
    }
    None
}

/// Parse a whole program. Every line is parsed, so all syntax problems are reported at once;
/// the returned program holds the steps that parsed. A leading byte-order mark is ignored; a
/// program over the size limits yields one [`ProblemKind::TooLarge`] problem and no steps.
pub fn parse(source: &str) -> (Program, Vec<Problem>) {
    let mut program = Program::default();
    let mut problems = Vec::new();
    if let Some(p) = size_problem(source) {
        problems.push(p);
        return (program, problems);
    }
    for (index, text) in strip_bom(source).lines().enumerate() {
        let mut line = Line::new(text, index + 1);
        line.skip_ws();
        if line.at_end() {
            continue;
        }
        match line.step() {
            Ok(step) => {
                line.skip_ws();
                if !line.at_end() {
                    let rest: String = line.chars[line.i..].iter().collect();
                    problems.push(Problem::new(
                        ProblemKind::TrailingGarbage,
                        line.pos(),
                        format!(
                            "unexpected text `{}` after the closing `)`; write one step per line",
                            shorten(rest.trim_end())
                        ),
                    ));
                }
                program.steps.push(step);
            }
            Err(p) => problems.push(p),
        }
    }
    (program, problems)
}

/// Keeps quoted junk in messages readable when a model pastes a paragraph.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

const SHAPE: &str = "a step looks like `NAME=MODULE(arg=value,...)`";

struct Line {
    chars: Vec<char>,
    i: usize,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Characters that print as nothing, so "found `…`" would show an empty quote.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Line {
    fn new(text: &str, line: usize) -> Self {
        Self {
            chars: text.chars().collect(),
            i: 0,
            line,
        }
    }
    fn pos(&self) -> Pos {
        Pos::new(self.line, self.i + 1)
    }
    fn pos_at(&self, i: usize) -> Pos {
        Pos::new(self.line, i + 1)
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.chars.len()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }
    fn syntax(&self, message: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Syntax, self.pos(), message)
    }
    fn ident(&mut self) -> Option<String> {
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        let start = self.i;
        while self.peek().is_some_and(is_ident_char) {
            self.i += 1;
        }
        Some(self.chars[start..self.i].iter().collect())
    }
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the line".to_string(),
            Some('\u{feff}') => "an invisible byte-order mark (U+FEFF); delete it".to_string(),
            Some(c) if is_invisible(c) => {
                format!("the invisible character U+{:04X}; delete it", c as u32)
            }
            Some(c) => format!("`{c}`"),
        }
    }

    /// Recognises the non-program text language models wrap programs in.
    fn junk(&self) -> Option<Problem> {
        let rest: String = self.chars[self.i..].iter().collect();
        if rest.starts_with("```") {
            return Some(self.syntax(
                "markdown code fence: remove the ``` lines; the program is only its step lines",
            ));
        }
        if rest.starts_with('#') || rest.starts_with("//") {
            return Some(self.syntax(format!(
                "comments are not allowed; remove this line ({SHAPE})"
            )));
        }
        // `Question: ...`, `Program:`, `Answer: yes`: a label, not a step.
        let colon = rest.find(':')?;
        let label = &rest[..colon];
        let is_label = !label.is_empty()
            && !rest[..colon].contains(['=', '(', '\'', '"'])
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '_');
        if !is_label {
            return None;
        }
        let advice = if rest[colon + 1..].contains('=') {
            "remove the prefix and keep the step"
        } else {
            "remove this line"
        };
        Some(self.syntax(format!(
            "`{}:` is not a step; {advice} ({SHAPE})",
            label.trim()
        )))
    }

    fn step(&mut self) -> Result<Step, Problem> {
        if let Some(p) = self.junk() {
            return Err(p);
        }
        let output_pos = self.pos();
        let Some(output) = self.ident() else {
            return Err(self.syntax(format!(
                "expected an output name such as `ANSWER0` at the start of the step, found {}; {SHAPE}",
                self.found()
            )));
        };
        self.skip_ws();
        if self.peek() == Some('(') {
            return Err(Problem::new(
                ProblemKind::Syntax,
                output_pos,
                format!("the step has no output name: write `NAME={output}(...)`"),
            ));
        }
        if self.peek() != Some('=') {
            return Err(self.syntax(format!(
                "expected `=` after the output name `{output}`, found {}; {SHAPE}",
                self.found()
            )));
        }
        self.i += 1;
        self.skip_ws();
        let module_pos = self.pos();
        let Some(module) = self.ident() else {
            return Err(self.syntax(format!(
                "expected a module name such as `LOC` or `VQA` after `{output}=`, found {}",
                self.found()
            )));
        };
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.syntax(format!(
                "expected `(` after the module name `{module}`, found {}",
                self.found()
            )));
        }
        self.i += 1;
        let args = self.args(&module)?;
        Ok(Step {
            line: self.line,
            output,
            output_pos,
            module,
            module_pos,
            args,
        })
    }

    /// Arguments up to and including the closing `)`.
    fn args(&mut self, module: &str) -> Result<Vec<Arg>, Problem> {
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(')') {
                self.i += 1;
                return Ok(args);
            }
            if self.at_end() {
                return Err(self.syntax(format!("missing `)` at the end of the `{module}` step")));
            }
            let name_pos = self.pos();
            let Some(name) = self.ident() else {
                return Err(self.syntax(format!(
                    "expected an argument name (as in `image=IMAGE`) in `{module}(...)`, found {}",
                    self.found()
                )));
            };
            self.skip_ws();
            if self.peek() != Some('=') {
                return Err(self.syntax(format!(
                    "expected `=` after the argument name `{name}`, found {}",
                    self.found()
                )));
            }
            self.i += 1;
            self.skip_ws();
            let value_pos = self.pos();
            let value = self.value(&name)?;
            args.push(Arg {
                name,
                name_pos,
                value,
                value_pos,
            });
            self.skip_ws();
            match self.peek() {
                Some(',') => self.i += 1,
                Some(')') => {}
                None => {
                    return Err(
                        self.syntax(format!("missing `)` at the end of the `{module}` step"))
                    )
                }
                Some(_) => {
                    return Err(self.syntax(format!(
                        "expected `,` or `)` after the value of `{}`, found {}",
                        args.last().map(|a| a.name.as_str()).unwrap_or(""),
                        self.found()
                    )))
                }
            }
        }
    }

    fn value(&mut self, arg: &str) -> Result<ArgValue, Problem> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => self.string(q).map(|s| ArgValue::Lit(Literal::Str(s))),
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            Some(c) if is_ident_start(c) => {
                let name = self.ident().unwrap_or_default();
                Ok(match name.as_str() {
                    "True" => ArgValue::Lit(Literal::Bool(true)),
                    "False" => ArgValue::Lit(Literal::Bool(false)),
                    _ => ArgValue::Var(name),
                })
            }
            _ => Err(self.syntax(format!(
                "expected a value for `{arg}` (a variable, a quoted string, a number, True or False), found {}",
                self.found()
            ))),
        }
    }

    fn string(&mut self, quote: char) -> Result<String, Problem> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(Problem::new(
                    ProblemKind::UnterminatedString,
                    self.pos_at(start),
                    format!("the string starting here is not closed; add the closing {quote}"),
                ));
            };
            self.i += 1;
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match self.peek() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(e @ ('\\' | '\'' | '"')) => out.push(e),
                // Unknown escapes stay as written, as in Python.
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => continue,
            }
            self.i += 1;
        }
    }

    fn number(&mut self) -> Result<ArgValue, Problem> {
        let start = self.i;
        if matches!(self.peek(), Some('-' | '+')) {
            self.i += 1;
        }
        let mut digits = 0;
        let mut float = false;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                digits += 1;
            } else if c == '.' && !float {
                float = true;
            } else {
                break;
            }
            self.i += 1;
        }
        if digits == 0 {
            self.i = start;
            return Err(self.syntax(format!("expected a number, found {}", self.found())));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.peek(), Some('-' | '+')) {
                self.i += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            } else {
                self.i = save;
            }
        }
        let text: String = self.chars[start..self.i].iter().collect();
        let out_of_range = || {
            Problem::new(
                ProblemKind::Syntax,
                self.pos_at(start),
                format!("the number `{text}` is out of range"),
            )
        };
        if !float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(ArgValue::Lit(Literal::Int(n)));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(ArgValue::Lit(Literal::Float(f))),
            _ => Err(out_of_range()),
        }
    }
}
