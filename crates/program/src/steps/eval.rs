//! The EVAL step (placeholder).
use super::{Signature, StepArgs, StepFuture, StepModule};
use crate::scheduler::ModuleCtx;
use crate::value::ValueType;

pub struct Eval;
impl StepModule for Eval {
    fn name(&self) -> &'static str {
        "EVAL"
    }
    fn doc(&self) -> &'static str {
        "Evaluate an expression over earlier results."
    }
    fn signature(&self) -> Signature {
        Signature {
            args: vec![super::ArgSpec::required(
                "expr",
                ValueType::Text,
                "expression",
            )],
            output: ValueType::Any,
        }
    }
    fn run<'a>(&'a self, _args: StepArgs, _ctx: &'a ModuleCtx) -> StepFuture<'a> {
        Box::pin(std::future::ready(Err("EVAL not implemented".to_string())))
    }
}
