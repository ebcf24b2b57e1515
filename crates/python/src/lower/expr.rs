//! Lowering of expressions (and f-strings and comprehension clauses).

use super::{Lowerer, Sig};
use crate::ast::*;
use ruff_python_ast as py;
use ruff_text_size::Ranged;
use sdvp_core::ProblemKind;
use std::rc::Rc;

impl<'s> Lowerer<'s> {
    fn comp_fors(&mut self, gens: &[py::Comprehension], loc: Loc) -> Vec<CompFor> {
        gens.iter()
            .map(|g| {
                if g.is_async {
                    self.unsupported(loc, "async comprehension");
                }
                let iter = self.expr(&g.iter);
                self.comps += 1;
                let target = self.target(&g.target);
                let ifs = g.ifs.iter().map(|e| self.expr(e)).collect();
                self.comps -= 1;
                CompFor { target, iter, ifs }
            })
            .collect()
    }

    fn fparts(&mut self, elements: &[py::InterpolatedStringElement], out: &mut Vec<FPart>) {
        for el in elements {
            match el {
                py::InterpolatedStringElement::Literal(l) => {
                    out.push(FPart::Lit(Rc::from(&*l.value)))
                }
                py::InterpolatedStringElement::Interpolation(i) => {
                    let mut conversion = match i.conversion {
                        py::ConversionFlag::None => None,
                        py::ConversionFlag::Str => Some('s'),
                        py::ConversionFlag::Repr => Some('r'),
                        py::ConversionFlag::Ascii => Some('a'),
                    };
                    if let Some(d) = &i.debug_text {
                        // `f'{x=}'`: the expression's text, then its repr (its format
                        // with a spec).
                        let r = i.expression.range();
                        let text = self
                            .source
                            .get(usize::from(r.start())..usize::from(r.end()))
                            .unwrap_or("");
                        out.push(FPart::Lit(
                            format!("{}{text}{}", d.leading(), d.trailing()).into(),
                        ));
                        if conversion.is_none() && i.format_spec.is_none() {
                            conversion = Some('r');
                        }
                    }
                    let mut spec = Vec::new();
                    if let Some(s) = &i.format_spec {
                        self.fparts(&s.elements, &mut spec);
                    }
                    out.push(FPart::Field {
                        expr: self.expr(&i.expression),
                        conversion,
                        spec,
                    });
                }
            }
        }
    }

    pub fn expr(&mut self, e: &py::Expr) -> Expr {
        let loc = self.loc(e);
        if !self.enter(loc) {
            self.depth -= 1;
            return Expr {
                loc,
                kind: ExprKind::None,
            };
        }
        let kind = self.expr_inner(e, loc);
        self.depth -= 1;
        Expr { loc, kind }
    }

    fn boxed(&mut self, e: &py::Expr) -> Box<Expr> {
        Box::new(self.expr(e))
    }

    fn opt(&mut self, e: &Option<Box<py::Expr>>) -> Option<Box<Expr>> {
        e.as_deref().map(|x| self.boxed(x))
    }

