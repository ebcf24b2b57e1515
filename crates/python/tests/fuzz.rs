//! Structure-aware fuzzing of the Python parser and interpreter under budgets (issue 14).
//!
//! Programs are generated from a grammar of the subset models write, mixed with the hostile
//! shapes found by review (deep and shared nesting, memory bombs, huge widths, big ints), and
//! with byte-level mutations for the parser. Every program must end with an answer or one of
//! the known error kinds, with bounded text, and never panic, hang or abort.
//!
//! A short, fixed-seed run is part of the normal test suite; `SDVP_FUZZ_SECS=600 cargo test
//! -p sdvp-python --test fuzz -- --nocapture` runs fresh seeds for that long.
mod common;
use common::{job, HashBackend};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sdvp_core::SchedulerConfig;
use sdvp_python::{check_program, run_python_programs, Limits};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i64..300).prop_map(|i| i.to_string()),
        Just("2 ** 63".to_string()),
        Just("-2 ** 63 - 1".to_string()),
        Just("10 ** 30".to_string()),
        Just("0.1".to_string()),
        Just("1e308".to_string()),
        Just("float('nan')".to_string()),
        Just("float('inf')".to_string()),
        Just("-0.0".to_string()),
        Just("'a b'".to_string()),
        Just("''".to_string()),
        Just("'é🎉\\n'".to_string()),
        Just("'%s=%d'".to_string()),
        Just("'{}:{}'".to_string()),
        Just("None".to_string()),
        Just("True".to_string()),
        Just("...".to_string()),
        prop::sample::select(vec!["a", "b", "s", "xs", "d", "t", "n", "st"]).prop_map(String::from),
    ]
}

const BUILTINS: &[&str] = &[
    "len",
    "str",
    "int",
    "float",
    "sorted",
    "list",
    "set",
    "tuple",
    "dict",
    "sum",
    "min",
    "max",
    "abs",
    "round",
    "repr",
    "range",
    "enumerate",
    "zip",
    "reversed",
    "any",
    "all",
    "chr",
    "ord",
    "pow",
    "divmod",
    "hex",
    "format",
    "bool",
    "iter",
    "next",
    "map",
    "frozenset",
];
const METHODS: &[&str] = &[
    "upper",
    "split",
    "join",
    "replace",
    "append",
    "pop",
    "get",
    "keys",
    "items",
    "count",
    "index",
    "find",
    "format",
    "zfill",
    "center",
    "strip",
    "startswith",
    "splitlines",
    "extend",
    "insert",
    "remove",
    "sort",
    "update",
    "add",
    "union",
    "setdefault",
    "rsplit",
    "partition",
];
const SPECS: &[&str] = &[
    "",
    ">10",
    ".2f",
    ",",
    "x",
    "🎉^20",
    "08.3e",
    "#b",
    "%",
    ".3",
    "g",
    "_",
    "+d",
    "=^9",
    "c",
    ">99999999",
    ".0f",
    "s",
];
const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>", "==", "<", ">=", "!=", "in",
    "not in", "is", "and", "or",
];

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let i = inner.clone();
        prop_oneof![
            (i.clone(), prop::sample::select(BINOPS), i.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (prop::sample::select(vec!["-", "not ", "~"]), i.clone())
                .prop_map(|(op, a)| format!("({op}{a})")),
            (
                prop::sample::select(BUILTINS),
                prop::collection::vec(i.clone(), 0..3)
            )
                .prop_map(|(f, a)| format!("{f}({})", a.join(", "))),
            (
                i.clone(),
                prop::sample::select(METHODS),
                prop::collection::vec(i.clone(), 0..3)
            )
                .prop_map(|(r, m, a)| format!("({r}).{m}({})", a.join(", "))),
            (i.clone(), i.clone()).prop_map(|(a, b)| format!("{a}[{b}]")),
            (i.clone(), i.clone(), i.clone()).prop_map(|(a, b, c)| format!("{a}[{b}:{c}]")),
            prop::collection::vec(i.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(i.clone(), 0..4).prop_map(|v| if v.is_empty() {
                "()".to_string()
            } else {
                format!("({},)", v.join(", "))
            }),
            prop::collection::vec(i.clone(), 1..4).prop_map(|v| format!("{{{}}}", v.join(", "))),
            (i.clone(), i.clone()).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
            (i.clone(), i.clone(), i.clone())
                .prop_map(|(e, it, c)| format!("[{e} for x in {it} if {c}]")),
            (i.clone(), i.clone()).prop_map(|(e, it)| format!("sum(1 for x in {it} if {e})")),
            (i.clone(), prop::sample::select(SPECS)).prop_map(|(e, s)| format!("f'{{{e}:{s}}}'")),
            (i.clone(), i.clone()).prop_map(|(a, b)| format!("('%s %r %5d' % ({a}, {b}, 3))")),
            (i.clone(), i.clone()).prop_map(|(a, b)| format!("'{{:>{{}}}}'.format({a}, {b})")),
            i.clone()
                .prop_map(|e| format!("(lambda x, *r, **k: {e})(1, 2)")),
            (i.clone(), i.clone(), i.clone())
                .prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            i.clone().prop_map(|e| format!("[*{e}]")),
            i.prop_map(|e| format!("(w := {e})")),
        ]
    })
}

