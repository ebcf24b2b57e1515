//! Batched execution of many programs at once.
//!
//! Each program is a future. When it needs a model it awaits [`ModuleCtx::call`], which
//! queues the request and suspends. The scheduler polls every live program until all are
//! suspended, groups the queued requests by [`ModuleKind`] (in submission order), runs them
//! as batches of at most `max_batch`, fills in the answers and polls again. Single-threaded
//! and deterministic: the same programs and backend give the same results in the same order.

use crate::module::{Backend, ModuleError, ModuleKind, Request, Response};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// One model call as it happened, kept for traces and sub-task mining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub request: Request,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Size of the batch this call ran in.
    pub batch_size: usize,
    /// The batch's wall time divided by its size.
    pub micros: u64,
    /// Which backend and weights answered ([`Backend::answered_by`]), e.g.
    /// `blip-vqa:weights/vqa@sha256:1f2e…`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub answered_by: String,
}

struct Filled {
    result: Result<Response, ModuleError>,
    batch_size: usize,
    micros: u64,
    answered_by: Rc<str>,
}

type Slot = Rc<RefCell<Option<Filled>>>;

struct Pending {
    request: Request,
    slot: Slot,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
}

/// A program's handle on the models. Cheap to clone; records every call it makes.
#[derive(Clone)]
pub struct ModuleCtx {
    queue: Rc<RefCell<Queue>>,
    log: Rc<RefCell<Vec<CallRecord>>>,
}

impl ModuleCtx {
    /// Ask a model; resolves once the scheduler has run the batch containing this request.
    pub fn call(&self, request: Request) -> CallFuture {
        CallFuture {
            ctx: self.clone(),
            request,
            queued: false,
            slot: Rc::new(RefCell::new(None)),
        }
    }

    /// Take the calls recorded since the last drain (a step's calls, for its trace entry).
    pub fn drain_calls(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.log.borrow_mut())
    }

    fn attached(queue: Rc<RefCell<Queue>>) -> Self {
        ModuleCtx {
            queue,
            log: Rc::new(RefCell::new(Vec::new())),
        }
    }
}

/// Future returned by [`ModuleCtx::call`].
pub struct CallFuture {
    ctx: ModuleCtx,
    request: Request,
    queued: bool,
    slot: Slot,
}

impl Future for CallFuture {
    type Output = Result<Response, ModuleError>;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.queued {
            self.queued = true;
            let pending = Pending {
                request: self.request.clone(),
                slot: self.slot.clone(),
            };
            self.ctx.queue.borrow_mut().pending.push(pending);
            return Poll::Pending;
        }
        let filled = self.slot.borrow_mut().take();
        match filled {
            Some(Filled {
                result,
                batch_size,
                micros,
                answered_by,
            }) => {
                let (response, error) = match &result {
                    Ok(r) => (Some(r.clone()), None),
                    Err(e) => (None, Some(e.message.clone())),
                };
                self.ctx.log.borrow_mut().push(CallRecord {
                    request: self.request.clone(),
                    response,
                    error,
                    batch_size,
                    micros,
                    answered_by: answered_by.to_string(),
                });
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

/// Scheduler settings.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Largest batch handed to a backend.
    pub max_batch: usize,
    /// Programs kept in flight at once (bounds memory on large runs).
    pub window: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_batch: 32,
            window: 1024,
        }
    }
}

/// Counters of one scheduler run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulerStats {
    pub programs: usize,
    pub calls: usize,
    pub batches: usize,
    pub rounds: usize,
    pub stalled: usize,
}

type BoxedProgram<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs programs concurrently against one backend.
pub struct Scheduler<'b> {
    backend: &'b dyn Backend,
    config: SchedulerConfig,
}

impl<'b> Scheduler<'b> {
    pub fn new(backend: &'b dyn Backend, config: SchedulerConfig) -> Self {
        Self { backend, config }
    }

