//! Fuzz targets on the stable toolchain: structure-aware programs and EVAL expressions,
//! seeded with the hostile inputs of issue 14, run through the parser, validation, the
//! executor and the expression interpreter. None may panic, hang or misplace a problem.
//!
//! Each target runs a short budget as a normal test; `SDVP_FUZZ_SECS=600 cargo test -p
//! sdvp-program --test fuzz_program -- --nocapture` runs each for ten minutes. Rounds are
//! seeded by their number, so a run is reproducible and a failure prints its shrunk input.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sdvp_core::scripted::{Script, ScriptedBackend};
use sdvp_program::exec::{check_program, run_step_programs, Job};
use sdvp_program::expr;
use sdvp_program::scheduler::SchedulerConfig;
use sdvp_program::steps::Registry;
use sdvp_program::{ImageRef, Value, ValueType};
use std::collections::BTreeMap;

#[path = "../../core/tests/support/fuzz.rs"]
mod fuzz_support;
use fuzz_support::fuzz;

/// Pieces of step programs, good and hostile, that lines are assembled from.
fn fragment() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "BOX0=LOC(image=IMAGE,object='cup')",
        "IMAGE0=CROP(image=IMAGE,box=BOX0)",
        "ANSWER0=VQA(image=IMAGE0,question='What color?')",
        "ANSWER1=COUNT(box=BOX0)",
        "ANSWER2=EVAL(expr=\"'yes' if {ANSWER1} > 0 else 'no'\")",
        "ANSWER3=EVAL(expr='{ANSWER0} == \\'red\\' and not {ANSWER2}')",
        "ANSWER4=VERIFY_PROPERTY(image=LEFT,object='dog',property='big')",
        "FINAL_RESULT=RESULT(var=ANSWER2)",
        "FINAL=RESULT(var=ANSWER)",
        "\u{feff}",
        "\u{200b}",
        "```",
        "Question: how many?",
        "Program:",
        "# comment",
        "=",
        "(",
        ")",
        "'",
        "\"",
        "\\",
        ",",
        "{",
        "}",
        "{ANSWER0}",
        " ",
        "\t",
        "1e999",
        "-9223372036854775809",
        "9223372036854775807",
        "0.5",
        "True",
        "False",
        "IMAGE",
        "LEFT",
        "RIGHT",
        "vqa(",
        "Image=",
        "expr=",
        "RESULT(",
    ]);
    prop_oneof![
        6 => fixed.prop_map(str::to_string),
        2 => "[A-Za-z_][A-Za-z0-9_]{0,6}",
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
        1 => (prop::sample::select(vec!["(", "{", "'", "x"]), 1usize..200)
            .prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..6).prop_map(|f| f.concat())
}

/// Programs of up to a few dozen lines; sometimes one line repeated many times.
fn program() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::collection::vec(line(), 0..16), any::<bool>())
            .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" })),
        1 => (line(), 1usize..300).prop_map(|(l, n)| format!("{l}\n").repeat(n)),
    ]
}

fn script() -> ScriptedBackend {
    let any = |v: &str| BTreeMap::from([("*".to_string(), v.to_string())]);
    ScriptedBackend::new(Script {
        detect: BTreeMap::from([("*".to_string(), vec![[1.0, 2.0, 30.0, 40.0]])]),
        vqa: any("red"),
        verify: BTreeMap::from([("*".to_string(), true)]),
        classify: BTreeMap::from([("*".to_string(), 0)]),
        depth: BTreeMap::from([("*".to_string(), 1.5)]),
        llm: any("yes"),
    })
}

/// The regression inputs the fuzzers and the hostile review found; checked on every run.
const REGRESSIONS: &[&str] = &[
    "\u{feff}A=VQA(image=IMAGE,question='q')\nR=RESULT(var=A)",
    "A=VQA(image=IMAGE,\u{feff}question='q')",
    "X=EVAL(expr='((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1')",
    "X=EVAL(expr='{X}')\nR=RESULT(var=X)",
    "X=EVAL(expr='1/0')\nR=RESULT(var=X)",
    "X=EVAL(expr='-9223372036854775808 % -1')\nR=RESULT(var=X)",
];

fn check_one(source: &str) -> Result<(), TestCaseError> {
    let registry = Registry::visual_reasoning(Default::default());
    let lines = source.lines().count().max(1);
    for inputs in [
        &[("IMAGE", ValueType::Image)][..],
        &[("LEFT", ValueType::Image), ("RIGHT", ValueType::Image)],
    ] {
        if let Err(problems) = check_program(source, &registry, inputs) {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(p.line >= 1 && p.line <= lines + 1, "{p:?} of {lines} lines");
                prop_assert!(p.column >= 1, "{p:?}");
                prop_assert!(!p.message.is_empty());
            }
        }
    }
    let image = || Value::Image(ImageRef::new("img", 64, 48));
    let job = Job {
        id: "fuzz".into(),
        source: source.to_string(),
        inputs: BTreeMap::from([
            ("IMAGE".to_string(), image()),
            ("LEFT".to_string(), image()),
        ]),
        meta: BTreeMap::new(),
    };
    let (traces, _) = run_step_programs(
        &registry,
        &script(),
        SchedulerConfig::default(),
        std::slice::from_ref(&job),
    );
    prop_assert_eq!(traces.len(), 1);
    let t = &traces[0];
    prop_assert!(t.answer.is_some() != t.error.is_some(), "{t:?}");
    Ok(())
}

#[test]
fn fuzz_step_programs() {
    for r in REGRESSIONS {
        check_one(r).unwrap();
    }
    fuzz("step programs", 3000, program(), |s| check_one(&s));
}

/// EVAL expressions: tokens of the grammar plus junk, in any order.
fn expression() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        8 => prop::sample::select(vec![
            "{A}", "{N}", "{B}", "{X}", "'{A}'", "'yes'", "'no'", "'red'", "1", "0", "2.5",
            "-1", "1e308", "9223372036854775807", "True", "False", "+", "-", "*", "/", "%",
            "==", "!=", "<", "<=", ">", ">=", "and", "or", "xor", "not", "if", "else", "(",
            ")", "'", "\"", "{", "}", "\\", " ",
        ])
        .prop_map(str::to_string),
        1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
        1 => (prop::sample::select(vec!["(", "not ", "-", "{"]), 1usize..120)
            .prop_map(|(s, n)| s.repeat(n)),
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.join(" "))
}

#[test]
fn fuzz_eval_expressions() {
    let env = |name: &str| match name {
        "A" => Some(Value::Text("Red".into())),
        "N" => Some(Value::Number(f64::MAX)),
        "B" => Some(Value::Bool(true)),
        _ => None,
    };
    fuzz("EVAL expressions", 2000, expression(), |text| {
        if let Ok(parsed) = expr::parse(&text) {
            let _ = expr::eval(&parsed, &env);
            // What parses as an EVAL argument checks and runs as a step too.
            let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
            check_one(&format!(
                "A=VQA(image=IMAGE,question='q')\nN=COUNT(box=BOXES)\nX=EVAL(expr=\"{quoted}\")\nR=RESULT(var=X)"
            ))?;
        }
        Ok(())
    });
}
