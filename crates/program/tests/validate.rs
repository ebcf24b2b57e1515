//! Validation: one test per problem kind, the usual language-model mistakes, and many
//! problems reported at once.

use sdvp_program::ast::ProblemKind;
use sdvp_program::parser::parse;
use sdvp_program::steps::{CropSettings, Registry};
use sdvp_program::validate::{closest, validate};
use sdvp_program::{Problem, ValueType};

const IMAGE: &[(&str, ValueType)] = &[("IMAGE", ValueType::Image)];
const PAIR: &[(&str, ValueType)] = &[("LEFT", ValueType::Image), ("RIGHT", ValueType::Image)];

fn check(src: &str, inputs: &[(&str, ValueType)]) -> Vec<Problem> {
    let (program, syntax) = parse(src);
    assert!(syntax.is_empty(), "syntax problems: {syntax:?}");
    validate(
        &program,
        &Registry::visual_reasoning(CropSettings::default()),
        inputs,
    )
}

fn kinds(problems: &[Problem]) -> Vec<ProblemKind> {
    problems.iter().map(|p| p.kind).collect()
}

fn single(src: &str, inputs: &[(&str, ValueType)], kind: ProblemKind) -> Problem {
    let problems = check(src, inputs);
    assert_eq!(kinds(&problems), vec![kind], "{problems:#?}");
    problems[0].clone()
}

