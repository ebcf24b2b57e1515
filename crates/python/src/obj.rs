//! Runtime values of the sandboxed interpreter.
//!
//! Containers are reference-counted like Python's objects. Two hazards of that design are
//! handled here because hostile programs aim at them:
//!
//! * **deep nesting** (`x = [x]` a million times): dropping such a chain recursively would
//!   overflow the host's stack, so containers hand their contents to [`defer_drop`], which
//!   frees nested values iteratively;
//! * **reference cycles** (`a.append(a)`, closures stored in their own scope): the
//!   interpreter keeps weak handles on every mutable container and scope and empties them
//!   when the program ends (see `Interp::release`), so nothing outlives its program.

use crate::ast::FuncDef;
use crate::patch::Patch;
use num_bigint::BigInt;
use num_traits::{FromPrimitive, ToPrimitive};
use sdvp_core::ImageRef;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static DEFERRED: RefCell<Vec<Obj>> = const { RefCell::new(Vec::new()) };
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// Free `items` without recursion: nested containers dropped while draining push their own
/// contents onto the same work list instead of dropping them in a nested call.
pub fn defer_drop(items: Vec<Obj>) {
    if items.is_empty() {
        return;
    }
    let queued = DEFERRED.try_with(|d| d.borrow_mut().extend(items)).is_ok();
    if !queued || DRAINING.try_with(|d| d.replace(true)).unwrap_or(true) {
        return;
    }
    loop {
        let next = DEFERRED.try_with(|d| d.borrow_mut().pop()).ok().flatten();
        match next {
            Some(obj) => drop(obj),
            None => break,
        }
    }
    let _ = DRAINING.try_with(|d| d.set(false));
}

/// Python's built-in exception classes that programs may raise and catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExcKind {
    BaseException,
    SystemExit,
    KeyboardInterrupt,
    GeneratorExit,
    Exception,
    ValueError,
    IndexError,
    KeyError,
    LookupError,
    ZeroDivisionError,
    ArithmeticError,
    OverflowError,
    TypeError,
    AttributeError,
    NameError,
    UnboundLocalError,
    AssertionError,
    RuntimeError,
    RecursionError,
    NotImplementedError,
    StopIteration,
    MemoryError,
}

impl ExcKind {
    pub const ALL: [ExcKind; 22] = [
        ExcKind::BaseException,
        ExcKind::SystemExit,
        ExcKind::KeyboardInterrupt,
        ExcKind::GeneratorExit,
        ExcKind::Exception,
        ExcKind::ValueError,
        ExcKind::IndexError,
        ExcKind::KeyError,
        ExcKind::LookupError,
        ExcKind::ZeroDivisionError,
        ExcKind::ArithmeticError,
        ExcKind::OverflowError,
        ExcKind::TypeError,
        ExcKind::AttributeError,
        ExcKind::NameError,
        ExcKind::UnboundLocalError,
        ExcKind::AssertionError,
        ExcKind::RuntimeError,
        ExcKind::RecursionError,
        ExcKind::NotImplementedError,
        ExcKind::StopIteration,
        ExcKind::MemoryError,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ExcKind::BaseException => "BaseException",
            ExcKind::SystemExit => "SystemExit",
            ExcKind::KeyboardInterrupt => "KeyboardInterrupt",
            ExcKind::GeneratorExit => "GeneratorExit",
            ExcKind::Exception => "Exception",
            ExcKind::ValueError => "ValueError",
            ExcKind::IndexError => "IndexError",
            ExcKind::KeyError => "KeyError",
            ExcKind::LookupError => "LookupError",
            ExcKind::ZeroDivisionError => "ZeroDivisionError",
            ExcKind::ArithmeticError => "ArithmeticError",
            ExcKind::OverflowError => "OverflowError",
            ExcKind::TypeError => "TypeError",
            ExcKind::AttributeError => "AttributeError",
            ExcKind::NameError => "NameError",
            ExcKind::UnboundLocalError => "UnboundLocalError",
            ExcKind::AssertionError => "AssertionError",
            ExcKind::RuntimeError => "RuntimeError",
            ExcKind::RecursionError => "RecursionError",
            ExcKind::NotImplementedError => "NotImplementedError",
            ExcKind::StopIteration => "StopIteration",
            ExcKind::MemoryError => "MemoryError",
        }
    }
    pub fn from_name(name: &str) -> Option<ExcKind> {
        ExcKind::ALL.into_iter().find(|k| k.name() == name)
    }
    fn parent(self) -> Option<ExcKind> {
        match self {
            ExcKind::BaseException => None,
            ExcKind::SystemExit
            | ExcKind::KeyboardInterrupt
            | ExcKind::GeneratorExit
            | ExcKind::Exception => Some(ExcKind::BaseException),
            ExcKind::IndexError | ExcKind::KeyError => Some(ExcKind::LookupError),
            ExcKind::ZeroDivisionError | ExcKind::OverflowError => Some(ExcKind::ArithmeticError),
            ExcKind::NotImplementedError | ExcKind::RecursionError => Some(ExcKind::RuntimeError),
            ExcKind::UnboundLocalError => Some(ExcKind::NameError),
            _ => Some(ExcKind::Exception),
        }
    }
    /// Whether an `except other:` clause catches an exception of this kind.
    pub fn is_subclass_of(self, other: ExcKind) -> bool {
        let mut k = Some(self);
        while let Some(c) = k {
            if c == other {
                return true;
            }
            k = c.parent();
        }
        false
    }
}

