//! Test backend: answers every request deterministically from a hash of the request, and
//! records the size of every batch it sees.
#![allow(dead_code)]

use sdvp_core::trace::Trace;
use sdvp_core::Job;
use sdvp_core::{
    BBox, Backend, ImageRef, ModuleError, ModuleKind, Request, Response, SchedulerConfig, Value,
};
use sdvp_python::{run_python_programs, Limits};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct HashBackend {
    pub batches: Mutex<Vec<(ModuleKind, usize)>>,
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

pub fn answer(req: &Request) -> Result<Response, ModuleError> {
    let h = fnv(&serde_json::to_string(req).unwrap_or_default());
    Ok(match req {
        Request::Detect { image, object } => {
            if object == "fail" {
                return Err(ModuleError::new(ModuleKind::Detect, "detector exploded"));
            }
            let r = image.region();
            let n = if object == "nothing" {
                0
            } else {
                1 + (h % 3) as usize
            };
            let mut boxes = Vec::new();
            for i in 0..n {
                let k = h.rotate_left(7 * i as u32 + 3);
                let w = (r.width() / 4.0).max(1.0);
                let x0 = r.x0 + (k % 97) as f32 / 97.0 * (r.width() - w);
                let y0 = r.y0 + ((k >> 8) % 89) as f32 / 89.0 * (r.height() - w.min(r.height()));
                boxes.push(BBox::new(
                    x0.round(),
                    y0.round(),
                    (x0 + w).round(),
                    (y0 + w).round().min(r.y1),
                ));
            }
            let scores = boxes.iter().map(|_| 0.9).collect();
            Response::Detections { boxes, scores }
        }
        Request::Vqa { .. } => {
            Response::answer(["red", "blue", "2", "yes", "no"][(h % 5) as usize], 0.5)
        }
        Request::Verify { .. } => Response::Verdict {
            yes: h.is_multiple_of(2),
            score: (h % 100) as f32 / 100.0,
        },
        Request::Classify { options, .. } => Response::Choice {
            index: (h % options.len().max(1) as u64) as usize,
            scores: vec![],
        },
        Request::Depth { .. } => Response::Depth {
            value: (h % 50) as f32,
        },
        Request::Llm { prompt } => Response::Text {
            text: format!("llm:{}", prompt.len()),
        },
    })
}

impl Backend for HashBackend {
    fn name(&self) -> String {
        "hash".into()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        if let Ok(mut b) = self.batches.lock() {
            b.push((kind, requests.len()));
        }
        requests.iter().map(answer).collect()
    }
}

pub fn image(id: &str) -> ImageRef {
    ImageRef::new(id, 320, 240)
}

pub fn job(id: &str, source: &str) -> Job {
    Job {
        id: id.into(),
        source: source.into(),
        inputs: BTreeMap::from([("IMAGE".to_string(), Value::Image(image(id)))]),
        meta: BTreeMap::new(),
    }
}

pub fn run_with(source: &str, limits: &Limits) -> Trace {
    let backend = HashBackend::default();
    let (mut traces, _) = run_python_programs(
        &backend,
        SchedulerConfig::default(),
        &[job("img0", source)],
        limits,
    );
    traces.remove(0)
}

pub fn run(source: &str) -> Trace {
    run_with(source, &Limits::default())
}

/// The answer, or a panic message naming the error (tests only).
pub fn answer_of(source: &str) -> String {
    let t = run(source);
    match (&t.answer, &t.error) {
        (Some(a), _) => a.clone(),
        (None, Some(e)) => format!("ERROR {}: {}", e.kind, e.message),
        _ => "NONE".into(),
    }
}

/// Wrap a body into `execute_command` (each line indented by 4).
pub fn prog(body: &str) -> String {
    let mut s = String::from("def execute_command(image):\n");
    for l in body.lines() {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}
