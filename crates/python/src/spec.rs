//! Format specs (`format()`, f-strings) and `str.format`, as CPython 3.11 (`%`-formatting,
//! built on the same pieces, is in [`crate::percent`]).
//!
//! `str.format` field names are plain positions or names only: attribute and index access in
//! fields (`"{0.__class__}"`, `"{0[x]}"`) is a classic sandbox escape and raises ValueError.
//! Padding is charged to the memory budget before it is built, whatever the fill character.

use crate::format::{float_repr, repr, to_str};
use crate::interp::{Interp, R};
use crate::num;
use crate::obj::{ExcKind, Obj};
pub use crate::percent::percent_format;
use num_bigint::BigInt;
use num_traits::Signed;

/// A parsed `[[fill]align][sign][z][#][0][width][grouping][.precision][type]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    pub(crate) fill: Option<char>,
    pub(crate) align: Option<char>,
    pub(crate) sign: Option<char>,
    pub(crate) no_neg_zero: bool,
    pub(crate) alt: bool,
    pub(crate) zero: bool,
    pub(crate) width: usize,
    pub(crate) grouping: Option<char>,
    pub(crate) precision: Option<usize>,
    pub(crate) ty: Option<char>,
}

fn parse_spec(it: &Interp, spec: &str) -> R<Spec> {
    let c: Vec<char> = spec.chars().collect();
    let mut s = Spec::default();
    let mut i = 0;
    let is_align = |ch: char| matches!(ch, '<' | '>' | '^' | '=');
    if c.len() >= 2 && is_align(c[1]) {
        s.fill = Some(c[0]);
        s.align = Some(c[1]);
        i = 2;
    } else if !c.is_empty() && is_align(c[0]) {
        s.align = Some(c[0]);
        i = 1;
    }
    if i < c.len() && matches!(c[i], '+' | '-' | ' ') {
        s.sign = Some(c[i]);
        i += 1;
    }
    if i < c.len() && c[i] == 'z' {
        s.no_neg_zero = true;
        i += 1;
    }
    if i < c.len() && c[i] == '#' {
        s.alt = true;
        i += 1;
    }
    if i < c.len() && c[i] == '0' {
        s.zero = true;
        i += 1;
    }
    let number = |i: &mut usize| -> Option<usize> {
        let start = *i;
        let mut n = 0usize;
        while *i < c.len() && c[*i].is_ascii_digit() {
            n = n
                .saturating_mul(10)
                .saturating_add(c[*i] as usize - '0' as usize);
            *i += 1;
        }
        (*i > start).then_some(n)
    };
    s.width = number(&mut i).unwrap_or(0);
    if i < c.len() && matches!(c[i], ',' | '_') {
        s.grouping = Some(c[i]);
        i += 1;
    }
    if i < c.len() && c[i] == '.' {
        i += 1;
        match number(&mut i) {
            Some(p) => s.precision = Some(p),
            None => return Err(it.value_error("Format specifier missing precision")),
        }
    }
    if i < c.len() {
        s.ty = Some(c[i]);
        i += 1;
    }
    if i != c.len() {
        return Err(it.value_error("Invalid format specifier"));
    }
    if s.width as u64 > it.bytes_left() || s.precision.unwrap_or(0) as u64 > it.bytes_left() {
        return Err(it.limit("format width or precision exceeds the memory budget"));
    }
    Ok(s)
}

/// Pad `sign + prefix + digits` to the spec's width; charged before it is built.
pub(crate) fn pad(it: &mut Interp, s: &Spec, sign: &str, body: &str, numeric: bool) -> R<String> {
    let n = sign.chars().count() + body.chars().count();
    let fill = s.fill.unwrap_or(if s.zero && s.align.is_none() {
        '0'
    } else {
        ' '
    });
    let fill = if s.zero && s.fill.is_none() {
        '0'
    } else {
        fill
    };
    let align = s.align.unwrap_or(if s.zero && numeric {
        '='
    } else if numeric {
        '>'
    } else {
        '<'
    });
    let padn = s.width.saturating_sub(n);
    let bytes = (padn as u64)
        .saturating_mul(fill.len_utf8() as u64)
        .saturating_add((sign.len() + body.len()) as u64);
    it.alloc(bytes)?;
    let mut out = String::with_capacity(bytes as usize);
    let fills = |out: &mut String, k: usize| out.extend(std::iter::repeat_n(fill, k));
    match align {
        '<' => {
            out.push_str(sign);
            out.push_str(body);
            fills(&mut out, padn);
        }
        '^' => {
            fills(&mut out, padn / 2);
            out.push_str(sign);
            out.push_str(body);
            fills(&mut out, padn - padn / 2);
        }
        '=' => {
            out.push_str(sign);
            fills(&mut out, padn);
            out.push_str(body);
        }
        _ => {
            fills(&mut out, padn);
            out.push_str(sign);
            out.push_str(body);
        }
    }
    Ok(out)
}