/// A raised or created exception object.
#[derive(Debug)]
pub struct ExcObj {
    pub kind: ExcKind,
    /// `str(e)`, bounded by the output budget.
    pub message: Rc<str>,
    /// `e.args`.
    pub args: Vec<Obj>,
}

impl Drop for ExcObj {
    fn drop(&mut self) {
        defer_drop(std::mem::take(&mut self.args));
    }
}

/// A Python list. Its contents are freed through [`defer_drop`].
#[derive(Debug, Default)]
pub struct ListObj {
    pub items: RefCell<Vec<Obj>>,
}

impl Drop for ListObj {
    fn drop(&mut self) {
        defer_drop(std::mem::take(self.items.get_mut()));
    }
}

#[derive(Debug, Default)]
pub struct TupleObj {
    pub items: Vec<Obj>,
}

impl Drop for TupleObj {
    fn drop(&mut self) {
        defer_drop(std::mem::take(&mut self.items));
    }
}

/// Hashable identity of a value, equal exactly when Python's `==` holds between hashables
/// (so `1`, `1.0` and `True` are one key, as in Python).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    None,
    Int(i64),
    Big(BigInt),
    Float(u64),
    Str(Rc<str>),
    Tuple(Vec<Key>),
    Range(i64, i64, i64),
    Frozen(Vec<Key>),
    /// Objects hashed by identity (patches, functions, exception classes).
    Ident(usize),
}

/// Insertion-ordered hash map of Python values (dicts; sets use `Obj::None` values, and
/// keep CPython's slot table beside it for their iteration order, see [`crate::setorder`]).
#[derive(Debug, Default)]
pub struct Table {
    pub entries: Vec<(Obj, Obj)>,
    index: HashMap<Key, usize>,
    layout: Option<crate::setorder::Layout>,
}

