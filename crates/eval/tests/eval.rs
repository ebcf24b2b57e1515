//! The evaluation library on a tiny world with the oracle: resume loses nothing, a run
//! directory belongs to one configuration, every example counts, shards merge exactly.

use sdvp_core::trace::{read_traces, ProgramStyle};
use sdvp_data::world::{generate_world, Scale, WorldConfig};
use sdvp_data::{load_split, Example, OracleBackend};
use sdvp_eval::{evaluate, merge, select_examples, EvalSpec, Programs, Shard};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn world() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sdvp-eval-world-{}", std::process::id()));
        if !dir.join("scenes.jsonl").is_file() {
            let cfg = WorldConfig {
                seed: 3,
                scale: Scale::Tiny,
                size: 96,
                threads: 1,
            };
            generate_world(&dir, &cfg, &|_, _| {}).expect("tiny world");
        }
        dir
    })
}

fn examples(task: &str) -> Vec<Example> {
    load_split(world(), task, "val").expect("split").examples
}

fn spec(out: &Path, programs: Programs) -> EvalSpec {
    EvalSpec {
        task: "gqa-world".into(),
        split: "val".into(),
        style: ProgramStyle::Step,
        programs,
        modules: "oracle".into(),
        out: out.to_path_buf(),
        limit: None,
        shard: None,
        max_batch: 8,
        restart: false,
        quiet: true,
    }
}

#[test]
fn corrupt_middle_line_keeps_every_other_trace_and_reruns_only_its_example() {
    let oracle = OracleBackend::load(world()).unwrap();
    let ex = examples("gqa-world");
    assert!(ex.len() >= 10, "tiny world has {} examples", ex.len());
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(tmp.path(), Programs::Gold);
    let first = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(first.total, ex.len());
    assert_eq!(first.correct, ex.len(), "gold on the oracle is 100%");
    let path = tmp.path().join("traces.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ex.len());
    // Tear line 3 in the middle, and add a torn line at the end.
    let mut broken = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 2 {
            broken.push_str(&l[..l.len() / 2]);
        } else {
            broken.push_str(l);
        }
        broken.push('\n');
    }
    broken.push_str(&lines[0][..10]);
    std::fs::write(&path, &broken).unwrap();
    let again = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(again.dropped_lines, vec![3, lines.len() + 1]);
    assert_eq!(again.resumed, ex.len() - 1, "only the torn example reruns");
    assert_eq!((again.correct, again.total), (ex.len(), ex.len()));
    let after = std::fs::read_to_string(&path).unwrap();
    let after_lines: Vec<&str> = after.lines().collect();
    assert_eq!(after_lines.len(), ex.len());
    // Every good line is kept byte for byte, in order; the rerun trace comes last.
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(&after_lines[..kept.len()], &kept[..]);
    let ids: std::collections::HashSet<String> = read_traces(&path)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids.len(), ex.len(), "no duplicate and no missing trace");
}

#[test]
fn non_finite_results_read_back() {
    // A Python program returning inf and a box of 1e39 (inf in f32): the trace resumes.
    let oracle = OracleBackend::load(world()).unwrap();
    let ex: Vec<Example> = examples("gqa-world").into_iter().take(2).collect();
    let tmp = tempfile::tempdir().unwrap();
    let programs = tmp.path().join("programs.jsonl");
    let mut f = std::fs::File::create(&programs).unwrap();
    let bodies = [
        "def execute_command(image):\n    return float('inf')\n",
        "def execute_command(image):\n    image_patch = ImagePatch(image)\n    p = image_patch.crop(0, 0, 1e39, 1e39)\n    return -float('inf')\n",
    ];
    for (e, b) in ex.iter().zip(bodies) {
        writeln!(f, "{}", serde_json::json!({"id": e.id, "program": b})).unwrap();
    }
    drop(f);
    let out = tmp.path().join("run");
    let mut s = spec(&out, Programs::File(programs));
    s.style = ProgramStyle::Python;
    let first = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(first.total, 2);
    let traces = read_traces(&out.join("traces.jsonl")).expect("traces read back");
    assert_eq!(traces.len(), 2);
    let answers: Vec<Option<String>> = traces.iter().map(|t| t.answer.clone()).collect();
    assert!(
        answers.iter().all(|a| a.is_some()),
        "both programs finish: {answers:?} {:?}",
        traces.iter().map(|t| &t.error).collect::<Vec<_>>()
    );
    let again = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(again.resumed, 2);
    assert!(again.dropped_lines.is_empty());
}

