//! Parsing and static checking: Python text → [`crate::ast`], or every problem at once.
//!
//! The parser (`ruff_python_parser`) accepts all of Python; this pass keeps the subset the
//! sandbox runs and rejects the rest *before* anything runs: unsupported syntax (classes,
//! `with`, generators, `global`, walrus, decorators, …) as `unsupported_syntax`, and sandbox
//! escapes (imports other than `math`, dunder names and attributes, `eval`/`exec`/`open`/
//! introspection builtins) as `forbidden`. Nesting is bounded here too, so the interpreter's
//! own recursion stays shallow whatever the text.

use crate::ast::*;
use ruff_python_ast as py;
use ruff_text_size::{Ranged, TextSize};
use sdvp_core::Pos;
use sdvp_core::{Problem, ProblemKind};
use std::rc::Rc;

mod expr;

/// Deepest expression/statement nesting accepted; real programs stay far below it.
pub const MAX_NESTING: usize = 64;

/// Names no program may mention, each with the reason (they are the classic ways out of a
/// Python sandbox; none of them exists in the interpreter either, and rejecting them early
/// gives a clear error). The crate docs list every deliberate refusal.
pub const FORBIDDEN_NAMES: &[(&str, &str)] = &[
    ("eval", "it runs code from text"),
    ("exec", "it runs code from text"),
    ("compile", "it runs code from text"),
    ("open", "it reaches the host's files"),
    ("input", "it reaches the host's terminal"),
    ("breakpoint", "it reaches the host's debugger"),
    ("help", "it reaches the host's terminal"),
    ("exit", "it ends the host process"),
    ("quit", "it ends the host process"),
    ("globals", "it exposes the interpreter's namespaces"),
    ("locals", "it exposes the interpreter's namespaces"),
    ("vars", "it exposes the interpreter's namespaces"),
    ("dir", "it exposes objects' internals"),
    (
        "getattr",
        "it reaches attributes by computed name (dunder walks)",
    ),
    (
        "setattr",
        "it reaches attributes by computed name (dunder walks)",
    ),
    (
        "delattr",
        "it reaches attributes by computed name (dunder walks)",
    ),
    (
        "hasattr",
        "it reaches attributes by computed name (dunder walks)",
    ),
    ("type", "type objects lead to the interpreter's class tree"),
    (
        "object",
        "type objects lead to the interpreter's class tree",
    ),
    ("super", "type objects lead to the interpreter's class tree"),
    (
        "classmethod",
        "type objects lead to the interpreter's class tree",
    ),
    (
        "staticmethod",
        "type objects lead to the interpreter's class tree",
    ),
    (
        "property",
        "type objects lead to the interpreter's class tree",
    ),
    ("memoryview", "it exposes raw memory"),
    ("bytearray", "it exposes raw memory"),
    ("id", "it exposes host memory addresses"),
    (
        "hash",
        "it exposes host memory addresses and per-process hash keys",
    ),
];

/// Modules `import` may name: pure helpers without side effects.
pub const ALLOWED_MODULES: &[&str] = &["math"];

/// A lowered parameter list.
struct Sig {
    params: Vec<Param>,
    positional: usize,
    vararg: Option<Rc<str>>,
    kwarg: Option<Rc<str>>,
}

pub(crate) struct Lowerer<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
    pub problems: Vec<Problem>,
    depth: usize,
    /// Loops enclosing the current statement within the current function.
    loops: usize,
    /// Functions enclosing the current statement.
    funcs: usize,
    /// What each enclosing function binds (innermost last).
    decls: Vec<ScopeDecl>,
    /// Comprehensions enclosing the current expression (their targets are not locals).
    comps: usize,
}

fn is_dunder(name: &str) -> bool {
    name.starts_with("__") && name.ends_with("__") && name.len() > 4
}

impl<'s> Lowerer<'s> {
    pub fn new(source: &'s str) -> Self {
        let mut line_starts = vec![0];
        for (i, b) in source.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Self {
            source,
            line_starts,
            problems: Vec::new(),
            depth: 0,
            loops: 0,
            funcs: 0,
            decls: Vec::new(),
            comps: 0,
        }
    }

