//! A scripted backend for tests and demos: answers come from a JSON file, not a model.
//!
//! ```json
//! {
//!   "detect": {"cup": [[10, 10, 40, 40]], "*": []},
//!   "vqa": {"What color is the plate?": "blue", "*": "no"},
//!   "verify": {"*": true},
//!   "classify": {"*": 0},
//!   "depth": {"*": 1.0},
//!   "llm": {"*": "yes"}
//! }
//! ```
//! Keys are matched exactly (object name, question, property text, prompt), then `*`.
//! A request with no matching key is a module error, so a test notices a missing script line.

use crate::module::{Backend, ModuleError, ModuleKind, Request, Response};
use crate::value::BBox;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    pub detect: BTreeMap<String, Vec<[f32; 4]>>,
    #[serde(default)]
    pub vqa: BTreeMap<String, String>,
    #[serde(default)]
    pub verify: BTreeMap<String, bool>,
    #[serde(default)]
    pub classify: BTreeMap<String, usize>,
    #[serde(default)]
    pub depth: BTreeMap<String, f32>,
    #[serde(default)]
    pub llm: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct ScriptedBackend {
    script: Script,
}

impl ScriptedBackend {
    pub fn new(script: Script) -> Self {
        Self { script }
    }
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::new(serde_json::from_str(text)?))
    }
    fn answer(&self, request: &Request) -> Result<Response, ModuleError> {
        fn pick<'a, T>(
            m: &'a BTreeMap<String, T>,
            key: &str,
            kind: ModuleKind,
        ) -> Result<&'a T, ModuleError> {
            m.get(key).or_else(|| m.get("*")).ok_or_else(|| {
                ModuleError::new(
                    kind,
                    format!("script has no answer for {key:?} and no \"*\""),
                )
            })
        }
        let kind = request.kind();
        match request {
            Request::Detect { image, object } => {
                let r = image.region();
                let boxes: Vec<BBox> = pick(&self.script.detect, object, kind)?
                    .iter()
                    .map(|b| BBox::new(b[0], b[1], b[2], b[3]))
                    // A scripted box outside the crop is not visible in it.
                    .filter(|b| !b.intersect(&r).is_empty())
                    .collect();
                let scores = vec![1.0; boxes.len()];
                Ok(Response::Detections { boxes, scores })
            }
            Request::Vqa { question, .. } => Ok(Response::answer(
                pick(&self.script.vqa, question, kind)?.clone(),
                1.0,
            )),
            Request::Verify { text, .. } => Ok(Response::Verdict {
                yes: *pick(&self.script.verify, text, kind)?,
                score: 1.0,
            }),
            Request::Classify { options, .. } => {
                let index = *pick(&self.script.classify, &options.join("|"), kind)?;
                if index >= options.len() {
                    return Err(ModuleError::new(
                        kind,
                        format!("scripted choice {index} out of {} options", options.len()),
                    ));
                }
                let mut scores = vec![0.0; options.len()];
                scores[index] = 1.0;
                Ok(Response::Choice { index, scores })
            }
            Request::Depth { .. } => Ok(Response::Depth {
                value: *pick(&self.script.depth, "*", kind)?,
            }),
            Request::Llm { prompt } => Ok(Response::Text {
                text: pick(&self.script.llm, prompt, kind)?.clone(),
            }),
        }
    }
}

impl Backend for ScriptedBackend {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn run_batch(
        &self,
        _kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        requests.iter().map(|r| self.answer(r)).collect()
    }
}