#[test]
fn a_run_directory_belongs_to_one_configuration() {
    let oracle = OracleBackend::load(world()).unwrap();
    let ex = examples("gqa-world");
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(tmp.path(), Programs::Gold);
    evaluate(&s, &ex, &oracle).unwrap();
    let mut other = s.clone();
    other.task = "nlvr-world".into();
    let nlvr = examples("nlvr-world");
    let err = evaluate(&other, &nlvr, &oracle).unwrap_err().to_string();
    assert!(err.contains("task") && err.contains("nlvr-world"), "{err}");
    let mut python = s.clone();
    python.style = ProgramStyle::Python;
    let err = evaluate(&python, &ex, &oracle).unwrap_err().to_string();
    assert!(err.contains("style"), "{err}");
    let mut limited = s.clone();
    limited.limit = Some(3);
    let err = evaluate(
        &limited,
        &select_examples(ex.clone(), Some(3), None),
        &oracle,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("limit"), "{err}");
    // A programs file whose answers are wrong does not score from the old gold traces.
    let programs = tmp.path().join("wrong.jsonl");
    let lines: Vec<String> = ex
        .iter()
        .map(|e| {
            serde_json::json!({"id": e.id, "program": "ANSWER0=EVAL(expr=\"'nope'\")\nFINAL_RESULT=RESULT(var=ANSWER0)"})
                .to_string()
        })
        .collect();
    std::fs::write(&programs, lines.join("\n")).unwrap();
    let mut wrong = s.clone();
    wrong.programs = Programs::File(programs);
    let err = evaluate(&wrong, &ex, &oracle).unwrap_err().to_string();
    assert!(err.contains("programs"), "{err}");
    wrong.restart = true;
    let fresh = evaluate(&wrong, &ex, &oracle).unwrap();
    assert_eq!(fresh.total, ex.len());
    assert_eq!(
        fresh.correct,
        ex.iter().filter(|e| e.answer == "nope").count()
    );
    assert_eq!(fresh.resumed, 0);
}

#[test]
fn every_example_counts_and_failures_are_counted_apart() {
    let oracle = OracleBackend::load(world()).unwrap();
    let ex = examples("gqa-world");
    let n = ex.len();
    let tmp = tempfile::tempdir().unwrap();
    let programs = tmp.path().join("programs.jsonl");
    let mut f = std::fs::File::create(&programs).unwrap();
    // 0: no line at all; 1: program null; 2: invalid; 3: fails at run time; rest: gold.
    for (i, e) in ex.iter().enumerate() {
        let p = match i {
            0 => continue,
            1 => serde_json::Value::Null,
            2 => serde_json::json!("BOX0=LOC(image=IMAGE)\nFINAL_RESULT=RESULT(var=BOX0)"),
            3 => serde_json::json!("ANSWER0=EVAL(expr=\"1/0\")\nFINAL_RESULT=RESULT(var=ANSWER0)"),
            _ => serde_json::json!(e.gold_step.clone().unwrap()),
        };
        writeln!(f, "{}", serde_json::json!({"id": e.id, "program": p})).unwrap();
    }
    drop(f);
    let s = spec(&tmp.path().join("run"), Programs::File(programs));
    let r = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(r.total, n, "the denominator is every example");
    assert_eq!(r.no_program, 2);
    assert_eq!(r.invalid_program, 1);
    assert_eq!(r.execution_error, 1);
    assert_eq!(r.correct, n - 4);
    assert!((r.accuracy - (n - 4) as f64 / n as f64).abs() < 1e-12);
    let m = &r.metrics["overall"];
    assert_eq!(m["total"], n);
    assert_eq!(m["no_program"], 2);
    // The questions without a program have traces too, so a resume does not rerun them.
    let again = evaluate(&s, &ex, &oracle).unwrap();
    assert_eq!(again.resumed, n);
    assert_eq!((again.correct, again.total), (r.correct, r.total));
}

#[test]
fn shards_merge_to_the_unsharded_run() {
    let oracle = OracleBackend::load(world()).unwrap();
    let ex = examples("nlvr-world");
    let tmp = tempfile::tempdir().unwrap();
    let mut whole = spec(&tmp.path().join("whole"), Programs::Gold);
    whole.task = "nlvr-world".into();
    let all = evaluate(&whole, &ex, &oracle).unwrap();
    let mut parts = Vec::new();
    let mut sizes = 0;
    for i in 0..3 {
        let shard = Shard { index: i, count: 3 };
        let mut s = whole.clone();
        s.out = tmp.path().join(format!("part{i}"));
        s.shard = Some(shard);
        let mine = select_examples(ex.clone(), None, Some(shard));
        sizes += mine.len();
        evaluate(&s, &mine, &oracle).unwrap();
        parts.push(s.out.clone());
    }
    assert_eq!(sizes, ex.len(), "the shards partition the split");
    let merged = merge(&parts, &tmp.path().join("merged")).unwrap();
    let whole_metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("whole/metrics.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(merged["overall"], whole_metrics["overall"]);
    assert_eq!(
        merged["per_question_type"],
        whole_metrics["per_question_type"]
    );
    assert_eq!(merged["overall"]["total"], all.total);
    // Missing or doubled shards are refused.
    let err = merge(&parts[..2], &tmp.path().join("m2"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    let twice = vec![parts[0].clone(), parts[0].clone(), parts[2].clone()];
    let err = merge(&twice, &tmp.path().join("m3"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("twice"), "{err}");
    assert!(
        Shard::parse("3/3").is_err() && Shard::parse("1/0").is_err() && Shard::parse("x").is_err()
    );
}

#[test]
fn a_row_that_is_not_utf8_is_skipped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = sdvp_data::example::split_path(world(), "gqa-world", "val");
    let text = std::fs::read(&src).unwrap();
    let mut bytes = Vec::new();
    let mut lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    bytes.extend_from_slice(lines.next().unwrap());
    bytes.extend_from_slice(b"\n{\"id\": \"bad\xff\xfe\"}\n");
    for l in lines {
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    let dir = tmp.path().join("gqa-world");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("val.jsonl"), &bytes).unwrap();
    let r = load_split(tmp.path(), "gqa-world", "val").unwrap();
    assert_eq!(r.examples.len(), examples("gqa-world").len());
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].line, 2);
    assert!(r.skipped[0].message.contains("UTF-8"), "{}", r.skipped[0]);
}
