//! The async tree-walking interpreter.
//!
//! Every evaluation function returns a boxed local future, so a model call deep inside an
//! expression simply `.await`s [`sdvp_core::ModuleCtx::call`] and the whole program
//! suspends there until the scheduler has run the batch. All budgets of [`Limits`] are
//! checked here; exceeding one raises a [`Fatal`] that no `try`/`except`/`finally` can
//! intercept, so a hostile program cannot swallow its own termination.

mod call;
mod expr;
mod iter;
mod stmt;

pub(crate) use call::Kwargs;
pub(crate) use iter::ObjIter;

use crate::ast::Loc;
use crate::obj::{DictObj, ExcKind, ExcObj, ListObj, Obj, Scope, Table, TupleObj};
use crate::Limits;
use sdvp_core::trace::TraceStep;
use sdvp_core::ModuleCtx;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

pub(crate) type LocalFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Deepest nesting of evaluation calls at once (expressions inside statements inside calls);
/// bounds the host's native stack whatever the program does.
pub const MAX_EVAL_DEPTH: usize = 50_000;

/// Stack kept free below each evaluation step, and the size of each stack segment added
/// when less is left (see [`Grow`]).
const RED_ZONE: usize = 256 << 10;
const STACK_SEGMENT: usize = 4 << 20;

/// A future polled on a stack that is grown on demand, so deep Python recursion (each level
/// is a few nested polls) never overflows the host thread's stack.
pub(crate) struct Grow<F>(pub Pin<Box<F>>);

impl<F: Future> Future for Grow<F> {
    type Output = F::Output;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let inner = self.0.as_mut();
        stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || inner.poll(cx))
    }
}

/// Bytes charged per string object made from a larger one (the object, its heap block).
pub const STR_OBJ_BYTES: u64 = 48;

/// Bytes charged per node of a large hash key.
const KEY_NODE_BYTES: u64 = 32;

/// Why a program was ended by the host rather than by Python semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum FatalKind {
    /// A budget of [`Limits`] was exceeded.
    Limit,
    /// A model backend failed.
    ModuleFailed,
}

/// One frame of a traceback (innermost first while propagating).
#[derive(Debug, Clone, PartialEq)]
pub struct TbEntry {
    pub func: Rc<str>,
    pub loc: Loc,
}

/// A Python exception in flight with its traceback.
#[derive(Debug, Clone)]
pub struct Raised {
    pub exc: Rc<ExcObj>,
    pub tb: Vec<TbEntry>,
}

/// Non-local control flow and errors.
#[derive(Debug)]
pub enum Ctl {
    Exc(Box<Raised>),
    Return(Obj),
    Break,
    Continue,
    Fatal(FatalKind, String, Vec<TbEntry>),
}

pub type R<T> = Result<T, Ctl>;

/// Weak handles on everything that can be part of a reference cycle.
enum Tracked {
    List(Weak<ListObj>),
    Dict(Weak<DictObj>),
    Scope(Weak<Scope>),
}

/// One running program.
pub struct Interp<'a> {
    pub ctx: &'a ModuleCtx,
    pub limits: &'a Limits,
    pub source: &'a str,
    pub steps: Vec<TraceStep>,
    pub output: String,
    pub globals: Rc<Scope>,
    /// The innermost scope of the code now running.
    pub scope: Rc<Scope>,
    /// Call stack: function name and the location currently executing in it.
    pub frames: Vec<TbEntry>,
    /// Exceptions being handled (for bare `raise`).
    pub handling: Vec<Raised>,
    pub model_calls: usize,
    step_count: u64,
    alloc_bytes: u64,
    eval_depth: usize,
    started: Instant,
    waited: Duration,
    tracked: Vec<Tracked>,
}

impl<'a> Interp<'a> {
    pub fn new(ctx: &'a ModuleCtx, limits: &'a Limits, source: &'a str) -> Self {
        let globals = Rc::new(Scope::default());
        let mut it = Self {
            ctx,
            limits,
            source,
            steps: Vec::new(),
            output: String::new(),
            globals: globals.clone(),
            scope: globals.clone(),
            frames: vec![TbEntry {
                func: "<module>".into(),
                loc: Loc::default(),
            }],
            handling: Vec::new(),
            model_calls: 0,
            step_count: 0,
            alloc_bytes: 0,
            eval_depth: 0,
            started: Instant::now(),
            waited: Duration::ZERO,
            tracked: Vec::new(),
        };
        it.tracked.push(Tracked::Scope(Rc::downgrade(&globals)));
        it
    }

