//! Fuzz target on the stable toolchain: `resume_traces` on traces files built from real
//! trace lines, then torn, flipped, spliced, duplicated, padded with CRLF or bytes that are
//! not UTF-8. It may not panic, must account for every line, and must leave a file that
//! reads back whole and resumes again without dropping anything.
//!
//! A short budget runs as a normal test; `SDVP_FUZZ_SECS=600` runs it for ten minutes.

#[path = "../../core/tests/trace_lines/mod.rs"]
mod trace_lines;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sdvp_core::trace::read_traces;
use sdvp_eval::resume::resume_traces;
use trace_lines::{fuzz, traces_file};

#[test]
fn fuzz_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    fuzz("resume", 3000, traces_file(), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        let first = resume_traces(&path).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let lines = bytes.split(|b| *b == b'\n').count() - usize::from(bytes.ends_with(b"\n"));
        let lines = if bytes.is_empty() { 0 } else { lines };
        prop_assert_eq!(first.traces.len() + first.dropped_lines.len(), lines);
        // What is left reads back whole, and resuming again keeps it all.
        if !first.traces.is_empty() {
            let back = read_traces(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.len(), first.traces.len());
        }
        let again = resume_traces(&path).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert!(again.dropped_lines.is_empty(), "{:?}", again.dropped_lines);
        prop_assert_eq!(again.traces.len(), first.traces.len());
        Ok(())
    });
}
