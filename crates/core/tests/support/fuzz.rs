//! The fuzz runner and byte edits shared by the stable-toolchain fuzz targets of several
//! crates (included with `#[path]`): `SDVP_FUZZ_SECS` sets the budget, rounds are seeded by
//! their number so every run is reproducible.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::time::{Duration, Instant};

/// Runs `check` on values of `strategy` for `SDVP_FUZZ_SECS` seconds (default `default_ms`).
pub fn fuzz<S: Strategy>(
    name: &str,
    default_ms: u64,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let budget = std::env::var("SDVP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_millis(default_ms), Duration::from_secs_f64);
    let deadline = Instant::now() + budget;
    let mut cases = 0u64;
    for round in 0u64.. {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        let config = Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("{name}, round {round}: {e}");
        }
        cases += 32;
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("{name}: {cases} cases in {budget:?}");
}

#[derive(Debug, Clone)]
pub enum Edit {
    Keep,
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => Just(Edit::Keep),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

pub fn apply(mut line: Vec<u8>, e: &Edit) -> Vec<u8> {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *e {
        Edit::Keep => {}
        Edit::Truncate(i) => line.truncate(at(i, line.len())),
        Edit::Flip(i, b) if !line.is_empty() => {
            let i = at(i, line.len());
            line[i] ^= b | 1;
        }
        Edit::Flip(..) => {}
        Edit::Insert(i, b) => line.insert(at(i, line.len() + 1), b),
    }
    line
}
