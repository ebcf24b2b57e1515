//! Methods of `str`, `list`, `dict`, `set` and `tuple` (those that never call back into
//! Python code; `list.sort(key=…)` lives with the builtins because its key may).

use crate::interp::{Interp, Kwargs, R, STR_OBJ_BYTES};
use crate::obj::{ExcKind, Obj, ViewKind};
use crate::ops;
use std::rc::Rc;

pub use crate::str_methods::STR_METHODS;
pub const LIST_METHODS: &[&str] = &[
    "append", "extend", "pop", "index", "count", "sort", "insert", "remove", "reverse", "copy",
    "clear",
];
pub const DICT_METHODS: &[&str] = &[
    "get",
    "keys",
    "values",
    "items",
    "pop",
    "popitem",
    "update",
    "setdefault",
    "copy",
    "clear",
    "fromkeys",
];
/// The methods a `frozenset` lacks.
pub const SET_MUTATORS: &[&str] = &[
    "add",
    "remove",
    "discard",
    "update",
    "intersection_update",
    "difference_update",
    "symmetric_difference_update",
    "pop",
    "clear",
];
pub const SET_METHODS: &[&str] = &[
    "add",
    "remove",
    "discard",
    "union",
    "intersection",
    "difference",
    "symmetric_difference",
    "issubset",
    "issuperset",
    "isdisjoint",
    "update",
    "intersection_update",
    "difference_update",
    "symmetric_difference_update",
    "pop",
    "clear",
    "copy",
];

fn want(it: &Interp, name: &str, args: &[Obj], min: usize, max: usize) -> R<()> {
    if args.len() < min || args.len() > max {
        return Err(it.type_error(format!(
            "{name}() takes {min}..{max} arguments ({} given)",
            args.len()
        )));
    }
    Ok(())
}

fn str_arg<'o>(it: &Interp, name: &str, o: &'o Obj) -> R<&'o str> {
    match o {
        Obj::Str(s) => Ok(s),
        o => Err(it.type_error(format!(
            "{name}() argument must be str, not {}",
            o.type_name()
        ))),
    }
}

/// Call a method of a built-in type.
pub fn call(it: &mut Interp, recv: &Obj, name: &str, mut args: Vec<Obj>, kwargs: Kwargs) -> R<Obj> {
    it.tick(1)?;
    if !kwargs.is_empty() && !matches!(recv, Obj::Dict(_)) {
        // Keyword arguments of the methods that take them become positional ones.
        let params = match recv {
            Obj::Str(_) => crate::str_methods::keyword_params(name),
            _ => &[],
        };
        for (k, v) in kwargs {
            let Some(i) = params.iter().position(|p| **p == *k) else {
                return Err(
                    it.type_error(format!("{name}() got an unexpected keyword argument '{k}'"))
                );
            };
            if args.len() > i && !matches!(args[i], Obj::None) {
                return Err(
                    it.type_error(format!("{name}() got multiple values for argument '{k}'"))
                );
            }
            while args.len() <= i {
                args.push(Obj::None);
            }
            args[i] = v;
        }
        // A defaulted `sep` left as None is what `split(maxsplit=1)` means.
        if let (Obj::Str(_), "split" | "rsplit") = (recv, name) {
            if let Some(Obj::None) = args.get(1) {
                args[1] = Obj::Int(-1);
            }
        }
        return call(it, recv, name, args, Vec::new());
    }
    match recv {
        Obj::Str(s) => crate::str_methods::call(it, s, name, args),
        Obj::List(_) => list_method(it, recv, name, args),
        Obj::Tuple(t) => seq_query(it, &t.items, name, &args),
        Obj::Dict(_) => dict_method(it, recv, name, args, kwargs),
        Obj::Set(_) => set_method(it, recv, name, args),
        o => Err(it.exc(
            ExcKind::AttributeError,
            format!("'{}' object has no attribute '{name}'", o.type_name()),
        )),
    }
}

fn seq_query(it: &mut Interp, items: &[Obj], name: &str, args: &[Obj]) -> R<Obj> {
    want(it, name, args, 1, 1)?;
    it.tick(items.len() as u64)?;
    match name {
        "index" => {
            for (i, x) in items.iter().enumerate() {
                if ops::eq(it, x, &args[0], 0)? {
                    return Ok(Obj::Int(i as i64));
                }
            }
            Err(it.value_error("value is not in list"))
        }
        _ => {
            let mut n = 0;
            for x in items {
                if ops::eq(it, x, &args[0], 0)? {
                    n += 1;
                }
            }
            Ok(Obj::Int(n))
        }
    }
}

