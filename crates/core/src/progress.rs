//! Progress bars with one look across commands, training and evaluation.
//!
//! indicatif draws to stderr and hides itself when stderr is not a terminal, so CI logs
//! stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` items labelled `label` (items per second and ETA shown).
pub fn bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// A bar that draws nothing (for `--quiet` and library callers).
pub fn hidden() -> ProgressBar {
    ProgressBar::hidden()
}
