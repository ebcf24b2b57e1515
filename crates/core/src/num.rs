//! Floats in JSON that read back as written.
//!
//! JSON has no infinities or NaN, and serde_json writes them as `null`, which then fails to
//! read as a number: a Python program returning `float('inf')`, or a box of 1e39 in f32,
//! would make its own trace file unreadable. Non-finite values are written as the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"` (the spellings of Python's `json` module, quoted
//! so the file stays JSON); `null` reads back as NaN so traces of older versions still load.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::Deserialize;

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

struct F64Visitor;

impl<'de> Visitor<'de> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
}

/// `#[serde(with = "crate::num::f64_json")]`
pub mod f64_json {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match special(*v) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_f64(*v),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F64Visitor)
    }
}

/// `#[serde(with = "crate::num::f32_json")]`: an f32 that overflowed (1e39) is `Infinity`.
pub mod f32_json {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        match special(f64::from(*v)) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_f32(*v),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        d.deserialize_any(F64Visitor).map(|v| v as f32)
    }
}

#[derive(Deserialize)]
struct F32(#[serde(with = "f32_json")] f32);

/// `#[serde(with = "crate::num::vec_f32_json")]`
pub mod vec_f32_json {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            match special(f64::from(*x)) {
                Some(name) => seq.serialize_element(name)?,
                None => seq.serialize_element(x)?,
            }
        }
        seq.end()
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<F32>::deserialize(d)?
            .into_iter()
            .map(|x| x.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(with = "super::f64_json")]
        a: f64,
        #[serde(with = "super::f32_json")]
        b: f32,
        #[serde(with = "super::vec_f32_json")]
        c: Vec<f32>,
    }

    #[test]
    fn non_finite_round_trips() {
        let t = T {
            a: f64::INFINITY,
            b: f32::NEG_INFINITY,
            c: vec![1.5, f32::INFINITY, -0.25],
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(
            s,
            r#"{"a":"Infinity","b":"-Infinity","c":[1.5,"Infinity",-0.25]}"#
        );
        assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t);
        let n: T = serde_json::from_str(r#"{"a":"NaN","b":null,"c":[]}"#).unwrap();
        assert!(n.a.is_nan() && n.b.is_nan());
        let f: T = serde_json::from_str(r#"{"a":2,"b":0.5,"c":[3]}"#).unwrap();
        assert_eq!((f.a, f.b, f.c), (2.0, 0.5, vec![3.0]));
    }
}