/// Charge `n` strings cut from `s` (their bytes and one object each) before building them.
fn charge_parts(it: &mut Interp, s: &str, n: usize) -> R<()> {
    it.tick(n as u64 / 8)?;
    it.alloc_items(n)?;
    it.alloc((s.len() as u64).saturating_add((n as u64).saturating_mul(STR_OBJ_BYTES)))
}

/// `str.splitlines` on every line boundary Python knows, each piece handed to `out`
/// (called twice: once to count, once to build, so nothing is built before it is charged).
fn split_lines<'s>(s: &'s str, keep: bool, mut out: impl FnMut(&'s str)) {
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            let mut end = pos + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|x| x.1 == '\n') {
                chars.next();
                end += 1;
            }
            out(if keep { &s[start..end] } else { &s[start..pos] });
            start = end;
        }
    }
    if start < s.len() {
        out(&s[start..]);
    }
}

/// `s.split(None, max)` / `s.rsplit(None, max)`.
fn split_ws_max(s: &str, max: usize, from_right: bool) -> Vec<Obj> {
    let mut out = Vec::new();
    if from_right {
        let mut rest = s.trim_end();
        while !rest.is_empty() && out.len() < max {
            match rest.rfind(char::is_whitespace) {
                Some(i) => {
                    let ws = rest[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                    out.push(Obj::str(&rest[i + ws..]));
                    rest = rest[..i].trim_end();
                }
                None => break,
            }
        }
        if !rest.is_empty() {
            out.push(Obj::str(rest));
        }
        out.reverse();
    } else {
        let mut rest = s.trim_start();
        while !rest.is_empty() && out.len() < max {
            match rest.find(char::is_whitespace) {
                Some(i) => {
                    out.push(Obj::str(&rest[..i]));
                    rest = rest[i..].trim_start();
                }
                None => break,
            }
        }
        if !rest.is_empty() {
            out.push(Obj::str(rest));
        }
    }
    out
}

/// `split`, `rsplit`, `splitlines` and `join` of `s`.
pub(crate) fn split_join(it: &mut Interp, s: &str, name: &str, args: Vec<Obj>) -> R<Obj> {
    let chars_arg = |it: &Interp, i: usize| -> R<Option<String>> {
        match args.get(i) {
            None | Some(Obj::None) => Ok(None),
            Some(o) => Ok(Some(str_arg(it, name, o)?.to_string())),
        }
    };
    match name {
        "split" | "rsplit" => {
            want(it, name, &args, 0, 2)?;
            let max = match args.get(1) {
                Some(o) => o.as_int().unwrap_or(-1),
                None => -1,
            };
            let sep = chars_arg(it, 0)?;
            if sep.as_deref() == Some("") {
                return Err(it.value_error("empty separator"));
            }
            // Count the parts first: their objects are charged before any is built.
            let n = match &sep {
                Some(sep) => s.matches(sep.as_str()).count() + 1,
                None => s.split_whitespace().count(),
            };
            let n = if max >= 0 { n.min(max as usize + 1) } else { n };
            charge_parts(it, s, n)?;
            let parts: Vec<Obj> = match (&sep, max >= 0, name == "rsplit") {
                (Some(sep), true, false) => s.splitn(n, sep.as_str()).map(Obj::str).collect(),
                (Some(sep), true, true) => {
                    let mut v: Vec<Obj> = s.rsplitn(n, sep.as_str()).map(Obj::str).collect();
                    v.reverse();
                    v
                }
                (Some(sep), false, _) => s.split(sep.as_str()).map(Obj::str).collect(),
                (None, true, rs) => split_ws_max(s, max as usize, rs),
                (None, false, _) => s.split_whitespace().map(Obj::str).collect(),
            };
            it.new_list(parts)
        }
        "splitlines" => {
            want(it, name, &args, 0, 1)?;
            let keep = args.first().is_some_and(|o| o.truthy());
            let mut n = 0usize;
            split_lines(s, keep, |_| n += 1);
            charge_parts(it, s, n)?;
            let mut parts = Vec::with_capacity(n);
            split_lines(s, keep, |p| parts.push(Obj::str(p)));
            it.new_list(parts)
        }
        "join" => {
            want(it, name, &args, 1, 1)?;
            let items = it.collect(&args[0])?;
            let mut total = 0u64;
            for (i, x) in items.iter().enumerate() {
                let Obj::Str(p) = x else {
                    return Err(it.type_error(format!(
                        "sequence item {i}: expected str instance, {} found",
                        x.type_name()
                    )));
                };
                total += (p.len() + s.len()) as u64;
            }
            it.alloc(total)?;
            let mut out = String::with_capacity(total as usize);
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(s);
                }
                if let Obj::Str(p) = x {
                    out.push_str(p);
                }
            }
            Ok(Obj::str(out))
        }
        _ => Err(it.type_error(format!("no method {name}"))),
    }
}

