//! `sdvp report`: evaluation runs compared in one page, with the changed answers rendered;
//! a folder that is not a finished run is a clear error.

mod common;

use common::{ok, sdvp, world};

#[test]
fn compares_runs_and_renders_changed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    // Oracle modules answer right; a script that finds nothing and answers "no" does not.
    let script = dir.path().join("no.json");
    std::fs::write(
        &script,
        r#"{"detect": {"*": []}, "vqa": {"*": "no"}, "verify": {"*": false},
            "classify": {"*": 0}, "depth": {"*": 1.0}, "llm": {"*": "no"}}"#,
    )
    .unwrap();
    let mut runs = Vec::new();
    for (name, modules) in [
        ("scripted", format!("scripted:{}", script.display())),
        ("oracle", "oracle".to_string()),
    ] {
        let run = dir.path().join(name);
        ok(
            sdvp()
                .args([
                    "eval",
                    "--task",
                    "gqa-world",
                    "--split",
                    "test",
                    "--limit",
                    "12",
                ])
                .arg("--data")
                .arg(&w)
                .args(["--modules", &modules, "--out"])
                .arg(&run)
                .output()
                .unwrap(),
            name,
        );
        runs.push(run);
    }
    let out = dir.path().join("report");
    ok(
        sdvp()
            .arg("report")
            .args(&runs)
            .arg("--images")
            .arg(&w)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
        "report",
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("gqa-world (step, test)"), "no group row");
    assert!(html.contains("<svg"), "no chart");
    assert!(html.contains("100.0"), "the oracle's accuracy is missing");
    let fixed = std::fs::read_to_string(out.join("html/0-fixed/index.html")).unwrap();
    assert!(
        fixed.contains("gqa-world-test-"),
        "no rationale of a fixed question"
    );

    let bad = sdvp()
        .arg("report")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("r2"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("run.json"));
}
