//! Binary and in-place operators with Python's semantics (indexing is in [`crate::index`],
//! comparisons in [`crate::compare`], re-exported here).
//!
//! Ints past 64 bits continue as big ints ([`crate::num`]), whose results are charged
//! before they are computed, which is how `10**10**10` ends. Every operation that creates a
//! string or container charges its size to the allocation budget *before* allocating it, so
//! `'a' * 10**10` ends with a `limit` error without touching the host's memory.

use crate::ast::BinOp;
pub use crate::compare::{cmp, contains, eq, is};
pub use crate::index::{delitem, getitem, setitem, slice};
use crate::interp::{Interp, R};
use crate::num;
use crate::obj::{ExcKind, Obj};
use num_bigint::BigInt;

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
    if let Obj::Big(_) = n {
        return Err(it.exc(
            ExcKind::OverflowError,
            "cannot fit 'int' into an index-sized integer",
        ));
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
            // The result has the left operand's type (set or frozenset).
            let r = set_op(it, op, a, b)?;
            match &r {
                Obj::Set(d) if a.frozen => Ok(it.frozen_from(d)),
                _ => Ok(r),
            }
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
        frozen: false,
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

pub(crate) fn view_as_set(it: &mut Interp, o: &Obj) -> R<Obj> {
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
            let v = repeated(&items, n);
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
        (BinOp::BitOr | BinOp::Sub | BinOp::BitXor | BinOp::BitAnd, Obj::Set(a), Obj::Set(b))
            if !a.frozen =>
        {
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

/// `items * n` (already charged).
fn repeated(items: &[Obj], n: usize) -> Vec<Obj> {
    if items.is_empty() {
        return Vec::new();
    }
    (0..n).flat_map(|_| items.iter().cloned()).collect()
}

fn repeat(it: &mut Interp, seq: &Obj, n: &Obj) -> R<Obj> {
    let Some(n) = repeat_count(it, n)? else {
        return Err(it.type_error(format!(
            "can't multiply sequence by non-int of type '{}'",
            n.type_name()
        )));
    };
    // An empty sequence repeated any number of times is empty: it must not loop `n` times.
    match seq {
        Obj::Str(s) => {
            it.alloc((s.len() as u64).saturating_mul(n as u64))?;
            Ok(Obj::str(if s.is_empty() {
                String::new()
            } else {
                s.repeat(n)
            }))
        }
        Obj::List(l) => {
            let items = l.items.borrow().clone();
            it.alloc_items(items.len().saturating_mul(n))?;
            let v = repeated(&items, n);
            it.new_list(v)
        }
        Obj::Tuple(t) => {
            it.alloc_items(t.items.len().saturating_mul(n))?;
            let v = repeated(&t.items, n);
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
