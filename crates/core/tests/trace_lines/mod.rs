//! Traces files for the fuzz targets of the trace reader (core) and of resume (eval): real
//! trace lines, hostile lines, and edits (tears, flips, splices, BOM, CRLF, non-UTF-8).
//! Included by both tests with `#[path]`, so the two targets draw from one generator.
#![allow(dead_code)]

use proptest::prelude::*;
use sdvp_core::trace::{ProgramStyle, Trace, TraceStep};
use sdvp_core::{ImageRef, Value};
use std::collections::BTreeMap;

#[path = "../support/fuzz.rs"]
mod fuzz_support;
pub use fuzz_support::fuzz;

/// Real trace lines: step and Python style, non-finite numbers, images, errors.
pub fn good_lines() -> Vec<Vec<u8>> {
    let values = [
        Value::Number(f64::NAN),
        Value::Number(f64::NEG_INFINITY),
        Value::Number(1e308),
        Value::Text("ünïcödé \u{feff} \"quoted\"\n".into()),
        Value::Bool(false),
        Value::Image(ImageRef::new("gqa-world/val/0001", 64, 48)),
    ];
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let style = if i % 2 == 0 {
                ProgramStyle::Step
            } else {
                ProgramStyle::Python
            };
            let mut t = Trace::new(format!("id{i}"), style, "A=EVAL(expr='1')\nR=RESULT(var=A)");
            t.steps.push(TraceStep {
                index: 0,
                line: 1,
                text: "A=EVAL(expr='1')".into(),
                module: "EVAL".into(),
                output_var: Some("A".into()),
                args: BTreeMap::from([("expr".to_string(), v.clone())]),
                output: Some(v.clone()),
                calls: Vec::new(),
                micros: u64::MAX,
                error: None,
            });
            t.result = Some(v);
            t.answer = Some("1".into());
            serde_json::to_vec(&t).unwrap()
        })
        .collect()
}

/// Lines found hostile: deep nesting, huge numbers, wrong types, a BOM, not UTF-8.
pub fn hostile_lines() -> Vec<Vec<u8>> {
    let good = String::from_utf8(good_lines().remove(0)).unwrap();
    vec![
        b"{".to_vec(),
        b"{}".to_vec(),
        b"null".to_vec(),
        b"{\"id\": 1}".to_vec(),
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(10_000).into_bytes(),
        good.replace("\"micros\":", "\"micros\":1e999,\"x\":")
            .into_bytes(),
        good.replace("\"micros\":18446744073709551615", "\"micros\":-1")
            .into_bytes(),
        format!("\u{feff}{good}").into_bytes(),
        b"\xff\xfe\x00".to_vec(),
        good.as_bytes()[..good.len() / 2].to_vec(),
    ]
}

#[derive(Debug, Clone)]
pub enum Edit {
    Keep,
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => Just(Edit::Keep),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

pub fn apply(mut line: Vec<u8>, e: &Edit) -> Vec<u8> {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *e {
        Edit::Keep => {}
        Edit::Truncate(i) => line.truncate(at(i, line.len())),
        Edit::Flip(i, b) if !line.is_empty() => {
            let i = at(i, line.len());
            line[i] ^= b | 1;
        }
        Edit::Flip(..) => {}
        Edit::Insert(i, b) => line.insert(at(i, line.len() + 1), b),
    }
    line
}

/// A file of up to a dozen lines from the seeds, each possibly edited.
pub fn traces_file() -> impl Strategy<Value = Vec<u8>> {
    let mut seeds = good_lines();
    seeds.extend(hostile_lines());
    let n = seeds.len();
    (
        prop::collection::vec((0..n, edit()), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(lines, crlf, trailing)| {
            let mut out = Vec::new();
            for (k, (i, e)) in lines.iter().enumerate() {
                if k > 0 {
                    out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                }
                out.extend(apply(seeds[*i].clone(), e));
            }
            if trailing {
                out.push(b'\n');
            }
            out
        })
}
