//! EVAL's expression language: a semantics table over the shapes VisProg programs use, the
//! coercions between module outputs, error columns and resource bounds.

use sdvp_program::expr::{self, placeholders, MAX_DEPTH, MAX_EXPR_CHARS};
use sdvp_program::Value;

fn env(name: &str) -> Option<Value> {
    Some(match name {
        "YES" => Value::Text("yes".into()),
        "NO" => Value::Text(" No ".into()),
        "TWO" => Value::Number(2.0),
        "ZERO" => Value::Number(0.0),
        "TEXT2" => Value::Text("2".into()),
        "BLUE" => Value::Text("Blue".into()),
        "T" => Value::Bool(true),
        "F" => Value::Bool(false),
        _ => return None,
    })
}

fn run(text: &str) -> Result<Value, expr::ExprError> {
    let e = expr::parse(text)?;
    expr::eval(&e, &env)
}

fn answer(text: &str) -> String {
    match run(text) {
        Ok(v) => v.to_answer(),
        Err(e) => panic!("`{text}` failed: {e}"),
    }
}

#[test]
fn semantics_table() {
    let table: &[(&str, &str)] = &[
        // VisProg GQA shapes.
        ("'yes' if {TWO} > 0 else 'no'", "yes"),
        ("'yes' if {ZERO} > 0 else 'no'", "no"),
        ("'yes' if {TEXT2} == 2 else 'no'", "yes"),
        ("{YES} and not {NO}", "yes"),
        ("{NO} or {F}", "no"),
        ("'{BLUE}' == 'blue'", "yes"),
        ("'{BLUE}' != 'blue'", "no"),
        ("{BLUE} == ' BLUE '", "yes"),
        // NLVR `xor`.
        ("{YES} xor {NO}", "yes"),
        ("{YES} xor {T}", "no"),
        ("{F} xor {NO}", "no"),
        // Arithmetic, precedence, Python modulo.
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("-7 % 3", "2"),
        ("7 % -3", "-2"),
        ("- -2", "2"),
        ("{TWO} + {TEXT2}", "4"),
        ("{TWO} * 1.5e1", "30"),
        ("'a' + 'b'", "ab"),
        ("True + 1", "2"),
        // Comparisons, including chained ones as in Python.
        ("1 < 2 < 3", "yes"),
        ("1 < 3 < 2", "no"),
        ("{TWO} >= 2", "yes"),
        ("{TWO} <= 1", "no"),
        ("'apple' < 'Banana'", "yes"),
        // Booleans and yes/no text.
        ("{YES} == True", "yes"),
        ("{NO} == False", "yes"),
        ("{T} == 'yes'", "yes"),
        ("not {ZERO}", "yes"),
        ("not (1 == 1)", "no"),
        // Precedence of boolean operators: and binds tighter than xor, xor than or.
        ("True or False and False", "yes"),
        ("True xor True and False", "yes"),
        ("False or True xor True", "no"),
        // Conditional is right-associative and evaluates one branch only.
        ("'a' if False else 'b' if True else 'c'", "b"),
        ("'safe' if True else {UNDEFINED}", "safe"),
        ("False and {UNDEFINED}", "no"),
        ("True or {UNDEFINED}", "yes"),
        // Interpolation formats numbers and booleans as answers.
        ("'n={TWO} b={T}'", "n=2 b=yes"),
        ("\"it\\'s {BLUE}\"", "it's Blue"),
        ("'{not a var}'", "{not a var}"),
    ];
    for (text, expected) in table {
        assert_eq!(answer(text), *expected, "expression `{text}`");
    }
}

#[test]
fn result_types_are_kept() {
    assert_eq!(run("1 == 1").unwrap(), Value::Bool(true));
    assert_eq!(run("{TWO} + 1").unwrap(), Value::Number(3.0));
    assert_eq!(run("'x'").unwrap(), Value::Text("x".into()));
    assert_eq!(run("{BLUE}").unwrap(), Value::Text("Blue".into()));
}

#[test]
fn placeholders_in_order_without_repeats() {
    let e = expr::parse("'{B}' == {A} and {B} or {C}").unwrap();
    assert_eq!(placeholders(&e), vec!["B", "A", "C"]);
    let spans: Vec<usize> = expr::placeholder_spans(&e).iter().map(|s| s.1).collect();
    assert_eq!(spans, vec![2, 10, 18, 25]);
}

#[test]
fn parse_errors_point_at_the_culprit() {
    let cases: &[(&str, usize, &str)] = &[
        ("'yes' if {X} > 0 and else 'no'", 22, "`else`"),
        ("'yes' if {X} > 0", 17, "expected `else`"),
        ("{X} = 1", 5, "use `==`"),
        ("{X} && {Y}", 5, "use `and`"),
        ("ANSWER0 > 0", 1, "`{ANSWER0}`"),
        ("(1 + 2", 7, "expected `)`"),
        ("1 2", 3, "operator"),
        ("'open", 1, "not closed"),
        ("{ X", 1, "`{ANSWER0}`"),
        ("", 1, "empty"),
        ("1 +", 4, "ends where a value is expected"),
        ("3 $ 4", 3, "unexpected character `$`"),
    ];
    for (text, column, needle) in cases {
        let e = expr::parse(text).expect_err(text);
        assert_eq!(e.column, *column, "`{text}`: {e}");
        assert!(e.message.contains(needle), "`{text}`: {e}");
    }
}

