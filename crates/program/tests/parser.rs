//! Step-program parsing: shapes, literals, positions and the syntax problems models produce.

use sdvp_program::ast::{ArgValue, Literal, Pos, ProblemKind, Program};
use sdvp_program::parser::parse;
use sdvp_program::print::{print_program, same_program};
use sdvp_program::Problem;

fn parse_ok(src: &str) -> Program {
    let (p, problems) = parse(src);
    assert!(problems.is_empty(), "unexpected problems: {problems:?}");
    p
}

fn only_problem(src: &str) -> Problem {
    let (_, problems) = parse(src);
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:?}");
    problems[0].clone()
}

const GQA: &str = "BOX0=LOC(image=IMAGE,object='cup')
IMAGE0=CROP_LEFTOF(image=IMAGE,box=BOX0)
ANSWER0=VQA(image=IMAGE0,question='What color is the plate?')
FINAL_RESULT=RESULT(var=ANSWER0)
";

#[test]
fn parses_visprog_program_with_positions() {
    let p = parse_ok(GQA);
    assert_eq!(p.steps.len(), 4);
    let s = &p.steps[2];
    assert_eq!(s.line, 3);
    assert_eq!(s.output, "ANSWER0");
    assert_eq!(s.module, "VQA");
    assert_eq!(s.module_pos, Pos::new(3, 9));
    assert_eq!(s.args[0].name, "image");
    assert_eq!(s.args[0].value, ArgValue::Var("IMAGE0".into()));
    assert_eq!(s.args[1].name_pos, Pos::new(3, 26));
    assert_eq!(s.args[1].value_pos, Pos::new(3, 35));
    assert_eq!(
        s.args[1].value,
        ArgValue::Lit(Literal::Str("What color is the plate?".into()))
    );
}

#[test]
fn tolerates_whitespace_and_blank_lines() {
    let spaced =
        "\n  BOX0 = LOC( image = IMAGE , object = \"cup\" )  \n\n\tR = RESULT ( var = BOX0 )\r\n";
    let tight = "BOX0=LOC(image=IMAGE,object='cup')\nR=RESULT(var=BOX0)\n";
    let a = parse_ok(spaced);
    assert!(same_program(&a, &parse_ok(tight)));
    assert_eq!(a.steps[0].line, 2);
    assert_eq!(a.steps[1].line, 4);
    assert_eq!(a.steps[0].output_pos, Pos::new(2, 3));
}

#[test]
fn parses_every_literal_kind() {
    let p = parse_ok(
        r#"X=M(a=-3,b=2.5,c=-0.5e-3,d=True,e=False,f='it\'s',g="say \"hi\"",h='a\\b\n\tc',i=1e3,j=.5)"#,
    );
    let v: Vec<&ArgValue> = p.steps[0].args.iter().map(|a| &a.value).collect();
    assert_eq!(v[0], &ArgValue::Lit(Literal::Int(-3)));
    assert_eq!(v[1], &ArgValue::Lit(Literal::Float(2.5)));
    assert_eq!(v[2], &ArgValue::Lit(Literal::Float(-0.0005)));
    assert_eq!(v[3], &ArgValue::Lit(Literal::Bool(true)));
    assert_eq!(v[4], &ArgValue::Lit(Literal::Bool(false)));
    assert_eq!(v[5], &ArgValue::Lit(Literal::Str("it's".into())));
    assert_eq!(v[6], &ArgValue::Lit(Literal::Str("say \"hi\"".into())));
    assert_eq!(v[7], &ArgValue::Lit(Literal::Str("a\\b\n\tc".into())));
    assert_eq!(v[8], &ArgValue::Lit(Literal::Float(1000.0)));
    assert_eq!(v[9], &ArgValue::Lit(Literal::Float(0.5)));
}

#[test]
fn columns_count_characters_not_bytes() {
    let p = parse_ok("A=VQA(question='ça va?',image=IMAGE)");
    assert_eq!(p.steps[0].args[1].name_pos, Pos::new(1, 25));
}

#[test]
fn missing_equals_after_output() {
    let p = only_problem("BOX0 LOC(image=IMAGE)");
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert_eq!((p.line, p.column), (1, 6));
    assert!(
        p.message
            .contains("expected `=` after the output name `BOX0`"),
        "{p}"
    );
}

#[test]
fn missing_output_name() {
    let p = only_problem("LOC(image=IMAGE,object='cup')");
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert!(p.message.contains("NAME=LOC(...)"), "{p}");
}

