//! The batched executor gives the same results as running programs one at a time, and one
//! failing program never disturbs the others.

use sdvp_program::exec::{run_step_programs, Job};
use sdvp_program::module::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_program::scheduler::SchedulerConfig;
use sdvp_program::steps::Registry;
use sdvp_program::trace::{append_trace, read_traces, Trace};
use sdvp_program::{BBox, ImageRef, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Answers depend only on the request (never on the batch), and batch sizes are recorded.
#[derive(Default)]
struct HashBackend {
    batches: Mutex<Vec<(ModuleKind, usize)>>,
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
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
        self.batches.lock().unwrap().push((kind, requests.len()));
        requests
            .iter()
            .map(|r| {
                let key = serde_json::to_string(r).unwrap();
                let h = hash(&key);
                match r {
                    Request::Detect { image, object } => {
                        if object == "explode" {
                            return Err(ModuleError::new(kind, "detector exploded"));
                        }
                        let reg = image.region();
                        let n = (h % 4) as usize;
                        let boxes = (0..n)
                            .map(|i| {
                                let x = reg.x0
                                    + (i as f32 * 7.0 + (h % 13) as f32)
                                        .min(reg.width() - 4.0)
                                        .max(0.0);
                                BBox::new(x, reg.y0, x + 4.0, reg.y0 + 4.0)
                            })
                            .collect::<Vec<_>>();
                        let scores = vec![0.5; boxes.len()];
                        Ok(Response::Detections { boxes, scores })
                    }
                    Request::Vqa { .. } => Ok(Response::answer(
                        ["yes", "no", "red", "blue"][(h % 4) as usize],
                        0.9,
                    )),
                    _ => Err(ModuleError::new(kind, "unsupported")),
                }
            })
            .collect()
    }
}

fn jobs(n: usize) -> Vec<Job> {
    let objects = ["cup", "plate", "star", "circle", "explode"];
    (0..n)
        .map(|i| {
            let obj = objects[i % objects.len()];
            let source = match i % 7 {
                // An invalid program in the middle of the batch.
                3 => "BOX0=LOC(image=IMAGE,object='cup')\nFINAL=RESULT(var=ANSWER)".to_string(),
                _ => format!(
                    "BOX0=LOC(image=IMAGE,object='{obj}')\nIMAGE0=CROP_RIGHTOF(image=IMAGE,box=BOX0)\nBOX1=LOC(image=IMAGE0,object='thing {i}')\nANSWER0=COUNT(box=BOX1)\nANSWER1=VQA(image=IMAGE0,question='What is it {i}?')\nANSWER2=EVAL(expr=\"'{{ANSWER1}}' if {{ANSWER0}} > 0 else 'none'\")\nFINAL=RESULT(var=ANSWER2)"
                ),
            };
            let mut inputs = BTreeMap::new();
            inputs.insert("IMAGE".to_string(), Value::Image(ImageRef::new(format!("img{i}"), 64, 48)));
            Job {
                id: format!("q{i}"),
                source,
                inputs,
                meta: BTreeMap::new(),
            }
        })
        .collect()
}

/// Traces without timings, which legitimately differ between runs.
fn comparable(traces: &[Trace]) -> Vec<serde_json::Value> {
    traces
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.micros = 0;
            for s in &mut t.steps {
                s.micros = 0;
                for c in &mut s.calls {
                    c.micros = 0;
                    c.batch_size = 0;
                }
            }
            serde_json::to_value(&t).unwrap()
        })
        .collect()
}

#[test]
fn batched_equals_sequential() {
    let registry = Registry::visual_reasoning(Default::default());
    let jobs = jobs(200);
    let batched_backend = HashBackend::default();
    let (batched, stats) = run_step_programs(
        &registry,
        &batched_backend,
        SchedulerConfig {
            max_batch: 32,
            window: 1024,
        },
        &jobs,
    );
    let mut sequential = Vec::new();
    let seq_backend = HashBackend::default();
    for job in &jobs {
        let (t, _) = run_step_programs(
            &registry,
            &seq_backend,
            SchedulerConfig {
                max_batch: 1,
                window: 1,
            },
            std::slice::from_ref(job),
        );
        sequential.extend(t);
    }
    assert_eq!(comparable(&batched), comparable(&sequential));
    // Batching really happened: far fewer batches than calls, none above the cap.
    let sizes = batched_backend.batches.lock().unwrap().clone();
    assert!(sizes.iter().all(|(_, n)| *n <= 32));
    assert!(sizes.iter().any(|(_, n)| *n == 32), "{sizes:?}");
    assert!(stats.batches * 4 < stats.calls, "{stats:?}");
    assert!(seq_backend
        .batches
        .lock()
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 1));
    // Results come back in input order.
    for (t, j) in batched.iter().zip(&jobs) {
        assert_eq!(t.id, j.id);
    }
}

