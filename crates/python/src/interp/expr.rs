//! Expressions, comprehensions, iteration and assignment targets.

use super::{Interp, LocalFut, R};
use crate::ast::{CmpOp, CompFor, CompKind, Expr, ExprKind, FPart, Target, UnOp};
use crate::obj::{range_len, ExcKind, Function, Obj, ViewKind};
use crate::{builtins, format, ops};
use std::rc::Rc;

pub use super::iter::ObjIter;

/// Where a comprehension's elements go. `Any`/`All` stop early, as Python's generators do
/// when `any(...)`/`all(...)` consume them, so no needless model calls are made.
pub enum CompOut {
    Items(Vec<Obj>),
    Pairs(Vec<(Obj, Obj)>),
    Any(bool),
    All(bool),
}

/// Whether CPython's compiler folds this expression to a constant.
fn is_constant(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::None
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Big(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Ellipsis => true,
        ExprKind::Unary(crate::ast::UnOp::Neg | crate::ast::UnOp::Pos, x) => {
            matches!(
                x.kind,
                ExprKind::Int(_) | ExprKind::Big(_) | ExprKind::Float(_)
            )
        }
        ExprKind::Tuple(items) => items.iter().all(is_constant),
        // The AST optimizer folds operators on constants (powers only while the result
        // stays within 128 bits).
        ExprKind::BinOp(a, op, b) => {
            is_constant(a)
                && is_constant(b)
                && match (op, &a.kind, &b.kind) {
                    (crate::ast::BinOp::Pow, ExprKind::Int(x), ExprKind::Int(y)) => {
                        *y >= 0 && (64 - x.unsigned_abs().leading_zeros() as i64) * y <= 128
                    }
                    (crate::ast::BinOp::Pow, _, _) => false,
                    _ => true,
                }
        }
        _ => false,
    }
}

impl<'a> Interp<'a> {
    /// Evaluate an expression (boxed, so evaluation can recurse and suspend anywhere).
    pub fn eval<'b>(&'b mut self, e: &'b Expr) -> LocalFut<'b, R<Obj>> {
        Box::pin(super::Grow(Box::pin(async move {
            if let Err(c) = self.enter_eval() {
                self.leave_eval();
                return Err(c);
            }
            let r = self.eval_inner(e).await;
            self.leave_eval();
            r
        })))
    }