/// Insert `sep` every `every` digits of the integer part of `digits` (which has no sign).
fn int_part(digits: &str) -> (&str, &str) {
    match digits.find(|c: char| !c.is_ascii_alphanumeric()) {
        Some(i) => digits.split_at(i),
        None => (digits, ""),
    }
}

fn int_chars<'a>(parts: (&'a str, &'a str)) -> std::str::Chars<'a> {
    parts.0.chars()
}

fn group(digits: &str, sep: char, every: usize, min_width: usize) -> String {
    let (int, rest) = int_part(digits);
    // Zero padding is grouped too: `f'{1234:010,}'` is `00,001,234`. The digit count that
    // reaches `min_width` is computed, then the zeros prepended at once.
    let rest_len = rest.chars().count();
    let grouped = |n: usize| n + n.saturating_sub(1) / every + rest_len;
    let have = int.chars().count();
    let mut n = have.max(min_width.saturating_sub(rest_len) * every / (every + 1));
    while n > have && grouped(n - 1) >= min_width {
        n -= 1;
    }
    while grouped(n) < min_width {
        n += 1;
    }
    let mut int: Vec<char> = std::iter::repeat_n('0', n - have).collect();
    int.extend(int_chars(int_part(digits)));
    let mut out = String::new();
    for (i, ch) in int.iter().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(every) {
            out.push(sep);
        }
        out.push(*ch);
    }
    out.push_str(rest);
    out
}

pub(crate) fn sign_str(s: &Spec, negative: bool) -> &'static str {
    match (negative, s.sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    }
}

/// Exponent in CPython's form: sign and at least two digits.
fn fix_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s.to_string(),
    }
}

fn strip_zeros(s: &str) -> String {
    let (m, e) = match s.find('e') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    format!("{m}{e}")
}

/// Digits of `|x|` (finite) for a float presentation type.
fn float_digits(x: f64, ty: char, precision: Option<usize>, alt: bool) -> String {
    let p = precision.unwrap_or(6);
    match ty {
        'f' | 'F' | '%' => {
            let s = format!("{:.*}", p, x);
            if alt && p == 0 {
                format!("{s}.")
            } else {
                s
            }
        }
        'e' | 'E' => fix_exp(&format!("{:.*e}", p, x)),
        'g' | 'G' | 'n' | 'r' => {
            // 'r' is the no-type presentation with a precision: like 'g', but a fixed-point
            // result keeps one digit after the point and exponents start at precision - 1.
            let p = if p == 0 { 1 } else { p };
            let exp = if x == 0.0 {
                0
            } else {
                let e = format!("{:.*e}", p - 1, x);
                e.split_once('e')
                    .and_then(|(_, e)| e.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let limit = if ty == 'r' { p as i64 - 1 } else { p as i64 };
            let s = if -4 <= exp && exp < limit {
                format!("{:.*}", (p as i64 - 1 - exp).max(0) as usize, x)
            } else {
                fix_exp(&format!("{:.*e}", p - 1, x))
            };
            let mut s = if alt { s } else { strip_zeros(&s) };
            if ty == 'r' && !s.contains(['.', 'e']) {
                s.push_str(".0");
            }
            s
        }
        _ => float_repr(x),
    }
}

pub(crate) fn format_float(it: &mut Interp, x: f64, s: &Spec) -> R<String> {
    let ty =
        s.ty.unwrap_or(if s.precision.is_some() { 'r' } else { '?' });
    let upper = matches!(ty, 'E' | 'F' | 'G');
    let mut negative = x.is_sign_negative() && !x.is_nan();
    let mut body = if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        "inf".to_string()
    } else {
        let v = if ty == '%' { x.abs() * 100.0 } else { x.abs() };
        let lower_ty = ty.to_ascii_lowercase();
        let d = if ty == '?' {
            float_repr(v)
        } else {
            float_digits(v, lower_ty, s.precision, s.alt)
        };
        if s.no_neg_zero && d.chars().all(|c| matches!(c, '0' | '.' | 'e' | '+' | '-')) {
            negative = false;
        }
        d
    };
    if ty == '%' {
        body.push('%');
    }
    if upper {
        body = body.to_uppercase();
    }
    if let Some(g) = s.grouping {
        let min = if s.zero && s.align.is_none() {
            s.width.saturating_sub(sign_str(s, negative).len())
        } else {
            0
        };
        if body.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            body = group(&body, g, 3, min);
        }
    }
    let sign = sign_str(s, negative);
    pad(it, s, sign, &body, true)
}