fn stmt() -> impl Strategy<Value = String> {
    let e = expr;
    prop_oneof![
        (prop::sample::select(vec!["a", "b", "s", "xs", "d", "t", "n", "st"]), e())
            .prop_map(|(n, v)| format!("{n} = {v}")),
        (prop::sample::select(vec!["a", "n"]), prop::sample::select(vec!["+=", "*=", "-=", "//="]), e())
            .prop_map(|(n, op, v)| format!("{n} {op} {v}")),
        (e(), e()).prop_map(|(c, v)| format!("if {c}:\n    a = {v}\nelse:\n    b = {v}")),
        (e(), e()).prop_map(|(it, v)| format!("for x in {it}:\n    xs.append({v})")),
        (e(), e()).prop_map(|(v, h)| format!(
            "try:\n    a = {v}\nexcept (ValueError, TypeError, KeyError, IndexError) as err:\n    a = str(err)\nexcept BaseException:\n    a = {h}"
        )),
        e().prop_map(|v| format!("while n < 50:\n    n += 1\n    a = {v}")),
        e().prop_map(|v| format!("def f(x, *r, k=1, **kw):\n    return {v}\na = f(1, 2, k=3, z=4)")),
        e().prop_map(|v| format!("def g():\n    nonlocal_var = 0\n    def h():\n        nonlocal nonlocal_var\n        nonlocal_var += 1\n        return {v}\n    return h()\nb = g()")),
        e().prop_map(|v| format!("first, *rest = {v}")),
        e().prop_map(|v| format!("raise ValueError({v})")),
        (e(), e()).prop_map(|(c, m)| format!("assert {c}, {m}")),
        e().prop_map(|v| format!("d[{v}] = {v}")),
        e().prop_map(|v| format!("del xs[{v}:]")),
        hostile(),
    ]
}

/// The hostile shapes of issue 14, with sizes drawn at random.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..400000)
            .prop_map(|n| format!("t = 0\nfor i in range({n}):\n    t = (t,)\nst = {{t}}")),
        (1usize..40).prop_map(|n| format!(
            "t = (0,)\nfor i in range({n}):\n    t = (t, t)\nst = t in {{1: 2}}"
        )),
        (1usize..70).prop_map(|k| format!("s = ('\\n' * (1 << {k})).splitlines()")),
        (1usize..70).prop_map(|k| format!("s = ('a ' * (1 << {k})).split()")),
        (1usize..100000000).prop_map(|w| format!("s = '%{w}d' % 1")),
        (1usize..100000000).prop_map(|w| format!("s = f'{{1:🎉>{w}}}'")),
        (1usize..70).prop_map(|k| format!("assert False, 'q' * (1 << {k})")),
        (1usize..2000).prop_map(|n| format!(
            "def r(k):\n    return 0 if k == 0 else 1 + r(k - 1)\nn = r({n})"
        )),
        (1u32..200).prop_map(|k| format!("n = 7 ** (2 ** {k})")),
        (1usize..50)
            .prop_map(|k| format!("a = []\nfor i in range({k}):\n    a.append(a)\ns = str(a)")),
        Just("b = ImagePatch(image).crop(-2**63, float('nan'), 2**63 - 1, 1e300)".to_string()),
    ]
}

fn program() -> impl Strategy<Value = String> {
    (prop::collection::vec(stmt(), 1..6), expr()).prop_map(|(stmts, ret)| {
        let mut s = String::from(
            "def execute_command(image):\n    a = 1\n    b = 2\n    s = 'x y'\n    xs = [1, 2]\n    d = {'k': 1}\n    t = (1, 2)\n    n = 0\n    st = {1}\n    nonlocal_var = 0\n",
        );
        // Each statement is guarded, so one TypeError does not end the program before the
        // rest is reached (budgets still end it: they cannot be caught).
        for st in stmts {
            s.push_str("    try:\n");
            for l in st.lines() {
                s.push_str("        ");
                s.push_str(l);
                s.push('\n');
            }
            s.push_str("    except Exception as e:\n        a = repr(e)\n");
        }
        s.push_str(&format!(
            "    try:\n        return repr({ret})\n    except Exception as e:\n        return repr(e)\n"
        ));
        s
    })
}

