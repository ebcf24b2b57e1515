//! Differential test against CPython 3.11: every program of `tests/differential/corpus` runs in
//! the sandbox and its result (the repr of the value, or the exception's type) is compared
//! exactly with what CPython returned, recorded in `tests/differential/expected.json` by
//! `tools/py_differential.py` (so no Python is needed here). Prints the agreement per
//! category; fails if any program returns a different value without an error, or if agreement
//! falls below the floor measured when the fixture was last made.
mod common;
use common::{job, HashBackend};
use sdvp_core::trace::Trace;
use sdvp_core::{SchedulerConfig, Value};
use sdvp_python::{run_python_programs, Limits};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Exact agreements required (of all cases; deliberate refusals count as disagreements).
const MIN_AGREEMENT_PCT: f64 = 98.8;
/// The corpus may grow, never silently shrink.
const MIN_CASES: usize = 1000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// The same parser as `tools/py_differential.py`.
fn parse(category: &str, text: &str) -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let flush = |cur: &mut Option<(String, Vec<&str>)>, cases: &mut Vec<(String, String)>| {
        if let Some((name, mut body)) = cur.take() {
            while body.last().is_some_and(|l| l.trim().is_empty()) {
                body.pop();
            }
            cases.push((name, body.join("\n")));
        }
    };
    let mut n = 0;
    for line in text.split('\n') {
        if let Some(e) = line.strip_prefix(">>> ") {
            flush(&mut current, &mut cases);
            n += 1;
            cases.push((format!("{category}:{n}"), format!("return ({e})")));
        } else if let Some(name) = line.strip_prefix("#: ") {
            flush(&mut current, &mut cases);
            n += 1;
            current = Some((format!("{category}:{n}:{}", name.trim()), Vec::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push(line);
        }
    }
    flush(&mut current, &mut cases);
    cases
}

fn program(body: &str) -> String {
    let inner: Vec<String> = body
        .split('\n')
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    format!(
        "def _case():\n{}\n\ndef execute_command(image):\n    return repr(_case())\n",
        inner.join("\n")
    )
}

#[derive(Debug, PartialEq)]
enum Got {
    Ok(String),
    Exc(String),
    Refused { forbidden: bool, why: String },
}

fn outcome(t: &Trace) -> Got {
    if let (Some(Value::Text(s)), None) = (&t.result, &t.error) {
        return Got::Ok(s.clone());
    }
    let Some(e) = &t.error else {
        return Got::Exc("no result".into());
    };
    match e.kind.as_str() {
        "python_error" => Got::Exc(
            t.meta
                .get("python_error")
                .and_then(|p| p.get("exception"))
                .and_then(|x| x.as_str())
                .unwrap_or("?")
                .to_string(),
        ),
        "limit" if e.message.contains("recursion depth") => Got::Exc("RecursionError".into()),
        "limit" if e.message.contains("memory budget") => Got::Exc("MemoryError".into()),
        "invalid_program" => Got::Refused {
            forbidden: !e.problems.is_empty()
                && e.problems
                    .iter()
                    .all(|p| format!("{:?}", p.kind).contains("Forbidden")),
            why: e.message.clone(),
        },
        other => Got::Exc(format!(
            "{other}: {}",
            e.message.lines().last().unwrap_or("")
        )),
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    agree: usize,
    silent_wrong: usize,
    error_differs: usize,
    refused: usize,
    forbidden: usize,
}

#[test]
fn sandbox_agrees_with_cpython() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("expected.json")).expect("expected.json"),
    )
    .expect("expected.json parses");
    let expected = fixture["cases"].as_object().expect("cases");
    let mut files: Vec<_> = std::fs::read_dir(dir().join("corpus"))
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in &files {
        let cat = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let text = std::fs::read_to_string(f).expect("corpus file");
        for (name, body) in parse(&cat, &text) {
            cases.push((cat.clone(), name, body));
        }
    }
    assert!(cases.len() >= MIN_CASES, "only {} cases", cases.len());
    assert_eq!(
        cases.len(),
        expected.len(),
        "corpus and fixture differ in size: run tools/py_differential.py"
    );
    let jobs: Vec<_> = cases
        .iter()
        .map(|(_, name, body)| job(name, &program(body)))
        .collect();
    let limits = Limits::default();
    let (traces, _) = run_python_programs(
        &HashBackend::default(),
        SchedulerConfig::default(),
        &jobs,
        &limits,
    );
    let mut per: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut report = Vec::new();
    let verbose = std::env::var("SDVP_DIFF_VERBOSE").is_ok();
    for ((cat, name, body), t) in cases.iter().zip(&traces) {
        let want = &expected[name.as_str()];
        assert_eq!(
            want["src"].as_str(),
            Some(body.as_str()),
            "{name}: fixture is stale: run tools/py_differential.py"
        );
        let got = outcome(t);
        let tally = per.entry(cat.clone()).or_default();
        tally.cases += 1;
        total.cases += 1;
        let (agree, silent) = match (&got, want.get("ok"), want.get("exc")) {
            (Got::Ok(g), Some(w), _) => (
                Some(g.as_str()) == w.as_str(),
                Some(g.as_str()) != w.as_str(),
            ),
            (Got::Ok(_), None, _) => (false, true),
            (Got::Exc(g), _, Some(w)) => (Some(g.as_str()) == w.as_str(), false),
            _ => (false, false),
        };
        if agree {
            tally.agree += 1;
            total.agree += 1;
            continue;
        }
        let what = match &got {
            Got::Refused { forbidden, .. } => {
                tally.refused += 1;
                total.refused += 1;
                if *forbidden {
                    tally.forbidden += 1;
                    total.forbidden += 1;
                }
                "refused"
            }
            _ if silent => {
                tally.silent_wrong += 1;
                total.silent_wrong += 1;
                "SILENT WRONG"
            }
            _ => {
                tally.error_differs += 1;
                total.error_differs += 1;
                "error differs"
            }
        };
        if silent || verbose {
            let w = want
                .get("ok")
                .or(want.get("exc"))
                .cloned()
                .unwrap_or_default();
            let g = match &got {
                Got::Ok(s) | Got::Exc(s) => s.clone(),
                Got::Refused { why, .. } => why.clone(),
            };
            report.push(format!("{what}: {name}: CPython {w} | sandbox {g}"));
        }
    }
    for line in &report {
        eprintln!("{line}");
    }
    eprintln!(
        "{:<15} {:>5} {:>6} {:>7} {:>7} {:>7} {:>7}",
        "category", "cases", "agree", "agree%", "silent", "errdiff", "refused"
    );
    let row = |name: &str, t: &Tally| {
        eprintln!(
            "{:<15} {:>5} {:>6} {:>6.1}% {:>7} {:>7} {:>4}({})",
            name,
            t.cases,
            t.agree,
            100.0 * t.agree as f64 / t.cases.max(1) as f64,
            t.silent_wrong,
            t.error_differs,
            t.refused,
            t.forbidden
        )
    };
    for (cat, t) in &per {
        row(cat, t);
    }
    row("TOTAL", &total);
    assert_eq!(
        total.cases,
        expected.len(),
        "every fixture case was compared"
    );
    let pct = 100.0 * total.agree as f64 / total.cases as f64;
    assert!(
        total.silent_wrong == 0,
        "{} programs return a different value without an error",
        total.silent_wrong
    );
    assert!(
        pct >= MIN_AGREEMENT_PCT,
        "agreement {pct:.1}% below {MIN_AGREEMENT_PCT}%"
    );
}

/// Where CPython 3.11 is installed, re-run a sample of the corpus live against the fixture.
#[test]
fn fixture_matches_live_cpython_sample() {
    let version = std::process::Command::new("python3")
        .arg("--version")
        .output();
    let Ok(v) = version else {
        eprintln!("no python3: live check skipped");
        return;
    };
    if !String::from_utf8_lossy(&v.stdout).starts_with("Python 3.11") {
        eprintln!("python3 is not 3.11: live check skipped");
        return;
    }
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/py_differential.py");
    let out = std::process::Command::new("python3")
        .arg(tool)
        .args(["--check", "--sample", "10"])
        .output()
        .expect("run tool");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = text
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        checked >= MIN_CASES / 10 && text.contains(" 0 differ"),
        "{text}"
    );
}
