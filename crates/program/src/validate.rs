//! Static validation of a parsed program against a registry.
//!
//! Everything that can be known before running is checked here (module and argument names,
//! variables, types, the final `RESULT`), and every problem is reported, not just the first,
//! so a generated program can be repaired in one round. Messages suggest the likely fix,
//! because the most common mistakes of language models are near-misses (`vqa(`, `Image=`,
//! `RESULT(var=ANSWER)` for `ANSWER0`).

use crate::ast::{Arg, ArgValue, Literal, Pos, Problem, ProblemKind, Program, Step};
use crate::steps::{ArgSpec, Registry, StepModule};
use sdvp_core::value::ValueType;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// All problems of `program`; `inputs` are the names the program may read (e.g. `IMAGE`).
pub fn validate(
    program: &Program,
    registry: &Registry,
    inputs: &[(&str, ValueType)],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut defined: BTreeMap<String, Definition> = inputs
        .iter()
        .map(|(name, ty)| {
            (
                name.to_string(),
                Definition {
                    ty: *ty,
                    line: None,
                },
            )
        })
        .collect();
    let mut index = Index {
        lines_by_output: HashMap::new(),
        hint_budget: HINT_BUDGET,
    };
    for step in &program.steps {
        index
            .lines_by_output
            .entry(step.output.as_str())
            .or_default()
            .push(step.line);
    }
    for step in &program.steps {
        check_step(step, &mut index, registry, &defined, &mut problems);
        let ty = resolve_module(registry, &step.module)
            .map(|m| m.signature().output)
            .unwrap_or(ValueType::Any);
        if let Some(previous) = defined.get(&step.output) {
            let message = match previous.line {
                Some(line) => format!(
                    "`{}` is already defined at line {line}; give this step a new name",
                    step.output
                ),
                None => format!(
                    "`{}` is a program input and cannot be assigned; give this step a new name",
                    step.output
                ),
            };
            problems.push(Problem::new(
                ProblemKind::ReassignedVariable,
                step.output_pos,
                message,
            ));
        }
        // Later steps see the newest value, as they would when run.
        defined.insert(
            step.output.clone(),
            Definition {
                ty,
                line: Some(step.line),
            },
        );
    }
    check_result(program, &mut problems);
    problems
}

/// Edit-distance cells the "did you mean" hints for undefined variables may cost in one
/// program; past it they are left out, so a program of thousands of undefined names stays
/// linear instead of comparing every name with every definition.
const HINT_BUDGET: usize = 4_000_000;

/// What checking one step needs to know about the whole program.
struct Index<'a> {
    /// Lines defining each output name, in order.
    lines_by_output: HashMap<&'a str, Vec<usize>>,
    hint_budget: usize,
}

struct Definition {
    ty: ValueType,
    /// `None` for program inputs.
    line: Option<usize>,
}

fn resolve_module<'a>(registry: &'a Registry, name: &str) -> Option<&'a Arc<dyn StepModule>> {
    registry.get(name).or_else(|| {
        let fixed = registry.names().find(|n| n.eq_ignore_ascii_case(name))?;
        registry.get(fixed)
    })
}

fn check_result(program: &Program, problems: &mut Vec<Problem>) {
    let Some(last) = program.steps.last() else {
        problems.push(Problem::new(
            ProblemKind::MissingResult,
            Pos::new(1, 1),
            "the program has no steps; it must end with `NAME=RESULT(var=X)`",
        ));
        return;
    };
    // A `result(` spelling is already reported as an unknown module with its fix.
    if !last.module.eq_ignore_ascii_case("RESULT") {
        problems.push(Problem::new(
            ProblemKind::MissingResult,
            last.module_pos,
            format!(
                "the last step is `{}`, but a program must end with `NAME=RESULT(var=X)`; add it, e.g. `FINAL_RESULT=RESULT(var={})`",
                last.module, last.output
            ),
        ));
    }
}

