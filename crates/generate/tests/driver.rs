//! The generation driver end to end against a local fake server: caching across runs,
//! re-sampling of invalid programs, failures with raw text kept, fatal errors stopping.

mod common;

use common::{chat_ok, FaultServer, Reply};
use sdvp_generate::cache::Cache;
use sdvp_generate::extract::Checker;
use sdvp_generate::gold::GoldGenerator;
use sdvp_generate::openai::{OpenAiConfig, OpenAiGenerator};
use sdvp_generate::questions::Question;
use sdvp_generate::run::Driver;
use sdvp_generate::{GenErrorKind, Outcome, ProgramStyle, RunConfig, Task};
use sdvp_program::steps::Registry;
use std::time::Duration;

const PROGRAM: &str = "BOX0=LOC(image=IMAGE,object='star')\nANSWER0=COUNT(box=BOX0)\nFINAL_RESULT=RESULT(var=ANSWER0)";

fn questions(n: usize) -> Vec<Question> {
    (0..n)
        .map(|i| Question {
            id: format!("q{i}"),
            question: format!("How many stars are there in picture {i}?"),
            task: Some("gqa-world".into()),
            gold_step: Some(PROGRAM.into()),
            gold_python: None,
            semantic: None,
        })
        .collect()
}

fn generator(url: &str) -> OpenAiGenerator {
    let mut c = OpenAiConfig::new(url, "m");
    c.max_retries = 0;
    c.request_timeout = Duration::from_secs(3);
    c.total_timeout = Some(Duration::from_secs(20));
    OpenAiGenerator::new(c).unwrap()
}

fn run(
    g: &dyn sdvp_generate::Generator,
    cache: &Cache,
    config: RunConfig,
    qs: &[Question],
) -> (
    Result<sdvp_generate::RunStats, sdvp_generate::GenError>,
    Vec<Outcome>,
) {
    let registry = Registry::visual_reasoning(Default::default());
    let checker = Checker::new(Task::GqaWorld, ProgramStyle::Step, registry.clone(), None);
    let driver = Driver {
        generator: g,
        cache,
        checker: &checker,
        registry: &registry,
        config,
    };
    let mut out = Vec::new();
    let stats = driver.run(qs, |o| out.push(o));
    (stats, out)
}

#[test]
fn cache_avoids_repeat_requests_across_runs() {
    let s = FaultServer::start(|_, _| chat_ok(&format!("Here it is:\n```\n{PROGRAM}\n```")));
    let dir = tempfile::tempdir().unwrap();
    let qs = questions(3);
    let g = generator(&s.base_url);
    let (stats, out) = run(&g, &Cache::new(dir.path()), RunConfig::default(), &qs);
    let stats = stats.unwrap();
    assert_eq!(
        (stats.requests, stats.cache.misses, stats.cache.hits),
        (3, 3, 0)
    );
    assert!(out
        .iter()
        .all(|o| o.program.as_deref() == Some(PROGRAM) && o.failure.is_none()));
    assert_eq!(s.requests(), 3);

    // A second run (new cache object, same directory) sends nothing.
    let (stats, out2) = run(&g, &Cache::new(dir.path()), RunConfig::default(), &qs);
    let stats = stats.unwrap();
    assert_eq!((stats.requests, stats.cache.hits), (0, 3));
    assert_eq!(s.requests(), 3);
    assert!(out2.iter().all(|o| o.samples[0].cached));
    assert_eq!(
        out.iter().map(|o| &o.program).collect::<Vec<_>>(),
        out2.iter().map(|o| &o.program).collect::<Vec<_>>()
    );

    // A changed prompt (fewer examples) is a different key.
    let mut config = RunConfig::default();
    config.prompt.examples = 1;
    let (stats, _) = run(&g, &Cache::new(dir.path()), config, &qs[..1]);
    assert_eq!(stats.unwrap().requests, 1);
    // --no-cache asks again.
    let (stats, _) = run(&g, &Cache::disabled(), RunConfig::default(), &qs);
    assert_eq!(stats.unwrap().requests, 3);
    assert_eq!(s.requests(), 7);
}

#[test]
fn invalid_text_is_resampled_then_recorded_with_raw() {
    // First answer per question is prose; re-samples (temperature raised) get the program.
    let s = FaultServer::start(|_, body| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        if v["temperature"].as_f64().unwrap_or(0.0) == 0.0 {
            chat_ok("I am not sure what to do.")
        } else {
            chat_ok(PROGRAM)
        }
    });
    let g = generator(&s.base_url);
    let (stats, out) = run(&g, &Cache::disabled(), RunConfig::default(), &questions(2));
    assert_eq!(stats.unwrap().with_program, 2);
    for o in &out {
        assert_eq!(o.samples.len(), 2);
        assert!(!o.samples[0].valid && o.samples[1].valid);
        assert_eq!(o.samples[1].index, 1);
    }

    let s = FaultServer::start(|_, _| chat_ok("no idea"));
    let g = generator(&s.base_url);
    let config = RunConfig {
        max_resamples: 2,
        ..RunConfig::default()
    };
    let (stats, out) = run(&g, &Cache::disabled(), config, &questions(1));
    let stats = stats.unwrap();
    assert_eq!((stats.failures, stats.requests), (1, 3));
    assert_eq!(out[0].program, None);
    assert_eq!(out[0].raw.as_deref(), Some("no idea"));
    assert!(out[0]
        .failure
        .as_deref()
        .unwrap()
        .contains("no program found"));
    assert_eq!(s.requests(), 3);
}

#[test]
fn fatal_backend_error_stops_the_run() {
    let s = FaultServer::start(|_, _| Reply::Status(404, vec![], "unknown model".into()));
    let g = generator(&s.base_url);
    let (stats, out) = run(
        &g,
        &Cache::disabled(),
        RunConfig {
            chunk: 2,
            ..RunConfig::default()
        },
        &questions(6),
    );
    let e = stats.unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal);
    assert!(out.is_empty());
    assert!(s.requests() <= 2);
}

#[test]
fn gold_generator_is_not_cached_and_reports_missing_programs() {
    let mut qs = questions(2);
    qs[1].gold_step = None;
    let g = GoldGenerator::from_questions(&qs);
    let dir = tempfile::tempdir().unwrap();
    let (stats, out) = run(&g, &Cache::new(dir.path()), RunConfig::default(), &qs);
    let stats = stats.unwrap();
    assert_eq!(
        (
            stats.with_program,
            stats.failures,
            stats.cache.hits + stats.cache.misses
        ),
        (1, 1, 0)
    );
    assert_eq!(out[0].program.as_deref(), Some(PROGRAM));
    assert!(out[1]
        .failure
        .as_deref()
        .unwrap()
        .contains("no gold step program"));
    // Looking the gold program up again cannot change it: no re-samples.
    assert_eq!((out[1].samples.len(), stats.requests), (1, 2));
}