    async fn eval_inner(&mut self, e: &Expr) -> R<Obj> {
        self.tick(1)?;
        Ok(match &e.kind {
            ExprKind::None => Obj::None,
            ExprKind::Bool(b) => Obj::Bool(*b),
            ExprKind::Int(i) => Obj::Int(*i),
            ExprKind::Big(b) => Obj::Big(b.clone()),
            ExprKind::Ellipsis => Obj::Ellipsis,
            ExprKind::Starred(_) => {
                return Err(self.exc(ExcKind::TypeError, "can't use starred expression here"))
            }
            ExprKind::Named(name, value) => {
                let v = self.eval(value).await?;
                self.bind(name, v.clone(), true);
                v
            }
            ExprKind::Float(f) => Obj::Float(*f),
            ExprKind::Str(s) => Obj::Str(s.clone()),
            ExprKind::FString(parts) => {
                let s = self.fstring(parts).await?;
                self.new_str(s)?
            }
            ExprKind::Name(n) => self.lookup(n)?,
            ExprKind::List(items) => {
                let v = self.eval_all(items).await?;
                self.new_list(v)?
            }
            ExprKind::Tuple(items) => {
                let v = self.eval_all(items).await?;
                self.new_tuple(v)?
            }
            ExprKind::Set(items) => {
                let v = self.eval_all(items).await?;
                let s = self.new_set(v)?;
                // CPython compiles a display of three or more constants to a frozenset
                // constant merged into a new set, which can lay it out differently; the
                // compiler rebuilds that frozenset from its own order when it merges the code
                // object's constants.
                match &s {
                    Obj::Set(d) if items.len() > 2 && items.iter().all(is_constant) => {
                        let keys = d.table.borrow().keys();
                        let again = self.new_set(keys)?;
                        match &again {
                            Obj::Set(d2) => Obj::Set(self.set_copy(d2)?),
                            _ => again,
                        }
                    }
                    _ => s,
                }
            }
            ExprKind::Dict(items) => {
                let mut pairs = Vec::with_capacity(items.len());
                for (k, v) in items {
                    match k {
                        Some(k) => {
                            let k = self.eval(k).await?;
                            let v = self.eval(v).await?;
                            pairs.push((k, v));
                        }
                        None => {
                            let m = self.eval(v).await?;
                            let Obj::Dict(d) = &m else {
                                return Err(self.type_error(format!(
                                    "'{}' object is not a mapping",
                                    m.type_name()
                                )));
                            };
                            let entries = d.table.borrow().entries.clone();
                            pairs.extend(entries);
                        }
                    }
                }
                self.new_dict(pairs)?
            }
            ExprKind::Attr(obj, name) => {
                let o = self.eval(obj).await?;
                self.set_loc(e.loc);
                self.get_attr(o, name)?
            }
            ExprKind::Subscript(obj, idx) => {
                let o = self.eval(obj).await?;
                if let ExprKind::Slice(a, b, c) = &idx.kind {
                    let a = self.eval_opt(a.as_deref()).await?;
                    let b = self.eval_opt(b.as_deref()).await?;
                    let c = self.eval_opt(c.as_deref()).await?;
                    self.set_loc(e.loc);
                    ops::slice(self, &o, a, b, c)?
                } else {
                    let i = self.eval(idx).await?;
                    self.set_loc(e.loc);
                    ops::getitem(self, &o, &i)?
                }
            }
            ExprKind::Slice(a, b, c) => {
                let a = self.eval_opt(a.as_deref()).await?;
                let b = self.eval_opt(b.as_deref()).await?;
                let c = self.eval_opt(c.as_deref()).await?;
                self.alloc(64)?;
                Obj::Slice(Rc::new((a, b, c)))
            }
            ExprKind::Call { func, args, kwargs } => {
                if let (ExprKind::Name(n), [arg], true) =
                    (&func.kind, args.as_slice(), kwargs.is_empty())
                {
                    if let ExprKind::Comp(CompKind::Generator, elt, gens) = &arg.kind {
                        let lazy = match &**n {
                            "any" => Some(CompOut::Any(false)),
                            "all" => Some(CompOut::All(true)),
                            _ => None,
                        };
                        let shadowed = self.scope.lookup(n).is_some();
                        if let (Some(mut out), false) = (lazy, shadowed) {
                            self.comprehension(elt, None, gens, &mut out).await?;
                            return Ok(match out {
                                CompOut::Any(b) | CompOut::All(b) => Obj::Bool(b),
                                _ => Obj::None,
                            });
                        }
                    }
                }
                let f = self.eval(func).await?;
                let args = self.eval_all(args).await?;
                let mut kw: Vec<(Rc<str>, Obj)> = Vec::with_capacity(kwargs.len());
                for (name, v) in kwargs {
                    let v = self.eval(v).await?;
                    match name {
                        Some(n) => kw.push((n.clone(), v)),
                        None => {
                            let Obj::Dict(d) = &v else {
                                return Err(self.type_error(format!(
                                    "argument after ** must be a mapping, not {}",
                                    v.type_name()
                                )));
                            };
                            let entries = d.table.borrow().entries.clone();
                            for (k, x) in entries {
                                let Obj::Str(k) = k else {
                                    return Err(self.type_error("keywords must be strings"));
                                };
                                if kw.iter().any(|(n, _)| *n == k) {
                                    return Err(self.type_error(format!(
                                        "got multiple values for keyword argument '{k}'"
                                    )));
                                }
                                kw.push((k, x));
                            }
                        }
                    }
                }
                self.set_loc(e.loc);
                self.call_obj(f, args, kw, e.loc).await?
            }
            ExprKind::BinOp(l, op, r) => {
                let l = self.eval(l).await?;
                let r = self.eval(r).await?;
                self.set_loc(e.loc);
                ops::binop(self, *op, &l, &r)?
            }
            ExprKind::Unary(op, v) => {
                let v = self.eval(v).await?;
                self.set_loc(e.loc);
                match op {
                    UnOp::Not => Obj::Bool(!v.truthy()),
                    UnOp::Neg => match v {
                        Obj::Bool(b) => Obj::Int(-(b as i64)),
                        Obj::Int(i) => match i.checked_neg() {
                            Some(n) => Obj::Int(n),
                            None => crate::num::int_obj(-num_bigint::BigInt::from(i)),
                        },
                        Obj::Big(b) => crate::num::int_obj(-(*b).clone()),
                        Obj::Float(f) => Obj::Float(-f),
                        o => {
                            return Err(self.type_error(format!(
                                "bad operand type for unary -: '{}'",
                                o.type_name()
                            )))
                        }
                    },
                    UnOp::Pos => match v {
                        Obj::Bool(b) => Obj::Int(b as i64),
                        Obj::Int(_) | Obj::Big(_) | Obj::Float(_) => v,
                        o => {
                            return Err(self.type_error(format!(
                                "bad operand type for unary +: '{}'",
                                o.type_name()
                            )))
                        }
                    },
                    UnOp::Invert => match (v.as_int(), &v) {
                        (Some(i), _) => Obj::Int(!i),
                        (None, Obj::Big(b)) => crate::num::int_obj(!(**b).clone()),
                        _ => {
                            return Err(self.type_error(format!(
                                "bad operand type for unary ~: '{}'",
                                v.type_name()
                            )))
                        }
                    },
                }
            }
            ExprKind::BoolOp(is_and, values) => {
                let mut last = Obj::None;
                for v in values {
                    last = self.eval(v).await?;
                    if last.truthy() != *is_and {
                        break;
                    }
                }
                last
            }
            ExprKind::Compare(first, rest) => {
                let mut left = self.eval(first).await?;
                for (op, right) in rest {
                    let right = self.eval(right).await?;
                    self.set_loc(e.loc);
                    if !self.compare(*op, &left, &right)? {
                        return Ok(Obj::Bool(false));
                    }
                    left = right;
                }
                Obj::Bool(true)
            }
            ExprKind::IfExp(test, body, orelse) => {
                if self.eval(test).await?.truthy() {
                    self.eval(body).await?
                } else {
                    self.eval(orelse).await?
                }
            }
            ExprKind::Lambda(def) => self.make_function(def.clone()).await?,
            ExprKind::Comp(kind, elt, gens) => {
                let mut out = CompOut::Items(Vec::new());
                self.comprehension(elt, None, gens, &mut out).await?;
                let CompOut::Items(items) = out else {
                    return Ok(Obj::None);
                };
                match kind {
                    CompKind::Set => self.new_set(items)?,
                    CompKind::List => self.new_list(items)?,
                    // Generator expressions are materialised (elements computed at once), then
                    // handed out by an iterator as a generator would.
                    CompKind::Generator => {
                        self.alloc_items(items.len())?;
                        Obj::Iter(Rc::new(std::cell::RefCell::new(ObjIter::Items(
                            items.into_iter(),
                        ))))
                    }
                }
            }
            ExprKind::DictComp(k, v, gens) => {
                let mut out = CompOut::Pairs(Vec::new());
                self.comprehension(k, Some(v), gens, &mut out).await?;
                let CompOut::Pairs(pairs) = out else {
                    return Ok(Obj::None);
                };
                self.new_dict(pairs)?
            }
        })
    }