/// Byte-level mutations of generated programs, for the parser and checker.
fn mutated() -> impl Strategy<Value = String> {
    (
        program(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..6, any::<char>()), 1..6),
    )
        .prop_map(|(p, muts)| {
            let mut chars: Vec<char> = p.chars().collect();
            for (i, op, c) in muts {
                if chars.is_empty() {
                    break;
                }
                let at = i.index(chars.len());
                match op {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, c),
                    2 => chars.insert(at, ['(', '[', '{', ':', '\n', ' ', '*', '"'][at % 8]),
                    3 => chars.truncate(at),
                    4 => chars.insert(at, '\u{feff}'),
                    _ => chars[at] = c,
                }
            }
            chars.into_iter().collect()
        })
}

const KINDS: &[&str] = &["python_error", "limit", "invalid_program", "module_failed"];

/// Outcomes seen: answered, then each of [`KINDS`] (printed, to show what the run covered).
static SEEN: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

fn seen() -> String {
    let n = |i: usize| SEEN[i].load(Ordering::Relaxed);
    format!(
        "answered {}, python_error {}, limit {}, invalid_program {}, module_failed {}",
        n(0),
        n(1),
        n(2),
        n(3),
        n(4)
    )
}

fn limits() -> Limits {
    Limits {
        max_steps: 50_000,
        max_alloc_bytes: 8 << 20,
        max_wall: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Run a batch; every program must end cleanly with bounded text.
fn check_batch(progs: &[String]) -> Result<(), TestCaseError> {
    let jobs: Vec<_> = progs
        .iter()
        .enumerate()
        .map(|(i, p)| job(&format!("f{i}"), p))
        .collect();
    let limits = limits();
    let start = Instant::now();
    let (traces, _) = run_python_programs(
        &HashBackend::default(),
        SchedulerConfig::default(),
        &jobs,
        &limits,
    );
    // Budgets bound every program; a slow one points at work done outside them.
    if start.elapsed() > Duration::from_secs(3) {
        eprintln!("SLOW ({:?}):\n{}", start.elapsed(), progs.join("\n----\n"));
    }
    prop_assert_eq!(traces.len(), progs.len());
    for (t, p) in traces.iter().zip(progs) {
        match (&t.answer, &t.error) {
            (Some(a), None) => {
                SEEN[0].fetch_add(1, Ordering::Relaxed);
                prop_assert!(a.len() <= limits.max_output_bytes, "{p}")
            }
            (None, Some(e)) => {
                if std::env::var("FUZZ_DEBUG").is_ok() && e.kind == "invalid_program" {
                    {
                        let ln: usize = e
                            .message
                            .split(':')
                            .next()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(1);
                        eprintln!(
                            "INVALID {} :: {}",
                            e.message.chars().take(60).collect::<String>(),
                            p.lines()
                                .nth(ln - 1)
                                .unwrap_or("")
                                .chars()
                                .take(200)
                                .collect::<String>()
                        );
                    }
                }
                if let Some(k) = KINDS.iter().position(|k| *k == e.kind) {
                    SEEN[k + 1].fetch_add(1, Ordering::Relaxed);
                }
                prop_assert!(KINDS.contains(&e.kind.as_str()), "{}: {p}", e.kind);
                prop_assert!(
                    e.message.len() <= 2 * limits.max_output_bytes + 4096,
                    "{}-byte error for {p}",
                    e.message.len()
                );
            }
            other => prop_assert!(false, "no clean end {other:?} for {p}"),
        }
    }
    Ok(())
}

fn run_for(cases: u32, seed: [u8; 32]) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    runner
        .run(&prop::collection::vec(program(), 1..4), |ps| {
            check_batch(&ps)
        })
        .expect("fuzzed programs end cleanly");
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    runner
        .run(&mutated(), |p| {
            let _ = check_program(&p);
            check_batch(&[p])
        })
        .expect("mutated programs end cleanly");
}

#[test]
fn fuzz_parser_and_interpreter_under_budgets() {
    let secs: u64 = std::env::var("SDVP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if secs == 0 {
        // The short, deterministic run of the normal suite.
        run_for(48, [7; 32]);
        eprintln!("{}", seen());
        // The generator must reach both answers and errors, or the run proves little.
        assert!(SEEN[0].load(Ordering::Relaxed) > 0 && SEEN[2].load(Ordering::Relaxed) > 0);
        return;
    }
    let start = Instant::now();
    let mut round = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        seed[8..16].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
        run_for(64, seed);
        round += 1;
        eprintln!("round {round} done at {:?}: {}", start.elapsed(), seen());
    }
    eprintln!(
        "fuzzed {round} rounds of 64+64 cases in {:?}: {}",
        start.elapsed(),
        seen()
    );
}
