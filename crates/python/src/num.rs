//! Arbitrary-precision ints: `Obj::Int` while a value fits in i64, `Obj::Big` beyond.
//!
//! Every big result is charged to the memory budget (its size estimated *before* computing
//! it) and its cost to the step budget, so `10 ** 10 ** 10` or `1 << 10 ** 12` end with a
//! `limit` error instead of being attempted. Like CPython 3.11, converting ints of more
//! than 4300 digits to or from text raises ValueError.

use crate::ast::BinOp;
use crate::interp::{Interp, R};
use crate::obj::{ExcKind, Obj};
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{FromPrimitive, Signed, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::rc::Rc;

/// CPython's default `sys.get_int_max_str_digits()`.
pub const MAX_STR_DIGITS: usize = 4300;

/// An int value, normalised: `Int` when it fits in i64.
pub fn int_obj(b: BigInt) -> Obj {
    match b.to_i64() {
        Some(i) => Obj::Int(i),
        None => Obj::Big(Rc::new(b)),
    }
}

/// The value of an int (bools included) as a BigInt.
pub fn to_big(o: &Obj) -> Option<BigInt> {
    match o {
        Obj::Bool(b) => Some(BigInt::from(*b as i64)),
        Obj::Int(i) => Some(BigInt::from(*i)),
        Obj::Big(b) => Some((**b).clone()),
        _ => None,
    }
}

/// An int as f64, raising OverflowError where CPython does.
pub fn int_to_f64(it: &Interp, o: &Obj) -> R<f64> {
    match o {
        Obj::Big(b) => match b.to_f64() {
            Some(f) if f.is_finite() => Ok(f),
            _ => Err(it.exc(ExcKind::OverflowError, "int too large to convert to float")),
        },
        o => Ok(o.as_f64().unwrap_or(0.0)),
    }
}

/// Decimal text of an int, within CPython's digit limit (decided from the bit length
/// where it can be, so a huge int is never converted only to be refused).
pub fn int_to_string(it: &Interp, b: &BigInt) -> R<String> {
    let limit = || {
        it.value_error(format!(
            "Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion; \
             use sys.set_int_max_str_digits() to increase the limit"
        ))
    };
    let bits = b.bits();
    // At least floor((bits - 1) * log10(2)) + 1 digits.
    if (bits.saturating_sub(1) as f64) * std::f64::consts::LOG10_2 >= MAX_STR_DIGITS as f64 {
        return Err(limit());
    }
    let s = b.to_string();
    if s.trim_start_matches('-').len() > MAX_STR_DIGITS {
        return Err(limit());
    }
    Ok(s)
}

/// Parse Python int text in `base` (0: from the prefix), or None when invalid.
pub fn parse_int(text: &str, base: u32) -> Result<Option<BigInt>, ()> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (base, digits) = match (base, lower.get(..2)) {
        (0 | 16, Some("0x")) => (16, &t[2..]),
        (0 | 8, Some("0o")) => (8, &t[2..]),
        (0 | 2, Some("0b")) => (2, &t[2..]),
        (0, _) => {
            if t.len() > 1 && t.starts_with('0') && t.chars().any(|c| c != '0' && c != '_') {
                return Ok(None);
            }
            (10, t)
        }
        (b, _) => (b, t),
    };
    let digits = digits.strip_prefix('_').unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c == '_' || c.is_digit(base))
    {
        return Ok(None);
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    // As in CPython, the limit holds for every base that is not a power of two (converting
    // those takes quadratic time).
    if !base.is_power_of_two() && clean.len() > MAX_STR_DIGITS {
        return Err(());
    }
    let v = BigInt::parse_bytes(clean.as_bytes(), base);
    Ok(v.map(|v| if neg { -v } else { v }))
}

fn bits_of(o: &BigInt) -> u64 {
    o.bits().max(1)
}

/// Charge a result of about `bits` bits, and work proportional to `work` limb operations.
fn charge(it: &mut Interp, bits: u64, work: u64) -> R<()> {
    it.alloc(32 + bits / 8)?;
    it.tick(work / 64)
}

fn zero_div(it: &Interp, msg: &str) -> crate::interp::Ctl {
    it.exc(ExcKind::ZeroDivisionError, msg.to_string())
}

/// `a op b` on ints of any size (`Div` and negative powers give floats).
pub fn big_op(it: &mut Interp, op: BinOp, a: &BigInt, b: &BigInt) -> R<Obj> {
    let (ba, bb) = (bits_of(a), bits_of(b));
    let words = |x: u64| x / 64 + 1;
    Ok(int_obj(match op {
        BinOp::Add => {
            charge(it, ba.max(bb) + 1, words(ba.max(bb)))?;
            a + b
        }
        BinOp::Sub => {
            charge(it, ba.max(bb) + 1, words(ba.max(bb)))?;
            a - b
        }
        BinOp::Mul => {
            charge(it, ba + bb, words(ba).saturating_mul(words(bb)))?;
            a * b
        }
        BinOp::FloorDiv | BinOp::Mod => {
            if b.is_zero() {
                let msg = if op == BinOp::Mod {
                    "integer modulo by zero"
                } else {
                    "integer division or modulo by zero"
                };
                return Err(zero_div(it, msg));
            }
            charge(it, ba, words(ba).saturating_mul(words(bb)))?;
            if op == BinOp::Mod {
                a.mod_floor(b)
            } else {
                a.div_floor(b)
            }
        }
        BinOp::Div => {
            if b.is_zero() {
                return Err(zero_div(it, "division by zero"));
            }
            return true_div(it, a, b);
        }
        BinOp::Pow => return big_pow(it, a, b),
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        BinOp::BitXor => a ^ b,
        BinOp::LShift => {
            if b.is_negative() {
                return Err(it.value_error("negative shift count"));
            }
            if a.is_zero() {
                return Ok(Obj::Int(0));
            }
            let n = b.to_u64().unwrap_or(u64::MAX);
            charge(it, ba.saturating_add(n), words(ba.saturating_add(n)))?;
            a << n
        }
        BinOp::RShift => {
            if b.is_negative() {
                return Err(it.value_error("negative shift count"));
            }
            match b.to_u64() {
                Some(n) if n < ba + 1 => a >> n,
                _ => {
                    if a.is_negative() {
                        BigInt::from(-1)
                    } else {
                        BigInt::zero()
                    }
                }
            }
        }
    }))
}

