//! Operators, indexing, equality and ordering with Python's semantics on 64-bit ints.
//!
//! Ints do not grow without bound as CPython's do: an overflowing result raises
//! `OverflowError`, which is how `10**10**10` ends. Every operation that creates a string or
//! container charges its size to the allocation budget *before* allocating it, so
//! `'a' * 10**10` ends with a `limit` error without touching the host's memory.

use crate::ast::BinOp;
use crate::interp::{Interp, R};
use crate::num;
use crate::obj::{range_len, ExcKind, Obj};
use num_bigint::BigInt;
use std::cmp::Ordering;

/// Deepest container nesting compared or printed; deeper values raise instead of recursing.
pub const MAX_VALUE_DEPTH: usize = 100;

fn zero_div(it: &Interp, what: &str) -> crate::interp::Ctl {
    it.exc(ExcKind::ZeroDivisionError, what.to_string())
}

fn py_floordiv(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q.checked_sub(1)
    } else {
        Some(q)
    }
}

/// CPython's float `divmod` (from `fmod`, so `1 // 0.1 == 9.0` as in Python).
fn py_divmod_f(a: f64, b: f64) -> (f64, f64) {
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(b);
    }
    let q = if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(a / b)
    };
    (q, m)
}

fn repeat_count(it: &Interp, n: &Obj) -> R<Option<usize>> {
    if let Obj::Big(b) = n {
        return Ok(Some(if num_traits::Signed::is_negative(&**b) {
            0
        } else {
            usize::MAX
        }));
    }
    match n.as_int() {
        Some(i) => Ok(Some(i.max(0) as usize)),
        None => {
            if matches!(n, Obj::Float(_)) {
                return Err(it.type_error("can't multiply sequence by non-int of type 'float'"));
            }
            Ok(None)
        }
    }
}

