//! Fused CPU kernels for candle, each with a backward pass.
//!
//! candle 0.11's own fused kernels (`layer_norm`, `softmax_last_dim`, …) have no backward
//! pass, and the same functions written with elementary ops are slow to train through:
//! every elementary op allocates a full-size temporary forward, and several more backward.
//! The ops here run one pass over each row forward and one backward, as `CustomOp`s whose
//! `bwd` is itself a fused kernel.
//!
//! Each public function takes the fused path for contiguous-or-not `f32` tensors on the
//! CPU and falls back to the elementary composition in [`reference`] otherwise (other
//! dtypes, other devices), so callers never need to check. The tests hold the fused
//! path to the reference, forward and backward, and to finite differences.
//!
//! Results do not depend on the thread count: rows are reduced sequentially, and partial
//! sums across rows (the layer norm's weight gradient) are formed over fixed row blocks
//! and added in block order.

mod activation;
mod adamw;
mod attention;
mod bias;
mod exp;
mod layer_norm;
mod rows;
mod softmax;

pub mod reference;

pub use activation::{gelu_erf, quick_gelu};
pub use adamw::{adamw_update, AdamWHyper};
pub use attention::attention;
pub use bias::bias_add;
pub use layer_norm::layer_norm;
pub use softmax::{masked_softmax_last_dim, softmax_last_dim};

use candle_core::{DType, Device, Tensor};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `f` on a worker of rayon's global pool and returns its result.
///
/// gemm and these kernels split their work over that pool. Called from a thread outside
/// it, every parallel op wakes the workers and puts the caller to sleep until they are
/// done; called from a worker, the same ops share work by stealing, and no thread sleeps
/// between ops (a blip-mid training step was about 15% faster on 2 cores, paired runs).
/// `f` must be plain computation: it must not wait for another thread that itself needs
/// the pool (with one pool thread, that would never finish).
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::join(f, || ()).0
}

/// Process settings for CPU training and inference; call first thing in `main`, before
/// any tensor exists or any other thread starts.
///
/// - candle's element-wise ops run on the calling thread unless `CANDLE_NUM_THREADS` is
///   set: candle 0.11 keeps a spinning worker pool for them beside rayon's, whose threads
///   run gemm and these kernels, and on a machine with as many cores as rayon threads the
///   spinning worker takes cycles from gemm (`bench/blip.sh`, paired runs).
/// - rayon's workers get an 8 MiB stack (see [`on_pool`]).
/// - With the `mimalloc` feature, freed memory is never returned to the OS: a training
///   step frees and reallocates the same buffers, and returning them made the kernel zero
///   fresh pages on every step (about 20,000 page faults in 20 blip-mid steps, 450 after).
pub fn tune_process() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // Training steps run on pool workers (`on_pool`); candle's backward pass walks the
    // graph recursively, so give them the main thread's stack rather than rayon's 2 MiB.
    // An error means the pool already exists, which leaves its settings as they are.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .build_global();
    #[cfg(feature = "mimalloc")]
    {
        // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3); the Rust
        // bindings do not name it.
        const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
        // SAFETY: sets a global mimalloc option, which mimalloc stores atomically.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    }
}

/// True when the fused kernels apply: an `f32` tensor on the CPU.
fn fused(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && matches!(x.device(), Device::Cpu)
}