#[test]
fn valid_gqa_and_nlvr_programs_pass() {
    let gqa = "BOX0=LOC(image=IMAGE,object='cup')
IMAGE0=CROP_LEFTOF(image=IMAGE,box=BOX0)
BOX1=LOC(image=IMAGE0,object='plate')
ANSWER0=COUNT(box=BOX1)
ANSWER1=EVAL(expr=\"'yes' if {ANSWER0} > 0 else 'no'\")
FINAL_RESULT=RESULT(var=ANSWER1)";
    assert_eq!(check(gqa, IMAGE), vec![]);
    let nlvr = "ANSWER0=VQA(image=LEFT,question='Is there a dog?')
ANSWER1=VQA(image=RIGHT,question='Is there a dog?')
ANSWER2=EVAL(expr='{ANSWER0} xor {ANSWER1}')
FINAL_ANSWER=RESULT(var=ANSWER2)";
    assert_eq!(check(nlvr, PAIR), vec![]);
}

#[test]
fn unknown_module_suggests_closest() {
    let p = single(
        "B=LOCATE(image=IMAGE,object='cup')\nR=RESULT(var=B)",
        IMAGE,
        ProblemKind::UnknownModule,
    );
    assert_eq!((p.line, p.column), (1, 3));
    assert!(p.message.contains("did you mean `LOC`?"), "{p}");
}

#[test]
fn unknown_module_lists_modules_when_nothing_is_close() {
    let p = single(
        "B=SEGMENTATION(image=IMAGE)\nR=RESULT(var=B)",
        IMAGE,
        ProblemKind::UnknownModule,
    );
    assert!(
        p.message.contains("known modules:") && p.message.contains("`VQA`"),
        "{p}"
    );
}

#[test]
fn lower_case_module_gets_a_case_fix_and_is_still_checked() {
    let problems = check("A=vqa(image=IMAGE,questin='q')\nR=RESULT(var=A)", IMAGE);
    assert_eq!(
        kinds(&problems),
        vec![
            ProblemKind::UnknownModule,
            ProblemKind::UnknownArgument,
            ProblemKind::MissingArgument
        ],
        "{problems:#?}"
    );
    assert!(problems[0].message.contains("module `vqa` should be `VQA`"));
    assert!(problems[1].message.contains("did you mean `question`?"));
}

#[test]
fn wrong_argument_case() {
    let p = single(
        "A=VQA(Image=RIGHT,question='q')\nR=RESULT(var=A)",
        PAIR,
        ProblemKind::WrongArgumentCase,
    );
    assert_eq!(p.message, "argument `Image` should be `image`");
    assert_eq!(p.column, 7);
}

#[test]
fn unknown_argument() {
    let p = single(
        "B=LOC(image=IMAGE,object='cup',threshold=0.5)\nR=RESULT(var=B)",
        IMAGE,
        ProblemKind::UnknownArgument,
    );
    assert!(
        p.message.contains("`LOC` has no argument `threshold`"),
        "{p}"
    );
    assert!(p.message.contains("`image`, `object`"), "{p}");
}

#[test]
fn missing_argument() {
    let p = single(
        "B=LOC(image=IMAGE,object='cup')\nC=CROP(image=IMAGE)\nR=RESULT(var=C)",
        IMAGE,
        ProblemKind::MissingArgument,
    );
    assert_eq!((p.line, p.column), (2, 3));
    assert!(p.message.contains("`CROP` needs the argument `box`"), "{p}");
}

#[test]
fn duplicate_argument() {
    let p = single(
        "A=VQA(image=IMAGE,question='a',question='b')\nR=RESULT(var=A)",
        IMAGE,
        ProblemKind::DuplicateArgument,
    );
    assert_eq!(p.column, 32);
    assert!(p.message.contains("first at column 19"), "{p}");
}

#[test]
fn undefined_variable_suggests_a_defined_name() {
    let p = single(
        "ANSWER0=VQA(image=IMAGE,question='q')\nR=RESULT(var=ANSWER)",
        IMAGE,
        ProblemKind::UndefinedVariable,
    );
    assert_eq!((p.line, p.column), (2, 14));
    assert!(p.message.contains("did you mean `ANSWER0`?"), "{p}");
}

#[test]
fn lower_case_boolean_is_an_undefined_variable_with_a_hint() {
    let p = single(
        "A=VQA(image=IMAGE,question=true)\nR=RESULT(var=A)",
        IMAGE,
        ProblemKind::UndefinedVariable,
    );
    assert!(p.message.contains("write `True`"), "{p}");
}

#[test]
fn variable_used_before_its_step() {
    let p = single(
        "C=COUNT(box=B)\nB=LOC(image=IMAGE,object='x')\nR=RESULT(var=C)",
        IMAGE,
        ProblemKind::UndefinedVariable,
    );
    assert!(p.message.contains("defined later, at line 2"), "{p}");
}

#[test]
fn reassigned_variable_and_input() {
    let problems = check(
        "A=VQA(image=IMAGE,question='q')\nA=VQA(image=IMAGE,question='r')\nIMAGE=CROP(image=IMAGE,box=B)\nR=RESULT(var=A)",
        IMAGE,
    );
    let reassigned: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::ReassignedVariable)
        .collect();
    assert_eq!(reassigned.len(), 2, "{problems:#?}");
    assert_eq!(reassigned[0].line, 2);
    assert!(reassigned[0].message.contains("already defined at line 1"));
    assert_eq!(reassigned[1].line, 3);
    assert!(reassigned[1].message.contains("program input"));
}

#[test]
fn type_mismatch_between_image_boxes_and_text() {
    let problems = check(
        "B=LOC(image=IMAGE,object='cup')\nC=CROP(image=B,box=IMAGE)\nN=COUNT(box='cup')\nA=VQA(image=IMAGE,question=3)\nR=RESULT(var=C)",
        IMAGE,
    );
    assert_eq!(
        kinds(&problems),
        vec![ProblemKind::TypeMismatch; 4],
        "{problems:#?}"
    );
    assert_eq!((problems[0].line, problems[0].column), (2, 14));
    assert!(problems[0]
        .message
        .contains("argument `image` of `CROP` needs an image, but `B` is boxes"));
    assert!(problems[1]
        .message
        .contains("needs boxes, but `IMAGE` is an image"));
    assert!(problems[2]
        .message
        .contains("needs boxes, but the value is text"));
    assert!(problems[3]
        .message
        .contains("needs text, but the value is a number"));
}

#[test]
fn eval_output_is_any_and_flows_anywhere() {
    let src = "A=EVAL(expr='1 + 1')\nB=LOC(image=A,object='x')\nR=RESULT(var=B)";
    assert_eq!(check(src, IMAGE), vec![]);
}