/// `l op r`.
pub fn binop(it: &mut Interp, op: BinOp, l: &Obj, r: &Obj) -> R<Obj> {
    if let (Obj::Bool(a), Obj::Bool(b)) = (l, r) {
        match op {
            BinOp::BitAnd => return Ok(Obj::Bool(a & b)),
            BinOp::BitOr => return Ok(Obj::Bool(a | b)),
            BinOp::BitXor => return Ok(Obj::Bool(a ^ b)),
            _ => {}
        }
    }
    if let (Some(a), Some(b)) = (l.as_int(), r.as_int()) {
        return int_op(it, op, a, b);
    }
    if l.is_int() && r.is_int() {
        let (a, b) = (
            num::to_big(l).unwrap_or_default(),
            num::to_big(r).unwrap_or_default(),
        );
        return num::big_op(it, op, &a, &b);
    }
    if let (Some(_), Some(_)) = (l.as_f64(), r.as_f64()) {
        let a = num::int_to_f64(it, l)?;
        let b = num::int_to_f64(it, r)?;
        return float_op(it, op, a, b);
    }
    let setlike = |o: &Obj| {
        matches!(o, Obj::Set(_))
            || matches!(o, Obj::DictView(v) if v.1 != crate::obj::ViewKind::Values)
    };
    if matches!(
        op,
        BinOp::BitOr | BinOp::BitAnd | BinOp::Sub | BinOp::BitXor
    ) && setlike(l)
        && setlike(r)
        && (matches!(l, Obj::DictView(_)) || matches!(r, Obj::DictView(_)))
    {
        let a = view_as_set(it, l)?;
        let b = view_as_set(it, r)?;
        return binop(it, op, &a, &b);
    }
    match (op, l, r) {
        (BinOp::Add, Obj::Str(a), Obj::Str(b)) => {
            it.alloc((a.len() + b.len()) as u64)?;
            Ok(Obj::str(format!("{a}{b}")))
        }
        (BinOp::Add, Obj::List(a), Obj::List(b)) => {
            it.alloc_items(a.items.borrow().len() + b.items.borrow().len())?;
            let mut v = a.items.borrow().clone();
            v.extend(b.items.borrow().iter().cloned());
            it.new_list(v)
        }
        (BinOp::Add, Obj::Tuple(a), Obj::Tuple(b)) => {
            it.alloc_items(a.items.len() + b.items.len())?;
            let mut v = a.items.clone();
            v.extend(b.items.iter().cloned());
            it.new_tuple(v)
        }
        (BinOp::Mul, Obj::Str(_) | Obj::List(_) | Obj::Tuple(_), n) => repeat(it, l, n),
        (BinOp::Mul, n, Obj::Str(_) | Obj::List(_) | Obj::Tuple(_)) => repeat(it, r, n),
        (BinOp::Mod, Obj::Str(fmt), args) => crate::format::percent_format(it, fmt, args),
        (BinOp::BitOr, Obj::Dict(a), Obj::Dict(b)) => {
            let mut pairs = a.table.borrow().entries.clone();
            pairs.extend(b.table.borrow().entries.iter().cloned());
            it.new_dict(pairs)
        }
        (BinOp::BitOr | BinOp::BitAnd | BinOp::Sub | BinOp::BitXor, Obj::Set(a), Obj::Set(b)) => {
            set_op(it, op, a, b)
        }
        _ => Err(it.type_error(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// `a op b` on sets, each built the way CPython builds it (so the result iterates in
/// CPython's order): `|` copies `a` and adds `b`; `&` adds the elements of the smaller set
/// found in the other; `-` copies and discards, or adds, by relative size; `^` copies `b`
/// and toggles `a`'s elements.
fn set_op(it: &mut Interp, op: BinOp, a: &crate::obj::DictObj, b: &crate::obj::DictObj) -> R<Obj> {
    let (la, lb) = (a.table.borrow().len(), b.table.borrow().len());
    it.tick((la + lb) as u64)?;
    let keys_b = b.table.borrow().keys();
    let keys_a = a.table.borrow().keys();
    let empty = crate::obj::DictObj {
        table: crate::obj::Table::new_set().into(),
    };
    match op {
        BinOp::BitOr => {
            let out = it.set_copy(a)?;
            set_add_all(it, &out, keys_b, true)?;
            Ok(Obj::Set(out))
        }
        BinOp::BitAnd => {
            let (small, large) = if lb > la { (keys_a, b) } else { (keys_b, a) };
            let out = it.set_copy(&empty)?;
            for k in small {
                let key = it.key_of(&k)?;
                if large.table.borrow().contains(&key) {
                    it.alloc(48)?;
                    out.table.borrow_mut().insert(key, k, Obj::None);
                }
            }
            Ok(Obj::Set(out))
        }
        BinOp::Sub if la >> 2 > lb => {
            let out = it.set_copy(a)?;
            for k in keys_b {
                let key = it.key_of(&k)?;
                out.table.borrow_mut().remove(&key);
            }
            Ok(Obj::Set(out))
        }
        BinOp::Sub => {
            let out = it.set_copy(&empty)?;
            for k in keys_a {
                let key = it.key_of(&k)?;
                if !b.table.borrow().contains(&key) {
                    it.alloc(48)?;
                    out.table.borrow_mut().insert(key, k, Obj::None);
                }
            }
            Ok(Obj::Set(out))
        }
        _ => {
            let out = it.set_copy(b)?;
            set_toggle_all(it, &out, keys_a)?;
            Ok(Obj::Set(out))
        }
    }
}

/// Add each key to the set, in order; `merge` when they come from a set or dict (CPython
/// then resizes once up front).
pub fn set_add_all(it: &mut Interp, s: &crate::obj::DictObj, keys: Vec<Obj>, merge: bool) -> R<()> {
    if merge && !keys.is_empty() {
        s.table.borrow_mut().reserve(keys.len());
    }
    for k in keys {
        let key = it.key_of(&k)?;
        it.alloc(48)?;
        s.table.borrow_mut().insert(key, k, Obj::None);
    }
    Ok(())
}

/// Remove each key that is in the set and add each that is not (`^=`).
pub fn set_toggle_all(it: &mut Interp, s: &crate::obj::DictObj, keys: Vec<Obj>) -> R<()> {
    for k in keys {
        let key = it.key_of(&k)?;
        let removed = s.table.borrow_mut().remove(&key);
        if removed.is_none() {
            it.alloc(48)?;
            s.table.borrow_mut().insert(key, k, Obj::None);
        }
    }
    Ok(())
}

fn view_as_set(it: &mut Interp, o: &Obj) -> R<Obj> {
    match o {
        Obj::DictView(_) => {
            let items = it.collect(o)?;
            it.new_set(items)
        }
        o => Ok(o.clone()),
    }
}

/// `l op= r`: lists extend in place (as Python's `+=` does); everything else rebinds.
pub fn inplace(it: &mut Interp, op: BinOp, l: &Obj, r: &Obj) -> R<Obj> {
    if let (BinOp::Add, Obj::List(a)) = (op, l) {
        let extra = it.collect(r)?;
        it.alloc_items(extra.len())?;
        a.items.borrow_mut().extend(extra);
        return Ok(l.clone());
    }
    // Sets and dicts update in place too, so every alias sees the change.
    match (op, l, r) {
        (BinOp::Mul, Obj::List(a), n) if n.is_int() => {
            let Some(n) = repeat_count(it, n)? else {
                return binop(it, op, l, r);
            };
            let items = a.items.borrow().clone();
            it.alloc_items(items.len().saturating_mul(n))?;
            let v: Vec<Obj> = (0..n).flat_map(|_| items.iter().cloned()).collect();
            let old = std::mem::replace(&mut *a.items.borrow_mut(), v);
            crate::obj::defer_drop(old);
            return Ok(l.clone());
        }
        (BinOp::BitOr, Obj::Dict(a), Obj::Dict(b)) => {
            let entries = b.table.borrow().entries.clone();
            it.alloc_items(entries.len() * 2)?;
            for (k, v) in entries {
                let key = it.key_of(&k)?;
                a.table.borrow_mut().insert(key, k, v);
            }
            return Ok(l.clone());
        }
        (BinOp::BitOr | BinOp::Sub | BinOp::BitXor | BinOp::BitAnd, Obj::Set(a), Obj::Set(b)) => {
            let keys = b.table.borrow().keys();
            it.tick(keys.len() as u64)?;
            match op {
                BinOp::BitOr => set_add_all(it, a, keys, true)?,
                BinOp::BitXor => set_toggle_all(it, a, keys)?,
                BinOp::Sub => {
                    for k in keys {
                        let key = it.key_of(&k)?;
                        a.table.borrow_mut().remove(&key);
                    }
                }
                _ => {
                    // CPython computes the intersection, then takes over its table.
                    if let Obj::Set(new) = set_op(it, op, a, b)? {
                        let t = std::mem::take(&mut *new.table.borrow_mut());
                        let old = std::mem::replace(&mut *a.table.borrow_mut(), t);
                        drop(old);
                    }
                }
            }
            return Ok(l.clone());
        }
        _ => {}
    }
    binop(it, op, l, r)
}

fn repeat(it: &mut Interp, seq: &Obj, n: &Obj) -> R<Obj> {
    let Some(n) = repeat_count(it, n)? else {
        return Err(it.type_error(format!(
            "can't multiply sequence by non-int of type '{}'",
            n.type_name()
        )));
    };
    match seq {
        Obj::Str(s) => {
            it.alloc((s.len() as u64).saturating_mul(n as u64))?;
            Ok(Obj::str(s.repeat(n)))
        }
        Obj::List(l) => {
            let items = l.items.borrow().clone();
            it.alloc_items(items.len().saturating_mul(n))?;
            let v: Vec<Obj> = (0..n).flat_map(|_| items.iter().cloned()).collect();
            it.new_list(v)
        }
        Obj::Tuple(t) => {
            it.alloc_items(t.items.len().saturating_mul(n))?;
            let v: Vec<Obj> = (0..n).flat_map(|_| t.items.iter().cloned()).collect();
            it.new_tuple(v)
        }
        _ => Err(it.type_error("can't repeat this value")),
    }
}

fn int_op(it: &mut Interp, op: BinOp, a: i64, b: i64) -> R<Obj> {
    let v = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div => {
            if b == 0 {
                return Err(zero_div(it, "division by zero"));
            }
            return Ok(Obj::Float(a as f64 / b as f64));
        }
        BinOp::FloorDiv => {
            if b == 0 {
                return Err(zero_div(it, "integer division or modulo by zero"));
            }
            py_floordiv(a, b)
        }
        BinOp::Mod => {
            if b == 0 {
                return Err(zero_div(it, "integer modulo by zero"));
            }
            a.checked_rem_euclid(b)
                .map(|m| if b < 0 && m != 0 { m + b } else { m })
        }
        BinOp::Pow => {
            if b < 0 {
                if a == 0 {
                    return Err(zero_div(it, "0.0 cannot be raised to a negative power"));
                }
                return Ok(Obj::Float((a as f64).powf(b as f64)));
            }
            u32::try_from(b).ok().and_then(|e| a.checked_pow(e))
        }
        BinOp::BitAnd => Some(a & b),
        BinOp::BitOr => Some(a | b),
        BinOp::BitXor => Some(a ^ b),
        BinOp::LShift => {
            if b < 0 {
                return Err(it.value_error("negative shift count"));
            }
            u32::try_from(b)
                .ok()
                .filter(|&s| s < 63)
                .and_then(|s| a.checked_mul(1i64 << s))
        }
        BinOp::RShift => {
            if b < 0 {
                return Err(it.value_error("negative shift count"));
            }
            Some(a >> b.min(63))
        }
    };
    match v {
        Some(v) => Ok(Obj::Int(v)),
        None => num::big_op(it, op, &BigInt::from(a), &BigInt::from(b)),
    }
}

fn float_op(it: &mut Interp, op: BinOp, a: f64, b: f64) -> R<Obj> {
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return Err(zero_div(it, "float division by zero"));
            }
            a / b
        }
        BinOp::FloorDiv => {
            if b == 0.0 {
                return Err(zero_div(it, "float floor division by zero"));
            }
            py_divmod_f(a, b).0
        }
        BinOp::Mod => {
            if b == 0.0 {
                return Err(zero_div(it, "float modulo"));
            }
            py_divmod_f(a, b).1
        }
        BinOp::Pow => {
            if a == 0.0 && b < 0.0 {
                return Err(zero_div(it, "0.0 cannot be raised to a negative power"));
            }
            if a < 0.0 && b.is_finite() && b.fract() != 0.0 {
                return Err(it.value_error(
                    "a negative number to a fractional power is complex (complex numbers are not supported)",
                ));
            }
            let v = a.powf(b);
            if v.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(it.exc(
                    ExcKind::OverflowError,
                    "(34, 'Numerical result out of range')",
                ));
            }
            v
        }
        _ => {
            return Err(it.type_error(format!(
                "unsupported operand type(s) for {}: 'float' and 'float'",
                op.symbol()
            )))
        }
    };
    Ok(Obj::Float(v))
}