fn list_method(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>) -> R<Obj> {
    let Obj::List(l) = recv else {
        return Err(it.type_error("not a list"));
    };
    match name {
        "append" => {
            want(it, name, &args, 1, 1)?;
            it.alloc(24)?;
            l.items.borrow_mut().extend(args);
            Ok(Obj::None)
        }
        "extend" => {
            want(it, name, &args, 1, 1)?;
            let extra = it.collect(&args[0])?;
            it.alloc_items(extra.len())?;
            l.items.borrow_mut().extend(extra);
            Ok(Obj::None)
        }
        "insert" => {
            want(it, name, &args, 2, 2)?;
            let len = l.items.borrow().len() as i64;
            let i = args[0]
                .as_int()
                .ok_or_else(|| it.type_error("insert index must be an int"))?;
            let i = if i < 0 { (i + len).max(0) } else { i.min(len) } as usize;
            it.alloc(24)?;
            l.items.borrow_mut().insert(i, args[1].clone());
            Ok(Obj::None)
        }
        "pop" => {
            want(it, name, &args, 0, 1)?;
            let len = l.items.borrow().len() as i64;
            if len == 0 {
                return Err(it.exc(ExcKind::IndexError, "pop from empty list"));
            }
            let i = match args.first() {
                Some(o) => o
                    .as_int()
                    .ok_or_else(|| it.type_error("pop index must be an int"))?,
                None => -1,
            };
            let idx = if i < 0 { i + len } else { i };
            if idx < 0 || idx >= len {
                return Err(it.exc(ExcKind::IndexError, "pop index out of range"));
            }
            let v = l.items.borrow_mut().remove(idx as usize);
            Ok(v)
        }
        "remove" => {
            want(it, name, &args, 1, 1)?;
            let items = l.items.borrow().clone();
            for (i, x) in items.iter().enumerate() {
                if ops::eq(it, x, &args[0], 0)? {
                    let removed = l.items.borrow_mut().remove(i);
                    drop(removed);
                    return Ok(Obj::None);
                }
            }
            Err(it.value_error("list.remove(x): x not in list"))
        }
        "reverse" => {
            l.items.borrow_mut().reverse();
            Ok(Obj::None)
        }
        "clear" => {
            let old = std::mem::take(&mut *l.items.borrow_mut());
            crate::obj::defer_drop(old);
            Ok(Obj::None)
        }
        "copy" => {
            let items = l.items.borrow().clone();
            it.new_list(items)
        }
        "index" | "count" => {
            let items = l.items.borrow().clone();
            seq_query(it, &items, name, &args)
        }
        _ => Err(it.exc(
            ExcKind::AttributeError,
            format!("'list' object has no attribute '{name}'"),
        )),
    }
}

