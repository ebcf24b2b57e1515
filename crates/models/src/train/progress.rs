//! A progress bar for training and evaluation loops.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps labelled `label`. indicatif draws to stderr and hides itself
/// when stderr is not a terminal, so logs of CI runs stay clean.
pub fn progress_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}
