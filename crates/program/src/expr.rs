//! EVAL's expression language, evaluated by our own interpreter.
//!
//! Language models write VisProg-style expressions such as
//! `'yes' if {ANSWER0} > 0 else 'no'`, `{ANSWER0} and not {ANSWER1}`, `{A} xor {B}` or
//! `'{ANSWER0}' == 'blue'`. Handing them to a host `eval` would let generated text run
//! arbitrary code, so they are parsed into a small tree and interpreted here instead.
//!
//! Grammar, loosest binding first (Python's precedence, with `xor` between `or` and `and`):
//!
//! ```text
//! cond    := or ['if' or 'else' cond]
//! or      := xor ('or' xor)*
//! xor     := and ('xor' and)*
//! and     := not ('and' not)*
//! not     := 'not' not | compare
//! compare := sum (('=='|'!='|'<'|'<='|'>'|'>=') sum)*     chained as in Python
//! sum     := term (('+'|'-') term)*
//! term    := unary (('*'|'/'|'%') unary)*
//! unary   := ('-'|'+') unary | atom
//! atom    := number | string | {VAR} | True | False | '(' cond ')'
//! ```
//!
//! A bare `{VAR}` is the variable's value; inside quotes `'{VAR}'` is its answer text.
//! Coercions follow what module outputs look like: VQA answers "yes"/"no" act as booleans,
//! numeric answers ("2") act as numbers, and text equality ignores case and surrounding
//! space, because VQA answers are compared with hand-written literals.
//!
//! Input length and nesting depth are bounded so no input can exhaust the stack.

use sdvp_core::value::Value;

mod interp;

