//! Sharded mining and labelling: `--shard I/N` runs a step's first two stages on part I of
//! N of the training questions (deterministic by id, as `sdvp eval --shard`), into
//! `OUT/shards/I-of-N/` (`mine-STYLE/`, `labels.jsonl`, `shard.json`). The same command
//! without `--shard` then merges the N parts, re-mining and re-labelling nothing, and goes
//! on to filter and fine-tune. Traces are put in the examples' order, so a merged step mines
//! the same sub-tasks as an unsharded one; their labels can differ by the teacher's
//! batching (float rounding, ≤ 1e-5), since a shard batches other requests together.

use crate::label::Label;
use anyhow::{bail, Context, Result};
use sdvp_eval::Shard;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What one shard did (`shard.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardReport {
    pub index: usize,
    pub count: usize,
    pub programs: usize,
    pub mined: usize,
    pub labelled: usize,
    pub dir: PathBuf,
}

/// Where shard `s` of a step writes.
pub fn shard_dir(out: &Path, s: Shard) -> PathBuf {
    out.join("shards")
        .join(format!("{}-of-{}", s.index, s.count))
}

/// The finished shards of a step, in index order, when `OUT/shards/` holds any: all N of one
/// count, each with its `shard.json`, or an error naming what is missing.
pub fn finished_shards(out: &Path) -> Result<Option<Vec<PathBuf>>> {
    let root = out.join("shards");
    if !root.is_dir() {
        return Ok(None);
    }
    let mut found: Vec<(usize, usize, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let path = e?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parsed = name
            .split_once("-of-")
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
        match parsed {
            Some((i, n)) if i < n => found.push((i, n, path)),
            _ => bail!(
                "{}: not a shard directory (expected I-of-N)",
                path.display()
            ),
        }
    }
    let Some(&(_, count, _)) = found.first() else {
        return Ok(None);
    };
    if let Some((_, n, p)) = found.iter().find(|(_, n, _)| *n != count) {
        bail!(
            "{} is a shard of {n}, another is of {count}: shards of one step share N",
            p.display()
        );
    }
    found.sort_by_key(|(i, _, _)| *i);
    for k in 0..count {
        match found.iter().find(|(i, _, _)| *i == k) {
            Some((_, _, p)) if p.join("shard.json").is_file() => {}
            Some((_, _, p)) => bail!(
                "shard {k}/{count} has not finished ({} has no shard.json): run it again with \
                 --shard {k}/{count}",
                p.display()
            ),
            None => bail!("shard {k}/{count} is missing: run the step with --shard {k}/{count}"),
        }
    }
    Ok(Some(found.into_iter().map(|(_, _, p)| p).collect()))
}

/// Every label the shards wrote, by sub-task id.
pub fn shard_labels(shards: &[PathBuf]) -> Result<HashMap<String, Label>> {
    let mut out = HashMap::new();
    for dir in shards {
        let path = dir.join("labels.jsonl");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let l: Label = serde_json::from_str(line)
                .with_context(|| format!("{}:{}", path.display(), i + 1))?;
            out.insert(l.subtask.clone(), l);
        }
    }
    Ok(out)
}
