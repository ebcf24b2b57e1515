//! Numeric and conversion builtins: `abs round int float divmod pow hex bin oct ord chr
//! format iter next callable`, with CPython 3.11's results and error types.

use crate::ast::BinOp;
use crate::builtins::kwarg;
use crate::interp::{Interp, Kwargs, R};
use crate::num;
use crate::obj::{ExcKind, Obj};
use crate::{format, ops};
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::Signed;
use std::cell::RefCell;
use std::rc::Rc;

/// Python's `float(str)`: digits, one point, an exponent, underscores between digits,
/// `inf`/`infinity`/`nan` in any case, surrounding whitespace.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.trim_start_matches(['+', '-']);
    if t.len() - body.len() > 1 {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t
            .to_ascii_lowercase()
            .replace("infinity", "inf")
            .parse()
            .ok();
    }
    let chars: Vec<char> = t.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let ok = c.is_ascii_digit()
            || matches!(c, '+' | '-' | '.' | 'e' | 'E')
            || (*c == '_'
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()));
        if !ok {
            return None;
        }
    }
    t.replace('_', "").parse().ok()
}

impl<'a> Interp<'a> {
    pub(crate) fn call_more(&mut self, name: &str, args: Vec<Obj>, kwargs: &Kwargs) -> R<Obj> {
        match name {
            "abs" => {
                self.arity(name, &args, 1, 1)?;
                match &args[0] {
                    Obj::Float(f) => Ok(Obj::Float(f.abs())),
                    o if o.is_int() => Ok(num::int_obj(num::to_big(o).unwrap_or_default().abs())),
                    o => {
                        Err(self
                            .type_error(format!("bad operand type for abs(): '{}'", o.type_name())))
                    }
                }
            }
            "round" => {
                self.arity(name, &args, 1, 2)?;
                let nd = args.get(1).cloned().or_else(|| kwarg(kwargs, "ndigits"));
                self.round(&args[0], nd)
            }
            "int" => {
                self.arity(name, &args, 0, 2)?;
                let base = args.get(1).cloned().or_else(|| kwarg(kwargs, "base"));
                self.int_of(args.first(), base)
            }
            "float" => {
                self.arity(name, &args, 0, 1)?;
                match args.first() {
                    None => Ok(Obj::Float(0.0)),
                    Some(Obj::Str(s)) => parse_float(s).map(Obj::Float).ok_or_else(|| {
                        self.value_error(format!(
                            "could not convert string to float: {}",
                            format::repr_str(s)
                        ))
                    }),
                    Some(o) if o.as_f64().is_some() => Ok(Obj::Float(num::int_to_f64(self, o)?)),
                    Some(o) => Err(self.type_error(format!(
                        "float() argument must be a string or a real number, not '{}'",
                        o.type_name()
                    ))),
                }
            }
            "divmod" => {
                self.arity(name, &args, 2, 2)?;
                let q = ops::binop(self, BinOp::FloorDiv, &args[0], &args[1])?;
                let m = ops::binop(self, BinOp::Mod, &args[0], &args[1])?;
                self.new_tuple(vec![q, m])
            }
            "pow" => {
                self.arity(name, &args, 0, 3)?;
                let get = |i: usize, k: &str| args.get(i).cloned().or_else(|| kwarg(kwargs, k));
                let (Some(b), Some(e)) = (get(0, "base"), get(1, "exp")) else {
                    return Err(self.type_error("pow() missing required argument"));
                };
                match get(2, "mod") {
                    None | Some(Obj::None) => ops::binop(self, BinOp::Pow, &b, &e),
                    Some(m) => match (num::to_big(&b), num::to_big(&e), num::to_big(&m)) {
                        (Some(b), Some(e), Some(m)) => num::pow_mod(self, &b, &e, &m),
                        _ => Err(self.type_error(
                            "pow() 3rd argument not allowed unless all arguments are integers",
                        )),
                    },
                }
            }
            "hex" | "bin" | "oct" => {
                self.arity(name, &args, 1, 1)?;
                if !args[0].is_int() {
                    return Err(self.type_error(format!(
                        "'{}' object cannot be interpreted as an integer",
                        args[0].type_name()
                    )));
                }
                let spec = match name {
                    "hex" => "#x",
                    "bin" => "#b",
                    _ => "#o",
                };
                let s = format::format_spec(self, &args[0], spec)?;
                Ok(Obj::str(s))
            }
            "ord" => {
                self.arity(name, &args, 1, 1)?;
                match &args[0] {
                    Obj::Str(s) if s.chars().count() == 1 => {
                        Ok(Obj::Int(s.chars().next().map(|c| c as i64).unwrap_or(0)))
                    }
                    Obj::Str(s) => Err(self.type_error(format!(
                        "ord() expected a character, but string of length {} found",
                        s.chars().count()
                    ))),
                    o => Err(self.type_error(format!(
                        "ord() expected string of length 1, but {} found",
                        o.type_name()
                    ))),
                }
            }
            "chr" => {
                self.arity(name, &args, 1, 1)?;
                let Some(i) = args[0].as_int() else {
                    return Err(self.type_error(format!(
                        "'{}' object cannot be interpreted as an integer",
                        args[0].type_name()
                    )));
                };
                if !(0..=0x10ffff).contains(&i) {
                    return Err(self.value_error("chr() arg not in range(0x110000)"));
                }
                match char::from_u32(i as u32) {
                    Some(c) => Ok(Obj::str(c.to_string())),
                    None => Err(self.value_error(
                        "chr() of a surrogate code point is not supported in the sandbox",
                    )),
                }
            }
            "format" => {
                self.arity(name, &args, 1, 2)?;
                let spec = match args.get(1) {
                    None => String::new(),
                    Some(Obj::Str(s)) => s.to_string(),
                    Some(o) => {
                        return Err(self.type_error(format!(
                            "format() argument 2 must be str, not {}",
                            o.type_name()
                        )))
                    }
                };
                let s = format::format_spec(self, &args[0], &spec)?;
                Ok(Obj::str(s))
            }
            "iter" => {
                self.arity(name, &args, 1, 1)?;
                if let Obj::Iter(_) = &args[0] {
                    return Ok(args[0].clone());
                }
                let inner = self.iter_obj(&args[0])?;
                self.alloc(64)?;
                Ok(Obj::Iter(Rc::new(RefCell::new(inner))))
            }
            "next" => {
                self.arity(name, &args, 1, 2)?;
                let Obj::Iter(i) = &args[0] else {
                    return Err(self.type_error(format!(
                        "'{}' object is not an iterator",
                        args[0].type_name()
                    )));
                };
                let i = i.clone();
                let v = i.borrow_mut().step(self)?;
                match (v, args.get(1)) {
                    (Some(v), _) => Ok(v),
                    (None, Some(d)) => Ok(d.clone()),
                    (None, None) => Err(self.exc(ExcKind::StopIteration, "")),
                }
            }
            "callable" => {
                self.arity(name, &args, 1, 1)?;
                Ok(Obj::Bool(matches!(
                    args[0],
                    Obj::Func(_) | Obj::Builtin(_) | Obj::Method(_) | Obj::ExcType(_)
                )))
            }
            _ => Err(self.exc(ExcKind::NameError, format!("name '{name}' is not defined"))),
        }
    }

