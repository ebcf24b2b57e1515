//! `str()` and `repr()`; format specs, `str.format` and `%`-formatting are in [`crate::spec`].

use crate::interp::{Interp, R};
use crate::obj::Obj;
use crate::ops::MAX_VALUE_DEPTH;

pub use crate::spec::{format_spec, percent_format, str_format};

/// Python's `repr(float)`: shortest round-trip digits, `1.0` not `1`, exponent from 1e16.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Python's `repr(str)`: quotes chosen as Python does, non-printable characters escaped.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{feff}'
                )
                || (c.is_whitespace() && c != ' ') =>
            {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"))
                } else {
                    out.push_str(&format!("\\U{n:08x}"))
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Containers being printed (by address), so a container inside itself prints as `[...]`.
type Printing = Vec<usize>;

fn write_value(
    it: &mut Interp,
    o: &Obj,
    as_repr: bool,
    depth: usize,
    printing: &mut Printing,
    out: &mut String,
) -> R<()> {
    if depth > MAX_VALUE_DEPTH {
        return Err(it.limit("value nested too deeply to compare or print"));
    }
    it.tick(1)?;
    if out.len() as u64 > it.bytes_left() {
        return Err(it.limit("string representation exceeds the memory budget"));
    }
    let addr = match o {
        Obj::List(l) => Some(std::rc::Rc::as_ptr(l) as usize),
        Obj::Dict(d) | Obj::Set(d) => Some(std::rc::Rc::as_ptr(d) as usize),
        _ => None,
    };
    if let Some(a) = addr {
        if printing.contains(&a) {
            out.push_str(match o {
                Obj::List(_) => "[...]",
                Obj::Set(_) => "set(...)",
                _ => "{...}",
            });
            return Ok(());
        }
        printing.push(a);
    }
    let r = write_inner(it, o, as_repr, depth, printing, out);
    if addr.is_some() {
        printing.pop();
    }
    r
}

fn write_inner(
    it: &mut Interp,
    o: &Obj,
    as_repr: bool,
    depth: usize,
    printing: &mut Printing,
    out: &mut String,
) -> R<()> {
    let seq = |it: &mut Interp,
               items: &[Obj],
               open: &str,
               close: &str,
               printing: &mut Printing,
               out: &mut String|
     -> R<()> {
        out.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_value(it, x, true, depth + 1, printing, out)?;
        }
        out.push_str(close);
        Ok(())
    };
    match o {
        Obj::None => out.push_str("None"),
        Obj::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Obj::Int(i) => out.push_str(&i.to_string()),
        Obj::Big(b) => out.push_str(&crate::num::int_to_string(it, b)?),
        Obj::Float(f) => out.push_str(&float_repr(*f)),
        Obj::Str(s) => {
            if as_repr {
                out.push_str(&repr_str(s))
            } else {
                out.push_str(s)
            }
        }
        Obj::List(l) => {
            let items = l.items.borrow().clone();
            seq(it, &items, "[", "]", printing, out)?;
        }
        Obj::Tuple(t) => {
            if t.items.len() == 1 {
                out.push('(');
                write_value(it, &t.items[0], true, depth + 1, printing, out)?;
                out.push_str(",)");
            } else {
                seq(it, &t.items, "(", ")", printing, out)?;
            }
        }
        Obj::Set(s) => {
            let items = s.table.borrow().keys();
            match (items.is_empty(), s.frozen) {
                (true, false) => out.push_str("set()"),
                (true, true) => out.push_str("frozenset()"),
                (false, false) => seq(it, &items, "{", "}", printing, out)?,
                (false, true) => seq(it, &items, "frozenset({", "})", printing, out)?,
            }
        }
        Obj::Dict(d) => {
            let entries = d.table.borrow().entries.clone();
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(it, k, true, depth + 1, printing, out)?;
                out.push_str(": ");
                write_value(it, v, true, depth + 1, printing, out)?;
            }
            out.push('}');
        }
        Obj::DictView(v) => {
            let entries = v.0.table.borrow().entries.clone();
            out.push_str(v.1.name());
            out.push_str("([");
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match v.1 {
                    crate::obj::ViewKind::Keys => {
                        write_value(it, k, true, depth + 1, printing, out)?
                    }
                    crate::obj::ViewKind::Values => {
                        write_value(it, val, true, depth + 1, printing, out)?
                    }
                    crate::obj::ViewKind::Items => {
                        out.push('(');
                        write_value(it, k, true, depth + 1, printing, out)?;
                        out.push_str(", ");
                        write_value(it, val, true, depth + 1, printing, out)?;
                        out.push(')');
                    }
                }
            }
            out.push_str("])");
        }
        Obj::Range(a, b, s) => {
            if *s == 1 {
                out.push_str(&format!("range({a}, {b})"))
            } else {
                out.push_str(&format!("range({a}, {b}, {s})"))
            }
        }
        Obj::Func(f) => out.push_str(&format!("<function {}>", f.def.name)),
        Obj::Builtin(b) => {
            if let Some(k) = crate::builtins::type_name_of(b) {
                out.push_str(&format!("<class '{k}'>"))
            } else {
                out.push_str(&format!("<built-in function {b}>"))
            }
        }
        Obj::Method(m) => out.push_str(&format!("<method {}>", m.1)),
        Obj::Patch(p) => out.push_str(&p.describe()),
        Obj::Image(i) => out.push_str(&format!("<image {} {}x{}>", i.source, i.width, i.height)),
        Obj::ExcType(k) => out.push_str(&format!("<class '{}'>", k.name())),
        Obj::Exc(e) => {
            if as_repr {
                out.push_str(e.kind.name());
                out.push('(');
                let args = e.args.clone();
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_value(it, a, true, depth + 1, printing, out)?;
                }
                out.push(')');
            } else {
                out.push_str(&e.message)
            }
        }
        Obj::Math => out.push_str("<module 'math' (built-in)>"),
        Obj::Iter(_) => out.push_str("<iterator object>"),
        Obj::Ellipsis => out.push_str("Ellipsis"),
        Obj::Slice(sl) => {
            out.push_str("slice(");
            write_value(it, &sl.0, true, depth + 1, printing, out)?;
            out.push_str(", ");
            write_value(it, &sl.1, true, depth + 1, printing, out)?;
            out.push_str(", ");
            write_value(it, &sl.2, true, depth + 1, printing, out)?;
            out.push(')');
        }
    }
    Ok(())
}

pub fn repr(it: &mut Interp, o: &Obj) -> R<String> {
    let mut out = String::new();
    write_value(it, o, true, 0, &mut Vec::new(), &mut out)?;
    it.alloc(out.len() as u64)?;
    Ok(out)
}

pub fn to_str(it: &mut Interp, o: &Obj) -> R<String> {
    if let Obj::Str(s) = o {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    write_value(it, o, false, 0, &mut Vec::new(), &mut out)?;
    it.alloc(out.len() as u64)?;
    Ok(out)
}
