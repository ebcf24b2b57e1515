//! Checking and running programs; traces.

use crate::ast::{FuncDef, Stmt, StmtKind};
use crate::interp::{format_traceback, Ctl, FatalKind, Interp, TbEntry};
use crate::lower::Lowerer;
use crate::obj::Obj;
use crate::Limits;
use sdvp_core::scheduler::{ModuleCtx, Scheduler, SchedulerConfig, SchedulerStats};
use sdvp_core::trace::{ProgramStyle, Trace, TraceError};
use sdvp_core::value::format_number;
use sdvp_core::Job;
use sdvp_core::Pos;
use sdvp_core::{Backend, Problem, ProblemKind, Value};
use std::rc::Rc;
use std::time::Instant;

/// Longest program text accepted.
pub const MAX_SOURCE_BYTES: usize = 64 << 10;

/// Stack for the first, checking parse: generous, so pathological nesting is reported as a
/// problem instead of overflowing the caller's stack.
const CHECK_STACK_BYTES: usize = 256 << 20;

/// A checked program, ready to run.
#[derive(Debug, Clone)]
pub struct PyProgram {
    pub source: String,
    pub body: Vec<Stmt>,
    pub entry: Rc<FuncDef>,
}

fn problem(kind: ProblemKind, line: usize, column: usize, msg: impl Into<String>) -> Problem {
    Problem::new(kind, Pos { line, column }, msg)
}

/// Parse and lower; problems only (runs on the big-stack checking thread).
fn problems_of(source: &str) -> Vec<Problem> {
    match ruff_python_parser::parse_module(source) {
        Err(e) => {
            let lw = Lowerer::new(source);
            let loc = lw.loc_of(e.location.start());
            vec![problem(
                ProblemKind::Syntax,
                loc.line,
                loc.column,
                e.error.to_string(),
            )]
        }
        Ok(parsed) => {
            let mut lw = Lowerer::new(source);
            let _ = lw.block(&parsed.syntax().body);
            lw.problems
        }
    }
}

/// Parse and check a program: every problem at once, nothing run.
pub fn check_program(source: &str) -> Result<PyProgram, Vec<Problem>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![problem(
            ProblemKind::Forbidden,
            1,
            1,
            format!("program longer than {MAX_SOURCE_BYTES} bytes"),
        )]);
    }
    // First pass on a thread with a large stack: arbitrarily deep nesting (and any parser
    // panic) stays there and becomes a problem.
    let owned = source.to_string();
    let checked = std::thread::Builder::new()
        .stack_size(CHECK_STACK_BYTES)
        .spawn(move || problems_of(&owned))
        .map_err(|e| {
            vec![problem(
                ProblemKind::Syntax,
                1,
                1,
                format!("cannot check program: {e}"),
            )]
        })?
        .join()
        .map_err(|_| {
            vec![problem(
                ProblemKind::Syntax,
                1,
                1,
                "the parser failed on this program",
            )]
        })?;
    if !checked.is_empty() {
        return Err(checked);
    }
    // The text is now known to nest shallowly: lower it for real on this thread.
    let parsed = ruff_python_parser::parse_module(source)
        .map_err(|e| vec![problem(ProblemKind::Syntax, 1, 1, e.error.to_string())])?;
    let mut lw = Lowerer::new(source);
    let body = lw.block(&parsed.syntax().body);
    if !lw.problems.is_empty() {
        return Err(lw.problems);
    }
    let entry = body.iter().find_map(|s| match &s.kind {
        StmtKind::Def(d) if &*d.name == "execute_command" => Some(d.clone()),
        _ => None,
    });
    match entry {
        Some(entry) => Ok(PyProgram {
            source: source.to_string(),
            body,
            entry,
        }),
        None => Err(vec![problem(
            ProblemKind::MissingResult,
            1,
            1,
            "no top-level `def execute_command(image):`",
        )]),
    }
}