    fn round(&mut self, x: &Obj, nd: Option<Obj>) -> R<Obj> {
        let nd = match nd {
            None | Some(Obj::None) => None,
            Some(o) => Some(o.as_int().ok_or_else(|| {
                self.type_error(format!(
                    "'{}' object cannot be interpreted as an integer",
                    o.type_name()
                ))
            })?),
        };
        match x {
            Obj::Float(f) => match nd {
                None => num::float_to_int(self, f.round_ties_even()),
                Some(_) if !f.is_finite() || *f == 0.0 => Ok(Obj::Float(*f)),
                Some(n) if n >= 0 => {
                    if n > 330 {
                        return Ok(Obj::Float(*f));
                    }
                    // Decimal rounding of the exact binary value, as CPython does.
                    let s = format!("{:.*}", n as usize, f);
                    Ok(Obj::Float(s.parse().unwrap_or(*f)))
                }
                Some(n) => {
                    let p = 10f64.powi((-n).min(400) as i32);
                    let r = (f / p).round_ties_even() * p;
                    Ok(Obj::Float(if r.is_finite() {
                        r
                    } else {
                        0.0f64.copysign(*f)
                    }))
                }
            },
            o if o.is_int() => {
                let v = num::to_big(o).unwrap_or_default();
                match nd {
                    Some(n) if n < 0 => {
                        let p = BigInt::from(10).pow((-n).min(5000) as u32);
                        let (q, r) = v.div_mod_floor(&p);
                        let twice = &r * 2;
                        let up = twice > p || (twice == p && q.is_odd());
                        let q = if up { q + 1 } else { q };
                        Ok(num::int_obj(q * p))
                    }
                    _ => Ok(num::int_obj(v)),
                }
            }
            o => Err(self.type_error(format!(
                "type {} doesn't define __round__ method",
                o.type_name()
            ))),
        }
    }

