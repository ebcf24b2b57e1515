//! Learning-rate schedule: linear warm-up then cosine decay.
//!
//! This is transformers' `get_cosine_schedule_with_warmup` (half a cosine period), with
//! an optional floor `min_lr`, so that fine-tuning runs can be compared with recipes
//! written for the Python trainer.

use serde::{Deserialize, Serialize};

/// Warm-up + cosine schedule. `step` counts optimizer updates already taken (0 for the
/// first update), as in the transformers schedulers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate, reached at the end of the warm-up.
    pub base_lr: f64,
    /// Number of warm-up updates (the rate rises linearly from 0).
    pub warmup_steps: u64,
    /// Total number of updates; after it the rate stays at `min_lr`.
    pub total_steps: u64,
    /// Floor of the cosine decay.
    pub min_lr: f64,
}

impl WarmupCosine {
    /// The learning rate for update number `step`.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let factor = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + (self.base_lr - self.min_lr) * factor
    }
}