    /// Instructions executed so far.
    pub fn steps_used(&self) -> u64 {
        self.step_count
    }

    /// Bytes charged to the allocation budget so far.
    pub fn bytes_used(&self) -> u64 {
        self.alloc_bytes
    }

    /// Bytes left in the allocation budget.
    pub fn bytes_left(&self) -> u64 {
        self.limits.max_alloc_bytes.saturating_sub(self.alloc_bytes)
    }

    /// Empty every container and scope the program created, breaking reference cycles so
    /// that nothing of the program outlives it.
    pub fn release(&mut self) {
        for t in std::mem::take(&mut self.tracked) {
            match t {
                Tracked::List(w) => {
                    if let Some(l) = w.upgrade() {
                        let items = std::mem::take(&mut *l.items.borrow_mut());
                        crate::obj::defer_drop(items);
                    }
                }
                Tracked::Dict(w) => {
                    if let Some(d) = w.upgrade() {
                        let items = d.table.borrow_mut().take_all();
                        crate::obj::defer_drop(items);
                    }
                }
                Tracked::Scope(w) => {
                    if let Some(s) = w.upgrade() {
                        s.clear();
                    }
                }
            }
        }
    }

    pub fn loc(&self) -> Loc {
        self.frames.last().map(|f| f.loc).unwrap_or_default()
    }

    pub fn set_loc(&mut self, loc: Loc) {
        if let Some(f) = self.frames.last_mut() {
            f.loc = loc;
        }
    }

    fn here(&self) -> Vec<TbEntry> {
        self.frames.last().cloned().into_iter().collect()
    }

    /// A Python exception raised at the current location (its message bounded by the
    /// output budget).
    pub fn exc(&self, kind: ExcKind, message: impl Into<String>) -> Ctl {
        let message = bound_text(message.into(), self.limits.max_output_bytes);
        let args = if message.is_empty() {
            Vec::new()
        } else {
            vec![Obj::str(message.as_str())]
        };
        Ctl::Exc(Box::new(Raised {
            exc: Rc::new(ExcObj {
                kind,
                message: message.into(),
                args,
            }),
            tb: self.here(),
        }))
    }

    /// `KeyError(key)`: its text is the key's repr, its `args` the key itself.
    pub fn key_error(&mut self, key: &Obj) -> Ctl {
        let text = match crate::format::repr(self, key) {
            Ok(t) => t,
            Err(c) => return c,
        };
        let mut c = self.exc(ExcKind::KeyError, text);
        if let Ctl::Exc(r) = &mut c {
            if let Some(e) = Rc::get_mut(&mut r.exc) {
                e.args = vec![key.clone()];
            }
        }
        c
    }

    pub fn type_error(&self, message: impl Into<String>) -> Ctl {
        self.exc(ExcKind::TypeError, message)
    }

    pub fn value_error(&self, message: impl Into<String>) -> Ctl {
        self.exc(ExcKind::ValueError, message)
    }

    /// End the program: a budget is spent.
    pub fn limit(&self, message: impl Into<String>) -> Ctl {
        Ctl::Fatal(
            FatalKind::Limit,
            message.into(),
            self.frames.iter().rev().cloned().collect(),
        )
    }

    /// Count `n` instructions; ends the program past the step or wall-time budget.
    pub fn tick(&mut self, n: u64) -> R<()> {
        self.step_count = self.step_count.saturating_add(n);
        if self.step_count > self.limits.max_steps {
            return Err(self.limit(format!(
                "instruction budget of {} steps exceeded",
                self.limits.max_steps
            )));
        }
        if self.step_count % 1024 < n.max(1) {
            let busy = self.started.elapsed().saturating_sub(self.waited);
            if busy > self.limits.max_wall {
                return Err(self.limit(format!(
                    "wall-time budget of {:?} exceeded",
                    self.limits.max_wall
                )));
            }
        }
        Ok(())
    }

    /// Charge `bytes` to the allocation budget *before* allocating them.
    pub fn alloc(&mut self, bytes: u64) -> R<()> {
        self.alloc_bytes = self.alloc_bytes.saturating_add(bytes);
        if self.alloc_bytes > self.limits.max_alloc_bytes {
            return Err(self.limit(format!(
                "memory budget of {} bytes exceeded",
                self.limits.max_alloc_bytes
            )));
        }
        Ok(())
    }

    /// Charge for `n` elements of a container (one word-sized slot each, plus headroom).
    pub fn alloc_items(&mut self, n: usize) -> R<()> {
        self.alloc((n as u64).saturating_mul(24).saturating_add(32))
    }

