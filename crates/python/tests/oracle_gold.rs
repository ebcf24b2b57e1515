//! Every gold Python program of every task and split of a tiny world, run with the oracle,
//! reproduces its gold answer.

use sdvp_core::value::normalize_answer;
use sdvp_core::Job;
use sdvp_core::SchedulerConfig;
use sdvp_data::world::{generate_world, splits_of, Scale, WorldConfig, TASKS};
use sdvp_data::{load_split, OracleBackend};
use sdvp_python::{run_python_programs, Limits};

#[test]
fn gold_python_programs_reproduce_gold_answers_with_the_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WorldConfig {
        seed: 7,
        scale: Scale::Tiny,
        size: 128,
        threads: 2,
    };
    generate_world(dir.path(), &cfg, &|_, _| {}).expect("generate");
    let oracle = OracleBackend::load(dir.path()).expect("scenes");
    let mut failures = Vec::new();
    let mut checked = 0;
    for task in TASKS {
        for split in splits_of(task) {
            let report = load_split(dir.path(), task, split).expect("load");
            let jobs: Vec<Job> = report
                .examples
                .iter()
                .filter_map(|ex| {
                    Some(Job {
                        id: ex.id.clone(),
                        source: ex.gold_python.clone()?,
                        inputs: ex.inputs(),
                        meta: Default::default(),
                    })
                })
                .collect();
            let (traces, _) = run_python_programs(
                &oracle,
                SchedulerConfig::default(),
                &jobs,
                &Limits::default(),
            );
            let gold: std::collections::HashMap<_, _> =
                report.examples.iter().map(|e| (e.id.clone(), e)).collect();
            for t in traces {
                checked += 1;
                let ex = gold[&t.id];
                let got = t.answer.clone().unwrap_or_default();
                if normalize_answer(&got) != normalize_answer(&ex.answer) {
                    failures.push(format!(
                        "{} [{}] {:?}: gold {:?}, got {:?} error {:?}\n{}",
                        ex.id,
                        ex.question_type,
                        ex.question,
                        ex.answer,
                        got,
                        t.error.map(|e| e.message),
                        t.program
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} wrong:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(checked > 400, "only {checked} programs checked");
}