    fn lookup(&self, name: &str) -> R<Obj> {
        if self.scope.unbound_local(name) {
            return Err(self.exc(
                ExcKind::UnboundLocalError,
                format!(
                    "cannot access local variable '{name}' where it is not associated with a value"
                ),
            ));
        }
        if let Some(v) = self.scope.lookup(name) {
            return Ok(v);
        }
        if let Some(v) = builtins::lookup(name) {
            return Ok(v);
        }
        Err(self.exc(ExcKind::NameError, format!("name '{name}' is not defined")))
    }

    /// Evaluate a list of expressions, expanding `*iterable` ones.
    pub async fn eval_all(&mut self, items: &[Expr]) -> R<Vec<Obj>> {
        let mut out = Vec::with_capacity(items.len());
        for x in items {
            if let ExprKind::Starred(inner) = &x.kind {
                let v = self.eval(inner).await?;
                let more = self.collect(&v)?;
                out.extend(more);
            } else {
                out.push(self.eval(x).await?);
            }
        }
        Ok(out)
    }

    async fn eval_opt(&mut self, e: Option<&Expr>) -> R<Obj> {
        match e {
            Some(e) => self.eval(e).await,
            None => Ok(Obj::None),
        }
    }

    pub async fn make_function(&mut self, def: Rc<crate::ast::FuncDef>) -> R<Obj> {
        let mut defaults = Vec::with_capacity(def.params.len());
        for p in &def.params {
            defaults.push(match &p.default {
                Some(d) => Some(self.eval(d).await?),
                None => None,
            });
        }
        self.alloc(128)?;
        Ok(Obj::Func(Rc::new(Function {
            def,
            defaults,
            scope: self.scope.clone(),
        })))
    }