impl Table {
    /// An empty table iterated in CPython's set order.
    pub fn new_set() -> Table {
        Table {
            layout: Some(Default::default()),
            ..Table::default()
        }
    }
    pub fn get(&self, k: &Key) -> Option<&Obj> {
        self.index.get(k).map(|&i| &self.entries[i].1)
    }
    pub fn contains(&self, k: &Key) -> bool {
        self.index.contains_key(k)
    }
    pub fn insert(&mut self, k: Key, key: Obj, value: Obj) {
        match self.index.get(&k) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                let pos = self.entries.len();
                if let Some(l) = &mut self.layout {
                    l.add(pos, crate::setorder::py_hash(&k));
                }
                self.index.insert(k, pos);
                self.entries.push((key, value));
            }
        }
    }
    pub fn remove(&mut self, k: &Key) -> Option<(Obj, Obj)> {
        let i = self.index.remove(k)?;
        let out = self.entries.remove(i);
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        if let Some(l) = &mut self.layout {
            l.remove(i);
        }
        Some(out)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn take_all(&mut self) -> Vec<Obj> {
        self.index.clear();
        if let Some(l) = &mut self.layout {
            l.clear();
        }
        let mut out = Vec::with_capacity(self.entries.len() * 2);
        for (k, v) in self.entries.drain(..) {
            out.push(k);
            out.push(v);
        }
        out
    }
    /// Entry positions in iteration order (a set's slot order, a dict's insertion order).
    pub fn order(&self) -> Vec<usize> {
        match &self.layout {
            Some(l) => l.order(),
            None => (0..self.entries.len()).collect(),
        }
    }
    /// Make room for merging `extra` keys of another set or dict (see [`crate::setorder`]).
    pub fn reserve(&mut self, extra: usize) {
        if let Some(l) = &mut self.layout {
            l.reserve(extra);
        }
    }
    /// Keys in iteration order.
    pub fn keys(&self) -> Vec<Obj> {
        self.order()
            .into_iter()
            .map(|i| self.entries[i].0.clone())
            .collect()
    }
    /// A new set of this set's (or dict's) keys, laid out as CPython builds `set(x)`: a
    /// set is merged (`set_merge`), a dict's keys are added in order into a presized table.
    pub fn set_copy(&self) -> Table {
        let order = self.order();
        let mut newpos = vec![0usize; self.entries.len()];
        for (k, &p) in order.iter().enumerate() {
            newpos[p] = k;
        }
        let entries = order
            .iter()
            .map(|&p| (self.entries[p].0.clone(), Obj::None))
            .collect();
        let index = self
            .index
            .iter()
            .map(|(k, &p)| (k.clone(), newpos[p]))
            .collect::<HashMap<_, _>>();
        let layout = match &self.layout {
            Some(l) => crate::setorder::Layout::merged_from(l, &order),
            None => {
                let mut keys: Vec<(usize, &Key)> = index.iter().map(|(k, p)| (*p, k)).collect();
                keys.sort_by_key(|x| x.0);
                let mut l = crate::setorder::Layout::presized(keys.len());
                for (pos, k) in keys {
                    l.add(pos, crate::setorder::py_hash(k));
                }
                l
            }
        };
        Table {
            entries,
            index,
            layout: Some(layout),
        }
    }
}

#[derive(Debug, Default)]
pub struct DictObj {
    pub table: RefCell<Table>,
    /// A `frozenset` (a set object that is hashable and has no mutating methods).
    pub frozen: bool,
}

impl Drop for DictObj {
    fn drop(&mut self) {
        defer_drop(self.table.get_mut().take_all());
    }
}

/// A variable scope: a function call's locals, a comprehension's, or the module's.
#[derive(Debug, Default)]
pub struct Scope {
    pub vars: RefCell<HashMap<Rc<str>, Obj>>,
    pub parent: Option<Rc<Scope>>,
    /// A function call's declarations (None for the module and for comprehensions).
    pub decl: Option<Rc<crate::ast::ScopeDecl>>,
}

impl Scope {
    /// Whether `name` is a local of this function scope that is not bound yet.
    pub fn unbound_local(&self, name: &str) -> bool {
        self.decl
            .as_ref()
            .is_some_and(|d| d.locals.iter().any(|n| &**n == name))
            && !self.vars.borrow().contains_key(name)
    }

    pub fn lookup(&self, name: &str) -> Option<Obj> {
        if let Some(v) = self.vars.borrow().get(name) {
            return Some(v.clone());
        }
        let mut s = self.parent.as_ref();
        while let Some(scope) = s {
            if let Some(v) = scope.vars.borrow().get(name) {
                return Some(v.clone());
            }
            s = scope.parent.as_ref();
        }
        None
    }
    pub fn clear(&self) {
        let vals: Vec<Obj> = self.vars.borrow_mut().drain().map(|(_, v)| v).collect();
        defer_drop(vals);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        defer_drop(self.vars.get_mut().drain().map(|(_, v)| v).collect());
    }
}

