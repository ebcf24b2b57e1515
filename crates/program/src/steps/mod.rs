//! The step-module registry (VisProg's `LOC`, `VQA`, `CROP_LEFTOF`, …).
//!
//! A module is one self-contained [`StepModule`]: its signature (used by validation before
//! anything runs) and its `run`, which may await model calls through the [`ModuleCtx`] so
//! the scheduler can batch them across programs. Adding a module is implementing the trait
//! and registering it by name.

mod builtin;
pub mod eval;

use crate::ast::{Problem, Step};
use sdvp_core::scheduler::ModuleCtx;
use sdvp_core::value::{Boxes, ImageRef, Value, ValueType};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

pub use builtin::{CropDirection, CropSettings};

/// One argument a module takes.
#[derive(Debug, Clone)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ValueType,
    pub required: bool,
    pub doc: &'static str,
}

impl ArgSpec {
    pub const fn required(name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            doc,
        }
    }
    pub const fn optional(name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            doc,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Signature {
    pub args: Vec<ArgSpec>,
    pub output: ValueType,
}

/// Arguments bound to values, plus the program's variables so far (EVAL reads them).
#[derive(Debug, Clone)]
pub struct StepArgs {
    pub step: Rc<Step>,
    pub args: BTreeMap<String, Value>,
    /// Shared, not copied: most modules never read it, and a program's variables only grow.
    pub env: Rc<BTreeMap<String, Value>>,
}

impl StepArgs {
    fn get(&self, name: &str) -> Result<&Value, String> {
        self.args
            .get(name)
            .ok_or_else(|| format!("argument `{name}` is missing"))
    }
    pub fn image(&self, name: &str) -> Result<&ImageRef, String> {
        match self.get(name)? {
            Value::Image(i) => Ok(i),
            other => Err(format!(
                "argument `{name}` must be an image, got {}",
                other.value_type()
            )),
        }
    }
    pub fn boxes(&self, name: &str) -> Result<&Boxes, String> {
        match self.get(name)? {
            Value::Boxes(b) => Ok(b),
            other => Err(format!(
                "argument `{name}` must be boxes, got {}",
                other.value_type()
            )),
        }
    }
    pub fn text(&self, name: &str) -> Result<String, String> {
        match self.get(name)? {
            Value::Text(s) => Ok(s.clone()),
            other => Ok(other.to_answer()),
        }
    }
    pub fn number_or(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Value::Number(n)) => Ok(*n),
            Some(other) => Err(format!(
                "argument `{name}` must be a number, got {}",
                other.value_type()
            )),
        }
    }
    pub fn value(&self, name: &str) -> Result<&Value, String> {
        self.get(name)
    }
}

pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, String>> + 'a>>;

/// A step module.
pub trait StepModule: Send + Sync {
    fn name(&self) -> &'static str;
    /// One sentence for `sdvp program modules` and prompt headers.
    fn doc(&self) -> &'static str;
    fn signature(&self) -> Signature;
    /// Extra static checks beyond argument names and types (EVAL checks its expression).
    /// `var_type` gives the type of a variable defined before this step.
    fn check(&self, _step: &Step, _var_type: &dyn Fn(&str) -> Option<ValueType>) -> Vec<Problem> {
        Vec::new()
    }
    fn run<'a>(&'a self, args: StepArgs, ctx: &'a ModuleCtx) -> StepFuture<'a>;
}

/// Modules by name.
#[derive(Clone, Default)]
pub struct Registry {
    modules: BTreeMap<String, Arc<dyn StepModule>>,
}

impl Registry {
    pub fn empty() -> Self {
        Self::default()
    }
    /// The visual-reasoning set: LOC, COUNT, CROP and its directional forms, VQA, EVAL, RESULT.
    pub fn visual_reasoning(crop: CropSettings) -> Self {
        let mut r = Self::empty();
        builtin::register_all(&mut r, crop);
        r.register(Arc::new(eval::Eval));
        r
    }
    pub fn register(&mut self, module: Arc<dyn StepModule>) {
        self.modules.insert(module.name().to_string(), module);
    }
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepModule>> {
        self.modules.get(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(|s| s.as_str())
    }
    pub fn modules(&self) -> impl Iterator<Item = &Arc<dyn StepModule>> {
        self.modules.values()
    }
}

impl Default for CropSettings {
    fn default() -> Self {
        CropSettings { enlarge: 0.2 }
    }
}
