//! What the resumable-run tests share: the binary, a tiny world, and a run killed with
//! SIGKILL once its first checkpoint exists.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn sdvp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sdvp"))
}

/// Asserts exit code 0 and returns stdout.
pub fn ok(out: Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny world (seed 3) in `dir/world`.
pub fn world(dir: &Path) -> PathBuf {
    let w = dir.join("world");
    let out = sdvp()
        .args([
            "world", "generate", "--scale", "tiny", "--seed", "3", "--out",
        ])
        .arg(&w)
        .output()
        .unwrap();
    ok(out, "world generate");
    w
}

/// Starts `sdvp args`, kills it with SIGKILL as soon as `checkpoint` exists, and asserts
/// that it was killed before writing `finished` (else the test would prove nothing).
pub fn kill_at_first_checkpoint(args: &[String], checkpoint: &Path, finished: &Path) {
    let mut child = sdvp()
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !checkpoint.is_file() && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(checkpoint.is_file(), "no checkpoint appeared");
    assert!(
        !finished.is_file(),
        "the run finished before it could be killed; the test proves nothing"
    );
}
