//! Gold programs of every world task, in both styles, run end to end on a module set of
//! randomly initialised tiny checkpoints (the models crate's parity fixtures; the answers
//! are noise) and on the shipped embedded default: every call must go through a real
//! model and no program may fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sdvp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdvp"))
        .current_dir(std::env::temp_dir())
        .args(args)
        .output()
        .expect("sdvp runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs every world task's gold programs (both styles, `limit` each) on `modules` (from
/// outside the checkout; `None`: the fixture set) and asserts that no program fails and
/// that weights answered every call; returns the number of model calls.
fn gold_programs_on(modules: Option<&str>, limit: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let out = sdvp(&[
        "world",
        "generate",
        "--out",
        world.to_str().unwrap(),
        "--seed",
        "5",
        "--scale",
        "tiny",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let set = dir.path().join("set");
    let spec = match modules {
        Some(m) => m.to_string(),
        None => set.display().to_string(),
    };
    std::fs::create_dir_all(&set).unwrap();
    let modules = serde_json::json!({
        "vqa": {"arch": "blip-vqa", "weights": fixture("blip")},
        "detect": {"arch": "owlvit", "weights": fixture("owlvit")},
        "verify": {"arch": "clip", "weights": fixture("clip")},
        "classify": {"arch": "clip", "weights": fixture("clip")},
        "depth": {"arch": "dpt", "weights": fixture("dpt")},
    });
    std::fs::write(set.join("modules.json"), modules.to_string()).unwrap();
    let mut runs = 0;
    let mut neural_calls = 0;
    for task in ["gqa-world", "nlvr-world", "attr-world"] {
        for style in ["step", "python"] {
            let run = dir.path().join(format!("{task}-{style}"));
            let out = sdvp(&[
                "eval",
                "--data",
                world.to_str().unwrap(),
                "--task",
                task,
                "--split",
                "test",
                "--style",
                style,
                "--modules",
                &spec,
                "--limit",
                &limit.to_string(),
                "--out",
                run.to_str().unwrap(),
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{task} {style}: {}",
                text(&out.stderr)
            );
            let m: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap())
                    .unwrap();
            let o = &m["overall"];
            assert_eq!(o["total"], limit, "{task} {style}: {m}");
            for k in [
                "no_program",
                "invalid_program",
                "execution_error",
                "missing",
            ] {
                assert_eq!(o[k], 0, "{task} {style}: {k} in {m}");
            }
            let traces = std::fs::read_to_string(run.join("traces.jsonl")).unwrap();
            for line in traces.lines() {
                let t: serde_json::Value = serde_json::from_str(line).unwrap();
                for step in t["steps"].as_array().unwrap() {
                    for call in step["calls"].as_array().unwrap() {
                        let by = call["answered_by"].as_str().unwrap_or_default();
                        assert!(
                            by.contains("@sha256:"),
                            "a call not answered by weights: {call}"
                        );
                        neural_calls += 1;
                    }
                }
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 6);
    neural_calls
}

#[test]
fn gold_programs_run_on_random_tiny_checkpoints_without_errors() {
    let calls = gold_programs_on(None, 12);
    assert!(calls > 50, "only {calls} model calls");
}

/// The shipped embedded default answers every gold program of every task in both styles,
/// from any working directory, with nothing but the checkout.
#[test]
fn gold_programs_run_on_the_embedded_default_from_any_directory() {
    let calls = gold_programs_on(Some("embedded"), 6);
    assert!(calls > 25, "only {calls} model calls");
}

#[test]
fn model_run_prints_the_contract_fields() {
    let img = fixture("clip").join("image.png");
    let cases: [(&str, &str, &[&str], &str); 4] = [
        (
            "blip-vqa",
            "blip",
            &["what color is the cube"],
            "first_step_top5",
        ),
        (
            "clip",
            "clip",
            &["a red cube", "a blue sphere"],
            "logits_per_image",
        ),
        ("owlvit", "owlvit", &["cube", "sphere"], "detections"),
        ("dpt", "dpt", &[], "depth"),
    ];
    for (arch, dir, texts, field) in cases {
        let w = fixture(dir);
        let mut args = vec![
            "model",
            "run",
            "--arch",
            arch,
            "--weights",
            w.to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--json",
        ];
        for t in texts {
            args.extend(["--text", t]);
        }
        let out = sdvp(&args);
        assert_eq!(out.status.code(), Some(0), "{arch}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!v[field].is_null(), "{arch}: {v}");
        match arch {
            "blip-vqa" => {
                assert_eq!(v["first_step_top5"].as_array().unwrap().len(), 5);
                assert!(v["token_ids"].as_array().unwrap().len() >= 2);
            }
            "clip" => assert_eq!(v["logits_per_image"].as_array().unwrap().len(), 2),
            "owlvit" => {
                let d = v["detections"].as_array().unwrap();
                assert_eq!(d.len(), 2);
                assert_eq!(d[0]["scores"].as_array().unwrap().len(), 10);
            }
            _ => assert_eq!(v["depth"]["shape"].as_array().unwrap().len(), 3),
        }
    }
    let out = sdvp(&[
        "model",
        "run",
        "--arch",
        "blip-vqa",
        "--weights",
        fixture("owlvit").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--text",
        "q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error:"),
        "{}",
        text(&out.stderr)
    );
}
