//! `sdvp distill` on the shipped embedded default and a tiny world: a step killed with
//! SIGKILL and started again ends with the same bytes as an uninterrupted one; the step's
//! module set runs programs; no test question or test image is ever read.

mod common;

use common::{kill_at_first_checkpoint, ok, sdvp, world};
use std::path::Path;

/// A small step: every label kept (no confidence or replay filter), so the tiny world
/// gives data to train on. A flag in `extra` replaces the default one.
fn step_args(world: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let defaults = [
        ("--task", "gqa-world"),
        ("--mine-limit", "24"),
        ("--min-confidence", "0"),
        ("--steps", "12"),
        ("--eval-every", "3"),
        ("--batch", "4"),
        ("--replay-batch", "4"),
        ("--replay-items", "12"),
        ("--val-items", "8"),
        ("--seed", "5"),
    ];
    let mut args = vec!["distill", "--no-consistency"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.into_iter()
        .chain(extra.iter().copied())
        .map(|s| s.to_string())
        .chain([
            "--data".to_string(),
            world.display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
        ])
        .collect()
}

/// Runs 6 val questions of gqa-world on module set `set`; returns the traces.
fn eval_on(world: &Path, set: &Path, out: &Path, what: &str) -> String {
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
        .arg(world)
        .arg("--modules")
        .arg(set)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    ok(o, what);
    std::fs::read_to_string(out.join("traces.jsonl")).unwrap()
}

/// Runs `args` to the end into `a`, and killed at its first checkpoint then resumed into
/// `b`; asserts that every file of `files` is non-empty and the same in both.
fn run_killed_and_resumed(
    world: &Path,
    a: &Path,
    b: &Path,
    extra: &[&str],
    files: &[&str],
) -> String {
    let printed = ok(
        sdvp().args(step_args(world, a, extra)).output().unwrap(),
        "uninterrupted run",
    );
    kill_at_first_checkpoint(
        &step_args(world, b, extra),
        &b.join("train/ckpt/trainer_state.json"),
        &b.join("step.json"),
    );
    ok(
        sdvp().args(step_args(world, b, extra)).output().unwrap(),
        "resumed run",
    );
    let mut compared = 0;
    for f in files {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(!x.is_empty(), "{f} is empty");
        assert!(
            x == y,
            "{f} differs between the uninterrupted and the resumed step"
        );
        compared += 1;
    }
    assert_eq!(compared, files.len());
    assert!(compared >= 6, "{compared} files compared");
    printed
}

#[test]
fn killed_step_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let printed = run_killed_and_resumed(
        &w,
        &a,
        &b,
        &["--ship-trained"],
        &[
            "train/best/model.safetensors",
            "train/best/config.json",
            "train/best/tokenizer.json",
            "kept.jsonl",
            "labels.jsonl",
            "train/metrics.jsonl",
            "data/metadata.jsonl",
        ],
    );
    assert!(printed.contains("kept"), "{printed}");
    let kept = std::fs::read_to_string(a.join("kept.jsonl")).unwrap();
    assert!(kept.lines().count() > 3, "{} kept", kept.lines().count());

    // The step is a module set: gold programs run on it, the distilled vqa answering.
    let set = std::fs::read_to_string(a.join("modules.json")).unwrap();
    assert!(set.contains("train/best"), "{set}");
    let traces = eval_on(
        &w,
        &a,
        &dir.path().join("eval"),
        "eval on the step's module set",
    );
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
            "depth",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--module") && err.contains("depth"), "{err}");
}

#[test]
fn killed_detect_step_resumes_to_the_same_weights_and_its_detector_answers() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let printed = run_killed_and_resumed(
        &w,
        &a,
        &b,
        &["--module", "detect", "--ship-trained"],
        &[
            "train/best/model.safetensors",
            "train/best/config.json",
            "kept.jsonl",
            "labels.jsonl",
            "train/metrics.jsonl",
            "data/metadata.jsonl",
            "modules.json",
        ],
    );
    assert!(printed.contains("gqa-world detect:"), "{printed}");
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
    let traces = eval_on(
        &w,
        &a,
        &dir.path().join("eval"),
        "eval on the detect step's module set",
    );
    assert!(
        traces.matches("train/best@sha256").count() > 0,
        "no call answered by the distilled detector"
    );
}

