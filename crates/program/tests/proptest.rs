//! Property tests: printed programs parse back to themselves, and no input text, however
//! broken, makes the parser, validator or expression evaluator panic or overflow.

use proptest::prelude::*;
use sdvp_program::ast::{Arg, ArgValue, Literal, Pos, Program, Step};
use sdvp_program::expr;
use sdvp_program::parser::parse;
use sdvp_program::print::{print_program, strip_positions};
use sdvp_program::steps::{CropSettings, Registry};
use sdvp_program::validate::validate;
use sdvp_program::{Value, ValueType};

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_filter("booleans read back as literals", |s| {
        s != "True" && s != "False"
    })
}

fn value() -> impl Strategy<Value = ArgValue> {
    prop_oneof![
        ident().prop_map(ArgValue::Var),
        any::<String>().prop_map(|s| ArgValue::Lit(Literal::Str(s))),
        any::<i64>().prop_map(|n| ArgValue::Lit(Literal::Int(n))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| ArgValue::Lit(Literal::Float(f))),
        any::<bool>().prop_map(|b| ArgValue::Lit(Literal::Bool(b))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        ident(),
        ident(),
        prop::collection::vec((ident(), value()), 0..4),
    )
        .prop_map(|(output, module, args)| Step {
            line: 0,
            output,
            output_pos: Pos::default(),
            module,
            module_pos: Pos::default(),
            args: args
                .into_iter()
                .map(|(name, value)| Arg {
                    name,
                    name_pos: Pos::default(),
                    value,
                    value_pos: Pos::default(),
                })
                .collect(),
        })
}

/// Pieces of step programs and of the junk around them, so random text often gets deep
/// into the parser instead of failing on its first character.
fn step_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("A".to_string()),
        Just("BOX0".to_string()),
        Just("IMAGE".to_string()),
        Just("=".to_string()),
        Just("LOC".to_string()),
        Just("VQA".to_string()),
        Just("EVAL".to_string()),
        Just("RESULT".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("-1.5e".to_string()),
        Just("Question:".to_string()),
        Just("```".to_string()),
        Just("expr=\"{A} > 0\"".to_string()),
        Just("image=IMAGE".to_string()),
        "[ -~]{0,3}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn expr_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{A}"),
        Just("{B}"),
        Just("{C}"),
        Just("{D}"),
        Just("{NOPE}"),
        Just("'{A}'"),
        Just("'yes'"),
        Just("\"x\\\""),
        Just("1"),
        Just("0"),
        Just("2.5e3"),
        Just("1e308"),
        Just("True"),
        Just("False"),
        Just(" and "),
        Just(" or "),
        Just(" xor "),
        Just(" not "),
        Just(" if "),
        Just(" else "),
        Just("=="),
        Just("!="),
        Just("<"),
        Just(">="),
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("%"),
        Just("("),
        Just(")"),
        Just("{"),
        Just("'"),
        Just(" "),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

fn lookup(name: &str) -> Option<Value> {
    match name {
        "A" => Some(Value::Text("yes".into())),
        "B" => Some(Value::Number(0.0)),
        "C" => Some(Value::Text("blue".into())),
        "D" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn registry() -> Registry {
    Registry::visual_reasoning(CropSettings::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printed_programs_parse_back(steps in prop::collection::vec(step(), 1..6)) {
        let program = Program { steps };
        let text = print_program(&program);
        let (parsed, problems) = parse(&text);
        prop_assert!(problems.is_empty(), "{text}\n{problems:?}");
        prop_assert_eq!(strip_positions(&parsed), program);
        // Printing is canonical: a second round gives the same text.
        prop_assert_eq!(print_program(&parsed), text);
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let (program, _) = parse(&text);
        let _ = validate(&program, &registry(), &[("IMAGE", ValueType::Image)]);
    }

    #[test]
    fn parse_and_validate_never_panic_on_step_soup(text in step_soup()) {
        let (program, problems) = parse(&text);
        for p in &problems {
            prop_assert!(p.line >= 1 && p.column >= 1, "{p}");
        }
        let _ = validate(&program, &registry(), &[("IMAGE", ValueType::Image)]);
    }

    #[test]
    fn expressions_never_panic_on_strings(text in any::<String>()) {
        if let Ok(e) = expr::parse(&text) {
            let _ = expr::eval(&e, &lookup);
        }
    }

    #[test]
    fn expressions_never_panic_on_token_soup(text in expr_soup()) {
        match expr::parse(&text) {
            Ok(e) => {
                if let Err(err) = expr::eval(&e, &lookup) {
                    prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 1, "{err}");
                }
            }
            Err(err) => {
                prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 1, "{err}");
            }
        }
    }
}