/// Normalise a Python index against a length (negative counts from the end).
fn norm_index(it: &Interp, i: &Obj, len: usize, what: &str) -> R<usize> {
    let Some(i) = i.as_int() else {
        return Err(it.type_error(format!(
            "{what} indices must be integers, not {}",
            i.type_name()
        )));
    };
    let idx = if i < 0 { i + len as i64 } else { i };
    if idx < 0 || idx >= len as i64 {
        return Err(it.exc(ExcKind::IndexError, format!("{what} index out of range")));
    }
    Ok(idx as usize)
}

/// `o[i]`.
pub fn getitem(it: &mut Interp, o: &Obj, i: &Obj) -> R<Obj> {
    if let Obj::Slice(sl) = i {
        return slice(it, o, sl.0.clone(), sl.1.clone(), sl.2.clone());
    }
    match o {
        Obj::List(l) => {
            let items = l.items.borrow();
            let idx = norm_index(it, i, items.len(), "list")?;
            Ok(items[idx].clone())
        }
        Obj::Tuple(t) => {
            let idx = norm_index(it, i, t.items.len(), "tuple")?;
            Ok(t.items[idx].clone())
        }
        Obj::Str(s) => {
            let n = s.chars().count();
            let idx = norm_index(it, i, n, "string")?;
            Ok(Obj::str(
                s.chars().nth(idx).map(String::from).unwrap_or_default(),
            ))
        }
        Obj::Range(a, b, st) => {
            let idx = norm_index(it, i, range_len(*a, *b, *st) as usize, "range object")?;
            Ok(Obj::Int(a + st * idx as i64))
        }
        Obj::Dict(d) => {
            let key = it.key_of(i)?;
            let found = d.table.borrow().get(&key).cloned();
            match found {
                Some(v) => Ok(v),
                None => {
                    let k = crate::format::repr(it, i)?;
                    Err(it.exc(ExcKind::KeyError, k))
                }
            }
        }
        _ => Err(it.type_error(format!("'{}' object is not subscriptable", o.type_name()))),
    }
}