    async fn fstring(&mut self, parts: &[FPart]) -> R<String> {
        let mut out = String::new();
        for p in parts {
            match p {
                FPart::Lit(s) => out.push_str(s),
                FPart::Field {
                    expr,
                    conversion,
                    spec,
                } => {
                    let v = self.eval(expr).await?;
                    let spec = Box::pin(self.fstring(spec)).await?;
                    let v = match conversion {
                        Some('r') | Some('a') => Obj::str(format::repr(self, &v)?),
                        Some(_) => Obj::str(format::to_str(self, &v)?),
                        None => v,
                    };
                    let s = format::format_spec(self, &v, &spec)?;
                    self.alloc(s.len() as u64)?;
                    out.push_str(&s);
                }
            }
        }
        Ok(out)
    }

    /// Iterate a value the way `for` does.
    pub(crate) fn iter_obj(&mut self, o: &Obj) -> R<ObjIter> {
        let items = match o {
            Obj::Range(a, b, s) => {
                return Ok(ObjIter::Range {
                    next: *a,
                    left: range_len(*a, *b, *s),
                    step: *s,
                })
            }
            Obj::List(l) => {
                return Ok(ObjIter::List {
                    list: l.clone(),
                    pos: 0,
                })
            }
            Obj::Str(s) => {
                return Ok(ObjIter::Chars {
                    s: s.clone(),
                    pos: 0,
                })
            }
            Obj::Tuple(t) => t.items.clone(),
            Obj::Iter(i) => return Ok(ObjIter::Shared(i.clone())),
            Obj::Set(d) => {
                let keys = d.table.borrow().keys();
                self.alloc_items(keys.len())?;
                return Ok(ObjIter::Set {
                    d: d.clone(),
                    len: keys.len(),
                    keys: keys.into_iter(),
                });
            }
            Obj::Dict(d) => {
                return Ok(ObjIter::Table {
                    d: d.clone(),
                    pos: 0,
                    len: d.table.borrow().len(),
                    kind: ViewKind::Keys,
                    set: matches!(o, Obj::Set(_)),
                })
            }
            Obj::DictView(v) => {
                return Ok(ObjIter::Table {
                    d: v.0.clone(),
                    pos: 0,
                    len: v.0.table.borrow().len(),
                    kind: v.1,
                    set: false,
                })
            }
            o => return Err(self.type_error(format!("'{}' object is not iterable", o.type_name()))),
        };
        self.alloc_items(items.len())?;
        Ok(ObjIter::Items(items.into_iter()))
    }

    /// Materialise an iterable into a vector (for builtins such as `sorted`, `list`), its size
    /// charged before it is built.
    pub fn collect(&mut self, o: &Obj) -> R<Vec<Obj>> {
        match o {
            Obj::Range(a, b, s) => self.alloc_items(range_len(*a, *b, *s) as usize)?,
            Obj::List(l) => self.alloc_items(l.items.borrow().len())?,
            Obj::Str(s) => {
                let n = s.chars().count();
                self.alloc_items(n)?;
                self.alloc((n as u64).saturating_mul(crate::interp::STR_OBJ_BYTES))?;
                self.tick(n as u64 / 16)?;
            }
            _ => {}
        }
        let mut out = Vec::new();
        let mut iter = self.iter_obj(o)?;
        while let Some(x) = iter.step(self)? {
            out.push(x);
        }
        Ok(out)
    }