fn dict_method(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>, kwargs: Kwargs) -> R<Obj> {
    let Obj::Dict(d) = recv else {
        return Err(it.type_error("not a dict"));
    };
    if !kwargs.is_empty() && name != "update" {
        return Err(it.type_error(format!("dict.{name}() takes no keyword arguments")));
    }
    match name {
        "get" => {
            want(it, name, &args, 1, 2)?;
            let key = it.key_of(&args[0])?;
            let found = d.table.borrow().get(&key).cloned();
            Ok(found.unwrap_or_else(|| args.get(1).cloned().unwrap_or(Obj::None)))
        }
        "keys" | "values" | "items" => {
            want(it, name, &args, 0, 0)?;
            let kind = match name {
                "keys" => ViewKind::Keys,
                "values" => ViewKind::Values,
                _ => ViewKind::Items,
            };
            it.alloc(48)?;
            Ok(Obj::DictView(Rc::new((d.clone(), kind))))
        }
        "pop" => {
            want(it, name, &args, 1, 2)?;
            let key = it.key_of(&args[0])?;
            let removed = d.table.borrow_mut().remove(&key);
            match (removed, args.get(1)) {
                (Some((_, v)), _) => Ok(v),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(it.key_error(&args[0])),
            }
        }
        "popitem" => {
            want(it, name, &args, 0, 0)?;
            let last = d.table.borrow().entries.last().map(|e| e.0.clone());
            let Some(k) = last else {
                return Err(it.exc(ExcKind::KeyError, "'popitem(): dictionary is empty'"));
            };
            let key = it.key_of(&k)?;
            let removed = d.table.borrow_mut().remove(&key);
            let (k, v) = removed.unwrap_or((k, Obj::None));
            it.new_tuple(vec![k, v])
        }
        "setdefault" => {
            want(it, name, &args, 1, 2)?;
            let key = it.key_of(&args[0])?;
            let found = d.table.borrow().get(&key).cloned();
            match found {
                Some(v) => Ok(v),
                None => {
                    let v = args.get(1).cloned().unwrap_or(Obj::None);
                    it.alloc(48)?;
                    d.table.borrow_mut().insert(key, args[0].clone(), v.clone());
                    Ok(v)
                }
            }
        }
        "update" => {
            want(it, name, &args, 0, 1)?;
            let mut pairs = match args.first() {
                None => Vec::new(),
                Some(Obj::Dict(other)) => other.table.borrow().entries.clone(),
                Some(o) => {
                    let mut pairs = Vec::new();
                    for p in it.collect(o)? {
                        let kv = it.collect(&p)?;
                        if kv.len() != 2 {
                            return Err(it.value_error(format!(
                                "dictionary update sequence element has length {}; 2 is required",
                                kv.len()
                            )));
                        }
                        pairs.push((kv[0].clone(), kv[1].clone()));
                    }
                    pairs
                }
            };
            pairs.extend(kwargs.into_iter().map(|(k, v)| (Obj::Str(k), v)));
            it.alloc_items(pairs.len() * 2)?;
            for (k, v) in pairs {
                let key = it.key_of(&k)?;
                d.table.borrow_mut().insert(key, k, v);
            }
            Ok(Obj::None)
        }
        "copy" => {
            want(it, name, &args, 0, 0)?;
            let entries = d.table.borrow().entries.clone();
            it.new_dict(entries)
        }
        "clear" => {
            want(it, name, &args, 0, 0)?;
            let old = d.table.borrow_mut().take_all();
            crate::obj::defer_drop(old);
            Ok(Obj::None)
        }
        "fromkeys" => fromkeys(it, args),
        _ => Err(it.exc(
            ExcKind::AttributeError,
            format!("'dict' object has no attribute '{name}'"),
        )),
    }
}

/// `dict.fromkeys(iterable, value=None)`.
pub(crate) fn fromkeys(it: &mut Interp, args: Vec<Obj>) -> R<Obj> {
    want(it, "fromkeys", &args, 1, 2)?;
    let keys = it.collect(&args[0])?;
    let v = args.get(1).cloned().unwrap_or(Obj::None);
    it.new_dict(keys.into_iter().map(|k| (k, v.clone())).collect())
}

/// The elements of a set, or of any iterable for the methods that accept one.
fn elements(it: &mut Interp, o: &Obj) -> R<Obj> {
    match o {
        Obj::Set(_) => Ok(o.clone()),
        o => {
            let items = it.collect(o)?;
            it.new_set(items)
        }
    }
}