#[test]
fn missing_closing_paren_and_bad_separator() {
    let p = only_problem("A=VQA(image=IMAGE,question='q'");
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert!(p.message.contains("missing `)`"), "{p}");
    let p = only_problem("A=VQA(image=IMAGE question='q')");
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert_eq!(p.column, 19);
    assert!(p.message.contains("expected `,` or `)`"), "{p}");
}

#[test]
fn unterminated_string_points_at_its_quote() {
    let p = only_problem("A=VQA(image=IMAGE,question='what is it?)");
    assert_eq!(p.kind, ProblemKind::UnterminatedString);
    assert_eq!((p.line, p.column), (1, 28));
    let p = only_problem(r"A=VQA(question='ends in backslash\");
    assert_eq!(p.kind, ProblemKind::UnterminatedString);
}

#[test]
fn trailing_garbage_keeps_the_step() {
    let (prog, problems) = parse("A=VQA(image=IMAGE,question='q') # the answer");
    assert_eq!(prog.steps.len(), 1);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind, ProblemKind::TrailingGarbage);
    assert_eq!(problems[0].column, 33);
    assert!(problems[0].message.contains("# the answer"));
}

#[test]
fn llm_junk_lines_get_hints() {
    let src = "Question: Is the cup left of the plate?\nProgram:\n```\nBOX0=LOC(image=IMAGE,object='cup')\n```\n# find it\nR=RESULT(var=BOX0)";
    let (prog, problems) = parse(src);
    assert_eq!(prog.steps.len(), 2);
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![1, 2, 3, 5, 6]);
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Syntax));
    assert!(
        problems[0].message.contains("`Question:` is not a step"),
        "{}",
        problems[0]
    );
    assert!(problems[1].message.contains("`Program:` is not a step"));
    assert!(problems[2].message.contains("markdown code fence"));
    assert!(problems[4].message.contains("comments are not allowed"));
}

#[test]
fn label_prefix_on_a_step_line_says_to_keep_the_step() {
    let p = only_problem("Program: BOX0=LOC(image=IMAGE,object='cup')");
    assert_eq!(p.kind, ProblemKind::Syntax);
    assert!(
        p.message.contains("remove the prefix and keep the step"),
        "{p}"
    );
}

#[test]
fn colon_inside_a_string_is_not_a_label() {
    let p = parse_ok("A=VQA(image=IMAGE,question='Note: what is it?')");
    assert_eq!(p.steps.len(), 1);
}

#[test]
fn reports_every_bad_line_at_once() {
    let src = "A=VQA(image=IMAGE,question='q'\nB VQA()\nC=VQA(x='open)\nD=LOC(image=IMAGE) extra\nE=RESULT(var=A)";
    let (prog, problems) = parse(src);
    let kinds: Vec<(usize, ProblemKind)> = problems.iter().map(|p| (p.line, p.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, ProblemKind::Syntax),
            (2, ProblemKind::Syntax),
            (3, ProblemKind::UnterminatedString),
            (4, ProblemKind::TrailingGarbage),
        ]
    );
    let outs: Vec<&str> = prog.steps.iter().map(|s| s.output.as_str()).collect();
    assert_eq!(outs, vec!["D", "E"]);
}

#[test]
fn bad_values_are_syntax_errors() {
    for (src, needle) in [
        ("A=M(x=)", "expected a value for `x`"),
        ("A=M(x=-)", "expected a number"),
        ("A=M(=3)", "expected an argument name"),
        ("A=M(x 3)", "expected `=` after the argument name `x`"),
        ("A=(x=3)", "expected a module name"),
        ("A=M x=3", "expected `(` after the module name `M`"),
        ("A=M(x=1e999)", "out of range"),
    ] {
        let p = only_problem(src);
        assert_eq!(p.kind, ProblemKind::Syntax, "{src}");
        assert!(p.message.contains(needle), "{src}: {p}");
    }
}

#[test]
fn print_is_canonical_and_round_trips() {
    let p = parse_ok("A = M( s = \"it's\\n\" , n=-2, f=0.25, b=True, v=IMAGE )\nR=RESULT(var=A)");
    let text = print_program(&p);
    assert_eq!(
        text,
        "A=M(s='it\\'s\\n',n=-2,f=0.25,b=True,v=IMAGE)\nR=RESULT(var=A)\n"
    );
    assert!(same_program(&parse_ok(&text), &p));
}
