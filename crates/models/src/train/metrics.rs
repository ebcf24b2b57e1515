//! Training metrics as JSON lines, one record per line, flushed as written, so that a
//! killed run loses at most the line being written and another process can follow the
//! file while training runs.

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Appends records to a JSONL file.
pub struct MetricsWriter {
    file: File,
    path: PathBuf,
}

impl MetricsWriter {
    /// Opens `path` for appending, creating it (and its parent folder) if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating metrics folder {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening metrics file {}", path.display()))?;
        Ok(Self { file, path })
    }

    /// Writes `{"step": step, name: value, ...}` as one line and flushes it.
    pub fn log(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let mut obj = Map::new();
        obj.insert("step".into(), Value::from(step));
        for (k, v) in values {
            // JSON has no NaN/inf: those become null rather than an unreadable line.
            let val = serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number);
            obj.insert((*k).to_string(), val);
        }
        self.log_value(&Value::Object(obj))
    }

    /// Writes an arbitrary JSON value as one line and flushes it.
    pub fn log_value(&mut self, value: &Value) -> Result<()> {
        let mut line = serde_json::to_string(value)?;
        line.push('\n');
        // One write call per line, so concurrent readers never see half a record
        // unless the process dies mid-write.
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing metrics file {}", self.path.display()))
    }
}

/// Reads every complete record of a JSONL metrics file; a torn last line (a run killed
/// mid-write) is skipped, any other bad line is an error naming its line number.
pub fn read_metrics(path: impl AsRef<Path>) -> Result<Vec<Value>> {
    let path = path.as_ref();
    let f = File::open(path).with_context(|| format!("opening metrics file {}", path.display()))?;
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading metrics file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => return Err(e).with_context(|| format!("{}: line {}", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// The `(step, value)` pairs of one metric, in file order.
pub fn series(records: &[Value], key: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?)))
        .collect()
}