fn check_step(
    step: &Step,
    index: &mut Index,
    registry: &Registry,
    defined: &BTreeMap<String, Definition>,
    problems: &mut Vec<Problem>,
) {
    let module = match registry.get(&step.module) {
        Some(m) => Some(m),
        None => {
            problems.push(unknown_module(step, registry));
            // A case slip still names a module: keep checking against it.
            resolve_module(registry, &step.module)
        }
    };
    let specs = module.map(|m| m.signature().args).unwrap_or_default();
    let mut seen: BTreeMap<&str, &Arg> = BTreeMap::new();
    for arg in &step.args {
        let spec = match module {
            Some(m) => match_argument(arg, m.name(), &specs, problems),
            None => None,
        };
        let key = spec.map(|s| s.name).unwrap_or(arg.name.as_str());
        if let Some(first) = seen.get(key) {
            problems.push(Problem::new(
                ProblemKind::DuplicateArgument,
                arg.name_pos,
                format!(
                    "argument `{}` is given twice (first at column {}); keep one",
                    arg.name, first.name_pos.column
                ),
            ));
        } else {
            seen.insert(key, arg);
        }
        let actual = match &arg.value {
            ArgValue::Lit(lit) => Some((literal_type(lit), None)),
            ArgValue::Var(name) => match defined.get(name) {
                Some(d) => Some((d.ty, Some(name.as_str()))),
                None => {
                    problems.push(undefined(name, arg.value_pos, step, index, defined));
                    None
                }
            },
        };
        if let (Some(spec), Some((ty, var))) = (spec, actual) {
            if !spec.ty.accepts(ty) {
                let what = match var {
                    Some(v) => format!("`{v}` is {}", article(ty)),
                    None => format!("the value is {}", article(ty)),
                };
                problems.push(Problem::new(
                    ProblemKind::TypeMismatch,
                    arg.value_pos,
                    format!(
                        "argument `{}` of `{}` needs {}, but {what}",
                        spec.name,
                        module.map(|m| m.name()).unwrap_or(""),
                        article(spec.ty)
                    ),
                ));
            }
        }
    }
    let Some(module) = module else {
        return;
    };
    for spec in specs.iter().filter(|s| s.required) {
        if !seen.contains_key(spec.name) {
            problems.push(Problem::new(
                ProblemKind::MissingArgument,
                step.module_pos,
                format!(
                    "`{}` needs the argument `{}` ({}: {})",
                    module.name(),
                    spec.name,
                    spec.ty,
                    spec.doc
                ),
            ));
        }
    }
    problems.extend(module.check(step, &|name| defined.get(name).map(|d| d.ty)));
}

fn literal_type(lit: &Literal) -> ValueType {
    match lit {
        Literal::Str(_) => ValueType::Text,
        Literal::Int(_) | Literal::Float(_) => ValueType::Number,
        Literal::Bool(_) => ValueType::Bool,
    }
}

fn article(ty: ValueType) -> String {
    match ty {
        ValueType::Image => "an image".into(),
        ValueType::Boxes => "boxes".into(),
        ValueType::Text => "text".into(),
        ValueType::Number => "a number".into(),
        ValueType::Bool => "a yes/no value".into(),
        ValueType::Any => "any value".into(),
    }
}

