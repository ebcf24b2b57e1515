//! Calls: user functions, builtins, methods, attribute lookup.

use super::{Ctl, Interp, LocalFut, TbEntry, R};
use crate::ast::{Body, Loc};
use crate::obj::{ExcKind, ExcObj, Function, Obj};
use crate::{builtins, methods, patch};
use std::rc::Rc;

pub(crate) type Kwargs = Vec<(Rc<str>, Obj)>;

impl<'a> Interp<'a> {
    /// Call any callable value.
    pub fn call_obj<'b>(
        &'b mut self,
        f: Obj,
        args: Vec<Obj>,
        kwargs: Kwargs,
        loc: Loc,
    ) -> LocalFut<'b, R<Obj>> {
        Box::pin(async move {
            self.tick(1)?;
            match f {
                Obj::Func(func) => self.call_function(func, args, kwargs).await,
                Obj::Builtin(name) => self.call_builtin(name, args, kwargs, loc).await,
                Obj::Method(m) => {
                    let (recv, name) = (m.0.clone(), m.1.clone());
                    self.call_method(recv, &name, args, kwargs, loc).await
                }
                Obj::ExcType(kind) => {
                    if !kwargs.is_empty() {
                        let msg = format!("{}() takes no keyword arguments", kind.name());
                        return Err(self.type_error(msg));
                    }
                    let message = match args.as_slice() {
                        [] => String::new(),
                        [one] if kind == ExcKind::KeyError => crate::format::repr(self, one)?,
                        [one] => crate::format::to_str(self, one)?,
                        many => {
                            let t = self.new_tuple(many.to_vec())?;
                            crate::format::to_str(self, &t)?
                        }
                    };
                    let message = super::bound_text(message, self.limits.max_output_bytes);
                    self.alloc(64 + message.len() as u64)?;
                    self.alloc_items(args.len())?;
                    Ok(Obj::Exc(Rc::new(ExcObj {
                        kind,
                        message: message.into(),
                        args,
                    })))
                }
                o => Err(self.type_error(format!("'{}' object is not callable", o.type_name()))),
            }
        })
    }

    /// Call a user-defined function or lambda with Python's argument binding rules
    /// (positional, then keywords, then defaults).
    pub async fn call_function(
        &mut self,
        f: Rc<Function>,
        args: Vec<Obj>,
        kwargs: Kwargs,
    ) -> R<Obj> {
        if self.frames.len() > self.limits.max_depth {
            // As in CPython, a catchable RecursionError (the step budget still bounds
            // programs that keep catching it).
            return Err(self.exc(
                ExcKind::RecursionError,
                format!(
                    "maximum recursion depth exceeded (recursion depth limit of {} calls)",
                    self.limits.max_depth
                ),
            ));
        }
        let def = f.def.clone();
        let scope = self.new_scope(Some(f.scope.clone()), Some(def.scope.clone()))?;
        self.bind_args(&f, &scope, args, kwargs)?;
        let saved = std::mem::replace(&mut self.scope, scope);
        self.frames.push(TbEntry {
            func: def.name.clone(),
            loc: def.loc,
        });
        let r = match &def.body {
            Body::Block(b) => self.exec_block(b).await,
            Body::Expr(e) => match self.eval(e).await {
                Ok(v) => Err(Ctl::Return(v)),
                Err(c) => Err(c),
            },
        };
        self.frames.pop();
        self.scope = saved;
        match r {
            Ok(()) => Ok(Obj::None),
            Err(Ctl::Return(v)) => Ok(v),
            Err(Ctl::Exc(mut raised)) => {
                if let Some(caller) = self.frames.last() {
                    raised.tb.push(caller.clone());
                }
                Err(Ctl::Exc(raised))
            }
            Err(Ctl::Break) | Err(Ctl::Continue) => Err(self.exc(
                ExcKind::RuntimeError,
                "'break' or 'continue' outside a loop",
            )),
            Err(fatal) => Err(fatal),
        }
    }

    /// Bind call arguments to parameters with Python's rules: positional first (extras into
    /// `*args`), then keywords (unknown ones into `**kwargs`), then defaults.
    fn bind_args(
        &mut self,
        f: &Function,
        scope: &Rc<crate::obj::Scope>,
        args: Vec<Obj>,
        kwargs: Kwargs,
    ) -> R<()> {
        let def = &f.def;
        let npos = def.positional;
        let mut bound: Vec<Option<Obj>> = vec![None; def.params.len()];
        let mut extra = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            if i < npos {
                bound[i] = Some(a);
            } else {
                extra.push(a);
            }
        }
        if !extra.is_empty() && def.vararg.is_none() {
            return Err(self.type_error(format!(
                "{}() takes {} positional argument{} but {} were given",
                def.name,
                npos,
                if npos == 1 { "" } else { "s" },
                npos + extra.len()
            )));
        }
        let mut extra_kw = Vec::new();
        for (name, v) in kwargs {
            match def.params.iter().position(|p| p.name == name) {
                Some(i) if bound[i].is_some() => {
                    return Err(self.type_error(format!(
                        "{}() got multiple values for argument '{name}'",
                        def.name
                    )));
                }
                Some(i) => bound[i] = Some(v),
                None if def.kwarg.is_some() => extra_kw.push((Obj::Str(name), v)),
                None => {
                    return Err(self.type_error(format!(
                        "{}() got an unexpected keyword argument '{name}'",
                        def.name
                    )));
                }
            }
        }
        let mut vals = Vec::with_capacity(bound.len() + 2);
        for (i, ((p, v), default)) in def.params.iter().zip(bound).zip(&f.defaults).enumerate() {
            match v.or_else(|| default.clone()) {
                Some(v) => vals.push((p.name.clone(), v)),
                None => {
                    let kind = if i < npos {
                        "positional"
                    } else {
                        "keyword-only"
                    };
                    return Err(self.type_error(format!(
                        "{}() missing 1 required {kind} argument: '{}'",
                        def.name, p.name
                    )));
                }
            }
        }
        if let Some(n) = &def.vararg {
            vals.push((n.clone(), self.new_tuple(extra)?));
        }
        if let Some(n) = &def.kwarg {
            vals.push((n.clone(), self.new_dict(extra_kw)?));
        }
        let mut vars = scope.vars.borrow_mut();
        for (n, v) in vals {
            vars.insert(n, v);
        }
        Ok(())
    }

    /// `o.name` for reading.
    pub fn get_attr(&mut self, o: Obj, name: &str) -> R<Obj> {
        let found = match &o {
            Obj::Patch(p) => {
                if let Some(v) = patch::attribute(p, name) {
                    return Ok(v);
                }
                patch::METHODS.contains(&name)
            }
            Obj::Str(_) => methods::STR_METHODS.contains(&name),
            Obj::List(_) => methods::LIST_METHODS.contains(&name),
            Obj::Dict(_) => methods::DICT_METHODS.contains(&name),
            Obj::Set(s) => {
                methods::SET_METHODS.contains(&name)
                    && !(s.frozen && methods::SET_MUTATORS.contains(&name))
            }
            Obj::Tuple(_) => matches!(name, "index" | "count"),
            Obj::Builtin(t) => match *t {
                "str" => methods::STR_METHODS.contains(&name),
                "list" => methods::LIST_METHODS.contains(&name),
                "dict" => methods::DICT_METHODS.contains(&name),
                "set" => methods::SET_METHODS.contains(&name),
                "tuple" => matches!(name, "index" | "count"),
                _ => false,
            },
            Obj::Math => {
                if let Some(v) = builtins::math_attr(name) {
                    return Ok(v);
                }
                false
            }
            Obj::Exc(e) => {
                if name == "args" {
                    return self.new_tuple(e.args.clone());
                }
                false
            }
            _ => false,
        };
        if !found {
            return Err(self.exc(
                ExcKind::AttributeError,
                format!("'{}' object has no attribute '{name}'", o.type_name()),
            ));
        }
        self.alloc(48)?;
        Ok(Obj::Method(Rc::new((o, name.into()))))
    }

    /// `str.lower(x)`, `dict.fromkeys(keys)`: a method taken from its type.
    async fn unbound_method(
        &mut self,
        ty: &str,
        name: &str,
        mut args: Vec<Obj>,
        kwargs: Kwargs,
        loc: Loc,
    ) -> R<Obj> {
        if ty == "dict" && name == "fromkeys" {
            return methods::fromkeys(self, args);
        }
        if args.is_empty() {
            return Err(self.type_error(format!("unbound method {ty}.{name}() needs an argument")));
        }
        let recv = args.remove(0);
        if recv.type_name() != ty {
            return Err(self.type_error(format!(
                "descriptor '{name}' for '{ty}' objects doesn't apply to a '{}' object",
                recv.type_name()
            )));
        }
        Box::pin(self.call_method(recv, name, args, kwargs, loc)).await
    }

    /// Call `recv.name(...)`.
    pub async fn call_method(
        &mut self,
        recv: Obj,
        name: &str,
        args: Vec<Obj>,
        kwargs: Kwargs,
        loc: Loc,
    ) -> R<Obj> {
        match &recv {
            Obj::Patch(p) => self.patch_method(p.clone(), name, args, kwargs, loc).await,
            Obj::List(_) if name == "sort" => self.list_sort(&recv, args, kwargs).await,
            Obj::Str(s) if name == "format" => {
                let out = crate::format::str_format(self, s, &args, &kwargs)?;
                self.new_str(out)
            }
            Obj::Builtin(t) if crate::builtins::type_name_of(t).is_some() => {
                self.unbound_method(t, name, args, kwargs, loc).await
            }
            _ => methods::call(self, &recv, name, args, kwargs),
        }
    }
}