    /// 1-based line and character column of a byte offset.
    pub fn loc_of(&self, offset: TextSize) -> Loc {
        let off = (u32::from(offset) as usize).min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= off).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .source
            .get(start..off)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        Loc { line, column }
    }

    fn loc(&self, node: &impl Ranged) -> Loc {
        self.loc_of(node.start())
    }

    pub fn problem(&mut self, kind: ProblemKind, loc: Loc, message: impl Into<String>) {
        self.problems.push(Problem::new(
            kind,
            Pos {
                line: loc.line,
                column: loc.column,
            },
            message,
        ));
    }

    fn unsupported(&mut self, loc: Loc, what: &str) {
        self.problem(
            ProblemKind::UnsupportedSyntax,
            loc,
            format!("{what} is not supported in sandboxed programs"),
        );
    }

    fn check_name(&mut self, loc: Loc, name: &str) {
        if is_dunder(name) || name.starts_with("__") {
            self.problem(
                ProblemKind::Forbidden,
                loc,
                format!(
                    "name `{name}` is forbidden: dunder names lead to the interpreter's internals"
                ),
            );
        } else if let Some((_, why)) = FORBIDDEN_NAMES.iter().find(|(n, _)| *n == name) {
            self.problem(
                ProblemKind::Forbidden,
                loc,
                format!("`{name}` is forbidden in sandboxed programs: {why}"),
            );
        }
    }

    /// Note that the current function binds `name`.
    fn bind(&mut self, name: &str) {
        if let Some(d) = self.decls.last_mut() {
            if !d.locals.iter().any(|n| &**n == name) {
                d.locals.push(name.into());
            }
        }
    }

    /// Finish a function's declarations: locals are what it binds, less what it declares
    /// `nonlocal` or `global`.
    fn end_decl(&mut self) -> Rc<ScopeDecl> {
        let mut d = self.decls.pop().unwrap_or_default();
        let (nl, gl) = (d.nonlocals.clone(), d.globals.clone());
        d.locals.retain(|n| !nl.contains(n) && !gl.contains(n));
        Rc::new(d)
    }

    fn enter(&mut self, loc: Loc) -> bool {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            if self.depth == MAX_NESTING + 1 {
                self.problem(
                    ProblemKind::Forbidden,
                    loc,
                    format!("program nested deeper than {MAX_NESTING} levels"),
                );
            }
            return false;
        }
        true
    }

    pub fn block(&mut self, stmts: &[py::Stmt]) -> Vec<Stmt> {
        stmts.iter().filter_map(|s| self.stmt(s)).collect()
    }

    fn stmt(&mut self, s: &py::Stmt) -> Option<Stmt> {
        let loc = self.loc(s);
        if !self.enter(loc) {
            self.depth -= 1;
            return None;
        }
        let out = self.stmt_inner(s, loc);
        self.depth -= 1;
        out.map(|kind| Stmt { loc, kind })
    }

    fn stmt_inner(&mut self, s: &py::Stmt, loc: Loc) -> Option<StmtKind> {
        use py::Stmt as S;
        Some(match s {
            S::FunctionDef(f) => {
                if f.is_async {
                    self.unsupported(loc, "async def");
                }
                if !f.decorator_list.is_empty() {
                    self.unsupported(loc, "a decorator");
                }
                if f.type_params.is_some() {
                    self.unsupported(loc, "a type parameter list");
                }
                self.check_name(loc, f.name.as_str());
                self.bind(f.name.as_str());
                self.decls.push(ScopeDecl::default());
                let sig = self.params(&f.parameters, loc);
                let saved_loops = std::mem::replace(&mut self.loops, 0);
                let saved_comps = std::mem::replace(&mut self.comps, 0);
                self.funcs += 1;
                let body = self.block(&f.body);
                self.funcs -= 1;
                self.loops = saved_loops;
                self.comps = saved_comps;
                let scope = self.end_decl();
                StmtKind::Def(Rc::new(FuncDef {
                    name: f.name.as_str().into(),
                    loc,
                    params: sig.params,
                    positional: sig.positional,
                    vararg: sig.vararg,
                    kwarg: sig.kwarg,
                    body: Body::Block(body),
                    scope,
                }))
            }
            S::Return(_) if self.funcs == 0 => {
                self.problem(ProblemKind::Syntax, loc, "'return' outside function");
                return None;
            }
            S::Return(r) => StmtKind::Return(r.value.as_deref().map(|e| self.expr(e))),
            S::Assign(a) => {
                let targets = a.targets.iter().map(|t| self.target(t)).collect();
                StmtKind::Assign(targets, self.expr(&a.value))
            }
            S::AugAssign(a) => {
                let t = self.target(&a.target);
                if matches!(t, Target::Unpack(_)) {
                    self.problem(ProblemKind::Syntax, loc, "augmented assignment to a tuple");
                }
                StmtKind::AugAssign(t, self.binop(a.op, loc), self.expr(&a.value))
            }
            S::AnnAssign(a) => {
                let t = self.target(&a.target);
                match &a.value {
                    Some(v) => StmtKind::Assign(vec![t], self.expr(v)),
                    None => StmtKind::Pass,
                }
            }
            S::For(f) => {
                if f.is_async {
                    self.unsupported(loc, "async for");
                }
                let target = self.target(&f.target);
                let iter = self.expr(&f.iter);
                self.loops += 1;
                let body = self.block(&f.body);
                self.loops -= 1;
                StmtKind::For(target, iter, body, self.block(&f.orelse))
            }
            S::While(w) => {
                let test = self.expr(&w.test);
                self.loops += 1;
                let body = self.block(&w.body);
                self.loops -= 1;
                StmtKind::While(test, body, self.block(&w.orelse))
            }
            S::If(i) => {
                let test = self.expr(&i.test);
                let body = self.block(&i.body);
                // elif chains become nested ifs in the else branch, last clause innermost.
                let mut orelse: Vec<Stmt> = Vec::new();
                for clause in i.elif_else_clauses.iter().rev() {
                    let cloc = self.loc(clause);
                    let cbody = self.block(&clause.body);
                    orelse = match &clause.test {
                        Some(t) => vec![Stmt {
                            loc: cloc,
                            kind: StmtKind::If(self.expr(t), cbody, orelse),
                        }],
                        None => cbody,
                    };
                }
                StmtKind::If(test, body, orelse)
            }
            S::Break(_) | S::Continue(_) if self.loops == 0 => {
                self.problem(
                    ProblemKind::Syntax,
                    loc,
                    "'break' or 'continue' outside loop",
                );
                return None;
            }
            S::Break(_) => StmtKind::Break,
            S::Continue(_) => StmtKind::Continue,
            S::Pass(_) => StmtKind::Pass,
            S::Expr(e) => StmtKind::Expr(self.expr(&e.value)),
            S::Raise(r) => StmtKind::Raise(
                r.exc.as_deref().map(|e| self.expr(e)),
                r.cause.as_deref().map(|e| self.expr(e)),
            ),
            S::Try(t) => {
                if t.is_star {
                    self.unsupported(loc, "`except*`");
                }
                let handlers = t
                    .handlers
                    .iter()
                    .map(|h| {
                        let py::ExceptHandler::ExceptHandler(h) = h;
                        let hloc = self.loc(h);
                        Handler {
                            loc: hloc,
                            types: h.type_.as_deref().map(|e| self.expr(e)),
                            name: h.name.as_ref().map(|n| {
                                self.check_name(hloc, n.as_str());
                                self.bind(n.as_str());
                                Rc::from(n.as_str())
                            }),
                            body: self.block(&h.body),
                        }
                    })
                    .collect();
                StmtKind::Try {
                    body: self.block(&t.body),
                    handlers,
                    orelse: self.block(&t.orelse),
                    finalbody: self.block(&t.finalbody),
                }
            }
            S::Assert(a) => {
                StmtKind::Assert(self.expr(&a.test), a.msg.as_deref().map(|m| self.expr(m)))
            }
            S::Import(i) => {
                let mut names = Vec::new();
                for alias in &i.names {
                    let m = alias.name.as_str();
                    if !ALLOWED_MODULES.contains(&m) {
                        self.problem(
                            ProblemKind::Forbidden,
                            loc,
                            format!(
                                "import of `{m}` is forbidden: modules other than math reach \
                                 host state (allowed: math)"
                            ),
                        );
                    }
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name).as_str();
                    self.check_name(loc, bound);
                    self.bind(bound);
                    names.push((Rc::from(bound), None));
                }
                StmtKind::Import(names)
            }
            S::ImportFrom(i) => {
                let m = i.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                if i.level != 0 || !ALLOWED_MODULES.contains(&m) {
                    self.problem(
                        ProblemKind::Forbidden,
                        loc,
                        format!(
                            "import from `{m}` is forbidden: modules other than math reach \
                             host state (allowed: math)"
                        ),
                    );
                }
                let mut names = Vec::new();
                for alias in &i.names {
                    let attr = alias.name.as_str();
                    if attr == "*" || attr.starts_with('_') {
                        self.problem(
                            ProblemKind::Forbidden,
                            loc,
                            format!("`from {m} import {attr}` is forbidden"),
                        );
                    }
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name).as_str();
                    self.check_name(loc, bound);
                    self.bind(bound);
                    names.push((Rc::from(bound), Some(Rc::from(attr))));
                }
                StmtKind::Import(names)
            }
            S::Delete(d) => StmtKind::Delete(d.targets.iter().map(|t| self.target(t)).collect()),
            S::ClassDef(_) => return self.reject(loc, "class definition"),
            S::With(_) => return self.reject(loc, "`with`"),
            S::Match(_) => return self.reject(loc, "`match`"),
            S::TypeAlias(_) => return self.reject(loc, "a type alias"),
            S::Global(g) => {
                for n in &g.names {
                    self.check_name(loc, n.as_str());
                    if let Some(d) = self.decls.last_mut() {
                        d.globals.push(n.as_str().into());
                    }
                }
                StmtKind::Pass
            }
            S::Nonlocal(g) => {
                if self.decls.is_empty() {
                    self.problem(
                        ProblemKind::Syntax,
                        loc,
                        "nonlocal declaration not allowed at module level",
                    );
                }
                for n in &g.names {
                    self.check_name(loc, n.as_str());
                    if let Some(d) = self.decls.last_mut() {
                        d.nonlocals.push(n.as_str().into());
                    }
                }
                StmtKind::Pass
            }
            S::IpyEscapeCommand(_) => return self.reject(loc, "an IPython escape"),
        })
    }

    fn reject<T>(&mut self, loc: Loc, what: &str) -> Option<T> {
        self.unsupported(loc, what);
        None
    }

    fn params(&mut self, p: &py::Parameters, loc: Loc) -> Sig {
        let mut params = Vec::new();
        for a in p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs) {
            self.check_name(loc, a.parameter.name.as_str());
            self.bind(a.parameter.name.as_str());
            params.push(Param {
                name: a.parameter.name.as_str().into(),
                default: a.default.as_deref().map(|d| self.expr(d)),
            });
        }
        let star = |lw: &mut Self, a: &Option<Box<py::Parameter>>| {
            a.as_ref().map(|a| {
                lw.check_name(loc, a.name.as_str());
                lw.bind(a.name.as_str());
                Rc::from(a.name.as_str())
            })
        };
        let vararg = star(self, &p.vararg);
        let kwarg = star(self, &p.kwarg);
        Sig {
            params,
            positional: p.posonlyargs.len() + p.args.len(),
            vararg,
            kwarg,
        }
    }

    fn target(&mut self, e: &py::Expr) -> Target {
        let loc = self.loc(e);
        if !self.enter(loc) {
            self.depth -= 1;
            return Target::Name("_".into());
        }
        let t = self.target_inner(e, loc);
        self.depth -= 1;
        t
    }

    fn target_inner(&mut self, e: &py::Expr, loc: Loc) -> Target {
        match e {
            py::Expr::Name(n) => {
                self.check_name(loc, n.id.as_str());
                if self.comps == 0 {
                    self.bind(n.id.as_str());
                }
                Target::Name(n.id.as_str().into())
            }
            py::Expr::Tuple(py::ExprTuple { elts, .. })
            | py::Expr::List(py::ExprList { elts, .. }) => {
                let ts: Vec<Target> = elts.iter().map(|x| self.target(x)).collect();
                if ts
                    .iter()
                    .filter(|t| matches!(t, Target::Starred(_)))
                    .count()
                    > 1
                {
                    self.problem(
                        ProblemKind::Syntax,
                        loc,
                        "multiple starred expressions in assignment",
                    );
                }
                Target::Unpack(ts)
            }
            py::Expr::Starred(st) => Target::Starred(Box::new(self.target(&st.value))),
            py::Expr::Subscript(s) => Target::Subscript(self.expr(&s.value), self.expr(&s.slice)),
            py::Expr::Attribute(_) => {
                self.unsupported(loc, "assigning to an attribute");
                Target::Name("_".into())
            }
            _ => {
                self.unsupported(loc, "this assignment target");
                Target::Name("_".into())
            }
        }
    }

    fn binop(&mut self, op: py::Operator, loc: Loc) -> BinOp {
        use py::Operator as O;
        match op {
            O::Add => BinOp::Add,
            O::Sub => BinOp::Sub,
            O::Mult => BinOp::Mul,
            O::Div => BinOp::Div,
            O::FloorDiv => BinOp::FloorDiv,
            O::Mod => BinOp::Mod,
            O::Pow => BinOp::Pow,
            O::BitAnd => BinOp::BitAnd,
            O::BitOr => BinOp::BitOr,
            O::BitXor => BinOp::BitXor,
            O::LShift => BinOp::LShift,
            O::RShift => BinOp::RShift,
            O::MatMult => {
                self.unsupported(loc, "`@`");
                BinOp::Mul
            }
        }
    }
}
