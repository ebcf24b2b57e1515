//! AdamW, gradient collection, global-norm clipping and gradient accumulation.
//!
//! candle-nn ships an `AdamW`, but it applies weight decay to every variable, keeps its
//! moments private (so a killed run cannot resume exactly) and has no clipping or
//! accumulation. This one follows PyTorch's `torch.optim.AdamW` update order so that
//! numbers can be compared with a PyTorch run.

use super::params::{NamedParams, ParamFilter};
use anyhow::{anyhow, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Gradients aligned with a [`NamedParams`] list (`None` where a parameter got none).
#[derive(Clone, Debug)]
pub struct ParamGrads {
    grads: Vec<Option<Tensor>>,
}

impl ParamGrads {
    /// Picks the gradient of each parameter out of a backward pass.
    pub fn from_store(params: &NamedParams, store: &GradStore) -> Self {
        Self {
            grads: params
                .iter()
                .map(|(_, v)| store.get(v.as_tensor()).cloned())
                .collect(),
        }
    }

    /// Runs `loss.backward()` and collects the gradients of `params`.
    pub fn backward(loss: &Tensor, params: &NamedParams) -> Result<Self> {
        let store = loss.backward().context("backward pass")?;
        Ok(Self::from_store(params, &store))
    }

    /// The gradient of the `i`-th parameter.
    pub fn get(&self, i: usize) -> Option<&Tensor> {
        self.grads.get(i).and_then(|g| g.as_ref())
    }

    /// Number of slots (the parameter count).
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// True when there is no slot.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The global L2 norm over all gradients.
    pub fn global_norm(&self) -> Result<f64> {
        let mut sq = 0f64;
        for g in self.grads.iter().flatten() {
            sq += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) -> Result<()> {
        for g in self.grads.iter_mut().flatten() {
            *g = (&*g * factor)?;
        }
        Ok(())
    }

    /// Scales the gradients so that their global norm is at most `max_norm`, as
    /// `torch.nn.utils.clip_grad_norm_` does (factor `max_norm / (norm + 1e-6)`, capped
    /// at 1). Returns the norm before clipping, the number worth logging.
    pub fn clip_global_norm(&mut self, max_norm: f64) -> Result<f64> {
        let norm = self.global_norm()?;
        let factor = max_norm / (norm + 1e-6);
        if factor < 1.0 {
            self.scale(factor)?;
        }
        Ok(norm)
    }
}

/// Sums gradients over micro-batches; [`GradAccumulator::finish`] averages them, so that
/// `n` micro-batches whose losses are means over equal-sized halves give the gradient of
/// the mean loss over the whole batch.
#[derive(Debug)]
pub struct GradAccumulator {
    sums: Vec<Option<Tensor>>,
    count: usize,
}

impl GradAccumulator {
    /// An empty accumulator for `n_params` parameters.
    pub fn new(n_params: usize) -> Self {
        Self {
            sums: vec![None; n_params],
            count: 0,
        }
    }

    /// Adds one micro-batch's gradients.
    pub fn add(&mut self, grads: &ParamGrads) -> Result<()> {
        if grads.len() != self.sums.len() {
            return Err(anyhow!(
                "gradient accumulation: got {} gradients for {} parameters",
                grads.len(),
                self.sums.len()
            ));
        }
        for (slot, g) in self.sums.iter_mut().zip(grads.grads.iter()) {
            if let Some(g) = g {
                *slot = Some(match slot.take() {
                    Some(s) => (s + g)?,
                    None => g.clone(),
                });
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Micro-batches added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The mean gradient over the micro-batches; resets the accumulator.
    pub fn finish(&mut self) -> Result<ParamGrads> {
        let n = self.count.max(1) as f64;
        let grads = self
            .sums
            .iter_mut()
            .map(|s| s.take().map(|t| t / n).transpose())
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.count = 0;
        Ok(ParamGrads { grads })
    }
}

/// AdamW hyper-parameters (PyTorch's defaults except the weight decay, which follows the
/// BLIP fine-tuning recipe).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (changed every step by the schedule).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Decoupled weight decay, applied as `p *= 1 - lr * wd`.
    pub weight_decay: f64,
    /// Name patterns of parameters that get no weight decay.
    pub no_decay: Vec<String>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.05,
            no_decay: ParamFilter::default_no_decay().sources().to_vec(),
        }
    }
}

/// The serialisable part of the optimizer state (the moments go to safetensors).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdamWState {
    /// Hyper-parameters in force.
    pub config: AdamWConfig,
    /// Per-parameter step counts (PyTorch counts per parameter: one without a gradient
    /// at some step is not advanced).
    pub steps: HashMap<String, u64>,
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    step: u64,
    decay: bool,
}

/// AdamW with decoupled weight decay and bias correction.
pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
}

