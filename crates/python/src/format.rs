//! `str()`, `repr()`, f-string format specs, `str.format` and `%`-formatting.
//!
//! `str.format` field names are plain positions or names only: attribute and index access in
//! fields (`"{0.__class__}"`, `"{0[x]}"`) is a classic sandbox escape and raises ValueError.

use crate::interp::{Interp, R};
use crate::obj::Obj;
use crate::ops::MAX_VALUE_DEPTH;

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

fn repr_str(s: &str) -> String {
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
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn write_value(it: &mut Interp, o: &Obj, as_repr: bool, depth: usize, out: &mut String) -> R<()> {
    if depth > MAX_VALUE_DEPTH {
        return Err(it.limit("value nested too deeply to compare or print"));
    }
    it.tick(1)?;
    if out.len() as u64 > it.limits.max_alloc_bytes {
        return Err(it.limit("string representation exceeds the memory budget"));
    }
    let seq =
        |it: &mut Interp, items: &[Obj], open: &str, close: &str, out: &mut String| -> R<()> {
            out.push_str(open);
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(it, x, true, depth + 1, out)?;
            }
            out.push_str(close);
            Ok(())
        };
    match o {
        Obj::None => out.push_str("None"),
        Obj::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Obj::Int(i) => out.push_str(&i.to_string()),
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
            seq(it, &items, "[", "]", out)?;
        }
        Obj::Tuple(t) => {
            if t.items.len() == 1 {
                out.push('(');
                write_value(it, &t.items[0], true, depth + 1, out)?;
                out.push_str(",)");
            } else {
                seq(it, &t.items, "(", ")", out)?;
            }
        }
        Obj::Set(s) => {
            let items: Vec<Obj> = s
                .table
                .borrow()
                .entries
                .iter()
                .map(|e| e.0.clone())
                .collect();
            if items.is_empty() {
                out.push_str("set()");
            } else {
                seq(it, &items, "{", "}", out)?;
            }
        }
        Obj::Dict(d) => {
            let entries = d.table.borrow().entries.clone();
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(it, k, true, depth + 1, out)?;
                out.push_str(": ");
                write_value(it, v, true, depth + 1, out)?;
            }
            out.push('}');
        }
        Obj::Range(a, b, s) => {
            if *s == 1 {
                out.push_str(&format!("range({a}, {b})"))
            } else {
                out.push_str(&format!("range({a}, {b}, {s})"))
            }
        }
        Obj::Func(f) => out.push_str(&format!("<function {}>", f.def.name)),
        Obj::Builtin(b) => out.push_str(&format!("<built-in function {b}>")),
        Obj::Method(m) => out.push_str(&format!("<method {}>", m.1)),
        Obj::Patch(p) => out.push_str(&p.describe()),
        Obj::Image(i) => out.push_str(&format!("<image {} {}x{}>", i.source, i.width, i.height)),
        Obj::ExcType(k) => out.push_str(&format!("<class '{}'>", k.name())),
        Obj::Exc(e) => {
            if as_repr {
                out.push_str(&format!("{}({})", e.kind.name(), repr_str(&e.message)))
            } else {
                out.push_str(&e.message)
            }
        }
        Obj::Math => out.push_str("<module 'math'>"),
    }
    Ok(())
}

pub fn repr(it: &mut Interp, o: &Obj) -> R<String> {
    let mut out = String::new();
    write_value(it, o, true, 0, &mut out)?;
    it.alloc(out.len() as u64)?;
    Ok(out)
}

