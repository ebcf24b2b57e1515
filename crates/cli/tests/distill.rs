//! `sdvp distill` on the shipped embedded default and a tiny world: a step killed with
//! SIGKILL and started again ends with the same bytes as an uninterrupted one; the step's
//! module set runs programs; no test question or test image is ever read.

mod common;

use common::{kill_at_first_checkpoint, ok, sdvp, world};
use std::path::Path;

/// A small step: every label kept (no confidence or replay filter), so the tiny world
/// gives data to train on.
fn step_args(world: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    [
        "distill",
        "--task",
        "gqa-world",
        "--mine-limit",
        "24",
        "--min-confidence",
        "0",
        "--no-consistency",
        "--steps",
        "12",
        "--eval-every",
        "3",
        "--batch",
        "4",
        "--replay-batch",
        "4",
        "--replay-items",
        "12",
        "--val-items",
        "8",
        "--seed",
        "5",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .chain([
        "--data".to_string(),
        world.display().to_string(),
        "--out".to_string(),
        out.display().to_string(),
    ])
    .collect()
}

#[test]
fn killed_step_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let a = dir.path().join("a");
    let printed = ok(
        sdvp().args(step_args(&w, &a, &[])).output().unwrap(),
        "run a",
    );
    assert!(printed.contains("kept"), "{printed}");

    let b = dir.path().join("b");
    kill_at_first_checkpoint(
        &step_args(&w, &b, &[]),
        &b.join("train/ckpt/trainer_state.json"),
        &b.join("step.json"),
    );
    ok(
        sdvp().args(step_args(&w, &b, &[])).output().unwrap(),
        "resumed run b",
    );

    let mut compared = 0;
    for f in [
        "train/best/model.safetensors",
        "train/best/config.json",
        "train/best/tokenizer.json",
        "kept.jsonl",
        "labels.jsonl",
        "train/metrics.jsonl",
        "data/metadata.jsonl",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(
            x == y,
            "{f} differs between the uninterrupted and the resumed step"
        );
        compared += 1;
    }
    assert_eq!(compared, 7);
    let kept = std::fs::read_to_string(a.join("kept.jsonl")).unwrap();
    assert!(kept.lines().count() > 3, "{} kept", kept.lines().count());

    // The step is a module set: gold programs run on it, the distilled vqa answering.
    let set = std::fs::read_to_string(a.join("modules.json")).unwrap();
    assert!(set.contains("train/best"), "{set}");
    let e = dir.path().join("eval");
    let o = sdvp()
        .args([
            "eval",
            "--task",
            "gqa-world",
            "--split",
            "val",
            "--limit",
            "6",
        ])
        .arg("--data")
        .arg(&w)
        .arg("--modules")
        .arg(&a)
        .arg("--out")
        .arg(&e)
        .output()
        .unwrap();
    ok(o, "eval on the step's module set");
    let traces = std::fs::read_to_string(e.join("traces.jsonl")).unwrap();
    let vqa_calls = traces.matches("train/best@sha256").count();
    assert!(vqa_calls > 0, "no call answered by the distilled student");
}

#[test]
fn distillation_never_reads_a_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let mut removed = 0;
    for task in ["gqa-world", "nlvr-world", "attr-world", "pretrain"] {
        std::fs::remove_file(w.join(task).join("test.jsonl")).unwrap();
        removed += 1;
    }
    for e in std::fs::read_dir(w.join("images")).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("-test-") {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 10, "{removed} files");
    // Hard labels and no guard: the switches work too.
    let out = dir.path().join("step");
    let printed = ok(
        sdvp()
            .args(step_args(&w, &out, &["--labels", "hard", "--lambda", "0"]))
            .output()
            .unwrap(),
        "distill without test files",
    );
    assert!(printed.contains("replay 12 generic"), "{printed}");
    assert!(out.join("train/best/model.safetensors").is_file());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("step.json")).unwrap()).unwrap();
    assert_eq!(report["lambda"], 0.0);
    assert_eq!(report["hard_labels"], true);
}

#[test]
fn bad_flags_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--lambda", "-1"),
        ("--lambda", "nan"),
        ("--min-confidence", "1.5"),
        ("--lr", "0"),
        ("--mine-limit", "0"),
        ("--steps", "0"),
    ] {
        let o = sdvp()
            .args(["distill", "--data", "w", "--task", "gqa-world", "--out"])
            .arg(dir.path())
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag}={value} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag), "{flag}={value}: {err}");
    }
    let o = sdvp()
        .args([
            "distill",
            "--data",
            "w",
            "--task",
            "gqa-world",
            "--module",
            "verify",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--module") && err.contains("verify"), "{err}");
}

#[test]
fn killed_detect_step_resumes_to_the_same_weights_and_its_detector_answers() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let detect = ["--module", "detect"];
    let a = dir.path().join("a");
    let printed = ok(
        sdvp().args(step_args(&w, &a, &detect)).output().unwrap(),
        "detect run a",
    );
    assert!(printed.contains("gqa-world detect:"), "{printed}");
    let b = dir.path().join("b");
    kill_at_first_checkpoint(
        &step_args(&w, &b, &detect),
        &b.join("train/ckpt/trainer_state.json"),
        &b.join("step.json"),
    );
    ok(
        sdvp().args(step_args(&w, &b, &detect)).output().unwrap(),
        "resumed detect run b",
    );
    let mut compared = 0;
    for f in [
        "train/best/model.safetensors",
        "train/best/config.json",
        "kept.jsonl",
        "labels.jsonl",
        "train/metrics.jsonl",
        "data/metadata.jsonl",
        "modules.json",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(
            x == y,
            "{f} differs between the uninterrupted and the resumed step"
        );
        compared += 1;
    }
    assert_eq!(compared, 7);
    // The exported data names the query and COCO boxes per kept sub-task.
    let meta = std::fs::read_to_string(a.join("data/metadata.jsonl")).unwrap();
    let kept = std::fs::read_to_string(a.join("kept.jsonl")).unwrap();
    assert_eq!(meta.lines().count(), kept.lines().count());
    assert!(kept.lines().count() > 3, "{} kept", kept.lines().count());
    assert!(
        meta.contains("\"query\"") && meta.contains("\"bbox\""),
        "{meta}"
    );
    // The module set: detect is the distilled detector at a threshold chosen on val.
    let set: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("modules.json")).unwrap()).unwrap();
    let det = &set["detect"];
    assert!(det.to_string().contains("train/best"), "{set}");
    let t = det["options"]["threshold"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&t), "{t}");
    assert!(!set["vqa"].to_string().contains("train/best"), "{set}");
    let e = dir.path().join("eval");
    let o = sdvp()
        .args([
            "eval",
            "--task",
            "gqa-world",
            "--split",
            "val",
            "--limit",
            "6",
        ])
        .arg("--data")
        .arg(&w)
        .arg("--modules")
        .arg(&a)
        .arg("--out")
        .arg(&e)
        .output()
        .unwrap();
    ok(o, "eval on the detect step's module set");
    let traces = std::fs::read_to_string(e.join("traces.jsonl")).unwrap();
    assert!(
        traces.matches("train/best@sha256").count() > 0,
        "no call answered by the distilled detector"
    );
}