/// A user function or lambda with its defaults and the scope it closes over.
#[derive(Debug)]
pub struct Function {
    pub def: Rc<FuncDef>,
    pub defaults: Vec<Option<Obj>>,
    pub scope: Rc<Scope>,
}

impl Drop for Function {
    fn drop(&mut self) {
        defer_drop(
            std::mem::take(&mut self.defaults)
                .into_iter()
                .flatten()
                .collect(),
        );
    }
}

/// Which view of a dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Keys,
    Values,
    Items,
}

impl ViewKind {
    pub fn name(self) -> &'static str {
        match self {
            ViewKind::Keys => "dict_keys",
            ViewKind::Values => "dict_values",
            ViewKind::Items => "dict_items",
        }
    }
}

/// A runtime value.
#[derive(Debug, Clone)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    /// An int outside i64 (never one that fits: results are normalised).
    Big(Rc<BigInt>),
    Float(f64),
    Str(Rc<str>),
    List(Rc<ListObj>),
    Tuple(Rc<TupleObj>),
    Dict(Rc<DictObj>),
    Set(Rc<DictObj>),
    Range(i64, i64, i64),
    Func(Rc<Function>),
    /// A built-in function by name (`len`, `sorted`, `ImagePatch`, `math.sqrt` as `math.sqrt`).
    Builtin(&'static str),
    /// `receiver.method` not yet called.
    Method(Rc<(Obj, Rc<str>)>),
    Patch(Rc<Patch>),
    /// An iterator made by `iter()`.
    Iter(Rc<RefCell<crate::interp::ObjIter>>),
    /// `d.keys()`, `d.values()`, `d.items()`: live views of a dict.
    DictView(Rc<(Rc<DictObj>, ViewKind)>),
    /// An opaque image (`cropped_image`, the `image` argument): only ImagePatch() reads it.
    Image(Rc<ImageRef>),
    ExcType(ExcKind),
    Exc(Rc<ExcObj>),
    /// The `math` module.
    Math,
    /// `...`.
    Ellipsis,
    /// `a:b:c` as an index being assigned or deleted.
    Slice(Rc<(Obj, Obj, Obj)>),
}

impl Obj {
    pub fn str(s: impl Into<Rc<str>>) -> Obj {
        Obj::Str(s.into())
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            Obj::None => "NoneType",
            Obj::Bool(_) => "bool",
            Obj::Int(_) | Obj::Big(_) => "int",
            Obj::Float(_) => "float",
            Obj::Str(_) => "str",
            Obj::List(_) => "list",
            Obj::Tuple(_) => "tuple",
            Obj::Dict(_) => "dict",
            Obj::Set(s) if s.frozen => "frozenset",
            Obj::Set(_) => "set",
            Obj::Range(..) => "range",
            Obj::Func(_) => "function",
            Obj::Builtin(_) | Obj::Method(_) => "builtin_function_or_method",
            Obj::Patch(_) => "ImagePatch",
            Obj::DictView(v) => v.1.name(),
            Obj::Iter(_) => "iterator",
            Obj::Image(_) => "Image",
            Obj::ExcType(_) => "type",
            Obj::Exc(e) => e.kind.name(),
            Obj::Math => "module",
            Obj::Ellipsis => "ellipsis",
            Obj::Slice(_) => "slice",
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Obj::None => false,
            Obj::Bool(b) => *b,
            Obj::Int(i) => *i != 0,
            Obj::Big(_) => true,
            Obj::Float(f) => *f != 0.0,
            Obj::Str(s) => !s.is_empty(),
            Obj::List(l) => !l.items.borrow().is_empty(),
            Obj::Tuple(t) => !t.items.is_empty(),
            Obj::Dict(d) | Obj::Set(d) => !d.table.borrow().is_empty(),
            Obj::DictView(v) => !v.0.table.borrow().is_empty(),
            Obj::Range(a, b, s) => range_len(*a, *b, *s) > 0,
            _ => true,
        }
    }

    /// The number as f64 if it is one (bools count, as in Python).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Obj::Bool(b) => Some(*b as i64 as f64),
            Obj::Int(i) => Some(*i as f64),
            Obj::Big(b) => Some(b.to_f64().unwrap_or(f64::INFINITY)),
            Obj::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Bool(b) => Some(*b as i64),
            Obj::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Whether this is an int (bools included).
    pub fn is_int(&self) -> bool {
        matches!(self, Obj::Bool(_) | Obj::Int(_) | Obj::Big(_))
    }
}

