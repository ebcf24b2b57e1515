//! Iterators over Python values, as `for` and the builtins step them.

use super::{Interp, R};
use crate::obj::{ExcKind, Obj, ViewKind};
use std::rc::Rc;

/// An iterator over a Python value: ranges, strings, lists and dicts lazily (a list is read
/// live, so a loop sees what its body appends; a dict or set that changes size raises
/// RuntimeError, as in Python), tuples as a snapshot.
#[derive(Debug)]
pub enum ObjIter {
    Items(std::vec::IntoIter<Obj>),
    Range {
        next: i64,
        left: i64,
        step: i64,
    },
    Chars {
        s: Rc<str>,
        pos: usize,
    },
    List {
        list: Rc<crate::obj::ListObj>,
        pos: usize,
    },
    Table {
        d: Rc<crate::obj::DictObj>,
        pos: usize,
        len: usize,
        kind: ViewKind,
        set: bool,
    },
    /// A set, in its order when iteration began (CPython raises if its size changes).
    Set {
        d: Rc<crate::obj::DictObj>,
        keys: std::vec::IntoIter<Obj>,
        len: usize,
    },
    /// An `iter()` object: stepping it advances the shared iterator.
    Shared(Rc<std::cell::RefCell<ObjIter>>),
}

impl ObjIter {
    /// The next element, or None at the end.
    pub(crate) fn step(&mut self, it: &mut Interp) -> R<Option<Obj>> {
        Ok(match self {
            ObjIter::Shared(inner) => {
                let inner = inner.clone();
                let r = inner.borrow_mut().step(it);
                return r;
            }
            ObjIter::Items(items) => items.next(),
            ObjIter::Set { d, keys, len } => {
                if d.table.borrow().len() != *len {
                    return Err(it.exc(ExcKind::RuntimeError, "Set changed size during iteration"));
                }
                keys.next()
            }
            ObjIter::Range { next, left, step } => {
                if *left <= 0 {
                    return Ok(None);
                }
                let v = *next;
                *left -= 1;
                *next = next.wrapping_add(*step);
                Some(Obj::Int(v))
            }
            ObjIter::Chars { s, pos } => {
                let Some(c) = s.get(*pos..).and_then(|r| r.chars().next()) else {
                    return Ok(None);
                };
                *pos += c.len_utf8();
                Some(Obj::str(c.encode_utf8(&mut [0; 4]) as &str))
            }
            ObjIter::List { list, pos } => {
                let v = list.items.borrow().get(*pos).cloned();
                *pos += 1;
                v
            }
            ObjIter::Table {
                d,
                pos,
                len,
                kind,
                set,
            } => {
                let entry = {
                    let t = d.table.borrow();
                    if t.len() != *len {
                        let what = if *set { "Set" } else { "dictionary" };
                        return Err(it.exc(
                            ExcKind::RuntimeError,
                            format!("{what} changed size during iteration"),
                        ));
                    }
                    t.entries.get(*pos).cloned()
                };
                *pos += 1;
                match (entry, *kind) {
                    (None, _) => None,
                    (Some((k, _)), ViewKind::Keys) => Some(k),
                    (Some((_, v)), ViewKind::Values) => Some(v),
                    (Some((k, v)), ViewKind::Items) => Some(it.new_tuple(vec![k, v])?),
                }
            }
        })
    }
}