impl AdamW {
    /// An optimizer over `params` with zeroed moments.
    pub fn new(params: &NamedParams, config: AdamWConfig) -> Result<Self> {
        let no_decay = ParamFilter::new(&config.no_decay)?;
        let mut slots = Vec::with_capacity(params.len());
        for (name, var) in params.iter() {
            // Separate buffers: the update rewrites each moment in place.
            slots.push(Slot {
                name: name.to_string(),
                var: var.clone(),
                m: var.zeros_like()?,
                v: var.zeros_like()?,
                step: 0,
                decay: !no_decay.matches(name),
            });
        }
        Ok(Self { slots, config })
    }

    /// Sets the learning rate (called by the training loop from the schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// The learning rate in force.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Names of the parameters that receive weight decay.
    pub fn decayed_names(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.decay)
            .map(|s| s.name.clone())
            .collect()
    }

    /// One update from `grads` (aligned with the `params` given to [`AdamW::new`]).
    pub fn step(&mut self, grads: &ParamGrads) -> Result<()> {
        if grads.len() != self.slots.len() {
            return Err(anyhow!(
                "AdamW: got {} gradients for {} parameters",
                grads.len(),
                self.slots.len()
            ));
        }
        let c = &self.config;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(g) = grads.get(i) else { continue };
            let hyper = sdvp_kernels::AdamWHyper {
                lr: c.lr,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: if slot.decay { c.weight_decay } else { 0.0 },
                step: slot.step + 1,
            };
            sdvp_kernels::adamw_update(&slot.var, g, &mut slot.m, &mut slot.v, &hyper)
                .with_context(|| format!("AdamW update of {}", slot.name))?;
            slot.step += 1;
        }
        Ok(())
    }

    /// The moments as tensors named `m.<param>` and `v.<param>`, for a checkpoint:
    /// copies, since the next step rewrites the optimizer's own in place.
    pub fn moment_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("m.{}", s.name), s.m.copy()?);
            out.insert(format!("v.{}", s.name), s.v.copy()?);
        }
        Ok(out)
    }

    /// The JSON-serialisable state.
    pub fn state(&self) -> AdamWState {
        AdamWState {
            config: self.config.clone(),
            steps: self
                .slots
                .iter()
                .map(|s| (s.name.clone(), s.step))
                .collect(),
        }
    }

    /// Restores moments and step counts saved by [`AdamW::moment_tensors`] and
    /// [`AdamW::state`]; every parameter must be present (the error names the first
    /// missing one).
    pub fn restore(&mut self, state: &AdamWState, moments: &HashMap<String, Tensor>) -> Result<()> {
        let no_decay = ParamFilter::new(&state.config.no_decay)?;
        for s in &mut self.slots {
            let get = |k: String| {
                moments
                    .get(&k)
                    .cloned()
                    .ok_or_else(|| anyhow!("optimizer state has no tensor {k}"))
            };
            let m = get(format!("m.{}", s.name))?;
            let v = get(format!("v.{}", s.name))?;
            if m.dims() != s.var.dims() || v.dims() != s.var.dims() {
                return Err(anyhow!(
                    "optimizer state for {} has shape {:?}, parameter has {:?}",
                    s.name,
                    m.dims(),
                    s.var.dims()
                ));
            }
            // Own copies: the update rewrites them in place.
            let own = |t: Tensor| t.to_dtype(s.var.dtype())?.to_device(s.var.device())?.copy();
            s.m = own(m)?;
            s.v = own(v)?;
            s.step = *state
                .steps
                .get(&s.name)
                .ok_or_else(|| anyhow!("optimizer state has no step count for {}", s.name))?;
            s.decay = !no_decay.matches(&s.name);
        }
        self.config = state.config.clone();
        Ok(())
    }
}
