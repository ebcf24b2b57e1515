//! Reading questions from the documented on-disk layout `DIR/TASK/SPLIT.jsonl`.
//!
//! A deliberately small reader: one JSON object a line with at least `id`, `question` and
//! `task`; `gold_step`, `gold_python` and (real GQA) `semantic` are kept when present, every
//! other field is ignored. It exists so generation does not wait for the dataset crate; the
//! CLI can hand over records from any other loader through [`Question`] just as well.

use crate::Task;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One question (or NLVR statement) to write a program for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Question {
    pub id: String,
    /// The question, or for NLVR-style tasks the statement to judge.
    pub question: String,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub gold_step: Option<String>,
    #[serde(default)]
    pub gold_python: Option<String>,
    /// GQA's functional program, when the record carries it.
    #[serde(default)]
    pub semantic: Option<serde_json::Value>,
}

/// The file that holds `task`'s `split`.
pub fn split_path(dir: &Path, task: Task, split: &str) -> PathBuf {
    dir.join(task.as_str()).join(format!("{split}.jsonl"))
}

/// Read every question of a split; a bad line is an error naming the file and line.
pub fn read_split(dir: &Path, task: Task, split: &str) -> anyhow::Result<Vec<Question>> {
    let path = split_path(dir, task, split);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading questions from {}", path.display()))?;
    parse_jsonl(&text).with_context(|| format!("in {}", path.display()))
}

/// Parse JSONL text; blank lines are skipped.
pub fn parse_jsonl(text: &str) -> anyhow::Result<Vec<Question>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: Question = serde_json::from_str(line)
            .with_context(|| format!("line {}: not a question record", i + 1))?;
        out.push(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_reports_bad_lines() {
        let text = "{\"id\":\"a\",\"question\":\"Is it red?\",\"task\":\"gqa-world\",\"gold_step\":\"X\",\"other\":1}\n\n{\"id\":\"b\",\"question\":\"q\"}\n";
        let qs = parse_jsonl(text).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].gold_step.as_deref(), Some("X"));
        assert_eq!(qs[1].gold_python, None);
        let err = parse_jsonl("{\"id\":\"a\"}\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"));
    }
}
