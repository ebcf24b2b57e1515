//! GQA `semantic` → step programs on a hand-made sample in GQA's real question format.

use sdvp_core::ValueType;
use sdvp_generate::gqa::{convert, parse_semantic, ConvertError, SemanticOp};
use sdvp_program::exec::check_program;
use sdvp_program::steps::Registry;
use std::collections::BTreeMap;

fn sample() -> BTreeMap<String, serde_json::Value> {
    let text = include_str!("fixtures/gqa_semantic_sample.json");
    serde_json::from_str(text).expect("fixture is GQA-format JSON")
}

fn program(id: &str) -> String {
    let q = &sample()[id];
    convert(&parse_semantic(&q["semantic"]).unwrap()).unwrap()
}

#[test]
fn every_sample_question_converts_to_a_valid_program() {
    let registry = Registry::visual_reasoning(Default::default());
    let questions = sample();
    assert!(questions.len() >= 12);
    for (id, q) in &questions {
        let ops = parse_semantic(&q["semantic"]).unwrap();
        let p = convert(&ops).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(
            p.ends_with("FINAL_RESULT=RESULT(var=")
                || p.lines()
                    .last()
                    .unwrap()
                    .starts_with("FINAL_RESULT=RESULT(var=")
        );
        if let Err(problems) = check_program(&p, &registry, &[("IMAGE", ValueType::Image)]) {
            panic!("{id}:\n{p}\n{problems:?}");
        }
        // Every line is one module call of the registry.
        for line in p.lines() {
            let module = line.split_once('=').unwrap().1.split('(').next().unwrap();
            assert!(registry.get(module).is_some(), "{id}: {module}");
        }
    }
}

#[test]
fn relation_query_crops_around_the_anchor() {
    assert_eq!(
        program("20001"),
        "BOX0=LOC(image=IMAGE,object='table')
IMAGE0=CROP(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='cup')
IMAGE1=CROP(image=IMAGE0,box=BOX1)
ANSWER0=VQA(image=IMAGE1,question='What color is the cup?')
FINAL_RESULT=RESULT(var=ANSWER0)"
    );
}

#[test]
fn spatial_relation_exist_uses_the_directional_crop_and_count() {
    assert_eq!(
        program("20002"),
        "BOX0=LOC(image=IMAGE,object='man')
IMAGE0=CROP_LEFTOF(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='bicycle')
ANSWER0=COUNT(box=BOX1)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)"
    );
}

#[test]
fn unnamed_objects_filters_and_logic() {
    let p = program("20003");
    assert!(
        p.contains("VQA(image=IMAGE0,question='What is the thing the man is holding?')"),
        "{p}"
    );
    let p = program("20005");
    assert!(
        p.contains("LOC(image=IMAGE,object='white refrigerator')"),
        "{p}"
    );
    assert!(
        p.contains("EVAL(expr=\"'yes' if {ANSWER0} == 'yes' or {ANSWER1} == 'yes' else 'no'\")"),
        "{p}"
    );
    let p = program("20006");
    assert!(
        p.contains("question='Is the appliance that is not large silver or black?'"),
        "{p}"
    );
    let p = program("20008");
    assert!(
        p.contains("EVAL(expr=\"'yes' if {ANSWER0} == {ANSWER1} else 'no'\")"),
        "{p}"
    );
    assert_eq!(program("20010"), "ANSWER0=VQA(image=IMAGE,question='Which place is this?')\nFINAL_RESULT=RESULT(var=ANSWER0)");
}

#[test]
fn unsupported_and_malformed_programs_are_errors_not_guesses() {
    let op = |operation: &str, deps: Vec<usize>, argument: &str| SemanticOp {
        operation: operation.into(),
        dependencies: deps,
        argument: argument.into(),
    };
    assert_eq!(convert(&[]), Err(ConvertError::Empty));
    assert!(matches!(
        convert(&[op("select", vec![], "cat (1)"), op("teleport", vec![0], "")]),
        Err(ConvertError::Unsupported { index: 1, .. })
    ));
    assert!(matches!(
        convert(&[op("query", vec![3], "color")]),
        Err(ConvertError::Bad { .. })
    ));
    assert!(matches!(
        convert(&[op("select", vec![], "cat (1)")]),
        Err(ConvertError::Bad { .. })
    ));
    assert!(matches!(
        convert(&[
            op("select", vec![], "cat (1)"),
            op("relate", vec![0], "no relation here")
        ]),
        Err(ConvertError::Bad { .. })
    ));
    assert!(parse_semantic(&serde_json::json!({"not": "a list"})).is_err());
}