pub(crate) fn format_int(it: &mut Interp, v: &BigInt, s: &Spec) -> R<String> {
    let ty = s.ty.unwrap_or('d');
    if s.precision.is_some() {
        return Err(it.value_error("Precision not allowed in integer format specifier"));
    }
    if ty == 'c' {
        let c = v
            .try_into()
            .ok()
            .and_then(|n: u32| char::from_u32(n))
            .ok_or_else(|| it.exc(ExcKind::OverflowError, "%c arg not in range(0x110000)"))?;
        return pad(it, s, "", &c.to_string(), false);
    }
    let (radix, prefix) = match ty {
        'd' | 'n' => (10, ""),
        'x' => (16, "0x"),
        'X' => (16, "0X"),
        'o' => (8, "0o"),
        'b' => (2, "0b"),
        other => {
            return Err(it.value_error(format!(
                "Unknown format code '{other}' for object of type 'int'"
            )))
        }
    };
    if s.grouping == Some(',') && radix != 10 {
        return Err(it.value_error(format!("Cannot specify ',' with '{ty}'.")));
    }
    let mag = v.abs();
    let mut digits = if radix == 10 {
        num::int_to_string(it, &mag)?
    } else {
        mag.to_str_radix(radix)
    };
    if ty == 'X' {
        digits = digits.to_uppercase();
    }
    let sign = sign_str(s, v.is_negative());
    let prefix = if s.alt { prefix } else { "" };
    if let Some(g) = s.grouping {
        let every = if radix == 10 { 3 } else { 4 };
        let min = if s.zero && s.align.is_none() {
            s.width.saturating_sub(sign.len() + prefix.len())
        } else {
            0
        };
        digits = group(&digits, g, every, min);
    }
    pad(it, s, &format!("{sign}{prefix}"), &digits, true)
}

/// Apply a format spec to a value, as `format(v, spec)` does.
pub fn format_spec(it: &mut Interp, v: &Obj, spec: &str) -> R<String> {
    if spec.is_empty() {
        return to_str(it, v);
    }
    let s = parse_spec(it, spec)?;
    let bad_code = |it: &Interp, ty: char| {
        it.value_error(format!(
            "Unknown format code '{ty}' for object of type '{}'",
            v.type_name()
        ))
    };
    match v {
        Obj::Str(text) => {
            if let Some(ty) = s.ty.filter(|&t| t != 's') {
                return Err(bad_code(it, ty));
            }
            if s.sign.is_some() {
                return Err(it.value_error("Sign not allowed in string format specifier"));
            }
            if s.align == Some('=') {
                return Err(it.value_error("'=' alignment not allowed in string format specifier"));
            }
            if s.grouping.is_some() {
                return Err(it.value_error("Cannot specify ',' with 's'."));
            }
            let body: String = match s.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text.to_string(),
            };
            pad(it, &s, "", &body, false)
        }
        Obj::Bool(_) | Obj::Int(_) | Obj::Big(_) => {
            let b = num::to_big(v).unwrap_or_default();
            match s.ty {
                None | Some('d' | 'n' | 'x' | 'X' | 'o' | 'b' | 'c') => format_int(it, &b, &s),
                Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') => {
                    let x = num::int_to_f64(it, v)?;
                    format_float(it, x, &s)
                }
                Some(ty) => Err(bad_code(it, ty)),
            }
        }
        Obj::Float(x) => match s.ty {
            None | Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'n' | '%') => format_float(it, *x, &s),
            Some(ty) => Err(bad_code(it, ty)),
        },
        o => Err(it.type_error(format!(
            "unsupported format string passed to {}.__format__",
            o.type_name()
        ))),
    }
}