/// Why a value has no hash key.
pub enum KeyFail {
    Unhashable(&'static str),
    TooDeep,
    TooLarge,
}

/// Deepest nesting hashed; deeper tuples raise instead of recursing.
pub const MAX_KEY_DEPTH: usize = 100;

/// The hash key of `o`, counting every node visited in `nodes` and giving up past `cap`
/// nodes (shared sub-tuples count once per path, so `t = (t, t)` cannot blow up unseen).
pub fn key_of(o: &Obj, depth: usize, nodes: &mut u64, cap: u64) -> Result<Key, KeyFail> {
    *nodes += 1;
    if *nodes > cap {
        return Err(KeyFail::TooLarge);
    }
    if depth > MAX_KEY_DEPTH {
        return Err(KeyFail::TooDeep);
    }
    Ok(match o {
        Obj::None => Key::None,
        Obj::Bool(b) => Key::Int(*b as i64),
        Obj::Int(i) => Key::Int(*i),
        Obj::Big(b) => Key::Big((**b).clone()),
        Obj::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 9.0e18 {
                Key::Int(*f as i64)
            } else if f.fract() == 0.0 {
                match BigInt::from_f64(*f) {
                    Some(b) => Key::Big(b),
                    None => Key::Float(f.to_bits()),
                }
            } else if f.is_nan() {
                Key::Float(f64::NAN.to_bits())
            } else {
                Key::Float(f.to_bits())
            }
        }
        Obj::Str(s) => Key::Str(s.clone()),
        Obj::Tuple(t) => {
            let mut out = Vec::with_capacity(t.items.len());
            for x in &t.items {
                out.push(key_of(x, depth + 1, nodes, cap)?);
            }
            Key::Tuple(out)
        }
        Obj::Patch(p) => Key::Ident(Rc::as_ptr(p) as usize),
        Obj::Func(f) => Key::Ident(Rc::as_ptr(f) as *const u8 as usize),
        Obj::Image(i) => Key::Ident(Rc::as_ptr(i) as usize),
        Obj::ExcType(k) => Key::Str(format!("<class {}>", k.name()).into()),
        Obj::Builtin(b) => Key::Str(format!("<builtin {b}>").into()),
        Obj::Math => Key::Str("<module math>".into()),
        Obj::Ellipsis => Key::Ident(0),
        Obj::Range(a, b, s) => Key::Range(*a, *b, *s),
        Obj::Set(s) if s.frozen => {
            // Order-free: the element keys sorted by a canonical text of each.
            let mut keys = Vec::new();
            for x in s.table.borrow().keys() {
                keys.push(key_of(&x, depth + 1, nodes, cap)?);
            }
            keys.sort_by_cached_key(|k| format!("{k:?}"));
            Key::Frozen(keys)
        }
        Obj::List(_)
        | Obj::Dict(_)
        | Obj::Set(_)
        | Obj::Method(_)
        | Obj::Exc(_)
        | Obj::DictView(_)
        | Obj::Slice(_)
        | Obj::Iter(_) => return Err(KeyFail::Unhashable(o.type_name())),
    })
}

/// Number of elements of `range(a, b, s)`; `s` is never 0.
pub fn range_len(a: i64, b: i64, s: i64) -> i64 {
    let (a, b, s) = (a as i128, b as i128, s as i128);
    let n = if s > 0 {
        (b - a + s - 1) / s
    } else {
        (a - b - s - 1) / (-s)
    };
    n.clamp(0, i64::MAX as i128) as i64
}