    pub fn note_wait(&mut self, d: Duration) {
        self.waited += d;
    }

    pub fn enter_eval(&mut self) -> R<()> {
        self.eval_depth += 1;
        if self.eval_depth > MAX_EVAL_DEPTH {
            return Err(self.limit("evaluation nested too deeply"));
        }
        Ok(())
    }

    pub fn leave_eval(&mut self) {
        self.eval_depth = self.eval_depth.saturating_sub(1);
    }

    pub fn new_str(&mut self, s: String) -> R<Obj> {
        self.alloc(16 + s.len() as u64)?;
        Ok(Obj::Str(s.into()))
    }

    pub fn new_list(&mut self, items: Vec<Obj>) -> R<Obj> {
        self.alloc_items(items.len())?;
        let l = Rc::new(ListObj {
            items: items.into(),
        });
        self.tracked.push(Tracked::List(Rc::downgrade(&l)));
        Ok(Obj::List(l))
    }

    pub fn new_tuple(&mut self, items: Vec<Obj>) -> R<Obj> {
        self.alloc_items(items.len())?;
        Ok(Obj::Tuple(Rc::new(TupleObj { items })))
    }

    fn new_table(&mut self, pairs: Vec<(Obj, Obj)>, set: bool) -> R<Rc<DictObj>> {
        self.alloc_items(pairs.len() * 2)?;
        let mut t = if set {
            Table::new_set()
        } else {
            Table::default()
        };
        for (k, v) in pairs {
            let key = self.key_of(&k)?;
            t.insert(key, k, v);
        }
        let d = Rc::new(DictObj {
            table: t.into(),
            frozen: false,
        });
        self.tracked.push(Tracked::Dict(Rc::downgrade(&d)));
        Ok(d)
    }

    pub fn new_dict(&mut self, pairs: Vec<(Obj, Obj)>) -> R<Obj> {
        Ok(Obj::Dict(self.new_table(pairs, false)?))
    }

    pub fn new_set(&mut self, items: Vec<Obj>) -> R<Obj> {
        let pairs = items.into_iter().map(|k| (k, Obj::None)).collect();
        Ok(Obj::Set(self.new_table(pairs, true)?))
    }

    /// `frozenset(x)`: a frozen copy of the set built from `x`.
    pub fn freeze(&mut self, o: &Obj) -> R<Obj> {
        let d = match o {
            Obj::Set(d) | Obj::Dict(d) => self.set_copy(d)?,
            o => {
                let items = self.collect(o)?;
                match self.new_set(items)? {
                    Obj::Set(d) => d,
                    _ => return Err(self.type_error("frozenset() needs an iterable")),
                }
            }
        };
        Ok(self.frozen_from(&d))
    }

    /// A frozenset taking over the table of the set `d` (just built, not shared).
    pub fn frozen_from(&mut self, d: &DictObj) -> Obj {
        let t = std::mem::take(&mut *d.table.borrow_mut());
        let f = Rc::new(DictObj {
            table: t.into(),
            frozen: true,
        });
        self.tracked.push(Tracked::Dict(Rc::downgrade(&f)));
        Obj::Set(f)
    }

    /// `set(s)` / `s.copy()` of a set or a dict's keys, laid out as CPython does.
    pub fn set_copy(&mut self, d: &DictObj) -> R<Rc<DictObj>> {
        let n = d.table.borrow().len();
        self.alloc_items(n * 2)?;
        self.tick(n as u64)?;
        let t = d.table.borrow().set_copy();
        let d = Rc::new(DictObj {
            table: t.into(),
            frozen: false,
        });
        self.tracked.push(Tracked::Dict(Rc::downgrade(&d)));
        Ok(d)
    }

    pub fn new_scope(
        &mut self,
        parent: Option<Rc<Scope>>,
        decl: Option<Rc<crate::ast::ScopeDecl>>,
    ) -> R<Rc<Scope>> {
        self.alloc(64)?;
        let s = Rc::new(Scope {
            vars: Default::default(),
            parent,
            decl,
        });
        self.tracked.push(Tracked::Scope(Rc::downgrade(&s)));
        Ok(s)
    }

