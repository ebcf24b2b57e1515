//! `sdvp ask`: a fresh checkout answers a world question with the shipped generator and
//! modules, in both styles, as text, JSON and a rationale; bad input is a clear error.

mod common;

use common::{ok, sdvp, world};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The first test question of `task` in `w` and its image files.
fn question(w: &Path, task: &str) -> (String, Vec<PathBuf>) {
    let text = std::fs::read_to_string(w.join(task).join("test.jsonl")).unwrap();
    let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let images = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| w.join(i["path"].as_str().unwrap()))
        .collect();
    (v["question"].as_str().unwrap().to_string(), images)
}

#[test]
fn answers_world_questions_in_both_styles() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let mut answered = 0;
    for (task, style) in [
        ("gqa-world", "step"),
        ("gqa-world", "python"),
        ("nlvr-world", "step"),
    ] {
        let (q, images) = question(&w, task);
        let mut cmd = sdvp();
        cmd.current_dir(dir.path())
            .args(["ask", "--json", "--style", style, "--image"])
            .arg(&images[0]);
        if let Some(second) = images.get(1) {
            cmd.arg("--image2").arg(second);
        }
        let html = dir.path().join(format!("html-{task}-{style}"));
        let out = ok(
            cmd.arg("--html").arg(&html).arg(&q).output().unwrap(),
            &format!("ask {task} {style}: {q}"),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        let program = v["program"].as_str().unwrap();
        assert!(!program.trim().is_empty(), "{v}");
        assert!(v["answer"].as_str().is_some_and(|a| !a.is_empty()), "{v}");
        assert!(!v["steps"].as_array().unwrap().is_empty(), "{v}");
        assert_eq!(v["style"], style);
        assert!(html.join("index.html").is_file());
        answered += 1;
    }
    assert_eq!(answered, 3);
}

#[test]
fn prints_program_steps_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (q, images) = question(&w, "gqa-world");
    let out = ok(
        sdvp()
            .args(["ask", "--image"])
            .arg(&images[0])
            .arg(&q)
            .output()
            .unwrap(),
        "ask",
    );
    for part in ["program (step, embedded):", "steps:", "answer: "] {
        assert!(out.contains(part), "{part} missing from:\n{out}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (_, images) = question(&w, "gqa-world");
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--image".into(), "/no/such/image.png".into()],
            "/no/such/image.png: no such file",
        ),
        (
            vec!["--image".into(), bad.display().to_string()],
            "not a readable image",
        ),
        (
            vec![
                "--image".into(),
                images[0].display().to_string(),
                "--image2".into(),
                images[0].display().to_string(),
                "--task".into(),
                "gqa-world".into(),
            ],
            "asks about one image",
        ),
        (
            vec![
                "--image".into(),
                images[0].display().to_string(),
                "--task".into(),
                "nlvr-world".into(),
            ],
            "give --image2",
        ),
        (
            vec![
                "--image".into(),
                images[0].display().to_string(),
                "--generator".into(),
                "nonsense".into(),
            ],
            "is not embedded, openai:URL:MODEL or local:DIR",
        ),
    ];
    let n = cases.len();
    for (args, want) in cases {
        let out = sdvp()
            .arg("ask")
            .args(&args)
            .arg("What color is the cube?")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // No generator weights: the error names the folder and the rebuild command.
    let empty = dir.path().join("empty-weights");
    std::fs::create_dir_all(&empty).unwrap();
    let out = sdvp()
        .env("SDVP_WEIGHTS", &empty)
        .args(["ask", "--image"])
        .arg(&images[0])
        .arg("What color is the cube?")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty-weights/generator") && err.contains("sdvp train"),
        "{err}"
    );
    assert_eq!(n, 5);
}

#[test]
fn a_question_without_a_valid_program_exits_1_without_an_answer() {
    // A generator that has barely trained writes no valid program: the answer is refused.
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let run = dir.path().join("gen");
    ok(
        sdvp()
            .args([
                "train",
                "generator",
                "--steps",
                "1",
                "--val-items",
                "1",
                "--data",
            ])
            .arg(&w)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap(),
        "train generator",
    );
    let weights = dir.path().join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    std::fs::rename(run.join("best"), weights.join("generator")).unwrap();
    let (q, images) = question(&w, "gqa-world");
    let out = sdvp()
        .env("SDVP_WEIGHTS", &weights)
        .args(["ask", "--json", "--image"])
        .arg(&images[0])
        .arg(&q)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "an answer was printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not write a valid step program"),
        "{err}"
    );
}
