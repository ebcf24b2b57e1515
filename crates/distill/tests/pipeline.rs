//! Mining, labelling and replay filtering on scripted programs.

use sdvp_core::module::{Backend, ModuleError, ModuleKind, Request, Response};
use sdvp_core::scheduler::{Scheduler, SchedulerConfig};
use sdvp_core::trace::Trace;
use sdvp_core::Job;
use sdvp_core::{BBox, ImageRef, Value};
use sdvp_distill::label::{label, Identity};
use sdvp_distill::mine::{mine, MineOptions};
use sdvp_distill::replay::{filter, FilterOptions, Replay};
use sdvp_program::exec::{run_step_program, run_step_programs};
use sdvp_program::steps::Registry;
use std::collections::BTreeMap;

/// A student that is wrong about colours in images whose id ends in an odd digit.
struct Student;
impl Backend for Student {
    fn name(&self) -> String {
        "student".into()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        requests
            .iter()
            .map(|r| match r {
                Request::Detect { image, .. } => Ok(Response::Detections {
                    boxes: vec![BBox::new(10.0, 10.0, 20.0, 20.0)]
                        .into_iter()
                        .filter(|b| !b.intersect(&image.region()).is_empty())
                        .collect(),
                    scores: vec![0.9],
                }),
                Request::Vqa { image, .. } => {
                    let odd = image.source.bytes().last().is_some_and(|b| b % 2 == 1);
                    Ok(Response::answer(if odd { "blue" } else { "red" }, 0.6))
                }
                _ => Err(ModuleError::new(kind, "unsupported")),
            })
            .collect()
    }
}

/// A teacher that is right (everything is red), with lower confidence on one image.
struct Teacher;
impl Backend for Teacher {
    fn name(&self) -> String {
        "teacher".into()
    }
    fn run_batch(
        &self,
        kind: ModuleKind,
        requests: &[Request],
    ) -> Vec<Result<Response, ModuleError>> {
        requests
            .iter()
            .map(|r| match r {
                Request::Vqa { image, .. } => Ok(Response::answer(
                    "red",
                    if image.source == "img3" { 0.2 } else { 0.95 },
                )),
                _ => Err(ModuleError::new(kind, "teacher answers VQA only")),
            })
            .collect()
    }
}

fn traces() -> Vec<Trace> {
    let jobs: Vec<Job> = (0..6)
        .map(|i| {
            let mut inputs = BTreeMap::new();
            inputs.insert("IMAGE".into(), Value::Image(ImageRef::new(format!("img{i}"), 64, 64)));
            let mut meta = BTreeMap::new();
            meta.insert("gold_answer".into(), serde_json::json!("yes"));
            meta.insert("question".into(), serde_json::json!("Is the thing red?"));
            Job {
                id: format!("q{i}"),
                source: "BOX0=LOC(image=IMAGE,object='thing')\nIMAGE0=CROP(image=IMAGE,box=BOX0)\nANSWER0=VQA(image=IMAGE0,question='What color is the thing?')\nANSWER1=EVAL(expr=\"'yes' if '{ANSWER0}' == 'red' else 'no'\")\nFINAL=RESULT(var=ANSWER1)".into(),
                inputs,
                meta,
            }
        })
        .collect();
    run_step_programs(
        &Registry::visual_reasoning(Default::default()),
        &Student,
        SchedulerConfig::default(),
        &jobs,
    )
    .0
}

fn run_one(backend: &dyn Backend, job: &Job) -> Trace {
    let registry = Registry::visual_reasoning(Default::default());
    let scheduler = Scheduler::new(backend, SchedulerConfig::default());
    let (mut out, _) = scheduler.run_all(
        1,
        |ctx, _| {
            let registry = registry.clone();
            async move { run_step_program(&registry, job, &ctx, "replay").await }
        },
        |_| {
            Trace::new(
                job.id.clone(),
                sdvp_core::trace::ProgramStyle::Step,
                job.source.clone(),
            )
        },
    );
    out.remove(0)
}