#[test]
fn bad_expression_that_does_not_parse() {
    let src = "ANSWER0=COUNT(box=B)\nB=LOC(image=IMAGE,object='x')\nX=EVAL(expr=\"'yes' if {B} > 0 and else 'no'\")\nR=RESULT(var=X)";
    let problems = check(src, IMAGE);
    let bad: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::BadExpression)
        .collect();
    assert_eq!(bad.len(), 1, "{problems:#?}");
    // `else` is column 22 of the expression, the expression starts after the quote at 13.
    assert_eq!((bad[0].line, bad[0].column), (3, 13 + 22));
    assert!(bad[0].message.contains("`else`"), "{}", bad[0]);
}

#[test]
fn bad_expression_with_undefined_placeholder() {
    let p = single(
        "A=VQA(image=IMAGE,question='q')\nX=EVAL(expr='{A} and not {ANSWER9}')\nR=RESULT(var=X)",
        IMAGE,
        ProblemKind::BadExpression,
    );
    assert_eq!((p.line, p.column), (2, 13 + 13));
    assert!(p.message.contains("`{ANSWER9}`"), "{p}");
}

#[test]
fn bad_expression_on_an_image() {
    let p = single(
        "X=EVAL(expr='{IMAGE} == 1')\nR=RESULT(var=X)",
        IMAGE,
        ProblemKind::BadExpression,
    );
    assert!(p.message.contains("is an image"), "{p}");
}

#[test]
fn missing_result() {
    let p = single(
        "A=VQA(image=IMAGE,question='q')",
        IMAGE,
        ProblemKind::MissingResult,
    );
    assert!(p.message.contains("FINAL_RESULT=RESULT(var=A)"), "{p}");
    let p = single("", IMAGE, ProblemKind::MissingResult);
    assert!(p.message.contains("no steps"));
}

#[test]
fn lower_case_result_is_one_problem_not_two() {
    let p = single(
        "A=VQA(image=IMAGE,question='q')\nR=result(var=A)",
        IMAGE,
        ProblemKind::UnknownModule,
    );
    assert!(p.message.contains("should be `RESULT`"));
}

#[test]
fn many_problems_are_reported_together() {
    let src = "BOX0=LOC(Image=IMAGE,object='cup')
IMAGE0=CROP(image=IMAGE,box=BOX)
ANSWER0=vqa(image=IMAGE0,question='What is it?')
ANSWER0=EVAL(expr=\"'yes' if {ANSWER5} else 'no'\")
FINAL=VQA(image=IMAGE0,question='q',question='r')";
    let problems = check(src, IMAGE);
    let found: Vec<(usize, ProblemKind)> = problems.iter().map(|p| (p.line, p.kind)).collect();
    assert_eq!(
        found,
        vec![
            (1, ProblemKind::WrongArgumentCase),
            (2, ProblemKind::UndefinedVariable),
            (3, ProblemKind::UnknownModule),
            (4, ProblemKind::BadExpression),
            (4, ProblemKind::ReassignedVariable),
            (5, ProblemKind::DuplicateArgument),
            (5, ProblemKind::MissingResult),
        ],
        "{problems:#?}"
    );
    assert!(problems[1].message.contains("did you mean `BOX0`?"));
}

#[test]
fn closest_respects_a_distance_limit() {
    let names = ["LOC", "VQA", "COUNT", "CROP_LEFTOF"];
    assert_eq!(closest("COUTN", names.iter().copied()), Some("COUNT"));
    assert_eq!(
        closest("crop_leftof", names.iter().copied()),
        Some("CROP_LEFTOF")
    );
    assert_eq!(closest("SEGMENT", names.iter().copied()), None);
    assert_eq!(closest("LOCATE", names.iter().copied()), Some("LOC"));
    assert_eq!(
        closest("CROP_LEFT", names.iter().copied()),
        Some("CROP_LEFTOF")
    );
    assert_eq!(closest("QQ", names.iter().copied()), None);
}
