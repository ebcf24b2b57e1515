//! Indexing and slicing: `o[i]`, `o[a:b:c]`, their assignment and deletion, as CPython
//! adjusts indices.

use crate::interp::{Interp, R};
use crate::obj::{range_len, ExcKind, Obj};

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
                None => Err(it.key_error(i)),
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
                None => Err(it.key_error(i)),
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
