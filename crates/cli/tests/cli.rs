//! The command-line contract other tools rely on, exercised on the built `sdvp` binary.

use std::path::Path;
use std::process::{Command, Output};

fn sdvp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdvp"))
        .args(args)
        .output()
        .expect("sdvp runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

#[test]
fn program_check_prints_a_summary_or_one_json_problem_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.txt",
        "BOX0=LOC(image=IMAGE,object='cup')\nANSWER0=COUNT(box=BOX0)\nFINAL=RESULT(var=ANSWER0)\n",
    );
    let out = sdvp(&["program", "check", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);

    let bad = write(dir.path(), "bad.txt", "Question: how many cups?\nBOX0=LOC(image=IMAGE,object='cup')\nANSWER0=VQA(Image=IMAGE,question='What?')\nFINAL=RESULT(var=ANSWER)\n");
    let out = sdvp(&["program", "check", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let problems: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["syntax", "wrong_argument_case", "undefined_variable"],
        "{problems:?}"
    );
    for p in &problems {
        assert!(p["line"].as_u64().unwrap() >= 1 && p["column"].as_u64().unwrap() >= 1);
        assert!(!p["message"].as_str().unwrap().is_empty());
    }

    let py = write(
        dir.path(),
        "bad.py",
        "import os\ndef execute_command(image):\n    return os.getcwd()\n",
    );
    let out = sdvp(&["program", "check", "--style", "python", &py]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("\"forbidden\""),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn program_run_with_scripted_modules_prints_answer_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([200, 200, 200]))
        .save(&img)
        .unwrap();
    let prog = write(
        dir.path(),
        "p.txt",
        "BOX0=LOC(image=IMAGE,object='cup')\nIMAGE0=CROP(image=IMAGE,box=BOX0)\nANSWER0=VQA(image=IMAGE0,question='What color is the cup?')\nFINAL=RESULT(var=ANSWER0)\n",
    );
    let script = write(
        dir.path(),
        "s.json",
        r#"{"detect": {"cup": [[4, 4, 20, 20]]}, "vqa": {"*": "red"}}"#,
    );
    let trace = dir.path().join("t.jsonl");
    let out = sdvp(&[
        "program",
        "run",
        "--image",
        img.to_str().unwrap(),
        &prog,
        "--modules",
        &format!("scripted:{script}"),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim_end().ends_with("answer: red"));
    let html = dir.path().join("html");
    let out = sdvp(&[
        "trace",
        "html",
        trace.to_str().unwrap(),
        "--out",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = std::fs::read_dir(&html)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("00000"))
        .unwrap();
    let page = std::fs::read_to_string(page.path()).unwrap();
    assert!(
        page.contains("What color is the cup?") && page.contains("assets/"),
        "the page shows the call and pictures"
    );
}

#[test]
fn eval_scores_gold_programs_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let out = sdvp(&[
        "world",
        "generate",
        "--out",
        world.to_str().unwrap(),
        "--seed",
        "3",
        "--scale",
        "tiny",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = dir.path().join("run");
    for style in ["step", "python"] {
        let run = run.join(style);
        let args = [
            "eval",
            "--data",
            world.to_str().unwrap(),
            "--task",
            "gqa-world",
            "--split",
            "test",
            "--programs",
            "gold",
            "--modules",
            "oracle",
            "--style",
            style,
            "--out",
            run.to_str().unwrap(),
        ];
        let out = sdvp(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap())
                .unwrap();
        let total = metrics["overall"]["total"].as_u64().unwrap();
        assert!(total > 0);
        assert_eq!(
            metrics["overall"]["accuracy"].as_f64(),
            Some(1.0),
            "{metrics}"
        );

        // Simulate a kill: keep half of the traces and half a line.
        let traces = run.join("traces.jsonl");
        let content = std::fs::read_to_string(&traces).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        let keep = lines.len() / 2;
        let mut cut = lines[..keep].join("\n");
        cut.push('\n');
        cut.push_str(&lines[keep][..lines[keep].len() / 2]);
        std::fs::write(&traces, cut).unwrap();
        let out = sdvp(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap())
                .unwrap();
        assert_eq!(metrics["resumed"].as_u64(), Some(keep as u64));
        assert_eq!(metrics["overall"]["total"].as_u64(), Some(total));
        assert_eq!(metrics["overall"]["accuracy"].as_f64(), Some(1.0));
        assert_eq!(
            std::fs::read_to_string(&traces).unwrap().lines().count() as u64,
            total
        );
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let out = sdvp(&["program", "check", "/nonexistent/prog.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/prog.txt"));
    let out = sdvp(&[
        "eval",
        "--data",
        "/nonexistent",
        "--task",
        "gqa-world",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("panicked"));
}
