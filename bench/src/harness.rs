//! The timing loop the model benchmarks share (`bench-blip`, `bench-owlvit`,
//! `bench-clip`), so that every model is timed the same way as `bench/harness.py` times
//! the PyTorch side: 3 warm-up training steps, then `steps` timed ones (forward, backward,
//! global-norm clip at 1.0, AdamW at lr 1e-4), then 2 warm-up and `steps` timed inference
//! calls. Every step and call runs on a pool worker, as `sdvp` runs training steps and
//! module batches. `SDVP_BENCH_PHASE=train` or `infer` runs only that half (its other
//! number prints as NaN), so that `bench/profile.sh` can profile one at a time.

use anyhow::Result;
use candle_core::Tensor;
use sdvp_models::train::{AdamW, AdamWConfig, NamedParams, ParamGrads};
use std::path::PathBuf;
use std::time::Instant;

/// The command line every model bench takes: `[CONFIG_DIR] [BATCH] [STEPS]` (a missing
/// number takes its default; one that is not a whole number in range is an error).
pub struct Args {
    pub dir: PathBuf,
    pub batch: usize,
    pub steps: usize,
}

impl Args {
    pub fn parse(default_dir: &str, default_batch: usize) -> Result<Args> {
        let args: Vec<String> = std::env::args().collect();
        let number = |i: usize, name: &str, default: usize, max: usize| -> Result<usize> {
            let Some(s) = args.get(i) else {
                return Ok(default);
            };
            match s.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => anyhow::bail!("{name} `{s}`: expected a whole number from 1 to {max}"),
            }
        };
        Ok(Args {
            dir: args
                .get(1)
                .map_or_else(|| PathBuf::from(default_dir), PathBuf::from),
            batch: number(2, "BATCH", default_batch, 4096)?,
            steps: number(3, "STEPS", 20, 100_000)?,
        })
    }
}

/// What one benchmark measured, in milliseconds per step or call.
pub struct Timing {
    pub train_ms: f64,
    pub infer_ms: f64,
    pub last_loss: f32,
    /// Forward, backward, clip + AdamW of a training step.
    pub split_ms: [f64; 3],
}

/// Times training steps of `loss` (the forward pass to a scalar loss) over `params`, then
/// `infer` calls.
pub fn time<I: Send>(
    params: &NamedParams,
    steps: usize,
    loss: impl Fn() -> Result<Tensor> + Sync,
    infer: impl Fn() -> Result<I> + Sync,
) -> Result<Timing> {
    let mut opt = AdamW::new(
        params,
        AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        },
    )?;
    let mut step = |split: &mut [f64; 3]| -> Result<f32> {
        let t = Instant::now();
        let loss = loss()?;
        let t_fwd = t.elapsed().as_secs_f64();
        let mut g = ParamGrads::backward(&loss, params)?;
        let t_bwd = t.elapsed().as_secs_f64();
        g.clip_global_norm(1.0)?;
        opt.step(&g)?;
        let t_all = t.elapsed().as_secs_f64();
        split[0] += t_fwd;
        split[1] += t_bwd - t_fwd;
        split[2] += t_all - t_bwd;
        Ok(loss.to_scalar::<f32>()?)
    };
    let phase = std::env::var("SDVP_BENCH_PHASE").unwrap_or_default();
    let (train, inference) = match phase.as_str() {
        "" | "both" => (true, true),
        "train" => (true, false),
        "infer" => (false, true),
        other => anyhow::bail!("SDVP_BENCH_PHASE `{other}`: expected train, infer or both"),
    };
    let mut split = [0f64; 3];
    let mut last_loss = f32::NAN;
    let mut train_ms = f64::NAN;
    if train {
        for _ in 0..3 {
            sdvp_kernels::on_pool(|| step(&mut [0f64; 3]))?;
        }
        let t0 = Instant::now();
        for _ in 0..steps {
            last_loss = sdvp_kernels::on_pool(|| step(&mut split))?;
        }
        train_ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    }
    let mut infer_ms = f64::NAN;
    if inference {
        let call = || sdvp_kernels::on_pool(&infer);
        for _ in 0..2 {
            call()?;
        }
        let t1 = Instant::now();
        for _ in 0..steps {
            call()?;
        }
        infer_ms = t1.elapsed().as_secs_f64() * 1e3 / steps as f64;
    }
    Ok(Timing {
        train_ms,
        infer_ms,
        last_loss,
        split_ms: split.map(|s| s * 1e3 / steps as f64),
    })
}

/// Prints the split line and the result line that `bench/*.sh` parse (`extra` is appended).
pub fn print(t: &Timing, params: &NamedParams, batch: usize, extra: &str) {
    let [fwd, bwd, opt] = t.split_ms;
    if t.train_ms.is_finite() {
        println!("candle  split: forward_ms={fwd:.2} backward_ms={bwd:.2} clip+adamw_ms={opt:.2}");
    }
    println!(
        "candle  params={} batch={batch} threads={} mimalloc={} train_ms/step={:.2} infer_ms/batch={:.2} last_loss={:.4}{extra}",
        params.numel(),
        candle_core::utils::get_num_threads(),
        cfg!(feature = "mimalloc"),
        t.train_ms,
        t.infer_ms,
        t.last_loss,
    );
}