/// `o[i] = v`.
pub fn setitem(it: &mut Interp, o: &Obj, i: &Obj, v: Obj) -> R<()> {
    match (o, i) {
        (Obj::List(l), Obj::Slice(sl)) => return set_slice(it, l, sl, &v),
        (_, Obj::Slice(_)) => {
            return Err(it.type_error(format!(
                "'{}' object does not support slice assignment",
                o.type_name()
            )))
        }
        _ => {}
    }
    match o {
        Obj::List(l) => {
            let len = l.items.borrow().len();
            let idx = norm_index(it, i, len, "list assignment")?;
            l.items.borrow_mut()[idx] = v;
            Ok(())
        }
        Obj::Dict(d) => {
            let key = it.key_of(i)?;
            it.alloc(48)?;
            d.table.borrow_mut().insert(key, i.clone(), v);
            Ok(())
        }
        _ => Err(it.type_error(format!(
            "'{}' object does not support item assignment",
            o.type_name()
        ))),
    }
}

/// `del o[i]`.
pub fn delitem(it: &mut Interp, o: &Obj, i: &Obj) -> R<()> {
    match (o, i) {
        (Obj::List(l), Obj::Slice(sl)) => return del_slice(it, l, sl),
        (_, Obj::Slice(_)) => {
            return Err(it.type_error(format!(
                "'{}' object does not support slice deletion",
                o.type_name()
            )))
        }
        _ => {}
    }
    match o {
        Obj::List(l) => {
            let len = l.items.borrow().len();
            let idx = norm_index(it, i, len, "list assignment")?;
            let removed = l.items.borrow_mut().remove(idx);
            drop(removed);
            Ok(())
        }
        Obj::Dict(d) => {
            let key = it.key_of(i)?;
            let removed = d.table.borrow_mut().remove(&key);
            match removed {
                Some(_) => Ok(()),
                None => {
                    let k = crate::format::repr(it, i)?;
                    Err(it.exc(ExcKind::KeyError, k))
                }
            }
        }
        _ => Err(it.type_error(format!(
            "'{}' object does not support item deletion",
            o.type_name()
        ))),
    }
}

