//! The sandbox's own syntax tree: the small Python subset it runs.
//!
//! Lowering from the parser's tree into this one is where everything unsupported or
//! forbidden is rejected, so the interpreter never meets a construct it cannot run and a
//! program fails before its first model call, not half-way. Every node keeps its line and
//! column for errors and tracebacks.

use std::rc::Rc;

/// Line and column (both 1-based, column in characters) of a node in the program text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    LShift,
    RShift,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::LShift => "<<",
            BinOp::RShift => ">>",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtE,
    Gt,
    GtE,
    Is,
    IsNot,
    In,
    NotIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    Pos,
    Invert,
}

/// One piece of an f-string.
#[derive(Debug, Clone)]
pub enum FPart {
    Lit(Rc<str>),
    /// `{expr!conv:spec}`; the spec may itself contain replacement fields.
    Field {
        expr: Expr,
        conversion: Option<char>,
        spec: Vec<FPart>,
    },
}

/// A `for … in … if …` clause of a comprehension.
#[derive(Debug, Clone)]
pub struct CompFor {
    pub target: Target,
    pub iter: Expr,
    pub ifs: Vec<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompKind {
    List,
    Set,
    Generator,
}

/// An expression with its location.
#[derive(Debug, Clone)]
pub struct Expr {
    pub loc: Loc,
    pub kind: ExprKind,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    None,
    Bool(bool),
    Int(i64),
    Big(Rc<num_bigint::BigInt>),
    Float(f64),
    Str(Rc<str>),
    Ellipsis,
    FString(Vec<FPart>),
    Name(Rc<str>),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Set(Vec<Expr>),
    /// Entries; a `None` key is `**mapping`.
    Dict(Vec<(Option<Expr>, Expr)>),
    Attr(Box<Expr>, Rc<str>),
    Subscript(Box<Expr>, Box<Expr>),
    Slice(Option<Box<Expr>>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// Arguments may be `Starred`; a keyword without a name is `**mapping`.
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        kwargs: Vec<(Option<Rc<str>>, Expr)>,
    },
    /// `*iterable` inside a call or a list/tuple/set display.
    Starred(Box<Expr>),
    /// `name := value`.
    Named(Rc<str>, Box<Expr>),
    BinOp(Box<Expr>, BinOp, Box<Expr>),
    Unary(UnOp, Box<Expr>),
    /// `and` (true) / `or` (false) over two or more operands, short-circuiting.
    BoolOp(bool, Vec<Expr>),
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    IfExp(Box<Expr>, Box<Expr>, Box<Expr>),
    Lambda(Rc<FuncDef>),
    Comp(CompKind, Box<Expr>, Vec<CompFor>),
    DictComp(Box<Expr>, Box<Expr>, Vec<CompFor>),
}

/// An assignment target.
#[derive(Debug, Clone)]
pub enum Target {
    Name(Rc<str>),
    Unpack(Vec<Target>),
    /// `*rest` inside an unpacking.
    Starred(Box<Target>),
    Subscript(Expr, Expr),
}

/// A parameter with its optional default.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: Rc<str>,
    pub default: Option<Expr>,
}

/// A function body: a block (`def`) or a single expression (`lambda`).
#[derive(Debug, Clone)]
pub enum Body {
    Block(Vec<Stmt>),
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub struct FuncDef {
    pub name: Rc<str>,
    pub loc: Loc,
    /// Positional parameters first (`positional` of them), then keyword-only ones.
    pub params: Vec<Param>,
    pub positional: usize,
    /// `*args` and `**kwargs` names.
    pub vararg: Option<Rc<str>>,
    pub kwarg: Option<Rc<str>>,
    pub body: Body,
    /// Names the body assigns (its locals), and those it declares `nonlocal` / `global`.
    pub scope: Rc<ScopeDecl>,
}

/// What a function's body binds, known before it runs (as CPython's compiler knows it).
#[derive(Debug, Clone, Default)]
pub struct ScopeDecl {
    pub locals: Vec<Rc<str>>,
    pub nonlocals: Vec<Rc<str>>,
    pub globals: Vec<Rc<str>>,
}

/// One `except` clause.
#[derive(Debug, Clone)]
pub struct Handler {
    pub loc: Loc,
    /// Exception types matched (empty for a bare `except:`).
    pub types: Option<Expr>,
    pub name: Option<Rc<str>>,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub loc: Loc,
    pub kind: StmtKind,
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    Expr(Expr),
    Assign(Vec<Target>, Expr),
    AugAssign(Target, BinOp, Expr),
    Def(Rc<FuncDef>),
    Return(Option<Expr>),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    For(Target, Expr, Vec<Stmt>, Vec<Stmt>),
    While(Expr, Vec<Stmt>, Vec<Stmt>),
    Break,
    Continue,
    Pass,
    /// `raise exc [from cause]`.
    Raise(Option<Expr>, Option<Expr>),
    Try {
        body: Vec<Stmt>,
        handlers: Vec<Handler>,
        orelse: Vec<Stmt>,
        finalbody: Vec<Stmt>,
    },
    Assert(Expr, Option<Expr>),
    /// `import math` / `from math import sqrt as s`: (bound name, attribute or None for the module).
    Import(Vec<(Rc<str>, Option<Rc<str>>)>),
    Delete(Vec<Target>),
}
