//! Methods of `str`, with CPython's optional arguments (`start`/`end` in character indices,
//! `maxsplit`, `count`, fill characters) and every result charged before it is built.

use crate::format;
use crate::interp::{Interp, R, STR_OBJ_BYTES};
use crate::obj::{ExcKind, Obj};

pub const STR_METHODS: &[&str] = &[
    "capitalize",
    "casefold",
    "center",
    "count",
    "endswith",
    "expandtabs",
    "find",
    "format",
    "index",
    "isalnum",
    "isalpha",
    "isascii",
    "isdecimal",
    "isdigit",
    "isidentifier",
    "islower",
    "isnumeric",
    "isprintable",
    "isspace",
    "istitle",
    "isupper",
    "join",
    "ljust",
    "lower",
    "lstrip",
    "partition",
    "removeprefix",
    "removesuffix",
    "replace",
    "rfind",
    "rindex",
    "rjust",
    "rpartition",
    "rsplit",
    "rstrip",
    "split",
    "splitlines",
    "startswith",
    "strip",
    "swapcase",
    "title",
    "upper",
    "zfill",
];

/// Keyword parameters, by position, of the methods that take them.
pub fn keyword_params(name: &str) -> &'static [&'static str] {
    match name {
        "split" | "rsplit" => &["sep", "maxsplit"],
        "splitlines" => &["keepends"],
        "expandtabs" => &["tabsize"],
        _ => &[],
    }
}

