//! Row-parallel loops over flat `f32` buffers, and slice access to CPU storage.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};
use rayon::prelude::*;

/// Below this many elements a kernel runs on the calling thread: the fork/join costs
/// more than the work.
const SERIAL_BELOW: usize = 1 << 15;

/// Elements per parallel task (whole rows). Fixed, so that block-wise partial sums are
/// the same whatever the thread count.
const ELEMS_PER_BLOCK: usize = 1 << 14;

/// Rows per block for rows of `n` elements.
fn rows_per_block(n: usize) -> usize {
    (ELEMS_PER_BLOCK / n.max(1)).max(1)
}

/// The element range of a contiguous layout.
fn contiguous(l: &Layout, op: &str) -> Result<std::ops::Range<usize>> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => bail!("{op}: expected a contiguous tensor, got layout {l:?}"),
    }
}

/// The `f32` elements of a contiguous layout.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        bail!("{op}: expected f32 storage, got {:?}", s.dtype())
    };
    Ok(&data[contiguous(l, op)?])
}

/// The mutable `f32` elements of a contiguous layout.
pub(crate) fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let dtype = s.dtype();
    let CpuStorage::F32(data) = s else {
        bail!("{op}: expected f32 storage, got {dtype:?}")
    };
    Ok(&mut data[contiguous(l, op)?])
}

/// Fails unless a gradient has as many elements as the tensor it belongs to.
pub(crate) fn same_len(x: &[f32], grad: &[f32], op: &str) -> Result<()> {
    if x.len() != grad.len() {
        bail!("{op}: gradient has {} elements for {}", grad.len(), x.len())
    }
    Ok(())
}

/// Fails unless `len` elements form whole rows of `n`.
pub(crate) fn whole_rows(len: usize, n: usize, op: &str) -> Result<()> {
    if n == 0 || !len.is_multiple_of(n) {
        bail!("{op}: {len} elements do not form rows of {n}")
    }
    Ok(())
}

/// Adds per-block partial sums into `out`, in block order (so the total does not depend
/// on which thread summed which block).
pub(crate) fn add_in_order(out: &mut [f32], partials: Vec<Vec<f32>>) {
    for p in partials {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
}

/// Runs `f` inside a function compiled for AVX2 and FMA when the CPU has them, so that
/// the loops inlined into it use 8-lane vectors; the crate itself targets baseline x86-64
/// (SSE2). The results are the same on either path: Rust never reorders or contracts
/// float arithmetic, so only the vector width changes.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features `avx2` is compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Calls `f(first_row, out_block)` for consecutive blocks of whole rows of `out` (rows of
/// `n` elements), in parallel when the buffer is large; returns the results in block order.
pub(crate) fn for_row_blocks<R: Send>(
    out: &mut [f32],
    n: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let rows = rows_per_block(n);
    let block = rows * n.max(1);
    if out.len() < SERIAL_BELOW {
        out.chunks_mut(block)
            .enumerate()
            .map(|(i, b)| {
                wide(
                    #[inline(always)]
                    || f(i * rows, b),
                )
            })
            .collect()
    } else {
        out.par_chunks_mut(block)
            .enumerate()
            .map(|(i, b)| {
                wide(
                    #[inline(always)]
                    || f(i * rows, b),
                )
            })
            .collect()
    }
}

/// Calls `f(block)` for consecutive blocks of whole rows of `x` (rows of `n` elements), in
/// parallel when it is large; returns the results in block order.
pub(crate) fn map_row_blocks<R: Send>(
    x: &[f32],
    n: usize,
    f: impl Fn(&[f32]) -> R + Sync,
) -> Vec<R> {
    let block = rows_per_block(n) * n.max(1);
    if x.len() < SERIAL_BELOW {
        x.chunks(block)
            .map(|b| {
                wide(
                    #[inline(always)]
                    || f(b),
                )
            })
            .collect()
    } else {
        x.par_chunks(block)
            .map(|b| {
                wide(
                    #[inline(always)]
                    || f(b),
                )
            })
            .collect()
    }
}

/// Calls `f(offset, out_chunk)` over consecutive chunks of a flat buffer, in parallel
/// when it is large.
pub(crate) fn for_chunks(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() < SERIAL_BELOW {
        wide(
            #[inline(always)]
            || f(0, out),
        );
    } else {
        out.par_chunks_mut(ELEMS_PER_BLOCK)
            .enumerate()
            .for_each(|(i, c)| {
                wide(
                    #[inline(always)]
                    || f(i * ELEMS_PER_BLOCK, c),
                )
            });
    }
}

/// Sum of `x` over eight interleaved partial sums, which the compiler keeps in one vector
/// register (a single running sum is a serial chain it may not reorder).
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Maximum of `x` (`-inf` when empty) over eight interleaved partial maxima.
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}
