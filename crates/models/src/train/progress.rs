//! A progress bar for training and evaluation loops.

use indicatif::ProgressBar;

/// A bar of `total` steps labelled `label`. indicatif draws to stderr and hides itself
/// when stderr is not a terminal, so logs of CI runs stay clean.
pub fn progress_bar(total: u64, label: &str) -> ProgressBar {
    sdvp_core::progress::bar(total, label)
}
