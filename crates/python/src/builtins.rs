//! Built-in functions, the `math` module, and sorting with Python-level key functions.
//!
//! This table *is* the sandbox's ambient authority: nothing here touches files, the network,
//! the environment, the clock or the interpreter's internals.

use crate::ast::{BinOp, Loc};
use crate::interp::{Interp, Kwargs, R};
use crate::obj::{range_len, ExcKind, Obj};
use crate::{format, ops};
use std::cmp::Ordering;

const BUILTINS: &[&str] = &[
    "len",
    "sum",
    "min",
    "max",
    "abs",
    "round",
    "int",
    "float",
    "str",
    "bool",
    "range",
    "enumerate",
    "zip",
    "list",
    "tuple",
    "dict",
    "set",
    "sorted",
    "reversed",
    "any",
    "all",
    "isinstance",
    "frozenset",
    "divmod",
    "pow",
    "hex",
    "bin",
    "oct",
    "ord",
    "chr",
    "format",
    "iter",
    "next",
    "callable",
    "print",
    "repr",
    "map",
    "filter",
    "ImagePatch",
    "best_image_match",
    "distance",
    "bool_to_yesno",
    "coerce_to_numeric",
    "llm_query",
];

/// `dict(a=1)`: any keyword is a key.
const DICT_KW: &[&str] = &[];

const MATH_FNS: &[&str] = &[
    "math.sqrt",
    "math.floor",
    "math.ceil",
    "math.fabs",
    "math.pow",
    "math.log",
    "math.exp",
    "math.sin",
    "math.cos",
    "math.tan",
    "math.atan2",
    "math.hypot",
    "math.isclose",
    "math.gcd",
    "math.lcm",
    "math.trunc",
    "math.factorial",
    "math.log2",
    "math.log10",
    "math.prod",
    "math.degrees",
    "math.radians",
    "math.isqrt",
    "math.comb",
    "math.perm",
    "math.isnan",
    "math.isinf",
    "math.isfinite",
    "math.asin",
    "math.acos",
    "math.atan",
    "math.copysign",
    "math.fsum",
    "math.dist",
];

/// The type a builtin names, if it is a type (`int`, `str`, …): its repr is `<class '…'>`
/// and its methods can be taken unbound (`key=str.lower`).
pub fn type_name_of(b: &str) -> Option<&'static str> {
    [
        "int",
        "float",
        "str",
        "bool",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "range",
    ]
    .into_iter()
    .find(|t| *t == b)
}

/// A builtin by name, if the sandbox offers it.
pub fn lookup(name: &str) -> Option<Obj> {
    if let Some(b) = BUILTINS.iter().find(|b| **b == name) {
        return Some(Obj::Builtin(b));
    }
    if name == "Ellipsis" {
        return Some(Obj::Ellipsis);
    }
    ExcKind::from_name(name).map(Obj::ExcType)
}

/// `math.<name>`.
pub fn math_attr(name: &str) -> Option<Obj> {
    match name {
        "pi" => Some(Obj::Float(std::f64::consts::PI)),
        "e" => Some(Obj::Float(std::f64::consts::E)),
        "inf" => Some(Obj::Float(f64::INFINITY)),
        "nan" => Some(Obj::Float(f64::NAN)),
        "tau" => Some(Obj::Float(std::f64::consts::TAU)),
        _ => MATH_FNS
            .iter()
            .find(|f| f.strip_prefix("math.") == Some(name))
            .map(|f| Obj::Builtin(f)),
    }
}

fn num(it: &Interp, o: &Obj, fname: &str) -> R<f64> {
    o.as_f64()
        .ok_or_else(|| it.type_error(format!("{fname}() needs a number, not '{}'", o.type_name())))
}

pub(crate) fn kwarg(kwargs: &Kwargs, name: &str) -> Option<Obj> {
    kwargs
        .iter()
        .find(|(k, _)| &**k == name)
        .map(|(_, v)| v.clone())
}

impl<'a> Interp<'a> {
    pub(crate) fn arity(&self, name: &str, args: &[Obj], min: usize, max: usize) -> R<()> {
        if args.len() < min || args.len() > max {
            return Err(self.type_error(format!(
                "{name}() takes {min}..{max} positional arguments ({} given)",
                args.len()
            )));
        }
        Ok(())
    }