#[test]
fn killed_classify_step_resumes_to_the_same_weights_and_its_clip_answers() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let printed = run_killed_and_resumed(
        &w,
        &a,
        &b,
        &[
            "--module",
            "classify",
            "--style",
            "python",
            "--mine-limit",
            "120",
            "--ship-trained",
        ],
        &[
            "train/best/model.safetensors",
            "train/best/tokenizer.json",
            "kept.jsonl",
            "labels.jsonl",
            "train/metrics.jsonl",
            "data/metadata.jsonl",
            "modules.json",
        ],
    );
    assert!(printed.contains("gqa-world classify:"), "{printed}");
    // Every kept sub-task is a best_text_match call the teacher answered by ranking its
    // options as answers.
    let meta = std::fs::read_to_string(a.join("data/metadata.jsonl")).unwrap();
    let kept = std::fs::read_to_string(a.join("kept.jsonl")).unwrap();
    assert!(kept.lines().count() > 3, "{} kept", kept.lines().count());
    assert_eq!(meta.lines().count(), kept.lines().count());
    for line in meta.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let q = row["question"].as_str().unwrap();
        assert!(q.contains("the object"), "{row}");
        let options = row["options"].as_array().unwrap();
        let scores: Vec<f64> = row["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(options.len(), scores.len(), "{row}");
        assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row}");
        assert!(options.contains(&row["answer"]), "{row}");
    }
    // classify is the distilled CLIP; verify keeps the shipped one.
    let set: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("modules.json")).unwrap()).unwrap();
    assert!(set["classify"].to_string().contains("train/best"), "{set}");
    assert!(!set["verify"].to_string().contains("train/best"), "{set}");
    let o = sdvp()
        .args([
            "eval",
            "--task",
            "gqa-world",
            "--split",
            "val",
            "--limit",
            "40",
            "--style",
            "python",
        ])
        .arg("--data")
        .arg(&w)
        .arg("--modules")
        .arg(&a)
        .arg("--out")
        .arg(dir.path().join("eval"))
        .output()
        .unwrap();
    ok(o, "python eval on the classify step's module set");
    let traces = std::fs::read_to_string(dir.path().join("eval/traces.jsonl")).unwrap();
    assert!(
        traces.matches("train/best@sha256").count() > 0,
        "no classify call answered by the distilled CLIP"
    );
}

#[test]
fn a_step_keeps_the_untouched_student_unless_a_checkpoint_beats_it_on_val() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let out = dir.path().join("step");
    // A learning rate this large wrecks the student, so val says to keep it (and the module
    // set must follow the comparison step.json reports).
    let printed = ok(
        sdvp()
            .args(step_args(&w, &out, &["--lr", "0.1", "--steps", "6"]))
            .output()
            .unwrap(),
        "step",
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("step.json")).unwrap()).unwrap();
    let before = report["before"][0][1].as_f64().unwrap();
    let best = report["training"]["best"][0][1].as_f64().unwrap();
    let replaced = report["replaced"].as_bool().unwrap();
    assert_eq!(replaced, best >= before, "{report}");
    assert!(!replaced, "the wrecked student was shipped: {report}");
    let set = std::fs::read_to_string(out.join("modules.json")).unwrap();
    let vqa: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&set).unwrap()["vqa"].clone();
    assert_eq!(vqa.to_string().contains("train/best"), replaced, "{set}");
    assert_eq!(printed.contains("keeps it"), !replaced, "{printed}");
}

#[test]
fn sharded_mining_and_labelling_merge_into_the_unsharded_step() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(
        sdvp().args(step_args(&w, &a, &[])).output().unwrap(),
        "unsharded",
    );
    let printed = ok(
        sdvp()
            .args(step_args(&w, &b, &["--shard", "1/2"]))
            .output()
            .unwrap(),
        "shard 1/2",
    );
    assert!(printed.contains("shard 1/2:"), "{printed}");
    assert!(
        !b.join("step.json").exists(),
        "a shard only mines and labels"
    );
    // Merging before every shard is done names the missing one.
    let o = sdvp().args(step_args(&w, &b, &[])).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("shard 0/2"), "{err}");
    ok(
        sdvp()
            .args(step_args(&w, &b, &["--shard", "0/2"]))
            .output()
            .unwrap(),
        "shard 0/2",
    );
    ok(
        sdvp().args(step_args(&w, &b, &[])).output().unwrap(),
        "merge",
    );
    // The merged step mined the same sub-tasks, and its labels agree up to the teacher's
    // batching.
    let rows = |d: &Path, f: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (x, y) = (rows(&a, "labels.jsonl"), rows(&b, "labels.jsonl"));
    assert!(x.len() > 3, "{} sub-tasks", x.len());
    assert_eq!(x.len(), y.len());
    let mut compared = 0;
    for (p, q) in x.iter().zip(&y) {
        assert_eq!(p["subtask"]["id"], q["subtask"]["id"]);
        assert_eq!(p["subtask"]["request"], q["subtask"]["request"]);
        assert_eq!(
            p["label"]["response"]["text"], q["label"]["response"]["text"],
            "{p} vs {q}"
        );
        let (c, d) = (
            p["label"]["confidence"].as_f64().unwrap(),
            q["label"]["confidence"].as_f64().unwrap(),
        );
        assert!((c - d).abs() < 1e-4, "{c} vs {d}");
        compared += 1;
    }
    assert_eq!(compared, x.len());
    let report = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("step.json")).unwrap()).unwrap()
    };
    let (ra, rb) = (report(&a), report(&b));
    for k in ["programs", "mined", "labelled"] {
        assert_eq!(ra["counts"][k], rb["counts"][k], "{k}");
    }
}
