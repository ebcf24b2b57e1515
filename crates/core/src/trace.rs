//! Execution traces: the single record of what a program did.
//!
//! One JSON object per line (JSONL). Answers, metrics, HTML rationales and SDVP's sub-task
//! mining are all derived from traces, so a trace carries enough to rebuild every model
//! input exactly: each call's [`Request`](crate::module::Request) names the source image, the
//! crop chain and the sub-question.
//!
//! Schema `sdvp.trace/1` (fields added later are optional, so old readers keep working):
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | `"sdvp.trace/1"` |
//! | `id` | the program's id (usually the question id) |
//! | `style` | `step` or `python` |
//! | `program` | the program text as run |
//! | `inputs` | input name → value (`IMAGE`, or `LEFT`/`RIGHT`) |
//! | `backend` | the backend's name |
//! | `steps[]` | `index`, `line`, `text`, `module`, `output_var`, `args`, `output`, `calls[]`, `micros`, `error` |
//! | `steps[].calls[]` | model calls of that step: `request`, `response` or `error`, `batch_size`, `micros` |
//! | `result` | the final value, if the program finished |
//! | `answer` | the result as an answer string |
//! | `error` | `kind`, `message`, `line`, `problems[]` when the program did not finish |
//! | `meta` | free-form data of the caller (question, gold answer, task…) |

use crate::problem::Problem;
use crate::scheduler::CallRecord;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

pub const TRACE_SCHEMA: &str = "sdvp.trace/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgramStyle {
    /// VisProg-style `VAR=MODULE(arg=value,...)` lines.
    Step,
    /// ViperGPT-style `def execute_command(...)` against the ImagePatch API.
    Python,
}

impl ProgramStyle {
    pub const ALL: [ProgramStyle; 2] = [ProgramStyle::Step, ProgramStyle::Python];
    pub fn as_str(self) -> &'static str {
        match self {
            ProgramStyle::Step => "step",
            ProgramStyle::Python => "python",
        }
    }
}

impl std::str::FromStr for ProgramStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "step" => Ok(ProgramStyle::Step),
            "python" => Ok(ProgramStyle::Python),
            _ => Err(format!(
                "unknown program style `{s}` (expected step or python)"
            )),
        }
    }
}

impl std::fmt::Display for ProgramStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    pub index: usize,
    pub line: usize,
    pub text: String,
    pub module: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_var: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    pub micros: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceError {
    /// `invalid_program`, `step_failed`, `module_failed`, `stalled`, `limit`, …
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub schema: String,
    pub id: String,
    pub style: ProgramStyle,
    pub program: String,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub steps: Vec<TraceStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TraceError>,
    pub micros: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, serde_json::Value>,
}

impl Trace {
    pub fn new(id: impl Into<String>, style: ProgramStyle, program: impl Into<String>) -> Self {
        Self {
            schema: TRACE_SCHEMA.to_string(),
            id: id.into(),
            style,
            program: program.into(),
            inputs: BTreeMap::new(),
            backend: String::new(),
            steps: Vec::new(),
            result: None,
            answer: None,
            error: None,
            micros: 0,
            meta: BTreeMap::new(),
        }
    }
    /// A text field of `meta` (numbers and other values as JSON text).
    pub fn meta_text(&self, key: &str) -> Option<String> {
        self.meta.get(key).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The gold answer a caller stored in `meta` (`gold_answer`, or `answer` in older traces).
    pub fn gold_answer(&self) -> Option<String> {
        self.meta_text("gold_answer")
            .or_else(|| self.meta_text("answer"))
    }

    /// Every model call of the program, in order.
    pub fn calls(&self) -> impl Iterator<Item = (&TraceStep, &CallRecord)> {
        self.steps
            .iter()
            .flat_map(|s| s.calls.iter().map(move |c| (s, c)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceIoError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a trace: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// Read a traces file. A line that is not a trace is an error naming the file and line.
pub fn read_traces(path: &Path) -> Result<Vec<Trace>, TraceIoError> {
    let mut out = Vec::new();
    for_each_line(path, |line, text| {
        let trace = parse_line(text).map_err(|message| TraceIoError::Parse {
            path: path.display().to_string(),
            line,
            message,
        })?;
        out.push(trace);
        Ok(())
    })?;
    Ok(out)
}

/// Read a traces file, skipping (and returning) the lines that are not traces, so one bad
/// line does not cost the rest. Only a file that cannot be read is an error.
pub fn read_traces_skipping(path: &Path) -> Result<(Vec<Trace>, Vec<TraceIoError>), TraceIoError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for_each_line(path, |line, text| {
        match parse_line(text) {
            Ok(t) => out.push(t),
            Err(message) => skipped.push(TraceIoError::Parse {
                path: path.display().to_string(),
                line,
                message,
            }),
        }
        Ok(())
    })?;
    Ok((out, skipped))
}

/// One line's trace; a byte-order mark is ignored, bytes that are not UTF-8 are an error.
fn parse_line(raw: &[u8]) -> Result<Trace, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("not UTF-8 text (byte {})", e.valid_up_to()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Calls `f(line_number, bytes)` for each non-blank line, `\r\n` endings accepted.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &[u8]) -> Result<(), TraceIoError>,
) -> Result<(), TraceIoError> {
    let io = |source| TraceIoError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            return Ok(());
        }
        line += 1;
        let raw = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(line, raw)?;
    }
}

/// Append one trace as a single line and flush, so a killed run keeps every finished trace.
pub fn append_trace(out: &mut impl Write, trace: &Trace) -> std::io::Result<()> {
    let line = serde_json::to_string(trace).map_err(std::io::Error::other)?;
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}
