//! Executor overhead: 10k step programs against a module that costs a fixed time per call plus a
//! time per item, run batched (cap 32) and one at a time. Prints wall time, the time spent
//! inside the module, the executor's own overhead as a share of module time, and the ratio.
//!
//! `cargo run --release -p sdvp-bench --bin bench-executor [--features mimalloc] [-- PROGRAMS FIXED_US PER_ITEM_US WINDOW]`

// With `--features mimalloc`, sdvp-kernels makes mimalloc the global allocator.
#[cfg(feature = "mimalloc")]
use sdvp_kernels as _;

use sdvp_core::module::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_core::scheduler::SchedulerConfig;
use sdvp_core::Job;
use sdvp_core::{BBox, ImageRef, Value};
use sdvp_program::exec::run_step_programs_streaming;
use sdvp_program::steps::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Spins for the module's cost (sleep is too coarse at these scales) and counts it.
struct CostlyModule {
    fixed: Duration,
    per_item: Duration,
    spent_ns: AtomicU64,
}

impl Backend for CostlyModule {
    fn name(&self) -> String {
        "costly".into()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        let start = Instant::now();
        let cost = self.fixed + self.per_item * requests.len() as u32;
        while start.elapsed() < cost {
            std::hint::spin_loop();
        }
        let out = requests
            .iter()
            .map(|r| match r {
                Request::Detect { image, .. } => {
                    let reg = image.region();
                    Ok(Response::Detections {
                        boxes: vec![BBox::new(reg.x0, reg.y0, reg.x0 + 8.0, reg.y0 + 8.0)],
                        scores: vec![0.9],
                    })
                }
                Request::Vqa { .. } => Ok(Response::answer("yes", 1.0)),
                _ => Err(ModuleError::new(kind, "unsupported")),
            })
            .collect();
        self.spent_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
}

fn jobs(n: usize) -> Vec<Job> {
    (0..n)
        .map(|i| {
            let mut inputs = BTreeMap::new();
            inputs.insert("IMAGE".to_string(), Value::Image(ImageRef::new(format!("img{i}"), 128, 128)));
            Job {
                id: format!("q{i}"),
                source: "BOX0=LOC(image=IMAGE,object='cup')\nIMAGE0=CROP_LEFTOF(image=IMAGE,box=BOX0)\nANSWER0=VQA(image=IMAGE0,question='Is there a plate?')\nANSWER1=COUNT(box=BOX0)\nANSWER2=EVAL(expr=\"'{ANSWER0}' if {ANSWER1} > 0 else 'no'\")\nFINAL=RESULT(var=ANSWER2)".into(),
                inputs,
                meta: BTreeMap::new(),
            }
        })
        .collect()
}

fn run(
    label: &str,
    jobs: &[Job],
    config: SchedulerConfig,
    fixed: Duration,
    per_item: Duration,
) -> f64 {
    let registry = Registry::visual_reasoning(Default::default());
    let module = CostlyModule {
        fixed,
        per_item,
        spent_ns: AtomicU64::new(0),
    };
    let start = Instant::now();
    // Traces are dropped as they finish, as `sdvp eval` does after writing them.
    let mut failed = 0usize;
    let stats = run_step_programs_streaming(&registry, &module, config, jobs, |_, t| {
        failed += t.answer.is_none() as usize;
    });
    let wall = start.elapsed().as_secs_f64();
    let module_s = module.spent_ns.load(Ordering::Relaxed) as f64 / 1e9;
    println!(
        "{label:<22} wall {wall:>7.3} s  module {module_s:>7.3} s  executor overhead {:>5.2}% of module time  ({} calls in {} batches, {failed} failed)",
        100.0 * (wall - module_s) / module_s,
        stats.calls,
        stats.batches
    );
    wall
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(10_000) as usize;
    let fixed = Duration::from_micros(args.get(1).copied().unwrap_or(200));
    let per_item = Duration::from_micros(args.get(2).copied().unwrap_or(20));
    let window = args.get(3).copied().unwrap_or(256) as usize;
    println!(
        "{n} programs, module cost {fixed:?} per call + {per_item:?} per item, mimalloc={}",
        cfg!(feature = "mimalloc")
    );
    let jobs = jobs(n);
    let batched = run(
        &format!("batched (cap 32, window {window})"),
        &jobs,
        SchedulerConfig {
            max_batch: 32,
            window: 1024,
        },
        fixed,
        per_item,
    );
    let single = run(
        "one at a time",
        &jobs,
        SchedulerConfig {
            max_batch: 1,
            window: 1,
        },
        fixed,
        per_item,
    );
    println!(
        "one-at-a-time / batched wall-time ratio: {:.2}x",
        single / batched
    );
}