/// `[a:b:c]` on a sequence of `len` elements, as CPython adjusts it: start, step and
/// the number of elements selected.
fn slice_adjust(it: &Interp, len: usize, a: &Obj, b: &Obj, c: &Obj) -> R<(i64, i64, usize)> {
    let get = |o: &Obj| -> R<Option<i64>> {
        match o {
            Obj::None => Ok(None),
            Obj::Big(b) => Ok(Some(if num_traits::Signed::is_negative(&**b) {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            })),
            o => o.as_int().map(Some).ok_or_else(|| {
                it.type_error("slice indices must be integers or None or have an __index__ method")
            }),
        }
    };
    let step = get(c)?.unwrap_or(1);
    if step == 0 {
        return Err(it.value_error("slice step cannot be zero"));
    }
    let n = len as i64;
    let norm = |v: i64, lo: i64, hi: i64| {
        let v = if v < 0 { v.saturating_add(n) } else { v };
        v.clamp(lo, hi)
    };
    let (start, stop) = if step > 0 {
        (
            get(a)?.map(|v| norm(v, 0, n)).unwrap_or(0),
            get(b)?.map(|v| norm(v, 0, n)).unwrap_or(n),
        )
    } else {
        (
            get(a)?.map(|v| norm(v, -1, n - 1)).unwrap_or(n - 1),
            get(b)?.map(|v| norm(v, -1, n - 1)).unwrap_or(-1),
        )
    };
    let count = if step > 0 {
        if stop > start {
            (stop - start - 1) / step + 1
        } else {
            0
        }
    } else if start > stop {
        (start - stop - 1) / (-step) + 1
    } else {
        0
    };
    Ok((start, step, count as usize))
}

/// Indices selected by `[a:b:c]` on a sequence of `len` elements.
fn slice_indices(it: &Interp, len: usize, a: Obj, b: Obj, c: Obj) -> R<Vec<usize>> {
    let (start, step, count) = slice_adjust(it, len, &a, &b, &c)?;
    Ok((0..count as i64)
        .map(|k| (start + k * step) as usize)
        .collect())
}

/// `xs[a:b:c] = v` on a list.
pub fn set_slice(it: &mut Interp, l: &crate::obj::ListObj, sl: &(Obj, Obj, Obj), v: &Obj) -> R<()> {
    let new = it.collect(v)?;
    let len = l.items.borrow().len();
    let (start, step, count) = slice_adjust(it, len, &sl.0, &sl.1, &sl.2)?;
    if step == 1 {
        let start = start as usize;
        it.alloc_items(new.len())?;
        let old: Vec<Obj> = l
            .items
            .borrow_mut()
            .splice(start..start + count, new)
            .collect();
        crate::obj::defer_drop(old);
        return Ok(());
    }
    if new.len() != count {
        return Err(it.value_error(format!(
            "attempt to assign sequence of size {} to extended slice of size {count}",
            new.len()
        )));
    }
    let mut items = l.items.borrow_mut();
    for (k, x) in new.into_iter().enumerate() {
        items[(start + k as i64 * step) as usize] = x;
    }
    Ok(())
}

