//! Reading back a run's `traces.jsonl` without losing anything.
//!
//! A killed run can leave a torn last line; a disk hiccup or a hand edit can leave a bad
//! line anywhere. Every line that parses is kept byte-for-byte, every other one is reported
//! with its line number and dropped, and only the ids without a trace run again.

use anyhow::Context;
use sdvp_core::trace::Trace;
use std::path::Path;

/// What resuming found.
#[derive(Debug, Default)]
pub struct Resumed {
    /// Traces kept, in file order (later duplicates of an id dropped).
    pub traces: Vec<Trace>,
    /// 1-based numbers of the lines dropped (not a trace, or a duplicate id).
    pub dropped_lines: Vec<usize>,
}

/// Reads `path` (absent: nothing to resume) and, when anything was dropped, rewrites it
/// atomically with exactly the kept lines, so appending goes on from a valid file.
pub fn resume_traces(path: &Path) -> anyhow::Result<Resumed> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resumed::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Resumed::default();
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let n = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let last = i + 1 == n;
        if line.is_empty() && last {
            break;
        }
        let parsed = std::str::from_utf8(line)
            .ok()
            .and_then(|s| serde_json::from_str::<Trace>(s).ok());
        match parsed {
            // A last line without its newline may be a torn write that happens to parse
            // as a prefix; a complete trace object cannot be a prefix of another, so keep it.
            Some(t) if seen.insert(t.id.clone()) => {
                kept.push(line);
                out.traces.push(t);
            }
            _ => out.dropped_lines.push(i + 1),
        }
    }
    if !out.dropped_lines.is_empty() || (!ends_with_newline && !kept.is_empty()) {
        let mut text = Vec::with_capacity(bytes.len());
        for l in &kept {
            text.extend_from_slice(l);
            text.push(b'\n');
        }
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(out)
}