    fn expr_inner(&mut self, e: &py::Expr, loc: Loc) -> ExprKind {
        use py::Expr as E;
        match e {
            E::NoneLiteral(_) => ExprKind::None,
            E::EllipsisLiteral(_) => ExprKind::Ellipsis,
            E::BooleanLiteral(b) => ExprKind::Bool(b.value),
            E::NumberLiteral(n) => match &n.value {
                py::Number::Int(i) => match i.as_i64() {
                    Some(v) => ExprKind::Int(v),
                    None => match crate::num::parse_int(&i.to_string(), 0) {
                        Ok(Some(b)) => ExprKind::Big(Rc::new(b)),
                        _ => {
                            self.problem(
                                ProblemKind::Syntax,
                                loc,
                                "integer literal too long (more than 4300 digits)",
                            );
                            ExprKind::None
                        }
                    },
                },
                py::Number::Float(f) => ExprKind::Float(*f),
                py::Number::Complex { .. } => {
                    self.unsupported(loc, "a complex number");
                    ExprKind::None
                }
            },
            E::StringLiteral(s) => ExprKind::Str(s.value.to_str().into()),
            E::FString(f) => {
                let mut parts = Vec::new();
                for part in f.value.as_slice() {
                    match part {
                        py::FStringPart::Literal(l) => {
                            parts.push(FPart::Lit(l.value.as_ref().into()))
                        }
                        py::FStringPart::FString(fs) => self.fparts(&fs.elements, &mut parts),
                    }
                }
                ExprKind::FString(parts)
            }
            E::Name(n) => {
                self.check_name(loc, n.id.as_str());
                ExprKind::Name(n.id.as_str().into())
            }
            E::List(l) => ExprKind::List(self.elts(&l.elts)),
            E::Tuple(t) => ExprKind::Tuple(self.elts(&t.elts)),
            E::Set(s) => ExprKind::Set(self.elts(&s.elts)),
            E::Dict(d) => {
                let mut items = Vec::new();
                for item in &d.items {
                    let k = item.key.as_ref().map(|k| self.expr(k));
                    items.push((k, self.expr(&item.value)));
                }
                ExprKind::Dict(items)
            }
            E::Attribute(a) => {
                let attr = a.attr.as_str();
                if attr.starts_with('_') {
                    self.problem(
                        ProblemKind::Forbidden,
                        loc,
                        format!(
                            "attribute `{attr}` is forbidden: private and dunder attributes \
                             lead to the interpreter's internals"
                        ),
                    );
                }
                ExprKind::Attr(self.boxed(&a.value), attr.into())
            }
            E::Subscript(s) => ExprKind::Subscript(self.boxed(&s.value), self.boxed(&s.slice)),
            E::Slice(s) => {
                ExprKind::Slice(self.opt(&s.lower), self.opt(&s.upper), self.opt(&s.step))
            }
            E::Call(c) => {
                let args = self.elts(&c.arguments.args);
                let mut kwargs = Vec::new();
                for k in c.arguments.keywords.iter() {
                    let v = self.expr(&k.value);
                    kwargs.push((k.arg.as_ref().map(|n| Rc::from(n.as_str())), v));
                }
                ExprKind::Call {
                    func: self.boxed(&c.func),
                    args,
                    kwargs,
                }
            }
            E::BinOp(b) => {
                let op = self.binop(b.op, loc);
                ExprKind::BinOp(self.boxed(&b.left), op, self.boxed(&b.right))
            }
            E::UnaryOp(u) => {
                let op = match u.op {
                    py::UnaryOp::Not => UnOp::Not,
                    py::UnaryOp::USub => UnOp::Neg,
                    py::UnaryOp::UAdd => UnOp::Pos,
                    py::UnaryOp::Invert => UnOp::Invert,
                };
                ExprKind::Unary(op, self.boxed(&u.operand))
            }
            E::BoolOp(b) => ExprKind::BoolOp(matches!(b.op, py::BoolOp::And), self.elts(&b.values)),
            E::Compare(c) => {
                let left = self.boxed(&c.left);
                let rest = c
                    .ops
                    .iter()
                    .zip(c.comparators.iter())
                    .map(|(op, e)| {
                        let op = match op {
                            py::CmpOp::Eq => CmpOp::Eq,
                            py::CmpOp::NotEq => CmpOp::NotEq,
                            py::CmpOp::Lt => CmpOp::Lt,
                            py::CmpOp::LtE => CmpOp::LtE,
                            py::CmpOp::Gt => CmpOp::Gt,
                            py::CmpOp::GtE => CmpOp::GtE,
                            py::CmpOp::Is => CmpOp::Is,
                            py::CmpOp::IsNot => CmpOp::IsNot,
                            py::CmpOp::In => CmpOp::In,
                            py::CmpOp::NotIn => CmpOp::NotIn,
                        };
                        (op, self.expr(e))
                    })
                    .collect();
                ExprKind::Compare(left, rest)
            }
            E::If(i) => ExprKind::IfExp(
                self.boxed(&i.test),
                self.boxed(&i.body),
                self.boxed(&i.orelse),
            ),
            E::Lambda(l) => {
                self.decls.push(ScopeDecl::default());
                let sig = match &l.parameters {
                    Some(p) => self.params(p, loc),
                    None => Sig {
                        params: Vec::new(),
                        positional: 0,
                        vararg: None,
                        kwarg: None,
                    },
                };
                let saved_comps = std::mem::replace(&mut self.comps, 0);
                let body = Body::Expr(self.expr(&l.body));
                self.comps = saved_comps;
                let scope = self.end_decl();
                ExprKind::Lambda(Rc::new(FuncDef {
                    name: "<lambda>".into(),
                    loc,
                    params: sig.params,
                    positional: sig.positional,
                    vararg: sig.vararg,
                    kwarg: sig.kwarg,
                    body,
                    scope,
                }))
            }
            E::ListComp(c) => ExprKind::Comp(
                CompKind::List,
                self.boxed(&c.elt),
                self.comp_fors(&c.generators, loc),
            ),
            E::SetComp(c) => ExprKind::Comp(
                CompKind::Set,
                self.boxed(&c.elt),
                self.comp_fors(&c.generators, loc),
            ),
            E::Generator(c) => ExprKind::Comp(
                CompKind::Generator,
                self.boxed(&c.elt),
                self.comp_fors(&c.generators, loc),
            ),
            E::DictComp(c) => {
                let key = match &c.key {
                    Some(k) => self.boxed(k),
                    None => {
                        self.unsupported(loc, "`**` in a dict comprehension");
                        Box::new(Expr {
                            loc,
                            kind: ExprKind::None,
                        })
                    }
                };
                ExprKind::DictComp(
                    key,
                    self.boxed(&c.value),
                    self.comp_fors(&c.generators, loc),
                )
            }
            E::Named(n) => match &*n.target {
                py::Expr::Name(t) => {
                    self.check_name(loc, t.id.as_str());
                    self.bind(t.id.as_str());
                    ExprKind::Named(t.id.as_str().into(), self.boxed(&n.value))
                }
                _ => self.reject_expr(loc, "this `:=` target"),
            },
            E::Await(_) => self.reject_expr(loc, "`await`"),
            E::Yield(_) | E::YieldFrom(_) => self.reject_expr(loc, "`yield`"),
            E::Starred(st) => ExprKind::Starred(self.boxed(&st.value)),
            E::TString(_) => self.reject_expr(loc, "a t-string"),
            E::BytesLiteral(_) => self.reject_expr(loc, "a bytes literal"),
            E::IpyEscapeCommand(_) => self.reject_expr(loc, "an IPython escape"),
        }
    }

    fn reject_expr(&mut self, loc: Loc, what: &str) -> ExprKind {
        self.unsupported(loc, what);
        ExprKind::None
    }

    fn elts(&mut self, es: &[py::Expr]) -> Vec<Expr> {
        es.iter().map(|e| self.expr(e)).collect()
    }
}