#[test]
fn mining_finds_every_vqa_call_with_its_crop() {
    let traces = traces();
    let subtasks = mine(&traces, &MineOptions::only(ModuleKind::Vqa));
    assert_eq!(subtasks.len(), 6);
    for s in &subtasks {
        let image = s.request.image().unwrap();
        assert_eq!(
            image.crops.len(),
            1,
            "the VQA input is the crop, rebuilt exactly"
        );
        assert_eq!(s.gold_answer.as_deref(), Some("yes"));
    }
    // Student was right on even images only.
    let wrong = traces
        .iter()
        .filter(|t| t.answer.as_deref() == Some("no"))
        .count();
    assert_eq!(wrong, 3);
}

#[test]
fn labels_are_kept_only_when_confident_and_replay_agrees() {
    let traces = traces();
    let subtasks = mine(&traces, &MineOptions::only(ModuleKind::Vqa));
    let labels = label(&subtasks, &Teacher, &Identity, 4);
    assert_eq!(labels.len(), subtasks.len());
    let decisions = filter(
        &traces,
        &subtasks,
        &labels,
        FilterOptions::default(),
        &run_one,
        None,
    );
    for d in &decisions {
        if d.subtask.starts_with("q3/") {
            assert!(!d.keep);
            assert_eq!(d.reason, "low_confidence");
        } else {
            assert!(d.keep, "{d:?}");
            assert_eq!(d.replay, Replay::Agrees);
        }
    }
}

#[test]
fn a_wrong_teacher_is_filtered_out_by_replay() {
    struct Wrong;
    impl Backend for Wrong {
        fn name(&self) -> String {
            "wrong".into()
        }
        fn run_batch(&self, _k: ModuleKind, r: &[Request]) -> Vec<Result<Response, ModuleError>> {
            r.iter()
                .map(|_| Ok(Response::answer("green", 0.99)))
                .collect()
        }
    }
    let traces = traces();
    let subtasks = mine(&traces, &MineOptions::only(ModuleKind::Vqa));
    let labels = label(&subtasks, &Wrong, &Identity, 8);
    let decisions = filter(
        &traces,
        &subtasks,
        &labels,
        FilterOptions::default(),
        &run_one,
        None,
    );
    assert!(decisions
        .iter()
        .all(|d| !d.keep && d.replay == Replay::Disagrees));
}

/// A confident teacher label per detect sub-task, with one box elsewhere than the trace's.
fn moved_boxes(subtasks: &[sdvp_distill::mine::SubTask]) -> Vec<sdvp_distill::label::Label> {
    subtasks
        .iter()
        .map(|s| sdvp_distill::label::Label {
            subtask: s.id.clone(),
            response: Some(Response::Detections {
                boxes: vec![BBox::new(30.0, 30.0, 40.0, 40.0)],
                scores: vec![0.9],
            }),
            confidence: 0.9,
            error: None,
        })
        .collect()
}

#[test]
fn substituted_detections_that_change_later_requests_are_undecided() {
    let traces = traces();
    let subtasks = mine(&traces, &MineOptions::only(ModuleKind::Detect));
    let moved = moved_boxes(&subtasks);
    let decisions = filter(
        &traces,
        &subtasks,
        &moved,
        FilterOptions::default(),
        &run_one,
        None,
    );
    assert!(decisions
        .iter()
        .all(|d| d.replay == Replay::Undecided && !d.keep));
}

#[test]
fn a_fallback_pipeline_decides_what_substituted_detections_lead_to() {
    // The moved box makes the program ask VQA about a crop the trace never saw: the
    // student pipeline answers it (red on even images, so those agree with the gold "yes").
    let traces = traces();
    let subtasks = mine(&traces, &MineOptions::only(ModuleKind::Detect));
    assert_eq!(subtasks.len(), 6);
    let moved = moved_boxes(&subtasks);
    let decisions = filter(
        &traces,
        &subtasks,
        &moved,
        FilterOptions::default(),
        &run_one,
        Some(&Student),
    );
    assert_eq!(decisions.len(), 6);
    for d in &decisions {
        let even = d.subtask.as_bytes()[1] % 2 == 0;
        if even {
            assert!(d.keep && d.replay == Replay::Agrees, "{d:?}");
        } else {
            assert!(!d.keep && d.replay == Replay::Disagrees, "{d:?}");
        }
    }
}