    /// The hash key of `o`, charged to the step budget (one step per node) and, for large
    /// keys, to the memory budget.
    pub fn key_of(&mut self, o: &Obj) -> R<crate::obj::Key> {
        use crate::obj::KeyFail;
        match o {
            Obj::Int(i) => return Ok(crate::obj::Key::Int(*i)),
            Obj::Str(s) => return Ok(crate::obj::Key::Str(s.clone())),
            _ => {}
        }
        let left_steps = self.limits.max_steps.saturating_sub(self.step_count);
        let left_bytes = self.limits.max_alloc_bytes.saturating_sub(self.alloc_bytes);
        let cap = left_steps
            .min(left_bytes / KEY_NODE_BYTES)
            .saturating_add(1);
        let mut nodes = 0;
        let r = crate::obj::key_of(o, 0, &mut nodes, cap);
        self.tick(nodes)?;
        if nodes > 64 {
            self.alloc(nodes.saturating_mul(KEY_NODE_BYTES))?;
        }
        match r {
            Ok(k) => Ok(k),
            Err(KeyFail::Unhashable(t)) => Err(self.type_error(format!("unhashable type: '{t}'"))),
            Err(KeyFail::TooDeep) => Err(self.limit("value nested too deeply to hash")),
            Err(KeyFail::TooLarge) => {
                Err(self.limit("value too large to hash within the instruction and memory budgets"))
            }
        }
    }

    /// Bind `name` as an assignment in the current scope does: to the enclosing function's
    /// variable if declared `nonlocal`, to the module's if `global`, and from inside a
    /// comprehension (`:=` only, `walrus` true) to the enclosing function.
    pub fn bind(&mut self, name: &Rc<str>, v: Obj, walrus: bool) {
        let mut scope = self.scope.clone();
        if walrus {
            while scope.decl.is_none() {
                match &scope.parent {
                    Some(p) if !Rc::ptr_eq(&scope, &self.globals) => scope = p.clone(),
                    _ => break,
                }
            }
        }
        if let Some(d) = scope.decl.clone() {
            if d.globals.iter().any(|n| n == name) {
                self.globals.vars.borrow_mut().insert(name.clone(), v);
                return;
            }
            if d.nonlocals.iter().any(|n| n == name) {
                let mut s = scope.parent.clone();
                while let Some(p) = s {
                    if Rc::ptr_eq(&p, &self.globals) {
                        break;
                    }
                    if p.vars.borrow().contains_key(name)
                        || p.decl.as_ref().is_some_and(|d| d.locals.contains(name))
                    {
                        p.vars.borrow_mut().insert(name.clone(), v);
                        return;
                    }
                    s = p.parent.clone();
                }
            }
        }
        scope.vars.borrow_mut().insert(name.clone(), v);
    }

    /// The current value of `name` for an augmented assignment (`x += 1`).
    pub fn bound_value(&self, name: &str) -> Option<Obj> {
        let declared = self.scope.decl.as_ref().is_some_and(|d| {
            d.nonlocals.iter().any(|n| &**n == name) || d.globals.iter().any(|n| &**n == name)
        });
        if declared {
            return self.scope.lookup(name);
        }
        self.scope.vars.borrow().get(name).cloned()
    }

    /// Append program output (`print`), within the output budget.
    pub fn write_output(&mut self, s: &str) -> R<()> {
        if self.output.len() + s.len() > self.limits.max_output_bytes {
            return Err(self.limit(format!(
                "output budget of {} bytes exceeded",
                self.limits.max_output_bytes
            )));
        }
        self.output.push_str(s);
        Ok(())
    }

    /// Text of a 1-based source line, trimmed (for traces and tracebacks).
    pub fn source_line(&self, line: usize) -> String {
        source_line(self.source, line)
    }
}

/// `s` cut to at most `max` bytes (on a character boundary) with a marker saying how much
/// was cut, so no message can outgrow the output budget.
pub fn bound_text(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut cut = max.saturating_sub(64).min(total);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!("… [{} more bytes truncated]", total - cut));
    s
}

pub fn source_line(source: &str, line: usize) -> String {
    source
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Python-style traceback text, outermost frame first, at most `max` bytes.
pub fn format_traceback(source: &str, tb: &[TbEntry], last_line: &str, max: usize) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::from("Traceback (most recent call last):\n");
    for e in tb.iter().rev() {
        if out.len() > max {
            break;
        }
        out.push_str(&format!(
            "  File \"<program>\", line {}, in {}\n",
            e.loc.line, e.func
        ));
        let text = lines
            .get(e.loc.line.wrapping_sub(1))
            .map(|l| l.trim())
            .unwrap_or("");
        if !text.is_empty() {
            out.push_str(&format!("    {text}\n"));
        }
    }
    out = bound_text(out, max / 2);
    out.push_str(&bound_text(last_line.to_string(), max / 2));
    out
}