fn to_value(it: &mut Interp, o: &Obj) -> Result<Value, Ctl> {
    Ok(match o {
        Obj::Str(s) => Value::Text(s.to_string()),
        Obj::Bool(b) => Value::Bool(*b),
        Obj::Int(i) => Value::Number(*i as f64),
        Obj::Big(b) => Value::Text(crate::num::int_to_string(it, b)?),
        Obj::Float(f) => Value::Number(*f),
        Obj::Patch(p) => Value::Image(p.image.clone()),
        Obj::Image(i) => Value::Image((**i).clone()),
        o => Value::Text(crate::format::to_str(it, o)?),
    })
}

fn input_arg(it: &mut Interp, job: &Job) -> Result<Obj, String> {
    let image = |v: &Value| match v {
        Value::Image(i) => Ok(Obj::Image(Rc::new(i.clone()))),
        other => Err(format!("input is a {}, not an image", other.value_type())),
    };
    if let Some(v) = job.inputs.get("IMAGE") {
        return image(v);
    }
    match (job.inputs.get("LEFT"), job.inputs.get("RIGHT")) {
        (Some(l), Some(r)) => {
            let pairs = vec![
                (Obj::str("left"), image(l)?),
                (Obj::str("right"), image(r)?),
            ];
            it.new_dict(pairs)
                .map_err(|_| "cannot build image_dict".to_string())
        }
        _ => Err("the job has no IMAGE (or LEFT and RIGHT) input".into()),
    }
}

fn set_error(trace: &mut Trace, kind: &str, message: String, line: Option<usize>) {
    trace.error = Some(TraceError {
        kind: kind.into(),
        message,
        line,
        problems: Vec::new(),
    });
}

fn tb_json(tb: &[TbEntry]) -> serde_json::Value {
    serde_json::Value::Array(
        tb.iter()
            .rev()
            .map(|e| serde_json::json!({"function": &*e.func, "line": e.loc.line, "column": e.loc.column}))
            .collect(),
    )
}

/// Run one Python program; every failure ends up in the trace, never as a panic.
///
/// Errors: `invalid_program` (with `problems`), `invalid_input`, `python_error` (an uncaught
/// exception; `message` is the Python-style traceback), `limit` (a budget of [`Limits`]),
/// `module_failed` (a backend error). `meta.python_error` holds the structured form
/// (exception, line, column, traceback frames) and `meta.stdout` any printed output.
pub async fn run_python_program(
    job: &Job,
    ctx: &ModuleCtx,
    backend_name: &str,
    limits: &Limits,
) -> Trace {
    let start = Instant::now();
    let mut trace = Trace::new(job.id.clone(), ProgramStyle::Python, job.source.clone());
    trace.inputs = job.inputs.clone();
    trace.meta = job.meta.clone();
    trace.backend = backend_name.to_string();
    let program = match check_program(&job.source) {
        Ok(p) => p,
        Err(problems) => {
            let message = problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            trace.error = Some(TraceError {
                kind: "invalid_program".into(),
                message,
                line: problems.first().map(|p| p.line),
                problems,
            });
            trace.micros = start.elapsed().as_micros() as u64;
            return trace;
        }
    };
    let mut it = Interp::new(ctx, limits, &program.source);
    let outcome = match input_arg(&mut it, job) {
        Err(message) => {
            set_error(&mut trace, "invalid_input", message, None);
            None
        }
        Ok(arg) => Some(run_body(&mut it, &program, arg).await),
    };
    if let Some(outcome) = outcome {
        match outcome.and_then(|o| to_value(&mut it, &o)) {
            Ok(v) => {
                let answer = match &v {
                    Value::Number(n) => format_number(*n),
                    other => other.to_answer(),
                };
                if answer.len() > limits.max_output_bytes {
                    let msg = format!(
                        "answer longer than the output budget of {} bytes",
                        limits.max_output_bytes
                    );
                    set_error(&mut trace, "limit", msg, None);
                } else {
                    trace.answer = Some(answer);
                    trace.result = Some(v);
                }
            }
            Err(ctl) => record_failure(&mut trace, &program.source, ctl, limits.max_output_bytes),
        }
    }
    trace.steps = std::mem::take(&mut it.steps);
    if !it.output.is_empty() {
        trace.meta.insert(
            "stdout".into(),
            serde_json::Value::String(std::mem::take(&mut it.output)),
        );
    }
    it.release();
    trace.micros = start.elapsed().as_micros() as u64;
    trace
}