fn want(it: &Interp, name: &str, args: &[Obj], min: usize, max: usize) -> R<()> {
    if args.len() < min || args.len() > max {
        return Err(it.type_error(format!(
            "{name}() takes {} ({} given)",
            if min == max {
                format!("exactly {min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("from {min} to {max} arguments")
            },
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

fn int_arg(it: &Interp, o: Option<&Obj>, default: i64) -> R<i64> {
    match o {
        None | Some(Obj::None) => Ok(default),
        Some(o) => o.as_int().ok_or_else(|| {
            it.type_error(format!(
                "'{}' object cannot be interpreted as an integer",
                o.type_name()
            ))
        }),
    }
}

/// Byte range of the character slice `[start:end]` (Python's clamping), and the character
/// index where it starts.
fn char_range(
    it: &Interp,
    s: &str,
    start: Option<&Obj>,
    end: Option<&Obj>,
) -> R<(usize, usize, usize)> {
    let n = s.chars().count() as i64;
    let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let a = norm(int_arg(it, start, 0)?);
    let b = norm(int_arg(it, end, n)?);
    let byte = |ci: i64| {
        s.char_indices()
            .nth(ci as usize)
            .map(|(b, _)| b)
            .unwrap_or(s.len())
    };
    if b < a {
        return Ok((byte(a), byte(a), a as usize));
    }
    Ok((byte(a), byte(b), a as usize))
}

fn is_decimal(c: char) -> bool {
    c.is_ascii_digit() || (c.is_numeric() && !is_digit_only(c) && !is_numeric_only(c))
}

/// Digits that are not decimal: superscripts, subscripts, circled digits.
fn is_digit_only(c: char) -> bool {
    matches!(c, '\u{b2}' | '\u{b3}' | '\u{b9}' | '\u{2070}'..='\u{2079}' | '\u{2080}'..='\u{2089}' | '\u{2460}'..='\u{2468}' | '\u{2474}'..='\u{247c}' | '\u{2488}'..='\u{2490}' | '\u{24f5}'..='\u{24fd}' | '\u{2776}'..='\u{277e}' | '\u{2780}'..='\u{2788}' | '\u{278a}'..='\u{2792}')
}

/// Numeric characters that are neither digits nor decimals: fractions, roman numerals, …
fn is_numeric_only(c: char) -> bool {
    c.is_numeric()
        && !c.is_ascii_digit()
        && !is_digit_only(c)
        && {
            matches!(c, '\u{bc}'..='\u{be}' | '\u{2150}'..='\u{218b}' | '\u{2469}'..='\u{2473}' | '\u{247d}'..='\u{2487}' | '\u{2491}'..='\u{249b}' | '\u{24eb}'..='\u{24f4}' | '\u{24fe}' | '\u{24ff}' | '\u{3007}' | '\u{3021}'..='\u{3029}' | '\u{3038}'..='\u{303a}')
        }
}

fn all_nonempty(s: &str, f: impl Fn(char) -> bool) -> Obj {
    Obj::Bool(!s.is_empty() && s.chars().all(f))
}

fn cased_check(s: &str, want_upper: bool) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() {
            if !want_upper {
                return false;
            }
            cased = true;
        } else if c.is_lowercase() {
            if want_upper {
                return false;
            }
            cased = true;
        }
    }
    cased
}

fn is_title(s: &str) -> bool {
    let (mut prev_cased, mut any) = (false, false);
    for c in s.chars() {
        if c.is_uppercase() {
            if prev_cased {
                return false;
            }
            prev_cased = true;
            any = true;
        } else if c.is_lowercase() {
            if !prev_cased {
                return false;
            }
            prev_cased = true;
            any = true;
        } else {
            prev_cased = false;
        }
    }
    any
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_uppercase() || c.is_lowercase() || c.is_alphabetic();
    }
    out
}

/// Pad `s` to `width` characters with `fill` (`left` of them before it).
fn padded(
    it: &mut Interp,
    s: &str,
    width: i64,
    fill: char,
    left_of: impl Fn(usize) -> usize,
) -> R<String> {
    let n = s.chars().count();
    let width = width.max(0) as usize;
    if width <= n {
        return Ok(s.to_string());
    }
    let pad = width - n;
    let bytes = (pad as u64).saturating_mul(fill.len_utf8() as u64) + s.len() as u64;
    it.alloc(bytes)?;
    let left = left_of(pad);
    let mut out = String::with_capacity(bytes as usize);
    out.extend(std::iter::repeat_n(fill, left));
    out.push_str(s);
    out.extend(std::iter::repeat_n(fill, pad - left));
    Ok(out)
}

fn fill_arg(it: &Interp, name: &str, o: Option<&Obj>) -> R<char> {
    match o {
        None => Ok(' '),
        Some(Obj::Str(f)) if f.chars().count() == 1 => Ok(f.chars().next().unwrap_or(' ')),
        Some(_) => Err(it.type_error(format!("{name}() argument 2 must be a single character"))),
    }
}

/// Call `s.name(*args)`.
pub fn call(it: &mut Interp, s: &str, name: &str, args: Vec<Obj>) -> R<Obj> {
    it.tick(1 + s.len() as u64 / 64)?;
    let out: String = match name {
        "lower" | "upper" | "casefold" | "swapcase" | "title" | "capitalize" => {
            want(it, name, &args, 0, 0)?;
            // Case mappings grow a string by at most 3 times.
            it.alloc((s.len() as u64).saturating_mul(3))?;
            match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                "casefold" => s.to_lowercase().replace('ß', "ss"),
                "swapcase" => s
                    .chars()
                    .flat_map(|c| -> Vec<char> {
                        if c.is_uppercase() {
                            c.to_lowercase().collect()
                        } else if c.is_lowercase() {
                            c.to_uppercase().collect()
                        } else {
                            vec![c]
                        }
                    })
                    .collect(),
                "title" => title(s),
                _ => {
                    let mut c = s.chars();
                    match c.next() {
                        Some(f) => f
                            .to_uppercase()
                            .chain(c.flat_map(|x| x.to_lowercase()))
                            .collect(),
                        None => String::new(),
                    }
                }
            }
        }
        "strip" | "lstrip" | "rstrip" => {
            want(it, name, &args, 0, 1)?;
            let set = match args.first() {
                None | Some(Obj::None) => None,
                Some(o) => Some(str_arg(it, name, o)?.to_string()),
            };
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
        "split" | "rsplit" | "splitlines" | "join" => {
            return crate::methods::split_join(it, s, name, args)
        }
        "startswith" | "endswith" => {
            want(it, name, &args, 1, 3)?;
            let (a, b, _) = char_range(it, s, args.get(1), args.get(2))?;
            let sub = &s[a..b];
            let pats: Vec<String> = match &args[0] {
                Obj::Tuple(t) => t
                    .items
                    .iter()
                    .map(|x| str_arg(it, name, x).map(String::from))
                    .collect::<R<_>>()?,
                Obj::Str(p) => vec![p.to_string()],
                o => {
                    return Err(it.type_error(format!(
                        "{name} first arg must be str or a tuple of str, not {}",
                        o.type_name()
                    )))
                }
            };
            let hit = pats.iter().any(|p| {
                if name == "startswith" {
                    sub.starts_with(p.as_str())
                } else {
                    sub.ends_with(p.as_str())
                }
            });
            return Ok(Obj::Bool(hit));
        }
        "replace" => {
            want(it, name, &args, 2, 3)?;
            let from = str_arg(it, name, &args[0])?;
            let to = str_arg(it, name, &args[1])?;
            let max = int_arg(it, args.get(2), -1)?;
            let found = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            let n = if max < 0 {
                found
            } else {
                found.min(max as usize)
            };
            it.alloc((s.len() as u64).saturating_add((n as u64).saturating_mul(to.len() as u64)))?;
            if from.is_empty() {
                let mut out = String::new();
                let mut left = n;
                for c in s.chars() {
                    if left > 0 {
                        out.push_str(to);
                        left -= 1;
                    }
                    out.push(c);
                }
                if left > 0 {
                    out.push_str(to);
                }
                out
            } else {
                s.replacen(from, to, n)
            }
        }
        "find" | "index" | "rfind" | "rindex" | "count" => {
            want(it, name, &args, 1, 3)?;
            let pat = str_arg(it, name, &args[0])?;
            let (a, b, ca) = char_range(it, s, args.get(1), args.get(2))?;
            let n_total = s.chars().count() as i64;
            let start_raw = int_arg(it, args.get(1), 0)?;
            let start_norm = if start_raw < 0 {
                (start_raw + n_total).max(0)
            } else {
                start_raw
            };
            let sub = &s[a..b];
            if name == "count" {
                let n = if start_norm > n_total {
                    0
                } else if pat.is_empty() {
                    sub.chars().count() as i64 + 1
                } else {
                    sub.matches(pat).count() as i64
                };
                return Ok(Obj::Int(n));
            }
            let hit = if start_norm > n_total {
                None
            } else if name.starts_with('r') {
                sub.rfind(pat)
            } else {
                sub.find(pat)
            };
            return match hit {
                Some(bi) => Ok(Obj::Int((ca + sub[..bi].chars().count()) as i64)),
                None if name.ends_with("find") => Ok(Obj::Int(-1)),
                None => Err(it.value_error("substring not found")),
            };
        }
        "partition" | "rpartition" => {
            want(it, name, &args, 1, 1)?;
            let sep = str_arg(it, name, &args[0])?;
            if sep.is_empty() {
                return Err(it.value_error("empty separator"));
            }
            let hit = if name == "partition" {
                s.find(sep)
            } else {
                s.rfind(sep)
            };
            let parts = match hit {
                Some(i) => [&s[..i], sep, &s[i + sep.len()..]],
                None if name == "partition" => [s, "", ""],
                None => ["", "", s],
            };
            it.alloc(s.len() as u64 + 3 * STR_OBJ_BYTES)?;
            return it.new_tuple(parts.iter().map(|p| Obj::str(*p)).collect());
        }
        "removeprefix" | "removesuffix" => {
            want(it, name, &args, 1, 1)?;
            let p = str_arg(it, name, &args[0])?;
            let r = if name == "removeprefix" {
                s.strip_prefix(p)
            } else {
                s.strip_suffix(p)
            };
            r.unwrap_or(s).to_string()
        }
        "center" | "ljust" | "rjust" => {
            want(it, name, &args, 1, 2)?;
            let width = int_arg(it, args.first(), 0)?;
            let fill = fill_arg(it, name, args.get(1))?;
            let odd = width & 1;
            return Ok(Obj::str(padded(it, s, width, fill, |pad| match name {
                "ljust" => 0,
                "rjust" => pad,
                _ => pad / 2 + (pad & odd as usize & 1),
            })?));
        }
        "zfill" => {
            want(it, name, &args, 1, 1)?;
            let width = int_arg(it, args.first(), 0)?;
            let (sign, rest) = match s.chars().next() {
                Some(c @ ('+' | '-')) => (Some(c), &s[1..]),
                _ => (None, s),
            };
            let w = width - sign.is_some() as i64;
            let body = padded(it, rest, w, '0', |pad| pad)?;
            match sign {
                Some(c) => format!("{c}{body}"),
                None => body,
            }
        }
        "expandtabs" => {
            want(it, name, &args, 0, 1)?;
            let tab = int_arg(it, args.first(), 8)?.max(0) as usize;
            let tabs = s.matches('\t').count() as u64;
            it.alloc(s.len() as u64 + tabs.saturating_mul(tab as u64))?;
            let mut out = String::new();
            let mut col = 0;
            for c in s.chars() {
                match c {
                    '\t' if tab > 0 => {
                        let k = tab - col % tab;
                        out.extend(std::iter::repeat_n(' ', k));
                        col += k;
                    }
                    '\t' => {}
                    '\n' | '\r' => {
                        out.push(c);
                        col = 0;
                    }
                    c => {
                        out.push(c);
                        col += 1;
                    }
                }
            }
            out
        }
        "isdigit" => return Ok(all_nonempty(s, |c| is_decimal(c) || is_digit_only(c))),
        "isdecimal" => return Ok(all_nonempty(s, is_decimal)),
        "isnumeric" => return Ok(all_nonempty(s, char::is_numeric)),
        "isalpha" => return Ok(all_nonempty(s, char::is_alphabetic)),
        "isalnum" => return Ok(all_nonempty(s, |c| c.is_alphabetic() || c.is_numeric())),
        "isspace" => return Ok(all_nonempty(s, char::is_whitespace)),
        "isascii" => return Ok(Obj::Bool(s.is_ascii())),
        "islower" => return Ok(Obj::Bool(cased_check(s, false))),
        "isupper" => return Ok(Obj::Bool(cased_check(s, true))),
        "istitle" => return Ok(Obj::Bool(is_title(s))),
        "isprintable" => {
            return Ok(Obj::Bool(
                s.chars()
                    .all(|c| !c.is_control() && (c == ' ' || !c.is_whitespace())),
            ))
        }
        "isidentifier" => {
            let mut cs = s.chars();
            let ok = cs.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && cs.all(|c| c == '_' || c.is_alphanumeric());
            return Ok(Obj::Bool(ok));
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
