//! Methods of `str`, `list`, `dict`, `set` and `tuple` (those that never call back into
//! Python code; `list.sort(key=…)` lives with the builtins because its key may).

use crate::interp::{Interp, R, STR_OBJ_BYTES};
use crate::obj::{ExcKind, Obj};
use crate::{format, ops};

pub const STR_METHODS: &[&str] = &[
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "join",
    "startswith",
    "endswith",
    "replace",
    "format",
    "find",
    "count",
    "isdigit",
    "isalpha",
    "isnumeric",
    "capitalize",
    "title",
    "index",
    "splitlines",
];
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
    "update",
    "setdefault",
    "copy",
];
pub const SET_METHODS: &[&str] = &[
    "add",
    "remove",
    "discard",
    "union",
    "intersection",
    "difference",
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
pub fn call(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>) -> R<Obj> {
    it.tick(1)?;
    match recv {
        Obj::Str(s) => str_method(it, s, name, args),
        Obj::List(_) => list_method(it, recv, name, args),
        Obj::Tuple(t) => seq_query(it, &t.items, name, &args),
        Obj::Dict(_) => dict_method(it, recv, name, args),
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

fn str_method(it: &mut Interp, s: &str, name: &str, args: Vec<Obj>) -> R<Obj> {
    it.tick(1 + s.len() as u64 / 64)?;
    let chars_arg = |it: &Interp, i: usize| -> R<Option<String>> {
        match args.get(i) {
            None | Some(Obj::None) => Ok(None),
            Some(o) => Ok(Some(str_arg(it, name, o)?.to_string())),
        }
    };
    let out = match name {
        "lower" => s.to_lowercase(),
        "upper" => s.to_uppercase(),
        "capitalize" => {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(|x| x.to_lowercase()))
                    .collect(),
                None => String::new(),
            }
        }
        "title" => {
            let mut out = String::new();
            let mut prev_alpha = false;
            for c in s.chars() {
                if prev_alpha {
                    out.extend(c.to_lowercase());
                } else {
                    out.extend(c.to_uppercase());
                }
                prev_alpha = c.is_alphabetic();
            }
            out
        }
        "strip" | "lstrip" | "rstrip" => {
            let set = chars_arg(it, 0)?;
            let pred = |c: char| match &set {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            match name {
                "strip" => s.trim_matches(pred).to_string(),
                "lstrip" => s.trim_start_matches(pred).to_string(),
                _ => s.trim_end_matches(pred).to_string(),
            }
        }
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
            return it.new_list(parts);
        }
        "splitlines" => {
            want(it, name, &args, 0, 1)?;
            let keep = args.first().is_some_and(|o| o.truthy());
            let mut n = 0usize;
            split_lines(s, keep, |_| n += 1);
            charge_parts(it, s, n)?;
            let mut parts = Vec::with_capacity(n);
            split_lines(s, keep, |p| parts.push(Obj::str(p)));
            return it.new_list(parts);
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
            return Ok(Obj::str(out));
        }
        "startswith" | "endswith" => {
            want(it, name, &args, 1, 1)?;
            let pats: Vec<String> = match &args[0] {
                Obj::Tuple(t) => t
                    .items
                    .iter()
                    .map(|x| str_arg(it, name, x).map(String::from))
                    .collect::<R<_>>()?,
                o => vec![str_arg(it, name, o)?.to_string()],
            };
            let f = |p: &String| {
                if name == "startswith" {
                    s.starts_with(p.as_str())
                } else {
                    s.ends_with(p.as_str())
                }
            };
            return Ok(Obj::Bool(pats.iter().any(f)));
        }
        "replace" => {
            want(it, name, &args, 2, 2)?;
            let from = str_arg(it, name, &args[0])?;
            let to = str_arg(it, name, &args[1])?;
            let n = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            it.alloc((s.len() as u64).saturating_add((n as u64).saturating_mul(to.len() as u64)))?;
            s.replace(from, to)
        }
        "find" | "index" | "count" => {
            want(it, name, &args, 1, 1)?;
            let pat = str_arg(it, name, &args[0])?;
            return match name {
                "count" => Ok(Obj::Int(if pat.is_empty() {
                    s.chars().count() as i64 + 1
                } else {
                    s.matches(pat).count() as i64
                })),
                _ => match s.find(pat) {
                    Some(b) => Ok(Obj::Int(s[..b].chars().count() as i64)),
                    None if name == "find" => Ok(Obj::Int(-1)),
                    None => Err(it.value_error("substring not found")),
                },
            };
        }
        "isdigit" | "isnumeric" => {
            return Ok(Obj::Bool(
                !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
            ))
        }
        "isalpha" => {
            return Ok(Obj::Bool(
                !s.is_empty() && s.chars().all(char::is_alphabetic),
            ))
        }
        "format" => format::str_format(it, s, &args, &[])?,
        _ => {
            return Err(it.exc(
                ExcKind::AttributeError,
                format!("'str' object has no attribute '{name}'"),
            ));
        }
    };
    it.new_str(out)
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

fn dict_method(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>) -> R<Obj> {
    let Obj::Dict(d) = recv else {
        return Err(it.type_error("not a dict"));
    };
    match name {
        "get" => {
            want(it, name, &args, 1, 2)?;
            let key = it.key_of(&args[0])?;
            let found = d.table.borrow().get(&key).cloned();
            Ok(found.unwrap_or_else(|| args.get(1).cloned().unwrap_or(Obj::None)))
        }
        "keys" | "values" | "items" => {
            let entries = d.table.borrow().entries.clone();
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                out.push(match name {
                    "keys" => k,
                    "values" => v,
                    _ => it.new_tuple(vec![k, v])?,
                });
            }
            it.new_list(out)
        }
        "pop" => {
            want(it, name, &args, 1, 2)?;
            let key = it.key_of(&args[0])?;
            let removed = d.table.borrow_mut().remove(&key);
            match (removed, args.get(1)) {
                (Some((_, v)), _) => Ok(v),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => {
                    let k = format::repr(it, &args[0])?;
                    Err(it.exc(ExcKind::KeyError, k))
                }
            }
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
            want(it, name, &args, 1, 1)?;
            let Obj::Dict(other) = &args[0] else {
                return Err(it.type_error("dict.update() needs a dict"));
            };
            let entries = other.table.borrow().entries.clone();
            it.alloc_items(entries.len() * 2)?;
            for (k, v) in entries {
                let key = it.key_of(&k)?;
                d.table.borrow_mut().insert(key, k, v);
            }
            Ok(Obj::None)
        }
        "copy" => {
            let entries = d.table.borrow().entries.clone();
            it.new_dict(entries)
        }
        _ => Err(it.exc(
            ExcKind::AttributeError,
            format!("'dict' object has no attribute '{name}'"),
        )),
    }
}

fn set_method(it: &mut Interp, recv: &Obj, name: &str, args: Vec<Obj>) -> R<Obj> {
    let Obj::Set(s) = recv else {
        return Err(it.type_error("not a set"));
    };
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
                    let k = format::repr(it, &args[0])?;
                    return Err(it.exc(ExcKind::KeyError, k));
                }
            }
            Ok(Obj::None)
        }
        "union" | "intersection" | "difference" => {
            want(it, name, &args, 1, 1)?;
            let other = it.collect(&args[0])?;
            let other = it.new_set(other)?;
            let op = match name {
                "union" => crate::ast::BinOp::BitOr,
                "intersection" => crate::ast::BinOp::BitAnd,
                _ => crate::ast::BinOp::Sub,
            };
            ops::binop(it, op, recv, &other)
        }
        "copy" => {
            let items: Vec<Obj> = s
                .table
                .borrow()
                .entries
                .iter()
                .map(|e| e.0.clone())
                .collect();
            it.new_set(items)
        }
        _ => Err(it.exc(
            ExcKind::AttributeError,
            format!("'set' object has no attribute '{name}'"),
        )),
    }
}
