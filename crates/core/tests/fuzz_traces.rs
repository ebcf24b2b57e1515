//! Fuzz target on the stable toolchain: traces files built from real trace lines, then torn,
//! flipped, spliced, padded with a BOM, CRLF or bytes that are not UTF-8, read by
//! `read_traces` and `read_traces_skipping`. Neither may panic; every line is accounted for.
//!
//! A short budget runs as a normal test; `SDVP_FUZZ_SECS=600` runs it for ten minutes.

mod trace_lines;

use proptest::prelude::*;
use sdvp_core::trace::{read_traces, read_traces_skipping};
use sdvp_core::{ImageRef, Value};
use trace_lines::{fuzz, good_lines, traces_file};

fn nonblank_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count()
}

#[test]
fn fuzz_trace_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    fuzz("trace reader", 3000, traces_file(), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        let (traces, skipped) = read_traces_skipping(&path).unwrap();
        prop_assert_eq!(traces.len() + skipped.len(), nonblank_lines(&bytes));
        for e in &skipped {
            prop_assert!(e.to_string().contains("traces.jsonl:"), "{e}");
        }
        match read_traces(&path) {
            Ok(all) => {
                prop_assert!(skipped.is_empty());
                prop_assert_eq!(all.len(), traces.len());
            }
            Err(e) => {
                prop_assert!(!skipped.is_empty());
                prop_assert_eq!(e.to_string(), skipped[0].to_string());
            }
        }
        Ok(())
    });
}

#[test]
fn good_lines_read_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let mut bytes = Vec::new();
    for l in good_lines() {
        bytes.extend(l);
        bytes.extend_from_slice(b"\r\n");
    }
    std::fs::write(&path, &bytes).unwrap();
    let traces = read_traces(&path).unwrap();
    assert_eq!(traces.len(), good_lines().len());
    assert_eq!(
        traces[5].result,
        Some(Value::Image(ImageRef::new("gqa-world/val/0001", 64, 48)))
    );
}
