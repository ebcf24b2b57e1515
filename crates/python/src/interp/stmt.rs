//! Statements: blocks, loops, exceptions, imports.

use super::{Ctl, Interp, LocalFut, Raised, R};
use crate::ast::{Handler, Stmt, StmtKind, Target};
use crate::obj::{ExcKind, ExcObj, Obj};
use crate::ops;
use std::rc::Rc;

impl<'a> Interp<'a> {
    pub fn exec_block<'b>(&'b mut self, stmts: &'b [Stmt]) -> LocalFut<'b, R<()>> {
        Box::pin(super::Grow(Box::pin(async move {
            for s in stmts {
                if let Err(c) = self.enter_eval() {
                    self.leave_eval();
                    return Err(c);
                }
                let r = self.exec(s).await;
                self.leave_eval();
                r?;
            }
            Ok(())
        })))
    }

    async fn exec(&mut self, s: &Stmt) -> R<()> {
        self.set_loc(s.loc);
        self.tick(1)?;
        match &s.kind {
            StmtKind::Expr(e) => {
                self.eval(e).await?;
            }
            StmtKind::Assign(targets, value) => {
                let v = self.eval(value).await?;
                for t in targets {
                    self.assign(t, v.clone()).await?;
                }
            }
            StmtKind::AugAssign(target, op, value) => {
                let cur = match target {
                    Target::Name(n) => match self.bound_value(n) {
                        Some(v) => v,
                        None if self.scope.decl.is_some() => {
                            let msg = format!("cannot access local variable '{n}' where it is not associated with a value");
                            return Err(self.exc(ExcKind::UnboundLocalError, msg));
                        }
                        None => {
                            let msg = format!("name '{n}' is not defined");
                            return Err(self.exc(ExcKind::NameError, msg));
                        }
                    },
                    Target::Subscript(obj, idx) => {
                        let o = self.eval(obj).await?;
                        let i = self.eval(idx).await?;
                        let cur = ops::getitem(self, &o, &i)?;
                        let rhs = self.eval(value).await?;
                        self.set_loc(s.loc);
                        let new = ops::inplace(self, *op, &cur, &rhs)?;
                        return ops::setitem(self, &o, &i, new);
                    }
                    Target::Unpack(_) | Target::Starred(_) => {
                        return Err(self.type_error("augmented assignment to a tuple"))
                    }
                };
                let rhs = self.eval(value).await?;
                self.set_loc(s.loc);
                let new = ops::inplace(self, *op, &cur, &rhs)?;
                self.assign(target, new).await?;
            }
            StmtKind::Def(def) => {
                let f = self.make_function(def.clone()).await?;
                self.bind(&def.name, f, false);
            }
            StmtKind::Return(v) => {
                let v = match v {
                    Some(e) => self.eval(e).await?,
                    None => Obj::None,
                };
                return Err(Ctl::Return(v));
            }
            StmtKind::If(test, body, orelse) => {
                if self.eval(test).await?.truthy() {
                    self.exec_block(body).await?;
                } else {
                    self.exec_block(orelse).await?;
                }
            }
            StmtKind::For(target, iter, body, orelse) => {
                let it = self.eval(iter).await?;
                let mut items = self.iter_obj(&it)?;
                let mut broke = false;
                while let Some(item) = items.step(self)? {
                    self.tick(1)?;
                    self.assign(target, item).await?;
                    match self.exec_block(body).await {
                        Ok(()) | Err(Ctl::Continue) => {}
                        Err(Ctl::Break) => {
                            broke = true;
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if !broke {
                    self.exec_block(orelse).await?;
                }
            }
            StmtKind::While(test, body, orelse) => {
                let mut broke = false;
                while self.eval(test).await?.truthy() {
                    self.tick(1)?;
                    match self.exec_block(body).await {
                        Ok(()) | Err(Ctl::Continue) => {}
                        Err(Ctl::Break) => {
                            broke = true;
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if !broke {
                    self.exec_block(orelse).await?;
                }
            }
            StmtKind::Break => return Err(Ctl::Break),
            StmtKind::Continue => return Err(Ctl::Continue),
            StmtKind::Pass => {}
            StmtKind::Raise(exc, cause) => {
                let Some(e) = exc else {
                    return match self.handling.last() {
                        Some(r) => Err(Ctl::Exc(Box::new(r.clone()))),
                        None => {
                            Err(self.exc(ExcKind::RuntimeError, "No active exception to reraise"))
                        }
                    };
                };
                let v = self.eval(e).await?;
                if let Some(c) = cause {
                    // The cause is checked as CPython does, then only the exception travels.
                    match self.eval(c).await? {
                        Obj::None | Obj::Exc(_) | Obj::ExcType(_) => {}
                        o => {
                            let msg = format!(
                                "exception causes must derive from BaseException, not {}",
                                o.type_name()
                            );
                            return Err(self.type_error(msg));
                        }
                    }
                }
                self.set_loc(s.loc);
                let exc = match v {
                    Obj::Exc(x) => x,
                    Obj::ExcType(kind) => Rc::new(ExcObj {
                        kind,
                        message: "".into(),
                        args: Vec::new(),
                    }),
                    o => {
                        let msg = format!(
                            "exceptions must derive from BaseException, not {}",
                            o.type_name()
                        );
                        return Err(self.type_error(msg));
                    }
                };
                let here = self.exc(exc.kind, "");
                let Ctl::Exc(mut raised) = here else {
                    return Err(here);
                };
                raised.exc = exc;
                return Err(Ctl::Exc(raised));
            }
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => {
                let mut result = self.exec_block(body).await;
                if let Err(Ctl::Exc(raised)) = result {
                    result = self.handle(*raised, handlers).await;
                } else if result.is_ok() {
                    result = self.exec_block(orelse).await;
                }
                // A budget or backend failure ends the program at once: no `finally` runs.
                if matches!(result, Err(Ctl::Fatal(..))) {
                    return result;
                }
                self.exec_block(finalbody).await?;
                return result;
            }
            StmtKind::Assert(test, msg) => {
                if !self.eval(test).await?.truthy() {
                    let m = match msg {
                        Some(m) => {
                            let v = self.eval(m).await?;
                            crate::format::to_str(self, &v)?
                        }
                        None => String::new(),
                    };
                    self.set_loc(s.loc);
                    return Err(self.exc(ExcKind::AssertionError, m));
                }
            }
            StmtKind::Import(names) => {
                for (bound, attr) in names {
                    let v = match attr {
                        None => Obj::Math,
                        Some(a) => self.get_attr(Obj::Math, a)?,
                    };
                    self.bind(bound, v, false);
                }
            }
            StmtKind::Delete(targets) => {
                for t in targets {
                    match t {
                        Target::Name(n) => {
                            if self.scope.vars.borrow_mut().remove(n).is_none() {
                                let msg = format!("name '{n}' is not defined");
                                return Err(self.exc(ExcKind::NameError, msg));
                            }
                        }
                        Target::Subscript(obj, idx) => {
                            let o = self.eval(obj).await?;
                            let i = self.eval(idx).await?;
                            ops::delitem(self, &o, &i)?;
                        }
                        Target::Unpack(_) | Target::Starred(_) => {
                            return Err(self.type_error("cannot delete a tuple"))
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Run the first matching `except` clause, or re-raise.
    async fn handle(&mut self, raised: Raised, handlers: &[Handler]) -> R<()> {
        for h in handlers {
            let matches = match &h.types {
                None => true,
                Some(t) => {
                    let t = self.eval(t).await?;
                    self.exc_matches(raised.exc.kind, &t, 0)?
                }
            };
            if !matches {
                continue;
            }
            if let Some(n) = &h.name {
                self.bind(n, Obj::Exc(raised.exc.clone()), false);
            }
            self.handling.push(raised);
            let r = self.exec_block(&h.body).await;
            self.handling.pop();
            return r;
        }
        Err(Ctl::Exc(Box::new(raised)))
    }

    fn exc_matches(&self, kind: ExcKind, t: &Obj, depth: usize) -> R<bool> {
        if depth > crate::ops::MAX_VALUE_DEPTH {
            return Err(self.limit("exception type tuple nested too deeply"));
        }
        match t {
            Obj::ExcType(k) => Ok(kind.is_subclass_of(*k)),
            Obj::Tuple(items) => {
                for i in &items.items {
                    if self.exc_matches(kind, i, depth + 1)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            o => Err(self.type_error(format!(
                "catching classes that do not inherit from BaseException is not allowed ({})",
                o.type_name()
            ))),
        }
    }
}
