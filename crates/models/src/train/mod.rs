//! The training core shared by every fine-tuned model: parameters and freezing,
//! AdamW with clipping and accumulation, the learning-rate schedule, exact-resume
//! checkpoints, JSONL metrics, a loss-curve plot and a progress bar.

pub mod checkpoint;
pub mod metrics;
pub mod optim;
pub mod params;
pub mod plot;
pub mod progress;
pub mod schedule;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, TrainerState};
pub use metrics::{read_metrics, MetricsWriter};
pub use optim::{AdamW, AdamWConfig, AdamWState, GradAccumulator, ParamGrads};
pub use params::{seeded_init, NamedParams, ParamFilter, SplitMix64};
pub use plot::plot_loss_curve;
pub use progress::progress_bar;
pub use schedule::WarmupCosine;