fn set_method(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>) -> R<Obj> {
    use crate::ast::BinOp;
    let Obj::Set(s) = recv else {
        return Err(it.type_error("not a set"));
    };
    if s.frozen && SET_MUTATORS.contains(&name) {
        return Err(it.exc(
            ExcKind::AttributeError,
            format!("'frozenset' object has no attribute '{name}'"),
        ));
    }
    match name {
        "add" | "remove" | "discard" => {
            want(it, name, &args, 1, 1)?;
            let key = it.key_of(&args[0])?;
            if name == "add" {
                it.alloc(48)?;
                s.table.borrow_mut().insert(key, args[0].clone(), Obj::None);
            } else {
                let removed = s.table.borrow_mut().remove(&key);
                if removed.is_none() && name == "remove" {
                    return Err(it.key_error(&args[0]));
                }
            }
            Ok(Obj::None)
        }
        "union" | "intersection" | "difference" | "symmetric_difference" => {
            let op = match name {
                "union" => BinOp::BitOr,
                "intersection" => BinOp::BitAnd,
                "difference" => BinOp::Sub,
                _ => BinOp::BitXor,
            };
            if name == "symmetric_difference" {
                want(it, name, &args, 1, 1)?;
            }
            if name == "union" {
                let out = it.set_copy(s)?;
                for a in &args {
                    let merge = matches!(a, Obj::Set(_) | Obj::Dict(_));
                    let keys = it.collect(a)?;
                    ops::set_add_all(it, &out, keys, merge)?;
                }
                // A frozenset's methods give frozensets.
                return Ok(if s.frozen {
                    it.frozen_from(&out)
                } else {
                    Obj::Set(out)
                });
            }
            if args.is_empty() {
                let out = it.set_copy(s)?;
                return Ok(if s.frozen {
                    it.frozen_from(&out)
                } else {
                    Obj::Set(out)
                });
            }
            let mut acc = recv.clone();
            for a in &args {
                let other = elements(it, a)?;
                acc = ops::binop(it, op, &acc, &other)?;
            }
            Ok(acc)
        }
        "issubset" | "issuperset" | "isdisjoint" => {
            want(it, name, &args, 1, 1)?;
            let other = elements(it, &args[0])?;
            let (a, b) = if name == "issuperset" {
                (&other, recv)
            } else {
                (recv, &other)
            };
            if name == "isdisjoint" {
                let both = ops::binop(it, BinOp::BitAnd, a, b)?;
                return Ok(Obj::Bool(!both.truthy()));
            }
            let ord = ops::cmp(it, a, b, 0)?;
            Ok(Obj::Bool(matches!(
                ord,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            )))
        }
        "update" | "difference_update" | "symmetric_difference_update" => {
            for a in &args {
                if name == "update" {
                    // Sets and dicts are merged; other iterables added in their own order.
                    let merge = matches!(a, Obj::Set(_) | Obj::Dict(_));
                    let keys = it.collect(a)?;
                    ops::set_add_all(it, s, keys, merge)?;
                    continue;
                }
                let other = elements(it, a)?;
                let Obj::Set(o) = &other else { continue };
                let keys = o.table.borrow().keys();
                match name {
                    "difference_update" => {
                        for k in keys {
                            let key = it.key_of(&k)?;
                            s.table.borrow_mut().remove(&key);
                        }
                    }
                    _ => ops::set_toggle_all(it, s, keys)?,
                }
            }
            Ok(Obj::None)
        }
        "intersection_update" => {
            // CPython computes the intersection, then takes over its table.
            let mut acc = recv.clone();
            for a in &args {
                let other = elements(it, a)?;
                acc = ops::binop(it, BinOp::BitAnd, &acc, &other)?;
            }
            if let Obj::Set(new) = acc {
                if !Rc::ptr_eq(&new, s) {
                    let t = std::mem::take(&mut *new.table.borrow_mut());
                    let old = std::mem::replace(&mut *s.table.borrow_mut(), t);
                    drop(old);
                }
            }
            Ok(Obj::None)
        }
        "pop" => {
            want(it, name, &args, 0, 0)?;
            let first = s.table.borrow().keys().into_iter().next();
            let Some(k) = first else {
                return Err(it.exc(ExcKind::KeyError, "'pop from an empty set'"));
            };
            let key = it.key_of(&k)?;
            s.table.borrow_mut().remove(&key);
            Ok(k)
        }
        "clear" => {
            let old = s.table.borrow_mut().take_all();
            crate::obj::defer_drop(old);
            Ok(Obj::None)
        }
        "copy" if s.frozen => Ok(recv.clone()),
        "copy" => Ok(Obj::Set(it.set_copy(s)?)),
        _ => Err(it.exc(
            ExcKind::AttributeError,
            format!("'set' object has no attribute '{name}'"),
        )),
    }
}