/// Longest expression text accepted, in characters.
pub const MAX_EXPR_CHARS: usize = 4096;
/// Deepest nesting accepted (tree depth and parser recursion both count against it).
pub const MAX_DEPTH: usize = 64;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
    /// Every `{VAR}` occurrence with its 1-based column, in text order.
    spans: Vec<(String, usize)>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    /// 1-based character column inside the expression text.
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        column,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    kind: Kind,
    column: usize,
    depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(String, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Num(f64),
    Bool(bool),
    Str(Vec<Part>),
    Var(String),
    Not(Box<Node>),
    Neg(Box<Node>),
    Pos(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Compare(Box<Node>, Vec<(CmpOp, usize, Node)>),
    Cond {
        then: Box<Node>,
        cond: Box<Node>,
        otherwise: Box<Node>,
    },
}

impl Kind {
    /// Depth from the immediate children only, so building a node never recurses.
    fn depth(&self) -> usize {
        let below = match self {
            Kind::Num(_) | Kind::Bool(_) | Kind::Str(_) | Kind::Var(_) => 0,
            Kind::Not(n) | Kind::Neg(n) | Kind::Pos(n) => n.depth,
            Kind::Binary(_, a, b) => a.depth.max(b.depth),
            Kind::Compare(a, rest) => rest.iter().map(|r| r.2.depth).fold(a.depth, usize::max),
            Kind::Cond {
                then,
                cond,
                otherwise,
            } => then.depth.max(cond.depth).max(otherwise.depth),
        };
        below + 1
    }
}

fn node(kind: Kind, column: usize) -> Result<Node, ExprError> {
    let depth = kind.depth();
    if depth > MAX_DEPTH {
        return err(
            column,
            format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
        );
    }
    Ok(Node {
        kind,
        column,
        depth,
    })
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(Vec<Part>),
    Var(String),
    Word(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    column: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads `NAME}` starting at `start` (just after `{`); returns the name and the index after `}`.
fn read_placeholder(chars: &[char], start: usize, allow_space: bool) -> Option<(String, usize)> {
    let mut i = start;
    let skip = |i: &mut usize| {
        while allow_space && chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    skip(&mut i);
    if !chars.get(i).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    let name_start = i;
    while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
        i += 1;
    }
    let name: String = chars[name_start..i].iter().collect();
    skip(&mut i);
    (chars.get(i) == Some(&'}')).then_some((name, i + 1))
}

fn lex(text: &str, spans: &mut Vec<(String, usize)>) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                i += 1;
            }
            if chars.get(i).is_some_and(|c| *c == 'e' || *c == 'E') {
                let mut j = i + 1;
                if chars.get(j).is_some_and(|c| *c == '+' || *c == '-') {
                    j += 1;
                }
                if chars.get(j).is_some_and(char::is_ascii_digit) {
                    i = j;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            match s.parse::<f64>() {
                Ok(n) if n.is_finite() => Tok::Num(n),
                Ok(_) => return err(column, format!("number `{s}` is too large")),
                Err(_) => return err(column, format!("`{s}` is not a number")),
            }
        } else if c == '\'' || c == '"' {
            let (parts, next) = lex_string(&chars, i, spans)?;
            i = next;
            Tok::Str(parts)
        } else if c == '{' {
            match read_placeholder(&chars, i + 1, true) {
                Some((name, next)) => {
                    spans.push((name.clone(), column));
                    i = next;
                    Tok::Var(name)
                }
                None => {
                    return err(
                        column,
                        "expected a variable name and `}` after `{`, as in `{ANSWER0}`",
                    )
                }
            }
        } else if is_ident_start(c) {
            let start = i;
            while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else {
            let next = chars.get(i + 1).copied();
            let (op, len): (&'static str, usize) = match (c, next) {
                ('=', Some('=')) => ("==", 2),
                ('!', Some('=')) => ("!=", 2),
                ('<', Some('=')) => ("<=", 2),
                ('>', Some('=')) => (">=", 2),
                ('<', _) => ("<", 1),
                ('>', _) => (">", 1),
                ('+', _) => ("+", 1),
                ('-', _) => ("-", 1),
                ('*', _) => ("*", 1),
                ('/', _) => ("/", 1),
                ('%', _) => ("%", 1),
                ('(', _) => ("(", 1),
                (')', _) => (")", 1),
                ('=', _) => return err(column, "use `==` to compare; `=` alone is not allowed"),
                ('&', _) => return err(column, "use `and` instead of `&`"),
                ('|', _) => return err(column, "use `or` instead of `|`"),
                ('!', _) => return err(column, "use `not` instead of `!`"),
                ('^', _) => return err(column, "use `xor` instead of `^`"),
                _ => return err(column, format!("unexpected character `{c}`")),
            };
            i += len;
            Tok::Op(op)
        };
        out.push(Token { tok, column });
    }
    out.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// A quoted string; `{NAME}` inside it interpolates, any other `{` is literal text.
fn lex_string(
    chars: &[char],
    start: usize,
    spans: &mut Vec<(String, usize)>,
) -> Result<(Vec<Part>, usize), ExprError> {
    let quote = chars[start];
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return err(
                start + 1,
                format!("string starting here is not closed; add the closing {quote}"),
            );
        };
        if c == quote {
            i += 1;
            break;
        }
        if c == '\\' {
            match chars.get(i + 1) {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('r') => text.push('\r'),
                Some(&e @ ('\\' | '\'' | '"')) => text.push(e),
                Some(&other) => {
                    text.push('\\');
                    text.push(other);
                }
                None => {
                    return err(
                        start + 1,
                        format!("string starting here is not closed; add the closing {quote}"),
                    )
                }
            }
            i += 2;
            continue;
        }
        if c == '{' {
            if let Some((name, next)) = read_placeholder(chars, i + 1, false) {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                spans.push((name.clone(), i + 1));
                parts.push(Part::Var(name, i + 1));
                i = next;
                continue;
            }
        }
        text.push(c);
        i += 1;
    }
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok((parts, i))
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with `End`, and `bump` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(s) if s == w)
    }
    fn is_op(&self, o: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(s) if *s == o)
    }
    fn enter(&mut self) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return err(
                self.peek().column,
                format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            );
        }
        Ok(())
    }

    fn cond(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let then = self.or()?;
        let out = if self.is_word("if") {
            let column = self.bump().column;
            let cond = self.or()?;
            if !self.is_word("else") {
                return err(
                    self.peek().column,
                    "expected `else` after the condition of `... if ... else ...`",
                );
            }
            self.bump();
            let otherwise = self.cond()?;
            node(
                Kind::Cond {
                    then: Box::new(then),
                    cond: Box::new(cond),
                    otherwise: Box::new(otherwise),
                },
                column,
            )?
        } else {
            then
        };
        self.nesting -= 1;
        Ok(out)
    }

    fn binary_level(
        &mut self,
        words: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        loop {
            let found = words.iter().find(|(w, _)| match &self.peek().tok {
                Tok::Word(s) => s == w,
                Tok::Op(s) => s == w,
                _ => false,
            });
            let Some(&(_, op)) = found else {
                return Ok(left);
            };
            let column = self.bump().column;
            let right = next(self)?;
            left = node(Kind::Binary(op, Box::new(left), Box::new(right)), column)?;
        }
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("or", BinOp::Or)], Self::xor)
    }
    fn xor(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("xor", BinOp::Xor)], Self::and)
    }
    fn and(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("and", BinOp::And)], Self::not)
    }
    fn not(&mut self) -> Result<Node, ExprError> {
        if self.is_word("not") {
            let column = self.bump().column;
            self.enter()?;
            let inner = self.not()?;
            self.nesting -= 1;
            return node(Kind::Not(Box::new(inner)), column);
        }
        self.compare()
    }
    fn compare(&mut self) -> Result<Node, ExprError> {
        let first = self.sum()?;
        let mut rest = Vec::new();
        loop {
            let op = match &self.peek().tok {
                Tok::Op("==") => CmpOp::Eq,
                Tok::Op("!=") => CmpOp::Ne,
                Tok::Op("<") => CmpOp::Lt,
                Tok::Op("<=") => CmpOp::Le,
                Tok::Op(">") => CmpOp::Gt,
                Tok::Op(">=") => CmpOp::Ge,
                _ => break,
            };
            let column = self.bump().column;
            rest.push((op, column, self.sum()?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        let column = first.column;
        node(Kind::Compare(Box::new(first), rest), column)
    }
    fn sum(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }
    fn term(&mut self) -> Result<Node, ExprError> {
        self.binary_level(
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
            Self::unary,
        )
    }
    fn unary(&mut self) -> Result<Node, ExprError> {
        let neg = self.is_op("-");
        if neg || self.is_op("+") {
            let column = self.bump().column;
            self.enter()?;
            let inner = Box::new(self.unary()?);
            self.nesting -= 1;
            return node(
                if neg {
                    Kind::Neg(inner)
                } else {
                    Kind::Pos(inner)
                },
                column,
            );
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Node, ExprError> {
        let t = self.bump();
        let column = t.column;
        match t.tok {
            Tok::Num(n) => node(Kind::Num(n), column),
            Tok::Str(parts) => node(Kind::Str(parts), column),
            Tok::Var(name) => node(Kind::Var(name), column),
            Tok::Op("(") => {
                let inner = self.cond()?;
                if !self.is_op(")") {
                    return err(
                        self.peek().column,
                        format!("expected `)` to close the `(` at column {column}"),
                    );
                }
                self.bump();
                Ok(inner)
            }
            Tok::Word(w) => match w.as_str() {
                "True" | "true" => node(Kind::Bool(true), column),
                "False" | "false" => node(Kind::Bool(false), column),
                "and" | "or" | "xor" | "not" | "if" | "else" => err(
                    column,
                    format!("expected a value before or after `{w}`, found the keyword `{w}`"),
                ),
                _ => err(
                    column,
                    format!("unknown name `{w}`: write `{{{w}}}` for a variable or '{w}' for text"),
                ),
            },
            Tok::End => err(column, "expression ends where a value is expected"),
            Tok::Op(o) => err(column, format!("expected a value, found `{o}`")),
        }
    }
}

/// Parses EVAL's expression text; errors point at the 1-based column that needs fixing.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    if text.chars().count() > MAX_EXPR_CHARS {
        return err(
            MAX_EXPR_CHARS + 1,
            format!("expression is longer than {MAX_EXPR_CHARS} characters"),
        );
    }
    let mut spans = Vec::new();
    let toks = lex(text, &mut spans)?;
    let mut p = Parser {
        toks,
        pos: 0,
        nesting: 0,
    };
    if matches!(p.peek().tok, Tok::End) {
        return err(1, "expression is empty");
    }
    let root = p.cond()?;
    let rest = p.peek();
    if !matches!(rest.tok, Tok::End) {
        let what = match &rest.tok {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Op(o) => format!("`{o}`"),
            _ => "value".to_string(),
        };
        return err(
            rest.column,
            format!("unexpected {what}; an operator such as `and`, `==` or `+` is missing, or this is extra"),
        );
    }
    Ok(Expr { root, spans })
}

/// Names of the `{VAR}` placeholders, in order of first appearance.
pub fn placeholders(expr: &Expr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in &expr.spans {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// Every `{VAR}` occurrence with its 1-based column in the expression text, so a
/// validator can point at the exact placeholder that is undefined.
pub fn placeholder_spans(expr: &Expr) -> &[(String, usize)] {
    &expr.spans
}

/// Evaluates with `lookup` giving each `{VAR}`'s value; errors name the column at fault.
pub fn eval(expr: &Expr, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, ExprError> {
    interp::eval_node(&expr.root, lookup)
}