/// The spec `arg` names, reporting unknown names and case slips.
fn match_argument<'a>(
    arg: &Arg,
    module: &str,
    specs: &'a [ArgSpec],
    problems: &mut Vec<Problem>,
) -> Option<&'a ArgSpec> {
    if let Some(s) = specs.iter().find(|s| s.name == arg.name) {
        return Some(s);
    }
    if let Some(s) = specs
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(&arg.name))
    {
        problems.push(Problem::new(
            ProblemKind::WrongArgumentCase,
            arg.name_pos,
            format!("argument `{}` should be `{}`", arg.name, s.name),
        ));
        return Some(s);
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let hint = match closest(&arg.name, names.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("its arguments are {}", list(&names)),
    };
    problems.push(Problem::new(
        ProblemKind::UnknownArgument,
        arg.name_pos,
        format!("`{module}` has no argument `{}`; {hint}", arg.name),
    ));
    None
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_module(step: &Step, registry: &Registry) -> Problem {
    let name = &step.module;
    let message = if let Some(fixed) = registry.names().find(|n| n.eq_ignore_ascii_case(name)) {
        format!("module `{name}` should be `{fixed}` (module names are upper case)")
    } else {
        let hint = match closest(name, registry.names()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!(
                "known modules: {}",
                list(&registry.names().collect::<Vec<_>>())
            ),
        };
        format!("unknown module `{name}`; {hint}")
    };
    Problem::new(ProblemKind::UnknownModule, step.module_pos, message)
}

fn undefined(
    name: &str,
    pos: Pos,
    step: &Step,
    index: &mut Index,
    defined: &BTreeMap<String, Definition>,
) -> Problem {
    let later = index.lines_by_output.get(name).and_then(|lines| {
        let i = lines.partition_point(|&l| l <= step.line);
        lines.get(i).copied()
    });
    let hint = if name.eq_ignore_ascii_case("true") || name.eq_ignore_ascii_case("false") {
        format!(
            "write `{}` for a yes/no value",
            if name.eq_ignore_ascii_case("true") {
                "True"
            } else {
                "False"
            }
        )
    } else if let Some(line) = later {
        format!("it is only defined later, at line {line}")
    } else if let Some(c) = closest_within(
        name,
        defined.keys().map(String::as_str),
        &mut index.hint_budget,
    ) {
        format!("did you mean `{c}`?")
    } else if name.contains(' ') || name.is_empty() {
        String::new()
    } else {
        format!("quote it ('{name}') if it is meant as text")
    };
    let mut message = format!("variable `{name}` is not defined before line {}", step.line);
    if !hint.is_empty() {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Problem::new(ProblemKind::UndefinedVariable, pos, message)
}

/// The candidate closest to `name` when it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut unlimited = usize::MAX;
    closest_within(name, candidates, &mut unlimited)
}

/// [`closest`], spending at most `budget` edit-distance cells (decremented); `None` once it
/// runs out.
fn closest_within<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
    budget: &mut usize,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let name_len = lower.chars().take(EDIT_CAP).count();
    let limit = (name.chars().count() / 3).max(1);
    let mut seen = HashSet::new();
    candidates
        .filter(|c| seen.insert(*c))
        .map_while(|c| {
            // Lower-casing reads all of `c`; the distance reads a capped prefix.
            let cells = (name_len + 1) * (c.chars().take(EDIT_CAP).count() + 1) + c.len();
            *budget = budget.checked_sub(cells)?;
            Some(c)
        })
        .map(|c| {
            let other = c.to_lowercase();
            let real = edit_distance(&lower, &other);
            // `LOCATE` for `LOC`, `COUNTING` for `COUNT`: models lengthen names, so a
            // prefix of three or more letters counts as a near miss.
            let (short, long) = if lower.len() <= other.len() {
                (&lower, &other)
            } else {
                (&other, &lower)
            };
            let prefix = short.chars().count() >= 3 && long.starts_with(short.as_str());
            (if prefix { real.min(1) } else { real }, real, c)
        })
        .filter(|(d, _, _)| *d <= limit)
        .min_by_key(|(d, real, c)| (*d, *real, *c))
        .map(|(_, _, c)| c)
}

const EDIT_CAP: usize = 64;

/// Edit distance counting a swap of neighbours as one edit (the commonest typo), over
/// characters; inputs are capped so junk names stay cheap.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(EDIT_CAP).collect();
    let b: Vec<char> = b.chars().take(EDIT_CAP).collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}