#[test]
fn window_and_batch_size_do_not_change_results() {
    let registry = Registry::visual_reasoning(Default::default());
    let jobs = jobs(60);
    let reference = comparable(
        &run_step_programs(
            &registry,
            &HashBackend::default(),
            SchedulerConfig::default(),
            &jobs,
        )
        .0,
    );
    for (max_batch, window) in [(1, 1024), (5, 7), (64, 3), (2, 1)] {
        let got = comparable(
            &run_step_programs(
                &registry,
                &HashBackend::default(),
                SchedulerConfig { max_batch, window },
                &jobs,
            )
            .0,
        );
        assert_eq!(got, reference, "max_batch={max_batch} window={window}");
    }
}

#[test]
fn failures_stay_with_their_program() {
    let registry = Registry::visual_reasoning(Default::default());
    let jobs = jobs(35);
    let (traces, _) = run_step_programs(
        &registry,
        &HashBackend::default(),
        SchedulerConfig::default(),
        &jobs,
    );
    for (i, t) in traces.iter().enumerate() {
        let e = t.error.as_ref().map(|e| e.kind.as_str());
        if i % 7 == 3 {
            assert_eq!(e, Some("invalid_program"), "{i}");
            let p = &t.error.as_ref().unwrap().problems;
            assert!(p
                .iter()
                .any(|p| p.kind == sdvp_program::ProblemKind::UndefinedVariable && p.line == 2));
        } else if i % 5 == 4 {
            assert_eq!(e, Some("step_failed"), "{i}");
            assert!(t.steps[0].error.as_deref().unwrap().contains("exploded"));
            assert!(t.answer.is_none());
        } else {
            assert_eq!(e, None, "{i}: {:?}", t.error);
            assert!(t.answer.is_some());
            assert_eq!(t.steps.len(), 7);
        }
    }
}

#[test]
fn trace_round_trips_through_jsonl() {
    let registry = Registry::visual_reasoning(Default::default());
    let jobs = jobs(12);
    let (traces, _) = run_step_programs(
        &registry,
        &HashBackend::default(),
        SchedulerConfig::default(),
        &jobs,
    );
    let dir = std::env::temp_dir().join(format!("sdvp-trace-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("traces.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for t in &traces {
        append_trace(&mut f, t).unwrap();
    }
    drop(f);
    let back = read_traces(&path).unwrap();
    assert_eq!(back, traces);
    // Every model input can be rebuilt from the trace: crops are recorded on the request.
    let crop_calls = back
        .iter()
        .flat_map(|t| t.calls())
        .filter(|(_, c)| c.request.image().is_some_and(|i| !i.crops.is_empty()))
        .count();
    assert!(crop_calls > 0);
    // A corrupt line names the file and the line.
    std::fs::write(&path, "{\"schema\":\"sdvp.trace/1\"}\n").unwrap();
    let err = read_traces(&path).unwrap_err().to_string();
    assert!(err.contains("traces.jsonl:1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn syntax_and_validation_problems_are_reported_together() {
    use sdvp_program::exec::check_program;
    use sdvp_program::{ProblemKind, ValueType};
    let registry = Registry::visual_reasoning(Default::default());
    let source = "Question: is there a cup?\nBOX0=LOC(image=IMAGE,object='cup')\nANSWER0=VQA(Image=IMAGE,question='x)\nANSWER1=VQA(image=IMAGE,question='y')\nFINAL=RESULT(var=ANSWER)\n";
    let problems = check_program(source, &registry, &[("IMAGE", ValueType::Image)]).unwrap_err();
    let kinds: Vec<(usize, ProblemKind)> = problems.iter().map(|p| (p.line, p.kind)).collect();
    assert!(kinds.contains(&(1, ProblemKind::Syntax)), "{kinds:?}");
    assert!(
        kinds.contains(&(3, ProblemKind::UnterminatedString)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(5, ProblemKind::UndefinedVariable)),
        "{kinds:?}"
    );
    // ANSWER0's line did not parse: later uses of it are not blamed on it.
    let source = "ANSWER0=VQA(image=IMAGE,question='x)\nFINAL=RESULT(var=ANSWER0)\n";
    let problems = check_program(source, &registry, &[("IMAGE", ValueType::Image)]).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, ProblemKind::UnterminatedString);
}
