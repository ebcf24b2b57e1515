//! `%`-formatting (`fmt % args`) as CPython 3.11, on the padding and number formatting of
//! [`crate::spec`].

use crate::format::{repr, to_str};
use crate::interp::{Interp, R};
use crate::num;
use crate::obj::{ExcKind, Obj};
use crate::spec::{format_float, format_int, pad, sign_str, Spec};
use num_traits::Signed;

/// `fmt % args`: `%[(key)][flags][width][.precision]type` with the types of CPython.
pub fn percent_format(it: &mut Interp, fmt: &str, args: &Obj) -> R<Obj> {
    let mapping = matches!(args, Obj::Dict(_));
    let list: Vec<Obj> = match args {
        Obj::Tuple(t) => t.items.clone(),
        o => vec![o.clone()],
    };
    let mut next = 0usize;
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut used_mapping = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key_value = None;
        if chars.get(i) == Some(&'(') {
            let start = i + 1;
            let mut depth = 1;
            let mut j = start;
            while j < chars.len() && depth > 0 {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth != 0 {
                return Err(it.value_error("incomplete format key"));
            }
            let key: String = chars[start..j - 1].iter().collect();
            let Obj::Dict(_) = args else {
                return Err(it.type_error("format requires a mapping"));
            };
            key_value = Some(crate::ops::getitem(it, args, &Obj::str(key))?);
            used_mapping = true;
            i = j;
        }
        let mut s = Spec::default();
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => s.align = Some('<'),
                '+' => s.sign = Some('+'),
                ' ' => {
                    if s.sign.is_none() {
                        s.sign = Some(' ')
                    }
                }
                '#' => s.alt = true,
                '0' => s.zero = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize, next: &mut usize, it: &mut Interp| -> R<Option<usize>> {
            if chars.get(*i) == Some(&'*') {
                *i += 1;
                let v = list
                    .get(*next)
                    .cloned()
                    .ok_or_else(|| it.type_error("not enough arguments for format string"))?;
                *next += 1;
                return v
                    .as_int()
                    .map(|n| Some(n.max(0) as usize))
                    .ok_or_else(|| it.type_error("* wants int"));
            }
            let start = *i;
            let mut n = 0usize;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                n = n
                    .saturating_mul(10)
                    .saturating_add(chars[*i] as usize - '0' as usize);
                *i += 1;
            }
            Ok((*i > start).then_some(n))
        };
        s.width = number(&mut i, &mut next, it)?.unwrap_or(0);
        if chars.get(i) == Some(&'.') {
            i += 1;
            s.precision = Some(number(&mut i, &mut next, it)?.unwrap_or(0));
        }
        while matches!(chars.get(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(it.value_error("incomplete format"));
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        if s.width as u64 > it.bytes_left() || s.precision.unwrap_or(0) as u64 > it.bytes_left() {
            return Err(it.limit("format width exceeds the memory budget"));
        }
        let v = match key_value.take() {
            Some(v) => v,
            None => {
                let v = list
                    .get(next)
                    .cloned()
                    .ok_or_else(|| it.type_error("not enough arguments for format string"))?;
                next += 1;
                v
            }
        };
        if s.align == Some('<') {
            s.zero = false;
        }
        let piece = match conv {
            's' | 'r' | 'a' => {
                let text = if conv == 's' {
                    to_str(it, &v)?
                } else {
                    repr(it, &v)?
                };
                let text: String = match s.precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                };
                let sp = Spec {
                    align: Some(s.align.unwrap_or('>')),
                    width: s.width,
                    ..Spec::default()
                };
                pad(it, &sp, "", &text, false)?
            }
            'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
                let n = match &v {
                    Obj::Float(f) if matches!(conv, 'd' | 'i' | 'u') => num::float_to_int(it, *f)?,
                    o if o.is_int() => o.clone(),
                    o => {
                        let what = if matches!(conv, 'd' | 'i' | 'u') {
                            "a real number"
                        } else {
                            "an integer"
                        };
                        return Err(it.type_error(format!(
                            "%{conv} format: {what} is required, not {}",
                            o.type_name()
                        )));
                    }
                };
                let b = num::to_big(&n).unwrap_or_default();
                let ty = if matches!(conv, 'i' | 'u') { 'd' } else { conv };
                let mut sp = s.clone();
                sp.ty = Some(ty);
                let digits = match s.precision {
                    Some(p) => {
                        // A precision is a minimum digit count for ints.
                        let mut d = match ty {
                            'x' => b.abs().to_str_radix(16),
                            'X' => b.abs().to_str_radix(16).to_uppercase(),
                            'o' => b.abs().to_str_radix(8),
                            _ => num::int_to_string(it, &b.abs())?,
                        };
                        while d.len() < p {
                            d.insert(0, '0');
                        }
                        Some(d)
                    }
                    None => None,
                };
                sp.precision = None;
                match digits {
                    Some(d) => {
                        let prefix = match (s.alt, ty) {
                            (true, 'x') => "0x",
                            (true, 'X') => "0X",
                            (true, 'o') => "0o",
                            _ => "",
                        };
                        let sign = sign_str(&sp, b.is_negative());
                        pad(it, &sp, &format!("{sign}{prefix}"), &d, true)?
                    }
                    None => format_int(it, &b, &sp)?,
                }
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                let x = match &v {
                    o if o.as_f64().is_some() && !matches!(o, Obj::Str(_)) => {
                        num::int_to_f64(it, o)?
                    }
                    o => {
                        return Err(
                            it.type_error(format!("must be real number, not {}", o.type_name()))
                        )
                    }
                };
                let mut sp = s.clone();
                sp.ty = Some(conv);
                sp.precision = Some(s.precision.unwrap_or(6));
                format_float(it, x, &sp)?
            }
            'c' => {
                let ch = match &v {
                    Obj::Str(t) if t.chars().count() == 1 => t.to_string(),
                    o if o.as_int().is_some() => {
                        let n = o.as_int().unwrap_or(-1);
                        match u32::try_from(n).ok().and_then(char::from_u32) {
                            Some(c) => c.to_string(),
                            None => {
                                return Err(
                                    it.exc(ExcKind::OverflowError, "%c arg not in range(0x110000)")
                                )
                            }
                        }
                    }
                    _ => return Err(it.type_error("%c requires int or char")),
                };
                let sp = Spec {
                    align: Some(s.align.unwrap_or('>')),
                    width: s.width,
                    ..Spec::default()
                };
                pad(it, &sp, "", &ch, false)?
            }
            other => {
                return Err(it.value_error(format!(
                    "unsupported format character '{other}' (0x{:x}) at index {}",
                    other as u32,
                    i - 1
                )))
            }
        };
        out.push_str(&piece);
    }
    if !mapping && !used_mapping && next < list.len() {
        return Err(it.type_error("not all arguments converted during string formatting"));
    }
    it.new_str(out)
}
