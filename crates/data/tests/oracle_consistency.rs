//! The world's consistency proof: every gold step program, run against the oracle,
//! reproduces its gold answer, on every task and split of a tiny world.

use sdvp_core::value::normalize_answer;
use sdvp_core::Job;
use sdvp_core::SchedulerConfig;
use sdvp_data::world::{generate_world, splits_of, Scale, WorldConfig, TASKS};
use sdvp_data::{load_split, OracleBackend};
use sdvp_program::exec::run_step_programs;
use sdvp_program::steps::Registry;

#[test]
fn gold_step_programs_reproduce_gold_answers_with_the_oracle() {
    let mut failures = Vec::new();
    let mut checked = 0;
    // Seed 1 once caught an anchor counted on its own side; keep it.
    for seed in [1, 7, 23] {
        check_seed(seed, &mut failures, &mut checked);
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
    assert!(checked > 1200, "only {checked} programs checked");
}

fn check_seed(seed: u64, failures: &mut Vec<String>, checked: &mut usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WorldConfig {
        seed,
        scale: Scale::Tiny,
        size: 128,
        threads: 2,
    };
    generate_world(dir.path(), &cfg, &|_, _| {}).expect("generate");
    let oracle = OracleBackend::load(dir.path()).expect("scenes");
    let registry = Registry::visual_reasoning(Default::default());
    for task in TASKS {
        for split in splits_of(task) {
            let report = load_split(dir.path(), task, split).expect("load");
            assert!(report.skipped.is_empty(), "{:?}", report.skipped);
            assert!(!report.examples.is_empty(), "{task}/{split} is empty");
            let jobs: Vec<Job> = report
                .examples
                .iter()
                .filter_map(|ex| {
                    Some(Job {
                        id: ex.id.clone(),
                        source: ex.gold_step.clone()?,
                        inputs: ex.inputs(),
                        meta: Default::default(),
                    })
                })
                .collect();
            let (traces, _) =
                run_step_programs(&registry, &oracle, SchedulerConfig::default(), &jobs);
            let gold: std::collections::HashMap<_, _> =
                report.examples.iter().map(|e| (e.id.clone(), e)).collect();
            for t in traces {
                *checked += 1;
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
}