#[test]
fn runtime_errors_point_at_the_culprit() {
    let cases: &[(&str, usize, &str)] = &[
        ("{MISSING} + 1", 1, "`MISSING` is not defined"),
        ("'{MISSING}'", 2, "`MISSING` is not defined"),
        ("{BLUE} and True", 1, "not yes or no"),
        ("{BLUE} > 1", 8, "cannot order"),
        ("1 / {ZERO}", 3, "by zero"),
        ("5 % 0", 3, "by zero"),
        ("{BLUE} * 2", 1, "needs numbers"),
        ("1e300 * 1e300", 7, "too large"),
    ];
    for (text, column, needle) in cases {
        let e = run(text).expect_err(text);
        assert_eq!(e.column, *column, "`{text}`: {e}");
        assert!(e.message.contains(needle), "`{text}`: {e}");
    }
}

#[test]
fn length_and_depth_are_bounded() {
    let long = "1+".repeat(MAX_EXPR_CHARS) + "1";
    assert!(expr::parse(&long).unwrap_err().message.contains("longer"));
    let parens = "(".repeat(MAX_DEPTH + 1) + "1" + &")".repeat(MAX_DEPTH + 1);
    assert!(expr::parse(&parens).unwrap_err().message.contains("nested"));
    let nots = "not ".repeat(MAX_DEPTH + 1) + "True";
    assert!(expr::parse(&nots).unwrap_err().message.contains("nested"));
    // A long flat chain builds a deep tree without recursion in the parser.
    let chain = "1+".repeat(MAX_DEPTH + 1) + "1";
    assert!(expr::parse(&chain).unwrap_err().message.contains("nested"));
    // Just inside the bounds still works.
    let ok = "(".repeat(MAX_DEPTH - 1) + "1" + &")".repeat(MAX_DEPTH - 1);
    assert_eq!(run(&ok).unwrap(), Value::Number(1.0));
    let ok = "1+".repeat(MAX_DEPTH - 2) + "1";
    assert_eq!(run(&ok).unwrap(), Value::Number((MAX_DEPTH - 1) as f64));
}

mod eval_step {
    use sdvp_program::exec::{run_step_programs, Job};
    use sdvp_program::scripted::ScriptedBackend;
    use sdvp_program::steps::{CropSettings, Registry};
    use sdvp_program::{ImageRef, SchedulerConfig, Value};
    use std::collections::BTreeMap;

    fn run(source: &str) -> sdvp_program::trace::Trace {
        let backend = ScriptedBackend::from_json(
            r#"{"vqa": {"Is there a dog?": "Yes", "Is there a cat?": "no", "*": "blue"},
                "detect": {"dog": [[0, 0, 10, 10], [20, 20, 30, 30]], "*": []}}"#,
        )
        .unwrap();
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "IMAGE".to_string(),
            Value::Image(ImageRef::new("img", 100, 100)),
        );
        let job = Job {
            id: "q".into(),
            source: source.into(),
            inputs,
            meta: BTreeMap::new(),
        };
        let registry = Registry::visual_reasoning(CropSettings::default());
        let (mut traces, _) =
            run_step_programs(&registry, &backend, SchedulerConfig::default(), &[job]);
        traces.remove(0)
    }

    #[test]
    fn eval_combines_module_outputs() {
        let t = run("A=VQA(image=IMAGE,question='Is there a dog?')
B=VQA(image=IMAGE,question='Is there a cat?')
BOX0=LOC(image=IMAGE,object='dog')
N=COUNT(box=BOX0)
X=EVAL(expr=\"'yes' if {A} and not {B} and {N} == 2 else 'no'\")
R=RESULT(var=X)");
        assert!(t.error.is_none(), "{:?}", t.error);
        assert_eq!(t.answer.as_deref(), Some("yes"));
        let t = run("A=VQA(image=IMAGE,question='Is there a dog?')
B=VQA(image=IMAGE,question='Is there a cat?')
X=EVAL(expr='{A} xor {B}')
R=RESULT(var=X)");
        assert_eq!(t.result, Some(Value::Bool(true)));
        assert_eq!(t.answer.as_deref(), Some("yes"));
    }

    #[test]
    fn eval_runtime_error_fails_the_program_with_the_column() {
        let t = run("A=VQA(image=IMAGE,question='What colour?')
X=EVAL(expr='{A} + 1')
R=RESULT(var=X)");
        let err = t.error.expect("EVAL on 'blue' + 1 must fail");
        assert_eq!(err.kind, "step_failed");
        assert!(
            err.message.contains("column 1") && err.message.contains("needs numbers"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_expression_stops_the_program_before_any_model_call() {
        let t = run("A=VQA(image=IMAGE,question='Is there a dog?')
X=EVAL(expr=\"'yes' if {A} > 0 and else 'no'\")
R=RESULT(var=X)");
        let err = t.error.expect("invalid program");
        assert_eq!(err.kind, "invalid_program");
        assert_eq!(err.problems.len(), 1);
        assert_eq!(
            err.problems[0].kind,
            sdvp_program::ProblemKind::BadExpression
        );
        assert!(t.steps.is_empty());
    }
}