/// Split a replacement field into name, conversion and spec.
fn split_field(field: &str) -> (&str, Option<&str>, &str) {
    let name_end = field.find(['!', ':']).unwrap_or(field.len());
    let (name, rest) = field.split_at(name_end);
    if let Some(r) = rest.strip_prefix('!') {
        let (conv, spec) = r.split_once(':').unwrap_or((r, ""));
        return (name, Some(conv), spec);
    }
    (name, None, rest.strip_prefix(':').unwrap_or(""))
}

struct Fields<'a> {
    args: &'a [Obj],
    kwargs: &'a [(std::rc::Rc<str>, Obj)],
    auto: usize,
    manual: bool,
}

impl Fields<'_> {
    fn get(&mut self, it: &mut Interp, name: &str) -> R<Obj> {
        if name.contains(['.', '[']) {
            return Err(it.value_error(
                "attribute or index access in format fields is not allowed in the sandbox",
            ));
        }
        if name.is_empty() {
            if self.manual {
                return Err(it.value_error(
                    "cannot switch from manual field specification to automatic field numbering",
                ));
            }
            self.auto += 1;
            let i = self.auto - 1;
            return self.args.get(i).cloned().ok_or_else(|| {
                it.exc(
                    ExcKind::IndexError,
                    format!("Replacement index {i} out of range for positional args tuple"),
                )
            });
        }
        if let Ok(i) = name.parse::<usize>() {
            if self.auto > 0 {
                return Err(it.value_error(
                    "cannot switch from automatic field numbering to manual field specification",
                ));
            }
            self.manual = true;
            return self.args.get(i).cloned().ok_or_else(|| {
                it.exc(
                    ExcKind::IndexError,
                    format!("Replacement index {i} out of range for positional args tuple"),
                )
            });
        }
        match self.kwargs.iter().find(|(k, _)| &**k == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(it.key_error(&Obj::str(name))),
        }
    }
}

/// Apply a `!r`/`!s`/`!a` conversion.
pub fn convert(it: &mut Interp, v: Obj, conv: Option<&str>) -> R<Obj> {
    Ok(match conv {
        None => v,
        Some("r") | Some("a") => Obj::str(repr(it, &v)?),
        Some("s") => Obj::str(to_str(it, &v)?),
        Some(c) => {
            return Err(it.value_error(format!(
                "Unknown conversion specifier {}",
                c.chars().next().unwrap_or(' ')
            )))
        }
    })
}

/// `template.format(*args, **kwargs)` with plain field names only.
pub fn str_format(
    it: &mut Interp,
    template: &str,
    args: &[Obj],
    kwargs: &[(std::rc::Rc<str>, Obj)],
) -> R<String> {
    let mut f = Fields {
        args,
        kwargs,
        auto: 0,
        manual: false,
    };
    format_with(it, template, &mut f, 0)
}

fn format_with(it: &mut Interp, template: &str, f: &mut Fields, level: usize) -> R<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
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
                let mut depth = 1;
                for d in chars.by_ref() {
                    match d {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    field.push(d);
                }
                if depth != 0 {
                    return Err(it.value_error("expected '}' before end of string"));
                }
                let (name, conv, spec) = split_field(&field);
                let v = f.get(it, name)?;
                let v = convert(it, v, conv)?;
                let spec = if spec.contains('{') {
                    if level >= 1 {
                        return Err(it.value_error("Max string recursion exceeded"));
                    }
                    format_with(it, spec, f, level + 1)?
                } else {
                    spec.to_string()
                };
                let s = format_spec(it, &v, &spec)?;
                out.push_str(&s);
            }
            '}' => return Err(it.value_error("Single '}' encountered in format string")),
            c => out.push(c),
        }
    }
    Ok(out)
}