fn true_div(it: &Interp, a: &BigInt, b: &BigInt) -> R<Obj> {
    if let (Some(x), Some(y)) = (a.to_f64(), b.to_f64()) {
        if x.is_finite() && y.is_finite() && x.abs() < 9e15 && y.abs() < 9e15 {
            return Ok(Obj::Float(x / y));
        }
    }
    // Scale the magnitudes so the quotient keeps 64 significant bits, then convert once.
    let negative = a.is_negative() != b.is_negative();
    let (a, b) = (a.abs(), b.abs());
    let shift = bits_of(&b) as i64 - bits_of(&a) as i64 + 64;
    let (num, den) = if shift >= 0 {
        (&a << shift as u64, b.clone())
    } else {
        (a.clone(), &b << (-shift) as u64)
    };
    let (mut q, r) = num.div_rem(&den);
    // A sticky bit for a non-zero remainder: the 64-bit quotient then rounds to 53 bits
    // exactly as the true quotient does.
    if !r.is_zero() {
        q |= BigInt::from(1);
    }
    let q = if negative { -q } else { q };
    // Two steps, so neither factor over- or underflows on its own.
    let half = -shift / 2;
    let f = q.to_f64().unwrap_or(f64::INFINITY)
        * 2f64.powi(half as i32)
        * 2f64.powi((-shift - half) as i32);
    if !f.is_finite() {
        return Err(it.exc(
            ExcKind::OverflowError,
            "integer division result too large for a float",
        ));
    }
    Ok(Obj::Float(f))
}

fn big_pow(it: &mut Interp, a: &BigInt, b: &BigInt) -> R<Obj> {
    if b.is_negative() {
        if a.is_zero() {
            return Err(zero_div(it, "0.0 cannot be raised to a negative power"));
        }
        let x = int_to_f64(it, &int_obj(a.clone()))?;
        let y = b.to_f64().unwrap_or(f64::NEG_INFINITY);
        return Ok(Obj::Float(x.powf(y)));
    }
    let one = BigInt::from(1);
    if a.is_zero() || *a == one {
        return Ok(int_obj(if b.is_zero() { one } else { a.clone() }));
    }
    if *a == BigInt::from(-1) {
        return Ok(Obj::Int(if b.is_even() { 1 } else { -1 }));
    }
    let e = b.to_u64().unwrap_or(u64::MAX);
    let bits = (bits_of(a) - 1).max(1).saturating_mul(e);
    let w = bits / 64 + 1;
    charge(it, bits, w.saturating_mul(w).min(u64::MAX / 2))?;
    let e = u32::try_from(e).map_err(|_| it.limit("integer power exceeds the memory budget"))?;
    Ok(int_obj(a.pow(e)))
}

/// `pow(a, b, m)`.
pub fn pow_mod(it: &mut Interp, a: &BigInt, b: &BigInt, m: &BigInt) -> R<Obj> {
    if m.is_zero() {
        return Err(it.value_error("pow() 3rd argument cannot be 0"));
    }
    if b.is_negative() {
        return Err(it.value_error("base is not invertible for the given modulus"));
    }
    let w = bits_of(m) / 64 + 1;
    it.tick(bits_of(b).saturating_mul(w).saturating_mul(w) / 16)?;
    let r = a.modpow(b, &m.abs());
    // Python's result takes the modulus's sign.
    let r = if m.is_negative() && !r.is_zero() {
        r + m
    } else {
        r
    };
    Ok(int_obj(r))
}

/// Exact comparison of an int with a float (None when the float is NaN).
pub fn cmp_int_float(i: &BigInt, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.is_infinite() {
        return Some(if f > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let fl = f.floor();
    let fb = BigInt::from_f64(fl)?;
    match i.cmp(&fb) {
        Ordering::Equal if f > fl => Some(Ordering::Less),
        o => Some(o),
    }
}

/// Exact comparison of an i64 with a float.
pub fn cmp_i64_float(i: i64, f: f64) -> Option<Ordering> {
    if (i.unsigned_abs()) < (1u64 << 53) {
        return (i as f64).partial_cmp(&f);
    }
    cmp_int_float(&BigInt::from(i), f)
}

/// `int(f)` for a float: truncation, exact at any size.
pub fn float_to_int(it: &Interp, f: f64) -> R<Obj> {
    if f.is_nan() {
        return Err(it.value_error("cannot convert float NaN to integer"));
    }
    if f.is_infinite() {
        return Err(it.exc(
            ExcKind::OverflowError,
            "cannot convert float infinity to integer",
        ));
    }
    let t = f.trunc();
    if t.abs() < 9.2e18 {
        return Ok(Obj::Int(t as i64));
    }
    Ok(BigInt::from_f64(t).map(int_obj).unwrap_or(Obj::Int(0)))
}
