//! Identity, equality, ordering and membership with Python's semantics, bounded in depth
//! and charged to the step budget.

use crate::interp::{Interp, R};
use crate::num;
use crate::obj::{range_len, Obj};
use crate::ops::{view_as_set, MAX_VALUE_DEPTH};
use std::cmp::Ordering;

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
