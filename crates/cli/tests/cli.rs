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

/// Runs `args` expecting clap to refuse it: exit 2, naming the flag, before any work.
fn refused(args: &[&str], flag: &str) {
    let out = sdvp(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(flag), "{args:?}: {err}");
}

#[test]
fn every_numeric_flag_is_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("o").display().to_string();
    let sheet = |flag: &str, v: &str| {
        refused(
            &[
                "world",
                "sheet",
                d,
                "--task",
                "t",
                "--out",
                &out,
                &format!("{flag}={v}"),
            ],
            flag,
        )
    };
    // `--flag=VALUE`, so negative numbers reach the value parser. `--thumb 0` to 5 looped forever in text wrapping; 100000 and a huge --cols aborted.
    for v in ["0", "1", "5", "15", "1025", "100000", "-1", "x"] {
        sheet("--thumb", v);
    }
    for v in ["0", "65", "18446744073709551615", "18446744073709551616"] {
        sheet("--cols", v);
    }
    for v in ["0", "1025", "18446744073709551615"] {
        sheet("--count", v);
    }
    let world = |flag: &str, v: &str| {
        refused(
            &["world", "generate", "--out", &out, &format!("{flag}={v}")],
            flag,
        );
    };
    for v in ["257", "1000000", "18446744073709551615"] {
        world("--threads", v);
    }
    for v in ["0", "31", "1025", "4294967296"] {
        world("--size", v);
    }
    world("--seed", "18446744073709551616");
    refused(
        &["trace", "html", "t.jsonl", "--out", &out, "--limit", "0"],
        "--limit",
    );
    refused(
        &["demo", "--out", &out, "--mine-limit", "0"],
        "--mine-limit",
    );
    for (args, flag) in [
        (vec!["eval", "--max-batch", "0"], "--max-batch"),
        (vec!["eval", "--limit", "0"], "--limit"),
    ] {
        let mut a = vec!["--data", d, "--task", "t", "--out", &out];
        a.splice(0..0, args);
        refused(&a, flag);
    }
    let generate = |flag: &str, v: &str| {
        refused(
            &[
                "generate",
                "--data",
                d,
                "--task",
                "gqa-world",
                "--generator",
                "gold",
                "--out",
                &out,
                &format!("{flag}={v}"),
            ],
            flag,
        );
    };
    for (flag, bad) in [
        ("--limit", &["0", "18446744073709551615"][..]),
        ("--samples", &["0", "65"]),
        ("--vote-group", &["0", "4097"]),
        ("--resamples", &["17"]),
        ("--examples", &["65"]),
        ("--temperature", &["-0.1", "2.5", "NaN", "inf"]),
        ("--top-p", &["0", "1.5", "NaN"]),
        ("--max-tokens", &["0", "131073"]),
        ("--concurrency", &["0", "257"]),
        ("--deadline", &["31536001", "18446744073709551615"]),
        ("--request-timeout", &["0", "86401"]),
        ("--retries", &["17", "4294967296"]),
        ("--seed", &["-1"]),
    ] {
        for v in bad {
            generate(flag, v);
        }
    }
}

fn world_row(id: &str, image_path: &str) -> String {
    serde_json::json!({
        "id": id, "task": "t", "split": "val", "question": "Is it blue?", "answer": "yes",
        "question_type": "verify",
        "images": [{"name": "IMAGE", "image": {"source": id, "width": 8, "height": 8,
                    "region": [0, 0, 8, 8]}, "path": image_path}]
    })
    .to_string()
}

#[test]
fn world_sheet_refuses_rows_naming_files_outside_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("t")).unwrap();
    let px = image::RgbImage::from_pixel(8, 8, image::Rgb([0, 0, 255]));
    px.save(data.join("a.png")).unwrap();
    px.save(dir.path().join("secret.png")).unwrap();
    let secret = dir.path().join("secret.png");
    std::fs::write(
        data.join("t").join("val.jsonl"),
        [
            world_row("a", "a.png"),
            world_row("b", secret.to_str().unwrap()),
            world_row("c", "../secret.png"),
            world_row("d", "/etc/passwd"),
        ]
        .join("\n"),
    )
    .unwrap();
    let out_png = dir.path().join("sheet.png");
    let out = sdvp(&[
        "world",
        "sheet",
        data.to_str().unwrap(),
        "--task",
        "t",
        "--out",
        out_png.to_str().unwrap(),
        "--thumb",
        "16",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        text(&out.stdout).starts_with("1 examples"),
        "{}",
        text(&out.stdout)
    );
    for line in [2, 3, 4] {
        assert!(
            err.contains(&format!("val.jsonl:{line}: image path")),
            "{err}"
        );
    }
    // The sheet is one cell wide, whatever --cols says.
    let sheet = image::open(&out_png).unwrap();
    assert_eq!(sheet.width(), 16 + 8);
}

#[test]
fn trace_html_skips_bad_lines_and_reads_images_only_inside_its_roots() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let px = image::RgbImage::from_pixel(8, 8, image::Rgb([0, 200, 0]));
    let inside = runs.join("inside.png");
    px.save(&inside).unwrap();
    px.save(dir.path().join("secret.png")).unwrap();
    let secret = dir.path().join("secret.png");
    let prog = write(
        dir.path(),
        "p.txt",
        "A=VQA(image=IMAGE,question='q')\nFINAL=RESULT(var=A)\n",
    );
    let script = write(dir.path(), "s.json", r#"{"vqa": {"*": "yes"}}"#);
    let one = dir.path().join("one.jsonl");
    let out = sdvp(&[
        "program",
        "run",
        "--image",
        inside.to_str().unwrap(),
        &prog,
        "--modules",
        &format!("scripted:{script}"),
        "--trace",
        one.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let good = std::fs::read_to_string(&one).unwrap();
    let good = good.trim_end();
    let inside_src = format!("\"{}\"", inside.display());
    assert!(good.contains(&inside_src), "{good}");
    let with_source = |s: &str| good.replace(&inside_src, &format!("\"{s}\""));
    let traces = runs.join("t.jsonl");
    let mut content = format!(
        "{good}\n{{not json\n{}\n{}\n",
        with_source(secret.to_str().unwrap()),
        with_source("../secret"),
    )
    .into_bytes();
    content.extend_from_slice(b"\xff\xfe\n");
    std::fs::write(&traces, content).unwrap();
    let html = dir.path().join("html");
    let out = sdvp(&[
        "trace",
        "html",
        traces.to_str().unwrap(),
        "--out",
        html.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        text(&out.stdout).starts_with("3 page(s)"),
        "{}",
        text(&out.stdout)
    );
    assert!(err.contains("t.jsonl:2: not a trace"), "{err}");
    assert!(err.contains("t.jsonl:5: not a trace"), "{err}");
    assert!(err.contains("2 source image(s) not found"), "{err}");
    // Only the picture of the image inside the traces folder was drawn.
    let pages: Vec<String> = std::fs::read_dir(&html)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("0000"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.iter().filter(|p| p.contains("assets/")).count(), 1);
}

#[test]
fn oversized_and_bom_programs_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), "big.txt", &"X=EVAL(expr='1')\n".repeat(10_001));
    let out = sdvp(&["program", "check", &big]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("\"too_large\"") && stdout.contains("at most 10000"),
        "{stdout}"
    );
    let bom = write(
        dir.path(),
        "bom.txt",
        "\u{feff}BOX0=LOC(image=IMAGE,object='cup')\nFINAL=RESULT(var=BOX0)\n",
    );
    let out = sdvp(&["program", "check", &bom]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