/// `del xs[a:b:c]` on a list.
pub fn del_slice(it: &mut Interp, l: &crate::obj::ListObj, sl: &(Obj, Obj, Obj)) -> R<()> {
    let len = l.items.borrow().len();
    let idx = slice_indices(it, len, sl.0.clone(), sl.1.clone(), sl.2.clone())?;
    let mut drop_mask = vec![false; len];
    for i in idx {
        drop_mask[i] = true;
    }
    let old = std::mem::take(&mut *l.items.borrow_mut());
    let mut keep = Vec::with_capacity(len);
    let mut gone = Vec::new();
    for (i, x) in old.into_iter().enumerate() {
        if drop_mask[i] {
            gone.push(x);
        } else {
            keep.push(x);
        }
    }
    *l.items.borrow_mut() = keep;
    crate::obj::defer_drop(gone);
    Ok(())
}

/// `o[a:b:c]`.
pub fn slice(it: &mut Interp, o: &Obj, a: Obj, b: Obj, c: Obj) -> R<Obj> {
    match o {
        Obj::Range(ra, rb, rs) => {
            let n = range_len(*ra, *rb, *rs) as usize;
            let (start, step, count) = slice_adjust(it, n, &a, &b, &c)?;
            let first = ra.saturating_add(rs.saturating_mul(start));
            let step = rs.saturating_mul(step);
            Ok(Obj::Range(
                first,
                first.saturating_add(step.saturating_mul(count as i64)),
                step,
            ))
        }
        Obj::List(l) => {
            let items = l.items.borrow().clone();
            let idx = slice_indices(it, items.len(), a, b, c)?;
            it.new_list(idx.into_iter().map(|i| items[i].clone()).collect())
        }
        Obj::Tuple(t) => {
            let idx = slice_indices(it, t.items.len(), a, b, c)?;
            it.new_tuple(idx.into_iter().map(|i| t.items[i].clone()).collect())
        }
        Obj::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let idx = slice_indices(it, chars.len(), a, b, c)?;
            let out: String = idx.into_iter().map(|i| chars[i]).collect();
            it.new_str(out)
        }
        _ => Err(it.type_error(format!("'{}' object is not subscriptable", o.type_name()))),
    }
}

