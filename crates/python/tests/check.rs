//! Static checking: unsupported and forbidden programs are rejected before running.
use sdvp_core::ProblemKind;
use sdvp_python::check_program;

fn kinds(src: &str) -> Vec<(ProblemKind, usize)> {
    match check_program(src) {
        Ok(_) => Vec::new(),
        Err(ps) => ps.iter().map(|p| (p.kind, p.line)).collect(),
    }
}

#[test]
fn accepts_a_vipergpt_program() {
    let src = "def execute_command(image) -> str:\n    image_patch = ImagePatch(image)\n    cups = image_patch.find('cup')\n    return bool_to_yesno(len(cups) > 0)\n";
    assert!(check_program(src).is_ok());
}

#[test]
fn rejects_with_kind_and_line() {
    let body = |s: &str| format!("def execute_command(image):\n    {s}\n");
    assert_eq!(
        kinds(&body("class A: pass")),
        [(ProblemKind::UnsupportedSyntax, 2)]
    );
    assert_eq!(kinds(&body("import os")), [(ProblemKind::Forbidden, 2)]);
    assert_eq!(
        kinds(&body("from os import path")),
        [(ProblemKind::Forbidden, 2)]
    );
    assert_eq!(
        kinds(&body("return image.__class__")),
        [(ProblemKind::Forbidden, 2)]
    );
    assert_eq!(
        kinds(&body("return eval('1')")),
        [(ProblemKind::Forbidden, 2)]
    );
    assert_eq!(
        kinds(&body("async def f(): pass")),
        [(ProblemKind::UnsupportedSyntax, 2)]
    );
    assert_eq!(
        kinds(&body("yield 1")),
        [(ProblemKind::UnsupportedSyntax, 2)]
    );
    assert_eq!(
        kinds(&body("with x: pass")),
        [(ProblemKind::UnsupportedSyntax, 2)]
    );
    assert_eq!(
        kinds(&body("return image @ image")),
        [(ProblemKind::UnsupportedSyntax, 2)]
    );
    assert_eq!(kinds(&body("return 1 +")), [(ProblemKind::Syntax, 2)]);
    assert_eq!(
        kinds("def f(image):\n    return 1\n"),
        [(ProblemKind::MissingResult, 1)]
    );
    assert_eq!(kinds(&body("break")), [(ProblemKind::Syntax, 2)]);
    // All problems at once.
    assert_eq!(kinds(&body("import os\n    return open('x')")).len(), 2);
}

#[test]
fn pathological_nesting_is_a_problem_not_a_crash() {
    let deep = format!(
        "def execute_command(image):\n    return {}1{}\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    // Parentheses leave no node behind: this is just `1`.
    assert!(check_program(&deep).is_ok());
    let unary = format!(
        "def execute_command(image):\n    return {}1\n",
        "-".repeat(20000)
    );
    assert!(check_program(&unary).is_err());
    let long = format!(
        "def execute_command(image):\n    return {}1\n",
        "1+".repeat(20000)
    );
    assert!(check_program(&long).is_err());
    let lists = format!(
        "def execute_command(image):\n    return {}{}\n",
        "[".repeat(20000),
        "]".repeat(20000)
    );
    assert!(check_program(&lists).is_err());
}

#[test]
fn every_refusal_names_its_reason() {
    let body = |s: &str| format!("def execute_command(image):\n    {s}\n");
    for (name, why) in sdvp_python::lower::FORBIDDEN_NAMES {
        let problems = check_program(&body(&format!("return {name}")))
            .err()
            .unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.kind == ProblemKind::Forbidden
                && p.message.contains(name)
                && p.message.contains(why)),
            "{name}: {problems:?}"
        );
    }
    for (src, reason) in [
        ("import os", "host state"),
        ("return image.__class__", "interpreter's internals"),
        ("return image._x", "interpreter's internals"),
        ("return __builtins__", "interpreter's internals"),
    ] {
        let problems = check_program(&body(src)).err().unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.message.contains(reason)),
            "{src}: {problems:?}"
        );
    }
}