    /// Compute `key(x)` for every element (the key may be a Python function that calls models).
    async fn keys_of(&mut self, items: &[Obj], key: &Option<Obj>, loc: Loc) -> R<Vec<Obj>> {
        let mut keys = Vec::with_capacity(items.len());
        for x in items {
            keys.push(match key {
                Some(Obj::None) | None => x.clone(),
                Some(f) => {
                    self.call_obj(f.clone(), vec![x.clone()], Vec::new(), loc)
                        .await?
                }
            });
        }
        Ok(keys)
    }

    /// Stable sort of `items` by precomputed keys, raising on incomparable keys.
    fn sort_by_keys(&mut self, items: Vec<Obj>, keys: Vec<Obj>, reverse: bool) -> R<Vec<Obj>> {
        self.tick((items.len() as u64).saturating_mul(8))?;
        let mut idx: Vec<usize> = (0..items.len()).collect();
        let mut err = None;
        idx.sort_by(|&a, &b| {
            if err.is_some() {
                return Ordering::Equal;
            }
            let (x, y) = if reverse {
                (&keys[b], &keys[a])
            } else {
                (&keys[a], &keys[b])
            };
            match ops::cmp(self, x, y, 0) {
                Ok(o) => o.unwrap_or(Ordering::Equal),
                Err(e) => {
                    err = Some(e);
                    Ordering::Equal
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        Ok(idx.into_iter().map(|i| items[i].clone()).collect())
    }

    pub async fn list_sort(&mut self, list: &Obj, args: Vec<Obj>, kwargs: Kwargs) -> R<Obj> {
        let Obj::List(l) = list else {
            return Err(self.type_error("sort() needs a list"));
        };
        self.arity("sort", &args, 0, 0)?;
        let items = l.items.borrow().clone();
        let loc = self.loc();
        let keys = self.keys_of(&items, &kwarg(&kwargs, "key"), loc).await?;
        let reverse = kwarg(&kwargs, "reverse").is_some_and(|r| r.truthy());
        let sorted = self.sort_by_keys(items, keys, reverse)?;
        *l.items.borrow_mut() = sorted;
        Ok(Obj::None)
    }

    async fn min_max(&mut self, name: &str, args: Vec<Obj>, kwargs: &Kwargs, loc: Loc) -> R<Obj> {
        let items = match args.as_slice() {
            [one] => self.collect(one)?,
            [] => return Err(self.type_error(format!("{name} expected at least 1 argument"))),
            _ => args,
        };
        if items.is_empty() {
            return match kwarg(kwargs, "default") {
                Some(d) => Ok(d),
                None => Err(self.value_error(format!("{name}() arg is an empty sequence"))),
            };
        }
        let keys = self.keys_of(&items, &kwarg(kwargs, "key"), loc).await?;
        let want = if name == "min" {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        let mut best = 0;
        for i in 1..items.len() {
            if ops::cmp(self, &keys[i], &keys[best], 0)? == Some(want) {
                best = i;
            }
        }
        Ok(items[best].clone())
    }

    /// Call a builtin function.
    pub async fn call_builtin(
        &mut self,
        name: &'static str,
        args: Vec<Obj>,
        kwargs: Kwargs,
        loc: Loc,
    ) -> R<Obj> {
        let allowed_kw: &[&str] = match name {
            "sorted" => &["key", "reverse"],
            "min" | "max" => &["key", "default"],
            "print" => &["sep", "end"],
            "enumerate" => &["start"],
            "sum" => &["start"],
            "int" => &["base"],
            "round" => &["ndigits"],
            "pow" => &["base", "exp", "mod"],
            "dict" => DICT_KW,
            "coerce_to_numeric" => &["no_string"],
            "llm_query" => &["context", "long_answer"],
            "best_image_match" => &["return_index"],
            "ImagePatch" => &["left", "lower", "right", "upper"],
            _ => &[],
        };
        let open_kw = name == "dict";
        if let Some((k, _)) = kwargs
            .iter()
            .find(|(k, _)| !open_kw && !allowed_kw.contains(&&**k))
        {
            return Err(
                self.type_error(format!("{name}() got an unexpected keyword argument '{k}'"))
            );
        }
        if name.starts_with("math.") {
            return self.math_call(name, &args);
        }
        match name {
            "len" => {
                self.arity(name, &args, 1, 1)?;
                let n = match &args[0] {
                    Obj::Str(s) => s.chars().count(),
                    Obj::List(l) => l.items.borrow().len(),
                    Obj::Tuple(t) => t.items.len(),
                    Obj::Dict(d) | Obj::Set(d) => d.table.borrow().len(),
                    Obj::DictView(v) => v.0.table.borrow().len(),
                    Obj::Range(a, b, s) => range_len(*a, *b, *s) as usize,
                    o => {
                        return Err(self.type_error(format!(
                            "object of type '{}' has no len()",
                            o.type_name()
                        )))
                    }
                };
                Ok(Obj::Int(n as i64))
            }
            "sum" => {
                self.arity(name, &args, 1, 2)?;
                let items = self.collect(&args[0])?;
                let mut acc = args
                    .get(1)
                    .cloned()
                    .or_else(|| kwarg(&kwargs, "start"))
                    .unwrap_or(Obj::Int(0));
                self.tick(items.len() as u64)?;
                for x in &items {
                    acc = ops::binop(self, BinOp::Add, &acc, x)?;
                }
                Ok(acc)
            }
            "min" | "max" => self.min_max(name, args, &kwargs, loc).await,
            "abs" | "round" | "int" | "float" | "divmod" | "pow" | "hex" | "bin" | "oct"
            | "ord" | "chr" | "format" | "iter" | "next" | "callable" => {
                self.call_more(name, args, &kwargs)
            }
            "str" => {
                self.arity(name, &args, 0, 1)?;
                match args.first() {
                    None => Ok(Obj::str("")),
                    Some(o) => {
                        let s = format::to_str(self, o)?;
                        self.new_str(s)
                    }
                }
            }
            "repr" => {
                self.arity(name, &args, 1, 1)?;
                let s = format::repr(self, &args[0])?;
                self.new_str(s)
            }
            "bool" => {
                self.arity(name, &args, 0, 1)?;
                Ok(Obj::Bool(args.first().is_some_and(|o| o.truthy())))
            }
            "range" => {
                self.arity(name, &args, 1, 3)?;
                let mut v = Vec::with_capacity(3);
                for a in &args {
                    v.push(a.as_int().ok_or_else(|| {
                        self.type_error(format!(
                            "'{}' object cannot be interpreted as an integer",
                            a.type_name()
                        ))
                    })?);
                }
                let (a, b, s) = match v.as_slice() {
                    [b] => (0, *b, 1),
                    [a, b] => (*a, *b, 1),
                    [a, b, s] => (*a, *b, *s),
                    _ => (0, 0, 1),
                };
                if s == 0 {
                    return Err(self.value_error("range() arg 3 must not be zero"));
                }
                Ok(Obj::Range(a, b, s))
            }
            "enumerate" => {
                self.arity(name, &args, 1, 2)?;
                let items = self.collect(&args[0])?;
                let start = args
                    .get(1)
                    .cloned()
                    .or_else(|| kwarg(&kwargs, "start"))
                    .and_then(|o| o.as_int())
                    .unwrap_or(0);
                let mut out = Vec::with_capacity(items.len());
                for (i, x) in items.into_iter().enumerate() {
                    out.push(self.new_tuple(vec![Obj::Int(start.saturating_add(i as i64)), x])?);
                }
                self.new_list(out)
            }
            "zip" => {
                let mut cols = Vec::with_capacity(args.len());
                for a in &args {
                    cols.push(self.collect(a)?);
                }
                let n = cols.iter().map(Vec::len).min().unwrap_or(0);
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let row = cols.iter().map(|c| c[i].clone()).collect();
                    out.push(self.new_tuple(row)?);
                }
                self.new_list(out)
            }
            "frozenset" => {
                self.arity(name, &args, 0, 1)?;
                let empty = self.new_set(Vec::new())?;
                self.freeze(args.first().unwrap_or(&empty))
            }
            "list" | "tuple" | "set" | "reversed" => {
                self.arity(name, &args, 0, 1)?;
                if let (Some(Obj::Set(d) | Obj::Dict(d)), "set") = (args.first(), name) {
                    return Ok(Obj::Set(self.set_copy(d)?));
                }
                let mut items = match args.first() {
                    Some(o) => self.collect(o)?,
                    None => Vec::new(),
                };
                match name {
                    "list" => self.new_list(items),
                    "tuple" => self.new_tuple(items),
                    "set" => self.new_set(items),
                    _ => {
                        items.reverse();
                        self.new_list(items)
                    }
                }
            }
            "dict" => {
                self.arity(name, &args, 0, 1)?;
                let mut pairs = Vec::new();
                if let Some(o) = args.first() {
                    if let Obj::Dict(d) = o {
                        pairs = d.table.borrow().entries.clone();
                    } else {
                        for p in self.collect(o)? {
                            let kv = self.collect(&p)?;
                            if kv.len() != 2 {
                                return Err(self.value_error(
                                    "dictionary update sequence element has wrong length",
                                ));
                            }
                            pairs.push((kv[0].clone(), kv[1].clone()));
                        }
                    }
                }
                for (k, v) in kwargs {
                    pairs.push((Obj::Str(k), v));
                }
                self.new_dict(pairs)
            }
            "sorted" => {
                self.arity(name, &args, 1, 1)?;
                let items = self.collect(&args[0])?;
                let keys = self.keys_of(&items, &kwarg(&kwargs, "key"), loc).await?;
                let reverse = kwarg(&kwargs, "reverse").is_some_and(|r| r.truthy());
                let sorted = self.sort_by_keys(items, keys, reverse)?;
                self.new_list(sorted)
            }
            "any" | "all" => {
                self.arity(name, &args, 1, 1)?;
                let items = self.collect(&args[0])?;
                Ok(Obj::Bool(if name == "any" {
                    items.iter().any(Obj::truthy)
                } else {
                    items.iter().all(Obj::truthy)
                }))
            }
            "map" | "filter" => {
                if args.len() < 2 || (name == "filter" && args.len() != 2) {
                    return Err(
                        self.type_error(format!("{name}() needs a function and an iterable"))
                    );
                }
                let mut cols = Vec::with_capacity(args.len() - 1);
                for a in &args[1..] {
                    cols.push(self.collect(a)?);
                }
                let n = cols.iter().map(Vec::len).min().unwrap_or(0);
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let row: Vec<Obj> = cols.iter().map(|c| c[i].clone()).collect();
                    let x = row[0].clone();
                    let y = match &args[0] {
                        Obj::None if name == "filter" => x.clone(),
                        f => self.call_obj(f.clone(), row, Vec::new(), loc).await?,
                    };
                    if name == "map" {
                        out.push(y);
                    } else if y.truthy() {
                        out.push(x);
                    }
                }
                self.new_list(out)
            }
            "isinstance" => {
                self.arity(name, &args, 2, 2)?;
                Ok(Obj::Bool(self.isinstance(&args[0], &args[1], 0)?))
            }
            "print" => {
                let sep = match kwarg(&kwargs, "sep") {
                    Some(s) => format::to_str(self, &s)?,
                    None => " ".into(),
                };
                let end = match kwarg(&kwargs, "end") {
                    Some(s) => format::to_str(self, &s)?,
                    None => "\n".into(),
                };
                let mut line = String::new();
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        line.push_str(&sep);
                    }
                    line.push_str(&format::to_str(self, a)?);
                }
                line.push_str(&end);
                self.write_output(&line)?;
                Ok(Obj::None)
            }
            "bool_to_yesno" => {
                self.arity(name, &args, 1, 1)?;
                Ok(Obj::str(if args[0].truthy() { "yes" } else { "no" }))
            }
            "coerce_to_numeric" => {
                self.arity(name, &args, 1, 2)?;
                let no_string = args
                    .get(1)
                    .cloned()
                    .or_else(|| kwarg(&kwargs, "no_string"))
                    .is_some_and(|o| o.truthy());
                crate::patch::coerce_to_numeric(self, &args[0], no_string)
            }
            "distance" => {
                self.arity(name, &args, 2, 2)?;
                crate::patch::distance(self, &args[0], &args[1])
            }
            "ImagePatch" => crate::patch::construct(self, &args, &kwargs),
            "best_image_match" => {
                self.arity(name, &args, 2, 3)?;
                let return_index = args
                    .get(2)
                    .cloned()
                    .or_else(|| kwarg(&kwargs, "return_index"))
                    .is_some_and(|o| o.truthy());
                self.best_image_match(&args[0], &args[1], return_index, loc)
                    .await
            }
            "llm_query" => {
                self.arity(name, &args, 1, 3)?;
                self.llm_query(&args[0], loc).await
            }
            _ => Err(self.exc(ExcKind::NameError, format!("name '{name}' is not defined"))),
        }
    }

    fn isinstance(&self, o: &Obj, t: &Obj, depth: usize) -> R<bool> {
        if depth > crate::ops::MAX_VALUE_DEPTH {
            return Err(self.limit("type tuple nested too deeply"));
        }
        Ok(match t {
            Obj::Tuple(ts) => {
                for t in &ts.items {
                    if self.isinstance(o, t, depth + 1)? {
                        return Ok(true);
                    }
                }
                false
            }
            Obj::Builtin(b) => match *b {
                "int" => o.is_int(),
                "float" => matches!(o, Obj::Float(_)),
                "str" => matches!(o, Obj::Str(_)),
                "bool" => matches!(o, Obj::Bool(_)),
                "list" => matches!(o, Obj::List(_)),
                "tuple" => matches!(o, Obj::Tuple(_)),
                "dict" => matches!(o, Obj::Dict(_)),
                "set" => matches!(o, Obj::Set(s) if !s.frozen),
                "frozenset" => matches!(o, Obj::Set(s) if s.frozen),
                "ImagePatch" => matches!(o, Obj::Patch(_)),
                _ => return Err(self.type_error("isinstance() arg 2 must be a type")),
            },
            Obj::ExcType(k) => matches!(o, Obj::Exc(e) if e.kind.is_subclass_of(*k)),
            _ => return Err(self.type_error("isinstance() arg 2 must be a type")),
        })
    }

    fn math_call(&mut self, name: &str, args: &[Obj]) -> R<Obj> {
        let f = name.trim_start_matches("math.");
        if let Some(r) = crate::builtins_num::math_more(self, f, args)? {
            return Ok(r);
        }
        let two = matches!(f, "pow" | "atan2" | "hypot" | "isclose");
        self.arity(
            name,
            args,
            if two { 2 } else { 1 },
            if two || f == "log" { 2 } else { 1 },
        )?;
        let x = num(self, &args[0], name)?;
        let y = match args.get(1) {
            Some(o) => Some(num(self, o, name)?),
            None => None,
        };
        let domain = |it: &Interp| it.value_error("math domain error");
        let v = match f {
            "sqrt" if x < 0.0 => return Err(domain(self)),
            "sqrt" => x.sqrt(),
            "floor" => return crate::num::float_to_int(self, x.floor()),
            "ceil" => return crate::num::float_to_int(self, x.ceil()),
            "fabs" => x.abs(),
            "pow" => x.powf(y.unwrap_or(1.0)),
            "log" if x <= 0.0 => return Err(domain(self)),
            "log" => match y {
                Some(b) if b > 0.0 && b != 1.0 => x.ln() / b.ln(),
                Some(_) => return Err(domain(self)),
                None => x.ln(),
            },
            "exp" => x.exp(),
            "sin" => x.sin(),
            "cos" => x.cos(),
            "tan" => x.tan(),
            "atan2" => x.atan2(y.unwrap_or(1.0)),
            "hypot" => x.hypot(y.unwrap_or(0.0)),
            "isclose" => {
                let y = y.unwrap_or(0.0);
                return Ok(Obj::Bool((x - y).abs() <= 1e-9 * x.abs().max(y.abs())));
            }
            _ => {
                return Err(self.exc(
                    ExcKind::AttributeError,
                    format!("module 'math' has no attribute '{f}'"),
                ))
            }
        };
        Ok(Obj::Float(v))
    }
}