async fn run_body(it: &mut Interp<'_>, program: &PyProgram, arg: Obj) -> Result<Obj, Ctl> {
    it.exec_block(&program.body).await?;
    let Some(Obj::Func(f)) = it.globals.lookup("execute_command") else {
        return Err(it.type_error("execute_command is not a function"));
    };
    let mut args = vec![arg];
    args.truncate(f.def.params.len());
    // Parameters beyond the first without a default (ViperGPT's `my_fig`, …) get None.
    let extra: Vec<(Rc<str>, Obj)> = f
        .def
        .params
        .iter()
        .zip(&f.defaults)
        .skip(1)
        .filter(|(_, d)| d.is_none())
        .map(|(p, _)| (p.name.clone(), Obj::None))
        .collect();
    let r = it.call_function(f, args, extra).await;
    match r {
        Err(Ctl::Exc(mut raised)) => {
            // The host's call into execute_command is not part of the program's traceback.
            if raised.tb.last().is_some_and(|e| &*e.func == "<module>") && raised.tb.len() > 1 {
                raised.tb.pop();
            }
            Err(Ctl::Exc(raised))
        }
        other => other,
    }
}

fn record_failure(trace: &mut Trace, source: &str, ctl: Ctl, max: usize) {
    match ctl {
        Ctl::Exc(raised) => {
            let name = raised.exc.kind.name();
            let last = if raised.exc.message.is_empty() {
                name.to_string()
            } else {
                format!("{name}: {}", raised.exc.message)
            };
            let inner = raised.tb.first().map(|e| e.loc).unwrap_or_default();
            set_error(
                trace,
                "python_error",
                format_traceback(source, &raised.tb, &last, max),
                Some(inner.line),
            );
            trace.meta.insert(
                "python_error".into(),
                serde_json::json!({
                    "exception": name,
                    "message": &*raised.exc.message,
                    "line": inner.line,
                    "column": inner.column,
                    "traceback": tb_json(&raised.tb),
                }),
            );
        }
        Ctl::Fatal(kind, message, tb) => {
            let kind = match kind {
                FatalKind::Limit => "limit",
                FatalKind::ModuleFailed => "module_failed",
            };
            let inner = tb.first().map(|e| e.loc).unwrap_or_default();
            let tb: Vec<TbEntry> = tb
                .into_iter()
                .filter(|e| &*e.func != "<module>" || e.loc.line > 0)
                .collect();
            set_error(
                trace,
                kind,
                format_traceback(source, &tb, &message, max),
                Some(inner.line),
            );
        }
        Ctl::Return(_) | Ctl::Break | Ctl::Continue => {
            set_error(
                trace,
                "python_error",
                "control flow escaped the program".into(),
                None,
            );
        }
    }
}

/// Run many Python programs with batched model calls; traces come back in input order.
pub fn run_python_programs(
    backend: &dyn Backend,
    config: SchedulerConfig,
    jobs: &[Job],
    limits: &Limits,
) -> (Vec<Trace>, SchedulerStats) {
    let scheduler = Scheduler::new(backend, config);
    let name = backend.name();
    let name = name.as_str();
    scheduler.run_all(
        jobs.len(),
        |ctx, i| {
            let job = &jobs[i];
            async move { run_python_program(job, &ctx, name, limits).await }
        },
        |i| jobs[i].stalled_trace(ProgramStyle::Python),
    )
}

/// Like [`run_python_programs`], handing each trace to `done(index, trace)` as it finishes.
pub fn run_python_programs_streaming(
    backend: &dyn Backend,
    config: SchedulerConfig,
    jobs: &[Job],
    limits: &Limits,
    done: impl FnMut(usize, Trace),
) -> SchedulerStats {
    let scheduler = Scheduler::new(backend, config);
    let name = backend.name();
    let name = name.as_str();
    scheduler.run_streaming(
        jobs.len(),
        |ctx, i| {
            let job = &jobs[i];
            async move { run_python_program(job, &ctx, name, limits).await }
        },
        |i| jobs[i].stalled_trace(ProgramStyle::Python),
        done,
    )
}