    fn int_of(&mut self, x: Option<&Obj>, base: Option<Obj>) -> R<Obj> {
        let base = match &base {
            None => None,
            Some(b) => match b.as_int() {
                Some(b) if b == 0 || (2..=36).contains(&b) => Some(b as u32),
                Some(_) => return Err(self.value_error("int() base must be >= 2 and <= 36, or 0")),
                None => {
                    return Err(self.type_error(format!(
                        "'{}' object cannot be interpreted as an integer",
                        b.type_name()
                    )))
                }
            },
        };
        match (x, base) {
            (None, _) => Ok(Obj::Int(0)),
            (Some(Obj::Str(s)), b) => {
                let b = b.unwrap_or(10);
                match num::parse_int(s, b) {
                    Ok(Some(v)) => {
                        self.alloc(v.bits() / 8)?;
                        Ok(num::int_obj(v))
                    }
                    Ok(None) => Err(self.value_error(format!(
                        "invalid literal for int() with base {b}: {}",
                        format::repr_str(s)
                    ))),
                    Err(()) => Err(self.value_error(format!(
                        "Exceeds the limit ({} digits) for integer string conversion: value has {} digits; use sys.set_int_max_str_digits() to increase the limit",
                        num::MAX_STR_DIGITS,
                        s.trim().trim_start_matches(['-', '+']).len()
                    ))),
                }
            }
            (Some(_), Some(_)) => {
                Err(self.type_error("int() can't convert non-string with explicit base"))
            }
            (Some(Obj::Float(f)), None) => num::float_to_int(self, *f),
            (Some(o), None) if o.is_int() => Ok(num::int_obj(num::to_big(o).unwrap_or_default())),
            (Some(o), None) => Err(self.type_error(format!(
                "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                o.type_name()
            ))),
        }
    }
}

fn int_args(it: &Interp, f: &str, args: &[Obj]) -> R<Vec<BigInt>> {
    args.iter()
        .map(|a| {
            num::to_big(a).ok_or_else(|| {
                it.type_error(format!(
                    "'{}' object cannot be interpreted as an integer ({f})",
                    a.type_name()
                ))
            })
        })
        .collect()
}