    pub(crate) fn comprehension<'b>(
        &'b mut self,
        elt: &'b Expr,
        value: Option<&'b Expr>,
        gens: &'b [CompFor],
        out: &'b mut CompOut,
    ) -> LocalFut<'b, R<()>> {
        Box::pin(async move {
            let scope = self.new_scope(Some(self.scope.clone()), None)?;
            let saved = std::mem::replace(&mut self.scope, scope);
            let r = self.comp_level(elt, value, gens, 0, out).await;
            self.scope = saved;
            r.map(|_| ())
        })
    }

    /// One `for` clause of a comprehension; returns true when the consumer wants no more.
    fn comp_level<'b>(
        &'b mut self,
        elt: &'b Expr,
        value: Option<&'b Expr>,
        gens: &'b [CompFor],
        level: usize,
        out: &'b mut CompOut,
    ) -> LocalFut<'b, R<bool>> {
        Box::pin(async move {
            let Some(g) = gens.get(level) else {
                let v = self.eval(elt).await?;
                match out {
                    CompOut::Items(items) => {
                        self.alloc(24)?;
                        items.push(v);
                    }
                    CompOut::Pairs(pairs) => {
                        let val = match value {
                            Some(x) => self.eval(x).await?,
                            None => Obj::None,
                        };
                        self.alloc(48)?;
                        pairs.push((v, val));
                    }
                    CompOut::Any(found) => {
                        if v.truthy() {
                            *found = true;
                            return Ok(true);
                        }
                    }
                    CompOut::All(all) => {
                        if !v.truthy() {
                            *all = false;
                            return Ok(true);
                        }
                    }
                }
                return Ok(false);
            };
            let iterable = self.eval(&g.iter).await?;
            let mut iter = self.iter_obj(&iterable)?;
            'items: while let Some(item) = iter.step(self)? {
                self.tick(1)?;
                self.assign(&g.target, item).await?;
                for cond in &g.ifs {
                    if !self.eval(cond).await?.truthy() {
                        continue 'items;
                    }
                }
                if self.comp_level(elt, value, gens, level + 1, out).await? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Bind a value to an assignment target in the current scope.
    pub fn assign<'b>(&'b mut self, t: &'b Target, v: Obj) -> LocalFut<'b, R<()>> {
        Box::pin(async move {
            match t {
                Target::Name(n) => self.bind(n, v, false),
                Target::Starred(_) => {
                    return Err(self.exc(
                        ExcKind::TypeError,
                        "starred assignment target must be in a list or tuple",
                    ))
                }
                Target::Unpack(targets) => {
                    let items = match &v {
                        Obj::List(_) | Obj::Tuple(_) | Obj::Str(_) | Obj::Range(..) => {
                            self.collect(&v)?
                        }
                        Obj::Dict(_) | Obj::Set(_) | Obj::DictView(_) | Obj::Iter(_) => {
                            self.collect(&v)?
                        }
                        o => {
                            return Err(self.type_error(format!(
                                "cannot unpack non-iterable {} object",
                                o.type_name()
                            )))
                        }
                    };
                    let star = targets.iter().position(|t| matches!(t, Target::Starred(_)));
                    let n = targets.len();
                    match star {
                        None if items.len() != n => {
                            return Err(self.value_error(if items.len() > n {
                                format!("too many values to unpack (expected {n})")
                            } else {
                                format!(
                                    "not enough values to unpack (expected {n}, got {})",
                                    items.len()
                                )
                            }));
                        }
                        None => {
                            for (t, x) in targets.iter().zip(items) {
                                self.assign(t, x).await?;
                            }
                        }
                        Some(si) => {
                            if items.len() < n - 1 {
                                return Err(self.value_error(format!(
                                    "not enough values to unpack (expected at least {}, got {})",
                                    n - 1,
                                    items.len()
                                )));
                            }
                            let after = n - 1 - si;
                            let mut items = items;
                            let tail = items.split_off(items.len() - after);
                            let middle = items.split_off(si);
                            for (t, x) in targets[..si].iter().zip(items) {
                                self.assign(t, x).await?;
                            }
                            let rest = self.new_list(middle)?;
                            if let Target::Starred(t) = &targets[si] {
                                self.assign(t, rest).await?;
                            }
                            for (t, x) in targets[si + 1..].iter().zip(tail) {
                                self.assign(t, x).await?;
                            }
                        }
                    }
                }
                Target::Subscript(obj, idx) => {
                    let o = self.eval(obj).await?;
                    let i = self.eval(idx).await?;
                    ops::setitem(self, &o, &i, v)?;
                }
            }
            Ok(())
        })
    }

    pub fn compare(&mut self, op: CmpOp, l: &Obj, r: &Obj) -> R<bool> {
        use std::cmp::Ordering::*;
        Ok(match op {
            CmpOp::Eq => ops::eq(self, l, r, 0)?,
            CmpOp::NotEq => !ops::eq(self, l, r, 0)?,
            CmpOp::Lt => ops::cmp(self, l, r, 0)? == Some(Less),
            CmpOp::LtE => matches!(ops::cmp(self, l, r, 0)?, Some(Less | Equal)),
            CmpOp::Gt => ops::cmp(self, l, r, 0)? == Some(Greater),
            CmpOp::GtE => matches!(ops::cmp(self, l, r, 0)?, Some(Greater | Equal)),
            CmpOp::Is => ops::is(l, r),
            CmpOp::IsNot => !ops::is(l, r),
            CmpOp::In => ops::contains(self, r, l)?,
            CmpOp::NotIn => !ops::contains(self, r, l)?,
        })
    }
}
