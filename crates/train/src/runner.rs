//! The one training loop every embedded model goes through.
//!
//! A run directory holds `ckpt/` (exact-resume checkpoint: weights, AdamW moments, step,
//! best validation score), `metrics.jsonl` (one line per logged step and per validation),
//! `best/` (the Hugging Face export of the best validation score so far) and, when the run
//! ends, `summary.json` and `curves.png`. Batches are a pure function of `(seed, step)`, so
//! a run killed at any instant and started again with the same command ends with the same
//! weights as an uninterrupted one. Model selection reads the validation split only.

use crate::chart::{self, Series};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use candle_nn::VarMap;
use sdvp_core::rng::SplitMix64;
use sdvp_models::train::checkpoint::{has_checkpoint, write_atomic};
use sdvp_models::train::metrics::series;
use sdvp_models::train::{
    load_checkpoint, read_metrics, save_checkpoint, AdamW, AdamWConfig, MetricsWriter, NamedParams,
    ParamFilter, ParamGrads, TrainerState, WarmupCosine,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Optimisation settings of one run (recorded in `summary.json` and the manifest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Schedule {
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    pub warmup: u64,
    pub weight_decay: f64,
    pub clip_norm: f64,
    /// Validate (and checkpoint) every this many steps, and at the last step.
    pub eval_every: u64,
    /// Log the training loss every this many steps.
    pub log_every: u64,
}

impl Schedule {
    pub fn check(&self) -> Result<()> {
        if !(1..=10_000_000).contains(&self.steps) {
            bail!("steps must be in 1..=10000000, got {}", self.steps);
        }
        if !(1..=4096).contains(&self.batch) {
            bail!("batch must be in 1..=4096, got {}", self.batch);
        }
        if !(self.lr > 0.0 && self.lr < 1.0) {
            bail!("lr must be in (0, 1), got {}", self.lr);
        }
        if self.eval_every == 0 || self.log_every == 0 {
            bail!("eval_every and log_every must be at least 1");
        }
        Ok(())
    }
}

/// A model with its data: what the loop needs to train, validate and export it.
pub trait Trainee: Sync {
    /// Every variable of the model, under its checkpoint names.
    fn varmap(&self) -> &VarMap;
    /// Variables not to train (parameters no loss reaches, by design).
    fn frozen(&self) -> ParamFilter {
        ParamFilter::none()
    }
    /// Number of training items (batches are drawn from a per-epoch permutation).
    fn train_len(&self) -> usize;
    /// The loss of the items `batch` (indices into the training items) and named parts to log.
    fn loss(&self, batch: &[usize], rng: &mut SplitMix64) -> Result<(Tensor, Vec<(String, f64)>)>;
    /// Validation metrics; the first is the selection score (higher is better).
    fn validate(&self) -> Result<Vec<(String, f64)>>;
    /// Writes the model in the Hugging Face layout into `dir` (which exists and is empty).
    fn export(&self, dir: &Path) -> Result<()>;
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub name: String,
    pub seed: u64,
    pub schedule: Schedule,
    pub params: usize,
    pub best_step: u64,
    pub best: Vec<(String, f64)>,
    /// Wall seconds of this process's share of the run (a resumed run counts only its part).
    pub seconds: f64,
    pub train_items: usize,
    /// What the run's validation says went wrong (e.g. accuracy at the answer prior).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A VQA model whose best validation accuracy does not beat the answer prior by this has not
/// learned from the image: at too high a learning rate the BLIP models of the world learn
/// only the answers' frequencies, and their loss curve still looks healthy.
pub const PRIOR_MARGIN: f64 = 0.05;

/// Warnings about a best validation: accuracy no better than its `prior`.
pub fn validation_warnings(best: &[(String, f64)]) -> Vec<String> {
    let get = |k: &str| best.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    match (get("accuracy"), get("prior")) {
        (Some(acc), Some(prior)) if acc < prior + PRIOR_MARGIN => vec![format!(
            "best validation accuracy {acc:.3} does not beat the answer prior {prior:.3} \
             (every question answered with its kind's most frequent answer) by {PRIOR_MARGIN}: \
             the model has not learned from the image; try a lower --lr or more --steps"
        )],
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Extra {
    best_score: Option<f64>,
    best_step: u64,
    best: Vec<(String, f64)>,
    seconds: f64,
    /// The loss sum and count since the last logged step, so a resumed run logs the same
    /// means as an uninterrupted one.
    #[serde(default)]
    running: f64,
    #[serde(default)]
    running_n: u64,
}

/// Indices of the items of training step `step`: epoch `e` visits a permutation drawn from
/// `(seed, e)`, so batches depend only on the seed and the step.
pub fn batch_indices(seed: u64, step: u64, batch: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    let start = step as usize * batch;
    let mut out = Vec::with_capacity(batch);
    let mut perm_epoch = usize::MAX;
    let mut perm: Vec<usize> = Vec::new();
    for k in start..start + batch {
        let (epoch, pos) = (k / n, k % n);
        if epoch != perm_epoch {
            perm = (0..n).collect();
            SplitMix64::derive(seed ^ 0x5eed_ba7c, epoch as u64).shuffle(&mut perm);
            perm_epoch = epoch;
        }
        out.push(perm[pos]);
    }
    out
}

/// Writes `dir` whole or not at all: export into a sibling temporary folder, then rename.
fn export_atomic(trainee: &dyn Trainee, dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    trainee.export(&tmp)?;
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Keeps the metric lines up to `step`: lines written after the checkpoint a resumed run
/// starts from would otherwise appear twice.
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let records = read_metrics(path)?;
    let mut text = String::new();
    for r in records {
        if r.get("step")
            .and_then(|s| s.as_u64())
            .is_some_and(|s| s <= step)
        {
            text.push_str(&serde_json::to_string(&r)?);
            text.push('\n');
        }
    }
    write_atomic(text.as_bytes(), path)
}

/// Where a run keeps its files.
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn ckpt(&self) -> PathBuf {
        self.root.join("ckpt")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn best(&self) -> PathBuf {
        self.root.join("best")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.png")
    }
}

/// Trains `trainee` per `schedule` into `run` (resuming when it holds a checkpoint), keeps
/// the export with the best validation score in `run/best`, and returns the summary.
pub fn train(
    name: &str,
    trainee: &dyn Trainee,
    schedule: &Schedule,
    seed: u64,
    run: &RunDir,
) -> Result<RunSummary> {
    schedule.check()?;
    std::fs::create_dir_all(&run.root)
        .with_context(|| format!("creating {}", run.root.display()))?;
    let all = NamedParams::from_varmap(trainee.varmap())?;
    let params = all.without(&trainee.frozen());
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            lr: schedule.lr,
            weight_decay: schedule.weight_decay,
            ..AdamWConfig::default()
        },
    )?;
    let lr = WarmupCosine {
        base_lr: schedule.lr,
        warmup_steps: schedule.warmup,
        total_steps: schedule.steps,
        min_lr: schedule.lr * 0.05,
    };
    let (mut step, mut extra) = if has_checkpoint(&run.ckpt()) {
        let ck = load_checkpoint(&run.ckpt(), trainee.varmap(), &mut opt)
            .with_context(|| format!("resuming from {}", run.ckpt().display()))?;
        if ck.state.seed != seed {
            bail!(
                "{} was trained with seed {}, not {seed}: use another --out or the same seed",
                run.root.display(),
                ck.state.seed
            );
        }
        let extra: Extra = serde_json::from_value(ck.state.extra.clone()).unwrap_or_default();
        truncate_metrics(&run.metrics(), ck.state.step)?;
        (ck.state.step, extra)
    } else {
        truncate_metrics(&run.metrics(), 0)?;
        (0, Extra::default())
    };
    let mut metrics = MetricsWriter::open(run.metrics())?;
    let n = trainee.train_len();
    if n == 0 {
        bail!("{name}: no training items");
    }
    let started = Instant::now();
    let seconds_before = extra.seconds;
    let bar = sdvp_core::progress::bar(schedule.steps, name);
    bar.set_position(step);
    let mut running = extra.running;
    let mut running_n = extra.running_n;
    while step < schedule.steps {
        let idx = batch_indices(seed, step, schedule.batch, n);
        let mut rng = SplitMix64::derive(seed, step.wrapping_mul(0x9e37_79b9) ^ 0xa11ce);
        // The whole step on a pool worker: its gemms and kernels then share the pool's
        // threads without waking them from outside for every op.
        let (value, parts, norm) = sdvp_kernels::on_pool(|| -> Result<_> {
            let (loss, parts) = trainee.loss(&idx, &mut rng)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            if !value.is_finite() {
                bail!("{name}: the loss is {value} at step {step}; lower the learning rate");
            }
            let mut grads = ParamGrads::backward(&loss, &params)?;
            let norm = grads.clip_global_norm(schedule.clip_norm)?;
            opt.set_lr(lr.lr(step));
            opt.step(&grads)?;
            Ok((value, parts, norm))
        })?;
        step += 1;
        running += value;
        running_n += 1;
        bar.set_position(step);
        if step % schedule.log_every == 0 || step == schedule.steps {
            let mut rec: Vec<(&str, f64)> = vec![
                ("loss", running / running_n as f64),
                ("lr", opt.lr()),
                ("grad_norm", norm),
            ];
            for (k, v) in &parts {
                rec.push((k.as_str(), *v));
            }
            metrics.log(step, &rec)?;
            bar.set_message(format!("loss {:.4}", running / running_n as f64));
            running = 0.0;
            running_n = 0;
        }
        if step % schedule.eval_every == 0 || step == schedule.steps {
            let val = trainee.validate()?;
            let score = val.first().map_or(f64::NEG_INFINITY, |v| v.1);
            let mut rec = json!({"step": step, "split": "val"});
            for (k, v) in &val {
                rec[format!("val_{k}")] = json!(v);
            }
            metrics.log_value(&rec)?;
            if extra.best_score.is_none_or(|b| score > b) {
                export_atomic(trainee, &run.best())?;
                extra.best_score = Some(score);
                extra.best_step = step;
                extra.best = val.clone();
            }
            extra.seconds = seconds_before + started.elapsed().as_secs_f64();
            extra.running = running;
            extra.running_n = running_n;
            let state = TrainerState {
                step,
                seed,
                optimizer: opt.state(),
                extra: serde_json::to_value(&extra)?,
            };
            save_checkpoint(&run.ckpt(), trainee.varmap(), &opt, &state)?;
            bar.println(format!(
                "{name} step {step}: {}",
                val.iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    bar.finish_and_clear();
    if !run.best().is_dir() {
        export_atomic(trainee, &run.best())?;
    }
    let summary = RunSummary {
        name: name.to_string(),
        seed,
        schedule: schedule.clone(),
        params: all.numel(),
        best_step: extra.best_step,
        best: extra.best.clone(),
        seconds: extra.seconds,
        train_items: n,
        warnings: validation_warnings(&extra.best),
    };
    for w in &summary.warnings {
        eprintln!("warning: {name}: {w}");
    }
    write_atomic(&serde_json::to_vec_pretty(&summary)?, &run.summary())?;
    draw_curves(name, &run.metrics(), &run.curves())?;
    Ok(summary)
}

/// Training loss and every validation metric of a run, as one chart.
pub fn draw_curves(name: &str, metrics: &Path, out: &Path) -> Result<()> {
    let records = read_metrics(metrics)?;
    let loss = series(&records, "loss");
    let mut val_keys: Vec<String> = records
        .iter()
        .filter_map(|r| r.as_object())
        .flat_map(|o| o.keys().filter(|k| k.starts_with("val_")).cloned())
        .collect();
    val_keys.sort();
    val_keys.dedup();
    let vals: Vec<Series> = val_keys
        .iter()
        .map(|k| Series::new(k.trim_start_matches("val_"), series(&records, k)))
        .collect();
    chart::two_panel_png(
        &format!("{name}: training"),
        &Series::new("train loss", loss),
        &vals,
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::validation_warnings;

    fn best(acc: f64, prior: f64) -> Vec<(String, f64)> {
        vec![("accuracy".into(), acc), ("prior".into(), prior)]
    }

    #[test]
    fn accuracy_at_the_answer_prior_is_a_warning() {
        assert_eq!(validation_warnings(&best(0.29, 0.28)).len(), 1);
        assert!(validation_warnings(&best(0.29, 0.28))[0].contains("0.280"));
        assert!(validation_warnings(&best(0.72, 0.28)).is_empty());
        // Runs without a prior (detectors, CLIP, the generator) are not judged.
        assert!(validation_warnings(&[("accuracy".into(), 0.1)]).is_empty());
        assert!(validation_warnings(&[("ap50".into(), 0.0)]).is_empty());
    }
}
