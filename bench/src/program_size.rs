//! Step-program cost against length: `check_program` and a run of valid programs, and
//! `check_program` of all-junk programs, at 1k to 10k lines (the cap). Linear code shows a
//! flat time per line; the quadratic paths of issue 14 made 10k lines take 1.6 s.
//!
//! `cargo run --release -p sdvp-bench --bin bench-program-size`

use sdvp_core::scheduler::SchedulerConfig;
use sdvp_core::scripted::{Script, ScriptedBackend};
use sdvp_core::{ImageRef, Job, Value, ValueType};
use sdvp_program::exec::{check_program, run_step_programs};
use sdvp_program::parser::MAX_PROGRAM_LINES;
use sdvp_program::steps::Registry;
use std::collections::BTreeMap;
use std::time::Instant;

fn valid(n: usize) -> String {
    let mut s = String::from("A0=VQA(image=IMAGE,question='q')\nN1=EVAL(expr='1')\n");
    for i in 2..n - 1 {
        s.push_str(&format!("N{i}=EVAL(expr='{{N{}}} + 1')\n", i - 1));
    }
    s.push_str(&format!("FINAL=RESULT(var=N{})\n", n - 2));
    s
}

fn junk(n: usize) -> String {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                format!("B{i}=VQA(image=IMAGE,question='q'\n")
            } else {
                format!("X{i}=EVAL(expr='{{U{i}}}', other=V{i})\n")
            }
        })
        .collect()
}

fn per_line_us(n: usize, f: impl Fn()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let registry = Registry::visual_reasoning(Default::default());
    let inputs = [("IMAGE", ValueType::Image)];
    let backend = ScriptedBackend::new(Script {
        vqa: BTreeMap::from([("*".to_string(), "yes".to_string())]),
        ..Script::default()
    });
    println!("lines  check(valid) µs/line  run µs/line  check(junk) µs/line");
    for n in [1_000, 2_500, 5_000, MAX_PROGRAM_LINES] {
        let (v, j) = (valid(n), junk(n));
        let check = per_line_us(n, || assert!(check_program(&v, &registry, &inputs).is_ok()));
        let job = Job {
            id: "big".into(),
            source: v.clone(),
            inputs: BTreeMap::from([(
                "IMAGE".to_string(),
                Value::Image(ImageRef::new("i.png", 8, 8)),
            )]),
            meta: BTreeMap::new(),
        };
        let run = per_line_us(n, || {
            let (t, _) = run_step_programs(
                &registry,
                &backend,
                SchedulerConfig::default(),
                std::slice::from_ref(&job),
            );
            assert!(t[0].error.is_none());
        });
        let bad = per_line_us(
            n,
            || assert!(check_program(&j, &registry, &inputs).is_err()),
        );
        println!("{n:>5}  {check:>22.2}  {run:>11.2}  {bad:>20.2}");
    }
}
