//! Running step programs on the scheduler.

use crate::ast::{ArgValue, Literal, Problem, ProblemKind, Program};
use crate::parser::{parse, strip_bom};
use crate::steps::{Registry, StepArgs};
use crate::validate::validate;
use sdvp_core::module::Backend;
use sdvp_core::scheduler::{ModuleCtx, Scheduler, SchedulerConfig, SchedulerStats};
use sdvp_core::trace::{ProgramStyle, Trace, TraceError, TraceStep};
use sdvp_core::value::{format_number, Value, ValueType};
pub use sdvp_core::Job;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

/// Parse and validate; all problems at once.
pub fn check_program(
    source: &str,
    registry: &Registry,
    inputs: &[(&str, ValueType)],
) -> Result<Program, Vec<Problem>> {
    let (program, mut problems) = parse(source);
    if problems.iter().any(|p| p.kind == ProblemKind::TooLarge) {
        return Err(problems);
    }
    // Validate the steps that parsed too, so a program with a stray line still gets all its
    // other mistakes reported. Names a broken line may have defined are not called undefined,
    // and a missing RESULT is only reported when nothing failed to parse.
    let lines: Vec<&str> = strip_bom(source).lines().collect();
    let broken: HashSet<&str> = problems
        .iter()
        .filter_map(|p| lines.get(p.line.checked_sub(1)?))
        .filter_map(|l| l.split_once('=').map(|(lhs, _)| lhs.trim()))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let parsed_cleanly = problems.is_empty();
    problems.extend(
        validate(&program, registry, inputs)
            .into_iter()
            .filter(|p| match p.kind {
                ProblemKind::UndefinedVariable => {
                    !undefined_name(&p.message).is_some_and(|n| broken.contains(n))
                }
                ProblemKind::MissingResult => parsed_cleanly,
                _ => true,
            }),
    );
    problems.sort_by_key(|p| (p.line, p.column));
    if problems.is_empty() {
        Ok(program)
    } else {
        Err(problems)
    }
}

/// The variable an undefined-variable message names (`variable `X` is not defined …`).
fn undefined_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("variable `")?
        .split_once('`')
        .map(|(n, _)| n)
}

fn literal_value(l: &Literal) -> Value {
    match l {
        Literal::Str(s) => Value::Text(s.clone()),
        Literal::Int(i) => Value::Number(*i as f64),
        Literal::Float(f) => Value::Number(*f),
        Literal::Bool(b) => Value::Bool(*b),
    }
}

/// Run one step program; every failure ends up in the trace, never as a panic.
pub async fn run_step_program(
    registry: &Registry,
    job: &Job,
    ctx: &ModuleCtx,
    backend_name: &str,
) -> Trace {
    let start = Instant::now();
    let mut trace = job.empty_trace(ProgramStyle::Step);
    trace.backend = backend_name.to_string();
    let input_types: Vec<(&str, ValueType)> = job
        .inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.value_type()))
        .collect();
    let program = match check_program(&job.source, registry, &input_types) {
        Ok(p) => p,
        Err(problems) => {
            trace.error = Some(TraceError {
                kind: "invalid_program".into(),
                message: problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
                line: problems.first().map(|p| p.line),
                problems,
            });
            trace.micros = start.elapsed().as_micros() as u64;
            return trace;
        }
    };
    let lines: Vec<&str> = strip_bom(&job.source).lines().collect();
    let mut env: Rc<BTreeMap<String, Value>> = Rc::new(job.inputs.clone());
    let mut last = None;
    for (index, step) in program.steps.into_iter().map(Rc::new).enumerate() {
        let step_start = Instant::now();
        let Some(module) = registry.get(&step.module) else {
            // Validation rejects unknown modules; keep the guard for registries changed after it.
            trace.error = Some(TraceError {
                kind: "step_failed".into(),
                message: format!("unknown module {}", step.module),
                line: Some(step.line),
                problems: Vec::new(),
            });
            break;
        };
        let mut args = BTreeMap::new();
        for a in &step.args {
            let v = match &a.value {
                ArgValue::Var(name) => env.get(name).cloned(),
                ArgValue::Lit(l) => Some(literal_value(l)),
            };
            if let Some(v) = v {
                args.insert(a.name.clone(), v);
            }
        }
        let step_args = StepArgs {
            step: step.clone(),
            args: args.clone(),
            env: Rc::clone(&env),
        };
        let outcome = module.run(step_args, ctx).await;
        let calls = ctx.drain_calls();
        let mut entry = TraceStep {
            index,
            line: step.line,
            text: step
                .line
                .checked_sub(1)
                .and_then(|i| lines.get(i))
                .map_or_else(String::new, |l| l.trim().to_string()),
            module: step.module.clone(),
            output_var: Some(step.output.clone()),
            args,
            output: None,
            calls,
            micros: step_start.elapsed().as_micros() as u64,
            error: None,
        };
        match outcome {
            Ok(v) => {
                entry.output = Some(v.clone());
                Rc::make_mut(&mut env).insert(step.output.clone(), v.clone());
                last = Some(v);
                trace.steps.push(entry);
            }
            Err(message) => {
                entry.error = Some(message.clone());
                trace.steps.push(entry);
                trace.error = Some(TraceError {
                    kind: "step_failed".into(),
                    message: format!("line {} ({}): {message}", step.line, step.module),
                    line: Some(step.line),
                    problems: Vec::new(),
                });
                break;
            }
        }
    }
    if trace.error.is_none() {
        trace.answer = last.as_ref().map(|v| match v {
            Value::Number(n) => format_number(*n),
            other => other.to_answer(),
        });
        trace.result = last;
    }
    trace.micros = start.elapsed().as_micros() as u64;
    trace
}

/// Run many step programs with batched model calls; traces come back in input order.
pub fn run_step_programs(
    registry: &Registry,
    backend: &dyn Backend,
    config: SchedulerConfig,
    jobs: &[Job],
) -> (Vec<Trace>, SchedulerStats) {
    let scheduler = Scheduler::new(backend, config);
    let name = backend.name();
    let name = name.as_str();
    scheduler.run_all(
        jobs.len(),
        |ctx, i| {
            let job = &jobs[i];
            async move { run_step_program(registry, job, &ctx, name).await }
        },
        |i| jobs[i].stalled_trace(ProgramStyle::Step),
    )
}

/// Like [`run_step_programs`], handing each trace to `done(index, trace)` as it finishes.
pub fn run_step_programs_streaming(
    registry: &Registry,
    backend: &dyn Backend,
    config: SchedulerConfig,
    jobs: &[Job],
    done: impl FnMut(usize, Trace),
) -> SchedulerStats {
    let scheduler = Scheduler::new(backend, config);
    let name = backend.name();
    let name = name.as_str();
    scheduler.run_streaming(
        jobs.len(),
        |ctx, i| {
            let job = &jobs[i];
            async move { run_step_program(registry, job, &ctx, name).await }
        },
        |i| jobs[i].stalled_trace(ProgramStyle::Step),
        done,
    )
}