pub fn to_str(it: &mut Interp, o: &Obj) -> R<String> {
    if let Obj::Str(s) = o {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    write_value(it, o, false, 0, &mut out)?;
    it.alloc(out.len() as u64)?;
    Ok(out)
}

/// Apply a format spec (`[[fill]align][sign][0][width][,][.precision][type]`).
pub fn format_spec(it: &mut Interp, v: &Obj, spec: &str) -> R<String> {
    if spec.is_empty() {
        return to_str(it, v);
    }
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut fill = ' ';
    let mut align = None;
    if chars.len() >= 2 && matches!(chars[1], '<' | '>' | '^' | '=') {
        fill = chars[0];
        align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && matches!(chars[0], '<' | '>' | '^' | '=') {
        align = Some(chars[0]);
        i = 1;
    }
    let mut sign = '-';
    if i < chars.len() && matches!(chars[i], '+' | '-' | ' ') {
        sign = chars[i];
        i += 1;
    }
    if i < chars.len() && chars[i] == '0' {
        fill = '0';
        align = align.or(Some('='));
        i += 1;
    }
    let mut width = 0usize;
    while i < chars.len() && chars[i].is_ascii_digit() {
        width = width
            .saturating_mul(10)
            .saturating_add(chars[i] as usize - '0' as usize);
        i += 1;
    }
    let mut grouping = false;
    if i < chars.len() && (chars[i] == ',' || chars[i] == '_') {
        grouping = true;
        i += 1;
    }
    let mut precision = None;
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        let mut p = 0usize;
        while i < chars.len() && chars[i].is_ascii_digit() {
            p = p
                .saturating_mul(10)
                .saturating_add(chars[i] as usize - '0' as usize);
            i += 1;
        }
        precision = Some(p.min(100));
    }
    let ty = chars.get(i).copied();
    if i + usize::from(ty.is_some()) != chars.len() {
        return Err(it.value_error(format!("Invalid format specifier '{spec}'")));
    }
    if width as u64 > it.limits.max_alloc_bytes {
        return Err(it.limit("format width exceeds the memory budget"));
    }
    let mut body = match (ty, v) {
        (Some('d'), o) if o.as_int().is_some() => o.as_int().unwrap_or(0).to_string(),
        (Some('f' | 'F' | '%'), o) | (None, o @ Obj::Float(_))
            if o.as_f64().is_some() && (ty.is_some() || precision.is_some()) =>
        {
            let mut x = o.as_f64().unwrap_or(0.0);
            if ty == Some('%') {
                x *= 100.0;
            }
            let s = format!("{:.*}", precision.unwrap_or(6), x);
            if ty == Some('%') {
                format!("{s}%")
            } else {
                s
            }
        }
        (Some('e'), o) if o.as_f64().is_some() => {
            let s = format!("{:.*e}", precision.unwrap_or(6), o.as_f64().unwrap_or(0.0));
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        (Some('g'), o) | (None, o) if o.as_f64().is_some() && !matches!(o, Obj::Bool(_)) => {
            let x = o.as_f64().unwrap_or(0.0);
            match (o, precision) {
                (Obj::Int(i), _) => i.to_string(),
                (_, Some(p)) => {
                    let s = format!("{:.*e}", p.saturating_sub(1).min(20), x);
                    float_repr(s.parse::<f64>().unwrap_or(x))
                }
                _ => float_repr(x),
            }
        }
        (Some('s') | None, o) => {
            let mut s = to_str(it, o)?;
            if let Some(p) = precision {
                s = s.chars().take(p).collect();
            }
            s
        }
        _ => {
            return Err(it.value_error(format!(
                "Unknown format code for object of type '{}'",
                v.type_name()
            )))
        }
    };
    if grouping && v.as_f64().is_some() {
        body = group_thousands(&body);
    }
    let is_num = v.as_f64().is_some() && !matches!(v, Obj::Str(_));
    if is_num && sign != '-' && !body.starts_with('-') {
        body.insert(0, if sign == '+' { '+' } else { ' ' });
    }
    let n = body.chars().count();
    if n >= width {
        return Ok(body);
    }
    let pad = width - n;
    let align = align.unwrap_or(if is_num { '>' } else { '<' });
    let fills = |k: usize| std::iter::repeat_n(fill, k).collect::<String>();
    Ok(match align {
        '<' => format!("{body}{}", fills(pad)),
        '^' => format!("{}{body}{}", fills(pad / 2), fills(pad - pad / 2)),
        '=' if body.starts_with(['-', '+', ' ']) => {
            let (s, rest) = body.split_at(1);
            format!("{s}{}{rest}", fills(pad))
        }
        _ => format!("{}{body}", fills(pad)),
    })
}

fn group_thousands(s: &str) -> String {
    let (sign, rest) = if let Some(r) = s.strip_prefix('-') {
        ("-", r)
    } else {
        ("", s)
    };
    let (int, frac) = match rest.find('.') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}{frac}")
}

/// `template.format(*args, **kwargs)` with plain field names only.
pub fn str_format(
    it: &mut Interp,
    template: &str,
    args: &[Obj],
    kwargs: &[(std::rc::Rc<str>, Obj)],
) -> R<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    let mut auto = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    field.push(d);
                }
                if !closed {
                    return Err(it.value_error("Single '{' encountered in format string"));
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                let (name, conv) = match name.split_once('!') {
                    Some((n, c)) => (n, Some(c)),
                    None => (name, None),
                };
                if name.contains(['.', '[']) {
                    return Err(
                        it.value_error("attribute or index access in format fields is not allowed")
                    );
                }
                let v = if name.is_empty() {
                    auto += 1;
                    args.get(auto - 1).cloned()
                } else if let Ok(i) = name.parse::<usize>() {
                    args.get(i).cloned()
                } else {
                    kwargs
                        .iter()
                        .find(|(k, _)| &**k == name)
                        .map(|(_, v)| v.clone())
                };
                let Some(v) = v else {
                    return Err(it.exc(
                        crate::obj::ExcKind::IndexError,
                        format!("format field '{name}' has no value"),
                    ));
                };
                let v = match conv {
                    Some("r") => Obj::str(repr(it, &v)?),
                    Some(_) => Obj::str(to_str(it, &v)?),
                    None => v,
                };
                let s = format_spec(it, &v, spec)?;
                it.alloc(s.len() as u64)?;
                out.push_str(&s);
            }
            '}' => return Err(it.value_error("Single '}' encountered in format string")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `"%s has %d" % (a, b)`: `%s %r %d %i %f %%` with optional precision.
pub fn percent_format(it: &mut Interp, fmt: &str, args: &Obj) -> R<Obj> {
    let args: Vec<Obj> = match args {
        Obj::Tuple(t) => t.items.clone(),
        o => vec![o.clone()],
    };
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '.' || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(conv) = chars.next() else {
            return Err(it.value_error("incomplete format"));
        };
        if conv == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = next.next() else {
            return Err(it.type_error("not enough arguments for format string"));
        };
        let s = match conv {
            's' => to_str(it, v)?,
            'r' => repr(it, v)?,
            'd' | 'i' => match v.as_f64() {
                Some(x) => (x.trunc() as i64).to_string(),
                None => return Err(it.type_error("%d format: a real number is required")),
            },
            'f' => format_spec(
                it,
                v,
                &format!(".{}f", spec.split('.').nth(1).unwrap_or("6")),
            )?,
            _ => return Err(it.value_error(format!("unsupported format character '{conv}'"))),
        };
        it.alloc(s.len() as u64)?;
        out.push_str(&s);
    }
    it.new_str(out)
}