pub fn is(l: &Obj, r: &Obj) -> bool {
    use std::rc::Rc;
    match (l, r) {
        (Obj::None, Obj::None) | (Obj::Ellipsis, Obj::Ellipsis) => true,
        (Obj::Bool(a), Obj::Bool(b)) => a == b,
        (Obj::Int(a), Obj::Int(b)) => a == b,
        (Obj::Str(a), Obj::Str(b)) => a == b,
        (Obj::List(a), Obj::List(b)) => Rc::ptr_eq(a, b),
        (Obj::Dict(a), Obj::Dict(b)) | (Obj::Set(a), Obj::Set(b)) => Rc::ptr_eq(a, b),
        (Obj::Tuple(a), Obj::Tuple(b)) => Rc::ptr_eq(a, b),
        (Obj::Patch(a), Obj::Patch(b)) => Rc::ptr_eq(a, b),
        (Obj::Func(a), Obj::Func(b)) => Rc::ptr_eq(a, b),
        (Obj::ExcType(a), Obj::ExcType(b)) => a == b,
        (Obj::Exc(a), Obj::Exc(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

fn too_deep(it: &Interp) -> crate::interp::Ctl {
    it.limit("value nested too deeply to compare or print")
}

/// Ordering of two numbers (ints of any size, floats), exactly as Python compares them.
fn num_cmp(l: &Obj, r: &Obj) -> Option<Option<Ordering>> {
    match (l, r) {
        (Obj::Float(a), Obj::Float(b)) => Some(a.partial_cmp(b)),
        (Obj::Float(f), i) if i.is_int() => Some(int_float_cmp(i, *f).map(Ordering::reverse)),
        (i, Obj::Float(f)) if i.is_int() => Some(int_float_cmp(i, *f)),
        (a, b) if a.is_int() && b.is_int() => match (a.as_int(), b.as_int()) {
            (Some(x), Some(y)) => Some(Some(x.cmp(&y))),
            _ => Some(Some(
                num::to_big(a)
                    .unwrap_or_default()
                    .cmp(&num::to_big(b).unwrap_or_default()),
            )),
        },
        _ => None,
    }
}

fn int_float_cmp(i: &Obj, f: f64) -> Option<Ordering> {
    match (i, i.as_int()) {
        (_, Some(x)) => num::cmp_i64_float(x, f),
        (Obj::Big(b), _) => num::cmp_int_float(b, f),
        _ => None,
    }
}

/// Whether two values are the same object (Python compares container elements by
/// identity first, so `[x] == [x]` holds without comparing `x` deeply).
fn same_object(l: &Obj, r: &Obj) -> bool {
    use std::rc::Rc;
    match (l, r) {
        (Obj::List(a), Obj::List(b)) => Rc::ptr_eq(a, b),
        (Obj::Tuple(a), Obj::Tuple(b)) => Rc::ptr_eq(a, b),
        (Obj::Dict(a), Obj::Dict(b)) | (Obj::Set(a), Obj::Set(b)) => Rc::ptr_eq(a, b),
        // Floats are values here, not objects: a NaN found again is taken to be the same
        // NaN, as it usually is in Python (`x in xs` with `x` taken from `xs`).
        (Obj::Float(a), Obj::Float(b)) => a.is_nan() && a.to_bits() == b.to_bits(),
        _ => false,
    }
}

/// Python's `==`.
pub fn eq(it: &mut Interp, l: &Obj, r: &Obj, depth: usize) -> R<bool> {
    if depth > MAX_VALUE_DEPTH {
        return Err(too_deep(it));
    }
    if let Some(o) = num_cmp(l, r) {
        return Ok(o == Some(Ordering::Equal));
    }
    let seq_eq = |it: &mut Interp, a: &[Obj], b: &[Obj]| -> R<bool> {
        if a.len() != b.len() {
            return Ok(false);
        }
        it.tick(a.len() as u64)?;
        for (x, y) in a.iter().zip(b) {
            if !same_object(x, y) && !eq(it, x, y, depth + 1)? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match (l, r) {
        (Obj::Str(a), Obj::Str(b)) => Ok(a == b),
        (Obj::List(a), Obj::List(b)) => {
            let (a, b) = (a.items.borrow().clone(), b.items.borrow().clone());
            seq_eq(it, &a, &b)
        }
        (Obj::Tuple(a), Obj::Tuple(b)) => seq_eq(it, &a.items, &b.items),
        (Obj::Dict(a), Obj::Dict(b)) => {
            let (ea, tb) = (a.table.borrow().entries.clone(), b);
            if ea.len() != tb.table.borrow().len() {
                return Ok(false);
            }
            it.tick(ea.len() as u64)?;
            for (k, v) in ea {
                let key = it.key_of(&k)?;
                let other = tb.table.borrow().get(&key).cloned();
                match other {
                    Some(o) if same_object(&v, &o) || eq(it, &v, &o, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            Ok(true)
        }
        (Obj::Set(a), Obj::Set(b)) => {
            let ka: Vec<Obj> = a
                .table
                .borrow()
                .entries
                .iter()
                .map(|e| e.0.clone())
                .collect();
            if ka.len() != b.table.borrow().len() {
                return Ok(false);
            }
            it.tick(ka.len() as u64)?;
            for k in &ka {
                let key = it.key_of(k)?;
                if !b.table.borrow().contains(&key) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (Obj::Range(a, b, c), Obj::Range(x, y, z)) => {
            let (n, m) = (range_len(*a, *b, *c), range_len(*x, *y, *z));
            Ok(n == m && (n == 0 || (a == x && (n == 1 || c == z))))
        }
        (Obj::Image(a), Obj::Image(b)) => Ok(a == b),
        (Obj::Exc(a), Obj::Exc(b)) => Ok(std::rc::Rc::ptr_eq(a, b)),
        (Obj::DictView(v), o) | (o, Obj::DictView(v))
            if v.1 != crate::obj::ViewKind::Values
                && (matches!(o, Obj::Set(_) | Obj::DictView(_))) =>
        {
            let a = view_as_set(it, l)?;
            let b = view_as_set(it, r)?;
            eq(it, &a, &b, depth + 1)
        }
        _ => Ok(is(l, r)),
    }
}

/// Python's ordering (`<` and friends); `None` when unordered (NaN).
pub fn cmp(it: &mut Interp, l: &Obj, r: &Obj, depth: usize) -> R<Option<Ordering>> {
    if depth > MAX_VALUE_DEPTH {
        return Err(too_deep(it));
    }
    if let Some(o) = num_cmp(l, r) {
        return Ok(o);
    }
    let seq = |it: &mut Interp, a: &[Obj], b: &[Obj]| -> R<Option<Ordering>> {
        for (x, y) in a.iter().zip(b) {
            it.tick(1)?;
            if !same_object(x, y) && !eq(it, x, y, depth + 1)? {
                return cmp(it, x, y, depth + 1);
            }
        }
        Ok(Some(a.len().cmp(&b.len())))
    };
    match (l, r) {
        (Obj::Str(a), Obj::Str(b)) => Ok(Some(a.cmp(b))),
        (Obj::List(a), Obj::List(b)) => {
            let (a, b) = (a.items.borrow().clone(), b.items.borrow().clone());
            seq(it, &a, &b)
        }
        (Obj::Tuple(a), Obj::Tuple(b)) => seq(it, &a.items, &b.items),
        (Obj::Set(_), Obj::Set(_)) => set_cmp(it, l, r),
        _ => Err(it.type_error(format!(
            "'<' not supported between instances of '{}' and '{}'",
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// Subset ordering of sets: `Less` for a proper subset, `None` when neither contains the other.
fn set_cmp(it: &mut Interp, l: &Obj, r: &Obj) -> R<Option<Ordering>> {
    let (Obj::Set(a), Obj::Set(b)) = (l, r) else {
        return Ok(None);
    };
    let sub = |it: &mut Interp, x: &crate::obj::DictObj, y: &crate::obj::DictObj| -> R<bool> {
        let items: Vec<Obj> = x
            .table
            .borrow()
            .entries
            .iter()
            .map(|e| e.0.clone())
            .collect();
        it.tick(items.len() as u64)?;
        for k in &items {
            let key = it.key_of(k)?;
            if !y.table.borrow().contains(&key) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let (ab, ba) = (sub(it, a, b)?, sub(it, b, a)?);
    Ok(match (ab, ba) {
        (true, true) => Some(Ordering::Equal),
        (true, false) => Some(Ordering::Less),
        (false, true) => Some(Ordering::Greater),
        _ => None,
    })
}

/// `needle in hay`.
pub fn contains(it: &mut Interp, hay: &Obj, needle: &Obj) -> R<bool> {
    match hay {
        Obj::Str(s) => match needle {
            Obj::Str(n) => Ok(s.contains(&**n)),
            o => Err(it.type_error(format!(
                "'in <string>' requires string as left operand, not {}",
                o.type_name()
            ))),
        },
        Obj::Dict(d) | Obj::Set(d) => {
            let key = it.key_of(needle)?;
            Ok(d.table.borrow().contains(&key))
        }
        Obj::DictView(v) => match v.1 {
            crate::obj::ViewKind::Keys => {
                let key = it.key_of(needle)?;
                Ok(v.0.table.borrow().contains(&key))
            }
            crate::obj::ViewKind::Items => {
                let Obj::Tuple(t) = needle else {
                    return Ok(false);
                };
                if t.items.len() != 2 {
                    return Ok(false);
                }
                let key = it.key_of(&t.items[0])?;
                let found = v.0.table.borrow().get(&key).cloned();
                match found {
                    Some(x) => eq(it, &x, &t.items[1], 0),
                    None => Ok(false),
                }
            }
            crate::obj::ViewKind::Values => {
                let vals: Vec<Obj> =
                    v.0.table
                        .borrow()
                        .entries
                        .iter()
                        .map(|e| e.1.clone())
                        .collect();
                it.tick(vals.len() as u64)?;
                for x in &vals {
                    if same_object(x, needle) || eq(it, x, needle, 0)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        },
        Obj::Range(a, b, s) => Ok(match needle.as_int() {
            Some(v) => {
                let n = range_len(*a, *b, *s);
                n > 0 && (v - a) % s == 0 && (v - a) / s >= 0 && (v - a) / s < n
            }
            None => false,
        }),
        _ => {
            let items = match hay {
                Obj::List(l) => l.items.borrow().clone(),
                Obj::Tuple(t) => t.items.clone(),
                o => {
                    return Err(it.type_error(format!(
                        "argument of type '{}' is not iterable",
                        o.type_name()
                    )))
                }
            };
            it.tick(items.len() as u64)?;
            for x in &items {
                if same_object(x, needle) || eq(it, x, needle, 0)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}
