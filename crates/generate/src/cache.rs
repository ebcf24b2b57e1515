//! On-disk, content-addressed cache of raw generations.
//!
//! Language-model calls are the slow and (on paid servers) costly part of generation, and a
//! run is often repeated with the same prompts. An entry's name is the sha256 of everything
//! that decides the text — backend, model, prompt, sampling parameters, sample index — so a
//! changed prompt or temperature can never be answered from a stale entry. Entries are
//! written to a temporary file and renamed into place, so concurrent runs sharing the
//! directory never see half an entry; the last writer wins with an equally valid text.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    text: String,
}

/// Hit and miss counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries that could not be written (the run goes on without caching them).
    pub write_errors: u64,
}

pub struct Cache {
    dir: Option<PathBuf>,
    hits: AtomicU64,
    misses: AtomicU64,
    write_errors: AtomicU64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::build(Some(dir.into()))
    }

    /// No caching: every lookup misses, nothing is written.
    pub fn disabled() -> Self {
        Self::build(None)
    }

    fn build(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    /// The default location: `$XDG_CACHE_HOME/sdvp/generate`, else `~/.cache/sdvp/generate`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(base.join("sdvp").join("generate"))
    }

    /// The key of a request: sha256 over a canonical JSON of its parts.
    pub fn key(parts: &serde_json::Value) -> String {
        let digest = Sha256::digest(parts.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let shard = key.get(..2).unwrap_or("xx");
        Some(dir.join(shard).join(format!("{key}.json")))
    }

    /// The cached text, counting a hit or a miss. An unreadable or foreign entry is a miss.
    pub fn get(&self, key: &str) -> Option<String> {
        let found = self
            .path(key)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| serde_json::from_str::<Entry>(&s).ok())
            .filter(|e| e.key == key)
            .map(|e| e.text);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Store a text; failures are counted, not raised (a cache must not break a run).
    pub fn put(&self, key: &str, text: &str) {
        let Some(path) = self.path(key) else {
            return;
        };
        if self.write(&path, key, text).is_err() {
            self.write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn write(&self, path: &Path, key: &str, text: &str) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}-{key}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let body = serde_json::to_vec(&Entry {
            key: key.to_string(),
            text: text.to_string(),
        })?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path());
        let k = Cache::key(&json!({"prompt": "p", "t": 0.0}));
        assert_eq!(k.len(), 64);
        assert_eq!(c.get(&k), None);
        c.put(&k, "A=B()");
        assert_eq!(c.get(&k).as_deref(), Some("A=B()"));
        // A second cache on the same directory (another run) sees the entry.
        assert_eq!(Cache::new(dir.path()).get(&k).as_deref(), Some("A=B()"));
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 1,
                misses: 1,
                write_errors: 0
            }
        );
        assert_ne!(k, Cache::key(&json!({"prompt": "p", "t": 0.5})));
    }

    #[test]
    fn disabled_cache_never_hits() {
        let c = Cache::disabled();
        c.put("ab", "x");
        assert_eq!(c.get("ab"), None);
        assert_eq!(c.stats().misses, 1);
    }

    #[test]
    fn concurrent_writers_leave_a_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let k = Cache::key(&json!("same"));
        std::thread::scope(|s| {
            for i in 0..8 {
                let d = dir.path().to_path_buf();
                let k = k.clone();
                s.spawn(move || {
                    let c = Cache::new(d);
                    for _ in 0..20 {
                        c.put(&k, &format!("text-{i}-{}", "x".repeat(4096)));
                    }
                });
            }
        });
        let text = Cache::new(dir.path()).get(&k).unwrap();
        assert!(text.starts_with("text-") && text.len() > 4096);
        let leftovers = std::fs::read_dir(dir.path().join(&k[..2]))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
