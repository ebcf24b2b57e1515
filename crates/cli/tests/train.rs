//! `sdvp train`: a run killed with SIGKILL and started again ends with the same bytes as an
//! uninterrupted run, and training never reads a test split.

mod common;

use common::{kill_at_first_checkpoint, ok, sdvp, world};
use std::path::Path;

fn train_args(world: &Path, out: &Path) -> Vec<String> {
    model_args("teacher-vqa:gqa-world", world, out)
}

fn model_args(model: &str, world: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        model,
        "--steps",
        "60",
        "--eval-every",
        "4",
        "--batch",
        "4",
        "--val-items",
        "8",
        "--max-scenes",
        "12",
        "--seed",
        "7",
    ]
    .iter()
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
fn killed_run_resumes_to_the_same_weights() {
    killed_run_resumes(train_args);
}

#[test]
fn killed_generator_run_resumes_to_the_same_weights() {
    killed_run_resumes(|w, o| model_args("generator", w, o));
}

fn killed_run_resumes(args: impl Fn(&Path, &Path) -> Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    let a = dir.path().join("a");
    ok(sdvp().args(args(&w, &a)).output().unwrap(), "run a");

    let b = dir.path().join("b");
    kill_at_first_checkpoint(
        &args(&w, &b),
        &b.join("ckpt/trainer_state.json"),
        &b.join("summary.json"),
    );
    ok(sdvp().args(args(&w, &b)).output().unwrap(), "resumed run b");

    let mut compared = 0;
    for f in [
        "best/model.safetensors",
        "best/config.json",
        "best/tokenizer.json",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(
            x == y,
            "{f} differs between the uninterrupted and the resumed run"
        );
        compared += 1;
    }
    let ma: Vec<String> = std::fs::read_to_string(a.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mb: Vec<String> = std::fs::read_to_string(b.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        ma, mb,
        "metrics differ (lines duplicated or lost by the resume)"
    );
    assert_eq!(compared, 3);
    assert!(ma.len() > 15, "{} metric lines", ma.len());
}

#[test]
fn training_never_reads_a_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path());
    // Remove every test question file and test image, and make every test scene line
    // unparseable: a trainer that touched any of them would fail.
    let mut removed = 0;
    for task in ["gqa-world", "nlvr-world", "attr-world", "pretrain"] {
        std::fs::remove_file(w.join(task).join("test.jsonl")).unwrap();
        removed += 1;
    }
    // The held-out phrasings are a test split too.
    for task in ["gqa-world", "nlvr-world", "attr-world"] {
        std::fs::remove_file(w.join(task).join("heldout.jsonl")).unwrap();
        removed += 1;
    }
    let is_test = |s: &str| s.contains("-test-") || s.contains("-heldout-");
    for e in std::fs::read_dir(w.join("images")).unwrap() {
        let p = e.unwrap().path();
        if is_test(&p.to_string_lossy()) {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    let scenes = std::fs::read_to_string(w.join("scenes.jsonl")).unwrap();
    let mut poisoned = 0;
    let text: String = scenes
        .lines()
        .map(|l| {
            if is_test(l) {
                poisoned += 1;
                "{not json, a test scene was here\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(w.join("scenes.jsonl"), text).unwrap();
    assert!(
        removed > 10 && poisoned > 10,
        "{removed} files, {poisoned} scenes"
    );
    for model in [
        "teacher-vqa:gqa-world",
        "teacher-detect:nlvr-world",
        "clip",
        "generator",
    ] {
        let out = dir.path().join(model.replace(':', "-"));
        let o = sdvp()
            .args([
                "train",
                model,
                "--steps",
                "2",
                "--batch",
                "2",
                "--val-items",
                "4",
            ])
            .args(["--max-scenes", "6", "--data"])
            .arg(&w)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        ok(o, model);
        assert!(out.join("best/model.safetensors").is_file());
    }
}
