//! Big and odd programs: the size cap, a byte-order mark, and programs at the cap that check
//! and run with every problem and step accounted for (the time they take is in
//! `bench-program-size`, not asserted here).

use sdvp_core::scripted::{Script, ScriptedBackend};
use sdvp_program::exec::{check_program, run_step_programs, Job};
use sdvp_program::parser::{parse, MAX_PROGRAM_BYTES, MAX_PROGRAM_LINES};
use sdvp_program::scheduler::SchedulerConfig;
use sdvp_program::steps::Registry;
use sdvp_program::{ImageRef, ProblemKind, Value, ValueType};
use std::collections::BTreeMap;

fn registry() -> Registry {
    Registry::visual_reasoning(Default::default())
}

const IMAGE: &[(&str, ValueType)] = &[("IMAGE", ValueType::Image)];

/// `n` lines: a VQA, n - 2 EVAL steps counting up, and RESULT.
fn long_program(n: usize) -> String {
    let mut s = String::from("A0=VQA(image=IMAGE,question='q')\n");
    s.push_str("N1=EVAL(expr='1')\n");
    for i in 2..n - 1 {
        s.push_str(&format!("N{i}=EVAL(expr='{{N{}}} + 1')\n", i - 1));
    }
    s.push_str(&format!("FINAL=RESULT(var=N{})\n", n - 2));
    s
}

fn run(source: &str) -> sdvp_program::trace::Trace {
    let backend = ScriptedBackend::new(Script {
        vqa: BTreeMap::from([("*".to_string(), "yes".to_string())]),
        ..Script::default()
    });
    let job = Job {
        id: "big".into(),
        source: source.to_string(),
        inputs: BTreeMap::from([(
            "IMAGE".to_string(),
            Value::Image(ImageRef::new("img.png", 64, 64)),
        )]),
        meta: BTreeMap::new(),
    };
    let (mut traces, _) = run_step_programs(
        &registry(),
        &backend,
        SchedulerConfig::default(),
        std::slice::from_ref(&job),
    );
    traces.remove(0)
}

#[test]
fn a_program_at_the_line_cap_checks_and_runs_every_step() {
    let source = long_program(MAX_PROGRAM_LINES);
    let program = check_program(&source, &registry(), IMAGE).expect("valid");
    assert_eq!(program.steps.len(), MAX_PROGRAM_LINES);
    let trace = run(&source);
    assert_eq!(trace.error, None);
    assert_eq!(trace.steps.len(), MAX_PROGRAM_LINES);
    assert_eq!(trace.answer.as_deref(), Some("9998"));
    // Each step's text is its own line.
    assert_eq!(trace.steps[5].text, "N5=EVAL(expr='{N4} + 1')");
    assert_eq!(trace.steps.last().unwrap().text, "FINAL=RESULT(var=N9998)");
}

#[test]
fn junk_at_the_line_cap_gets_one_problem_per_line() {
    // Every line is broken and every name undefined: the costly paths of check_program.
    let mut source = String::new();
    for i in 0..MAX_PROGRAM_LINES / 2 {
        source.push_str(&format!("B{i}=VQA(image=IMAGE,question='q'\n"));
        source.push_str(&format!("X{i}=EVAL(expr='{{U{i}}}', other=V{i})\n"));
    }
    let problems = check_program(&source, &registry(), IMAGE).unwrap_err();
    let per_line = |kind| problems.iter().filter(|p| p.kind == kind).count();
    assert_eq!(per_line(ProblemKind::Syntax), MAX_PROGRAM_LINES / 2);
    assert_eq!(
        per_line(ProblemKind::UnknownArgument),
        MAX_PROGRAM_LINES / 2
    );
    assert_eq!(
        per_line(ProblemKind::UndefinedVariable),
        MAX_PROGRAM_LINES / 2
    );
    assert_eq!(per_line(ProblemKind::BadExpression), MAX_PROGRAM_LINES / 2);
}

#[test]
fn names_defined_by_broken_lines_are_not_called_undefined() {
    let source = "A=VQA(image=IMAGE,question='q'\nB=VQA(image=A,question='x')\nR=RESULT(var=C)\n";
    let problems = check_program(source, &registry(), IMAGE).unwrap_err();
    let undefined: Vec<_> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::UndefinedVariable)
        .map(|p| p.line)
        .collect();
    assert_eq!(undefined, [3], "{problems:?}");
}

#[test]
fn a_later_definition_is_named_even_among_many() {
    let mut source = String::from("A=VQA(image=IMAGE,question=Q5000)\n");
    for i in 0..6000 {
        source.push_str(&format!("Q{i}=EVAL(expr='1')\n"));
    }
    source.push_str("R=RESULT(var=A)\n");
    let problems = check_program(&source, &registry(), IMAGE).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .message
            .contains("only defined later, at line 5002"),
        "{problems:?}"
    );
}

#[test]
fn one_line_over_the_cap_is_refused_with_the_limit() {
    let source = "X=EVAL(expr='1')\n".repeat(MAX_PROGRAM_LINES + 1);
    let problems = check_program(&source, &registry(), IMAGE).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(p.kind, ProblemKind::TooLarge);
    assert_eq!(p.line, MAX_PROGRAM_LINES + 1);
    assert!(p.message.contains("at most 10000"), "{}", p.message);
    // Running it fails the same way, without running a step.
    let trace = run(&source);
    assert_eq!(trace.error.as_ref().unwrap().kind, "invalid_program");
    assert!(trace.steps.is_empty());
}

#[test]
fn a_program_over_the_byte_cap_is_refused_with_the_limit() {
    let source = format!(
        "X=EVAL(expr='{}')\nR=RESULT(var=X)\n",
        "1".repeat(MAX_PROGRAM_BYTES)
    );
    let (program, problems) = parse(&source);
    assert!(program.steps.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind, ProblemKind::TooLarge);
    assert!(problems[0].message.contains("at most 1048576 bytes"));
    // Exactly at the cap is accepted.
    let frame = "X=EVAL(expr='')\nR=RESULT(var=X)\n".len();
    let at_cap = format!(
        "X=EVAL(expr='{}')\nR=RESULT(var=X)\n",
        "1".repeat(MAX_PROGRAM_BYTES - frame)
    );
    assert_eq!(at_cap.len(), MAX_PROGRAM_BYTES);
    assert_eq!(parse(&at_cap).1, []);
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    let source = "\u{feff}A=VQA(image=IMAGE,question='q')\nR=RESULT(var=A)\n";
    let program = check_program(source, &registry(), IMAGE).expect("valid with a BOM");
    assert_eq!(program.steps[0].output, "A");
    assert_eq!(program.steps[0].output_pos.column, 1);
    let trace = run(source);
    assert_eq!(trace.answer.as_deref(), Some("yes"));
    assert_eq!(trace.steps[0].text, "A=VQA(image=IMAGE,question='q')");
}

#[test]
fn a_byte_order_mark_elsewhere_is_named() {
    let source = "A=VQA(image=IMAGE,question='q')\n\u{feff}R=RESULT(var=A)\n";
    let problems = check_program(source, &registry(), IMAGE).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 2);
    assert!(
        problems[0].message.contains("byte-order mark (U+FEFF)"),
        "{}",
        problems[0].message
    );
    let (_, problems) = parse("A=VQA(image=IMAGE,\u{200b}question='q')\n");
    assert!(problems[0].message.contains("U+200B"), "{problems:?}");
}