/// The `math` functions beyond the basic float ones; None when `f` is not one of them.
pub(crate) fn math_more(it: &mut Interp, f: &str, args: &[Obj]) -> R<Option<Obj>> {
    let need = |it: &Interp, n: usize| -> R<()> {
        if args.len() != n {
            return Err(it.type_error(format!(
                "math.{f}() takes {n} argument(s) ({} given)",
                args.len()
            )));
        }
        Ok(())
    };
    let fl = |it: &Interp, o: &Obj| -> R<f64> {
        if matches!(o, Obj::Str(_)) || o.as_f64().is_none() {
            return Err(it.type_error(format!("must be real number, not {}", o.type_name())));
        }
        num::int_to_f64(it, o)
    };
    let domain = |it: &Interp| it.value_error("math domain error");
    Ok(Some(match f {
        "gcd" | "lcm" => {
            let v = int_args(it, f, args)?;
            let mut acc = if f == "gcd" {
                BigInt::from(0)
            } else {
                BigInt::from(1)
            };
            for x in v {
                acc = if f == "gcd" { acc.gcd(&x) } else { acc.lcm(&x) };
            }
            num::int_obj(acc)
        }
        "trunc" => {
            need(it, 1)?;
            match &args[0] {
                Obj::Float(x) => num::float_to_int(it, *x)?,
                o if o.is_int() => num::int_obj(num::to_big(o).unwrap_or_default()),
                o => {
                    return Err(it.type_error(format!(
                        "type {} doesn't define __trunc__ method",
                        o.type_name()
                    )))
                }
            }
        }
        "factorial" => {
            need(it, 1)?;
            let Some(n) = args[0].as_int().filter(|_| args[0].is_int()) else {
                return Err(it.type_error("factorial() only accepts integral values"));
            };
            if n < 0 {
                return Err(it.value_error("factorial() not defined for negative values"));
            }
            // About n·log2(n) bits: charged before computing.
            let bits = (n as u64).saturating_mul(64 - (n as u64).leading_zeros() as u64);
            it.alloc(bits / 8)?;
            // n multiplications of a product growing to `bits`: charged as the limb work.
            it.tick((n as u64).saturating_mul(bits / 128 + 1))?;
            let mut acc = BigInt::from(1);
            for k in 2..=n {
                acc *= k;
            }
            num::int_obj(acc)
        }
        "isqrt" => {
            need(it, 1)?;
            let v = int_args(it, f, args)?.remove(0);
            if v.is_negative() {
                return Err(it.value_error("isqrt() argument must be nonnegative"));
            }
            num::int_obj(v.sqrt())
        }
        "comb" | "perm" => {
            let v = int_args(it, f, args)?;
            if v.len() != 2 {
                return Err(it.type_error(format!("{f} expected 2 arguments")));
            }
            let (n, k) = (&v[0], &v[1]);
            if n.is_negative() || k.is_negative() {
                return Err(it.value_error("n must be a non-negative integer"));
            }
            if k > n {
                return Ok(Some(Obj::Int(0)));
            }
            let k = k.try_into().unwrap_or(u32::MAX) as u64;
            let bits = k.saturating_mul(n.bits());
            it.alloc(bits / 8)?;
            it.tick(k.saturating_mul(bits / 128 + 1))?;
            let mut acc = BigInt::from(1);
            for i in 0..k {
                acc *= n - BigInt::from(i);
            }
            if f == "comb" {
                let mut d = BigInt::from(1);
                for i in 2..=k {
                    d *= i;
                }
                acc /= d;
            }
            num::int_obj(acc)
        }
        "prod" => {
            need(it, 1)?;
            let items = it.collect(&args[0])?;
            let mut acc = Obj::Int(1);
            for x in &items {
                acc = ops::binop(it, BinOp::Mul, &acc, x)?;
            }
            acc
        }
        "fsum" => {
            need(it, 1)?;
            let items = it.collect(&args[0])?;
            // Neumaier summation: exact to the last bit in ordinary cases, like math.fsum.
            let (mut sum, mut c) = (0.0f64, 0.0f64);
            for x in &items {
                let v = fl(it, x)?;
                let t = sum + v;
                if sum.abs() >= v.abs() {
                    c += (sum - t) + v;
                } else {
                    c += (v - t) + sum;
                }
                sum = t;
            }
            Obj::Float(sum + c)
        }
        "log2" | "log10" | "degrees" | "radians" | "asin" | "acos" | "atan" => {
            need(it, 1)?;
            let x = fl(it, &args[0])?;
            Obj::Float(match f {
                "log2" if x <= 0.0 => return Err(domain(it)),
                "log10" if x <= 0.0 => return Err(domain(it)),
                "log2" => x.log2(),
                "log10" => x.log10(),
                "degrees" => x.to_degrees(),
                "radians" => x.to_radians(),
                "asin" | "acos" if !(-1.0..=1.0).contains(&x) => return Err(domain(it)),
                "asin" => x.asin(),
                "acos" => x.acos(),
                _ => x.atan(),
            })
        }
        "isnan" | "isinf" | "isfinite" => {
            need(it, 1)?;
            let x = fl(it, &args[0])?;
            Obj::Bool(match f {
                "isnan" => x.is_nan(),
                "isinf" => x.is_infinite(),
                _ => x.is_finite(),
            })
        }
        "copysign" => {
            need(it, 2)?;
            Obj::Float(fl(it, &args[0])?.copysign(fl(it, &args[1])?))
        }
        "dist" => {
            need(it, 2)?;
            let a = it.collect(&args[0])?;
            let b = it.collect(&args[1])?;
            if a.len() != b.len() {
                return Err(it.value_error("both points must have the same number of dimensions"));
            }
            let mut s = 0.0;
            for (x, y) in a.iter().zip(&b) {
                let d = fl(it, x)? - fl(it, y)?;
                s += d * d;
            }
            Obj::Float(s.sqrt())
        }
        _ => return Ok(None),
    }))
}
