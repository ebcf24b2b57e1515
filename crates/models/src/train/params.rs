//! Named trainable parameters: selection by name pattern (freezing, weight-decay
//! exclusion) and deterministic, seeded initialisation.
//!
//! candle's CPU device cannot be seeded (`Device::set_seed` fails on CPU), so a `VarMap`
//! filled by `VarBuilder::from_varmap` differs between runs. [`seeded_init`] overwrites
//! every variable from a seed so that training runs are reproducible bit for bit.

use anyhow::{anyhow, Context, Result};
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use regex::Regex;
use sdvp_core::rng::name_hash;
pub use sdvp_core::rng::SplitMix64;

/// A list of `(name, variable)` pairs sorted by name, so that every iteration order
/// (optimizer state, checkpoints, seeded init) is the same from run to run.
#[derive(Clone, Debug, Default)]
pub struct NamedParams {
    entries: Vec<(String, Var)>,
}

impl NamedParams {
    /// All variables of `varmap`, sorted by name.
    pub fn from_varmap(varmap: &VarMap) -> Result<Self> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| anyhow!("the VarMap lock is poisoned"))?;
        let mut entries: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { entries })
    }

    /// Builds from explicit pairs (sorted here).
    pub fn from_pairs(mut entries: Vec<(String, Var)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self { entries }
    }

    /// The parameters whose name is *not* matched by `frozen`: the ones to train.
    pub fn without(&self, frozen: &ParamFilter) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(n, _)| !frozen.matches(n))
                .cloned()
                .collect(),
        }
    }

    /// The parameters whose name is matched by `filter`.
    pub fn only(&self, filter: &ParamFilter) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(n, _)| filter.matches(n))
                .cloned()
                .collect(),
        }
    }

    /// Iterates over `(name, variable)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The names in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn numel(&self) -> usize {
        self.entries.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The variable called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }
}

/// A set of name patterns. Globs use `*` for any run of characters (dots included) and
/// `?` for one character; a pattern written `re:...` is a regular expression instead.
/// A name matches when any pattern matches it whole.
#[derive(Clone, Debug, Default)]
pub struct ParamFilter {
    patterns: Vec<Regex>,
    sources: Vec<String>,
}

impl ParamFilter {
    /// Parses globs (or `re:` regular expressions); the error names the bad pattern.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let mut out = Self::default();
        for p in patterns {
            let p = p.as_ref();
            let re = match p.strip_prefix("re:") {
                Some(r) => format!("^(?:{r})$"),
                None => glob_to_regex(p),
            };
            out.patterns
                .push(Regex::new(&re).with_context(|| format!("bad parameter pattern {p:?}"))?);
            out.sources.push(p.to_string());
        }
        Ok(out)
    }

    /// Matches nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// The patterns that usually get no weight decay: biases and normalisation scales
    /// (as in the BERT and BLIP training recipes).
    pub fn default_no_decay() -> Self {
        // The patterns are literals known to be valid, so construction cannot fail.
        Self::new(&["*bias", "*LayerNorm*", "*layer_norm*", "*layernorm*"]).unwrap_or_default()
    }

    /// Whether `name` is matched by any pattern.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|r| r.is_match(name))
    }

    /// The patterns as written.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }
}

fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

/// Re-initialises every parameter from `seed`, as transformers' `_init_weights` does for
/// BERT/ViT models: biases zero, normalisation scales one, everything else normal with
/// standard deviation `std`. A normalisation scale is a `weight` under a name with `norm`
/// in it: `LayerNorm`, `layer_norm`, Llama's `model.norm` and CLIP's `pre_layrnorm` (sic).
/// Batch-norm running statistics start at mean 0 and variance 1. Each tensor draws from its own stream derived from the seed
/// and its name, so adding a parameter does not change the others.
pub fn seeded_init(params: &NamedParams, seed: u64, std: f64) -> Result<()> {
    for (name, var) in params.iter() {
        let n = var.elem_count();
        let lname = name.to_ascii_lowercase();
        let norm_scale = lname.contains("norm") && lname.ends_with("weight");
        let values: Vec<f32> = if name.ends_with("bias") || name.ends_with("running_mean") {
            vec![0.0; n]
        } else if norm_scale || name.ends_with("running_var") {
            vec![1.0; n]
        } else {
            let mut rng = SplitMix64::new(seed ^ name_hash(name));
            (0..n).map(|_| (rng.next_normal() * std) as f32).collect()
        };
        let t = Tensor::from_vec(values, var.shape(), var.device())
            .and_then(|t| t.to_dtype(var.dtype()))
            .with_context(|| format!("initialising parameter {name}"))?;
        var.set(&t)
            .with_context(|| format!("initialising parameter {name}"))?;
    }
    Ok(())
}
