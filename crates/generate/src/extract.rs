//! Getting a program out of a model's raw text, and checking it.
//!
//! Chat models wrap programs in prose and Markdown fences; completion models run on into the
//! next in-context example. Extraction keeps only the program so that validation judges the
//! program, not its wrapping.

use crate::{ProgramStyle, Task};
use sdvp_core::Problem;
use sdvp_program::exec::check_program;
use sdvp_program::steps::Registry;
use std::sync::Arc;

/// Validates a Python program (the CLI passes the sandbox's static checker; injected so this
/// crate does not depend on the interpreter).
pub type PythonValidator = Arc<dyn Fn(&str) -> Result<(), Vec<Problem>> + Send + Sync>;

/// Why a raw text yielded no usable program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Nothing that looks like a program.
    NoProgram,
    /// A program that the validator rejected.
    Invalid(Vec<Problem>),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NoProgram => f.write_str("no program found in the generated text"),
            Rejection::Invalid(problems) => {
                let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                write!(f, "invalid program: {}", all.join("; "))
            }
        }
    }
}

/// Extraction and validation for one task and style.
#[derive(Clone)]
pub struct Checker {
    pub task: Task,
    pub style: ProgramStyle,
    registry: Registry,
    python: Option<PythonValidator>,
}

impl Checker {
    /// `python` may be `None`: Python programs are then only checked for their shape.
    pub fn new(
        task: Task,
        style: ProgramStyle,
        registry: Registry,
        python: Option<PythonValidator>,
    ) -> Self {
        Self {
            task,
            style,
            registry,
            python,
        }
    }

    /// The program in `raw`, validated.
    pub fn check(&self, raw: &str) -> Result<String, (Option<String>, Rejection)> {
        let program = match self.style {
            ProgramStyle::Step => extract_step(raw),
            ProgramStyle::Python => extract_python(raw),
        }
        .ok_or((None, Rejection::NoProgram))?;
        let verdict = match self.style {
            ProgramStyle::Step => {
                check_program(&program, &self.registry, &self.task.step_inputs()).map(|_| ())
            }
            ProgramStyle::Python => match &self.python {
                Some(validate) => validate(&program),
                None => Ok(()),
            },
        };
        match verdict {
            Ok(()) => Ok(program),
            Err(problems) => Err((Some(program), Rejection::Invalid(problems))),
        }
    }
}

/// The parts of `raw` inside Markdown code fences, or all of it when there are none.
fn unfenced(raw: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in raw.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(lines) => blocks.push(lines.join("\n")),
                None => current = Some(Vec::new()),
            }
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    // An unclosed fence (the model hit max_tokens) still holds the program.
    if let Some(lines) = current {
        blocks.push(lines.join("\n"));
    }
    blocks.push(raw.to_string());
    blocks
}

/// Whether `line` looks like `NAME=MODULE(` (a step line, possibly malformed after that).
fn is_step_line(line: &str) -> bool {
    let Some((lhs, rhs)) = line.split_once('=') else {
        return false;
    };
    let lhs = lhs.trim();
    let rhs = rhs.trim_start();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let Some(paren) = rhs.find('(') else {
        return false;
    };
    let module = rhs[..paren].trim();
    ident(lhs) && ident(module) && module.chars().all(|c| !c.is_ascii_lowercase())
}

/// The first run of step lines, up to and including the first `RESULT` step.
pub fn extract_step(raw: &str) -> Option<String> {
    for block in unfenced(raw) {
        let mut lines: Vec<&str> = Vec::new();
        for line in block.lines() {
            let t = line.trim();
            if is_step_line(t) {
                lines.push(t);
                let module = t.split_once('=').map(|(_, r)| r.trim_start()).unwrap_or("");
                if module.starts_with("RESULT") {
                    break;
                }
            } else if !lines.is_empty() && !t.is_empty() {
                break;
            }
        }
        if !lines.is_empty() {
            return Some(lines.join("\n"));
        }
    }
    None
}

/// The `def execute_command(...)` function: its line and everything indented below it.
pub fn extract_python(raw: &str) -> Option<String> {
    for block in unfenced(raw) {
        let lines: Vec<&str> = block.lines().collect();
        let Some(start) = lines
            .iter()
            .position(|l| l.trim_start().starts_with("def execute_command("))
        else {
            continue;
        };
        let indent = lines[start].len() - lines[start].trim_start().len();
        let mut out = vec![&lines[start][indent..]];
        for line in &lines[start + 1..] {
            let own = line.len() - line.trim_start().len();
            if !line.trim().is_empty() && own <= indent {
                break;
            }
            out.push(line.get(indent..).unwrap_or(line.trim_start()));
        }
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        if out.len() > 1 {
            return Some(out.join("\n") + "\n");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_program_from_prose_and_fences() {
        let raw = "Sure! Here is the program:\n```\nBOX0=LOC(image=IMAGE,object='cube')\nANSWER0=COUNT(box=BOX0)\nFINAL_RESULT=RESULT(var=ANSWER0)\n```\nThis counts cubes.";
        assert_eq!(
            extract_step(raw).unwrap(),
            "BOX0=LOC(image=IMAGE,object='cube')\nANSWER0=COUNT(box=BOX0)\nFINAL_RESULT=RESULT(var=ANSWER0)"
        );
    }

    #[test]
    fn completion_run_on_is_cut_at_result() {
        let raw = " BOX0=LOC(image=IMAGE,object='cone')\n\nFINAL_RESULT=RESULT(var=BOX0)\nQuestion: next one\nBOX0=LOC(image=IMAGE,object='x')";
        assert_eq!(
            extract_step(raw).unwrap(),
            "BOX0=LOC(image=IMAGE,object='cone')\nFINAL_RESULT=RESULT(var=BOX0)"
        );
        assert_eq!(extract_step("I cannot answer that."), None);
        assert_eq!(extract_step("x = compute(3)"), None);
    }

    #[test]
    fn python_function_from_fenced_answer() {
        let raw = "Here you go:\n```python\ndef execute_command(image):\n    patch = ImagePatch(image)\n\n    return patch.simple_query('What is it?')\n\nprint(execute_command(img))\n```\n";
        assert_eq!(
            extract_python(raw).unwrap(),
            "def execute_command(image):\n    patch = ImagePatch(image)\n\n    return patch.simple_query('What is it?')\n"
        );
        assert_eq!(extract_python("def execute_command(image):\n"), None);
        assert_eq!(extract_python("no code"), None);
    }

    #[test]
    fn checker_uses_injected_python_validator() {
        let reject: PythonValidator = Arc::new(|_p: &str| {
            Err(vec![Problem::new(
                sdvp_core::ProblemKind::Forbidden,
                sdvp_core::Pos::new(1, 1),
                "no imports",
            )])
        });
        let c = Checker::new(
            Task::Gqa,
            ProgramStyle::Python,
            Registry::empty(),
            Some(reject),
        );
        let (program, why) = c
            .check("def execute_command(image):\n    import os\n")
            .unwrap_err();
        assert!(program.is_some());
        assert!(why.to_string().contains("no imports"));
        let c = Checker::new(Task::Gqa, ProgramStyle::Python, Registry::empty(), None);
        assert!(c
            .check("def execute_command(image):\n    return 'yes'\n")
            .is_ok());
        assert_eq!(c.check("nothing").unwrap_err().1, Rejection::NoProgram);
    }
}
