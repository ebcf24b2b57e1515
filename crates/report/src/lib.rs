//! Visual rationales: traces rendered as HTML pages a person can read at a glance.
//!
//! Each program gets a page showing every step: the program line, the images it looked at
//! (the source image with the crop region and any boxes drawn, and the crop itself), its
//! outputs and model calls, with failures highlighted. An index page lists all programs
//! with their answers and, when the trace carries one, the gold answer.
//!
//! [`comparison`] draws run comparisons (tables and SVG bar charts) for `sdvp demo`.

pub mod comparison;
mod draw;
mod html;

pub use draw::ImageResolver;
pub use html::{render_traces, RenderSummary};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot encode image: {message}")]
    Encode { path: String, message: String },
}