    /// Run every program; `make(ctx, i)` builds the i-th program's future. Results are
    /// returned in input order. A program that waits on anything but its `ctx` can never
    /// resume; it is ended with `stalled(i)`.
    pub fn run_all<'a, T, F, Fut>(
        &self,
        count: usize,
        make: F,
        stalled: impl Fn(usize) -> T,
    ) -> (Vec<T>, SchedulerStats)
    where
        F: FnMut(ModuleCtx, usize) -> Fut,
        Fut: Future<Output = T> + 'a,
    {
        let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
        let stats = self.run_streaming(count, make, &stalled, |i, t| out[i] = Some(t));
        // Every program is delivered exactly once; a gap would be a scheduler bug, reported
        // as a stalled program rather than a panic.
        let out = out
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.unwrap_or_else(|| stalled(i)))
            .collect();
        (out, stats)
    }

    /// Like [`run_all`](Self::run_all) but hands each result to `done(i, result)` as soon as
    /// its program finishes (completion order), so long runs can write results as they go.
    pub fn run_streaming<'a, T, F, Fut>(
        &self,
        count: usize,
        mut make: F,
        stalled: impl Fn(usize) -> T,
        mut done: impl FnMut(usize, T),
    ) -> SchedulerStats
    where
        F: FnMut(ModuleCtx, usize) -> Fut,
        Fut: Future<Output = T> + 'a,
    {
        let queue = Rc::new(RefCell::new(Queue::default()));
        let mut stats = SchedulerStats {
            programs: count,
            ..Default::default()
        };
        let mut live: Vec<(usize, ModuleCtx, BoxedProgram<'a, T>)> = Vec::new();
        let mut next = 0usize;
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            while live.len() < self.config.window.max(1) && next < count {
                let ctx = ModuleCtx::attached(queue.clone());
                let fut: BoxedProgram<'a, T> = Box::pin(make(ctx.clone(), next));
                live.push((next, ctx, fut));
                next += 1;
            }
            if live.is_empty() {
                break;
            }
            stats.rounds += 1;
            // Poll every live program once; each either finishes or queues calls.
            let mut still = Vec::with_capacity(live.len());
            for (i, ctx, mut fut) in live.drain(..) {
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(t) => done(i, t),
                    Poll::Pending => still.push((i, ctx, fut)),
                }
            }
            live = still;
            let pending = std::mem::take(&mut queue.borrow_mut().pending);
            if pending.is_empty() {
                if !live.is_empty() {
                    for (i, _, _) in live.drain(..) {
                        stats.stalled += 1;
                        done(i, stalled(i));
                    }
                }
                continue;
            }
            self.run_pending(pending, &mut stats);
        }
        stats
    }

    fn run_pending(&self, pending: Vec<Pending>, stats: &mut SchedulerStats) {
        for kind in ModuleKind::ALL {
            let group: Vec<&Pending> = pending
                .iter()
                .filter(|p| p.request.kind() == kind)
                .collect();
            if group.is_empty() {
                continue;
            }
            let answered_by: Rc<str> = self.backend.answered_by(kind).into();
            for chunk in group.chunks(self.config.max_batch.max(1)) {
                let requests: Vec<Request> = chunk.iter().map(|p| p.request.clone()).collect();
                let start = Instant::now();
                let mut results = self.backend.run_batch(kind, &requests);
                let micros = (start.elapsed().as_micros() as u64) / chunk.len() as u64;
                stats.batches += 1;
                stats.calls += chunk.len();
                if results.len() != chunk.len() {
                    let msg = format!(
                        "backend {} returned {} results for a batch of {}",
                        self.backend.name(),
                        results.len(),
                        chunk.len()
                    );
                    results = chunk
                        .iter()
                        .map(|_| Err(ModuleError::new(kind, msg.clone())))
                        .collect();
                }
                for (p, r) in chunk.iter().zip(results) {
                    *p.slot.borrow_mut() = Some(Filled {
                        result: r,
                        batch_size: chunk.len(),
                        micros,
                        answered_by: answered_by.clone(),
                    });
                }
            }
        }
    }
}
