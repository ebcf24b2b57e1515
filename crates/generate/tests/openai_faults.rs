//! The OpenAI backend against a fault-injecting server on 127.0.0.1: every case ends
//! within its deadline with the behaviour documented in `openai.rs`.

mod common;

use common::{chat_ok, completion_ok, FaultServer, Reply};
use sdvp_generate::backend::{GenErrorKind, GenRequest, Generator, Sampling};
use sdvp_generate::openai::{Endpoint, OpenAiConfig, OpenAiGenerator};
use sdvp_generate::{ProgramStyle, Prompt, Task};
use std::time::{Duration, Instant};

fn config(base_url: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(base_url, "test-model");
    c.concurrency = 2;
    c.connect_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(2);
    c.max_retries = 2;
    c.backoff_base = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(50);
    c.total_timeout = Some(Duration::from_secs(10));
    c
}

fn request(i: usize) -> GenRequest {
    GenRequest {
        id: format!("q{i}"),
        question: "How many stars?".into(),
        task: Task::GqaWorld,
        style: ProgramStyle::Step,
        prompt: Prompt {
            system: "sys".into(),
            user: "user".into(),
        },
        sampling: Sampling::default(),
        sample_index: 0,
    }
}

/// Run one request; check it ended in time.
fn one(c: OpenAiConfig, limit: Duration) -> Result<String, sdvp_generate::GenError> {
    let g = OpenAiGenerator::new(c).unwrap();
    let start = Instant::now();
    let out = g.generate(&[request(0)]).remove(0);
    assert!(
        start.elapsed() < limit,
        "took {:?}, limit {limit:?}",
        start.elapsed()
    );
    out
}

#[test]
fn chat_success_sends_model_messages_and_key() {
    let s = FaultServer::start(|_, _| chat_ok("A=RESULT(var=IMAGE)"));
    let mut c = config(&s.base_url);
    c.api_key = Some("k".into());
    assert_eq!(
        one(c, Duration::from_secs(5)).unwrap(),
        "A=RESULT(var=IMAGE)"
    );
    let body: serde_json::Value = serde_json::from_str(&s.bodies()[0]).unwrap();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "user");
}

#[test]
fn completions_endpoint_uses_prompt_and_text() {
    let s = FaultServer::start(|_, _| completion_ok("X=LOC(image=IMAGE,object='a')"));
    let mut c = config(&s.base_url);
    c.endpoint = Endpoint::Completions;
    assert_eq!(
        one(c, Duration::from_secs(5)).unwrap(),
        "X=LOC(image=IMAGE,object='a')"
    );
    let body: serde_json::Value = serde_json::from_str(&s.bodies()[0]).unwrap();
    assert_eq!(body["prompt"], "sys\n\nuser");
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let s = FaultServer::start(|n, _| {
        if n < 2 {
            Reply::Status(500, vec![], "{}".into())
        } else {
            chat_ok("ok")
        }
    });
    assert_eq!(
        one(config(&s.base_url), Duration::from_secs(5)).unwrap(),
        "ok"
    );
    assert_eq!(s.requests(), 3);
}

#[test]
fn persistent_500_fails_the_request_after_bounded_retries() {
    let s = FaultServer::start(|_, _| Reply::Status(503, vec![], "overloaded".into()));
    let e = one(config(&s.base_url), Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Request);
    assert!(
        e.message.contains("503") && e.message.contains("3 tries"),
        "{}",
        e.message
    );
    assert_eq!(s.requests(), 3);
}

#[test]
fn retry_after_is_honoured() {
    let s = FaultServer::start(|n, _| {
        if n == 0 {
            Reply::Status(
                429,
                vec![("Retry-After".into(), "1".into())],
                "slow down".into(),
            )
        } else {
            chat_ok("ok")
        }
    });
    let start = Instant::now();
    assert_eq!(
        one(config(&s.base_url), Duration::from_secs(5)).unwrap(),
        "ok"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(s.requests(), 2);
}

#[test]
fn retry_after_beyond_the_deadline_stops_at_once() {
    let s = FaultServer::start(|_, _| {
        Reply::Status(429, vec![("Retry-After".into(), "120".into())], "{}".into())
    });
    let mut c = config(&s.base_url);
    c.total_timeout = Some(Duration::from_secs(3));
    let e = one(c, Duration::from_secs(2)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Deadline);
    assert!(e.message.contains("deadline"), "{}", e.message);
    assert_eq!(s.requests(), 1);
}

#[test]
fn hanging_server_times_out_per_request() {
    let s = FaultServer::start(|_, _| Reply::Hang(Duration::from_secs(5)));
    let mut c = config(&s.base_url);
    c.request_timeout = Duration::from_millis(300);
    c.max_retries = 1;
    let e = one(c, Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Request);
    assert_eq!(s.requests(), 2);
}

#[test]
fn hanging_server_cannot_outlast_the_total_deadline() {
    let s = FaultServer::start(|_, _| Reply::Hang(Duration::from_secs(10)));
    let mut c = config(&s.base_url);
    c.request_timeout = Duration::from_secs(30);
    c.total_timeout = Some(Duration::from_millis(600));
    let e = one(c, Duration::from_secs(3)).unwrap_err();
    assert!(e.stops_run(), "{e:?}");
}

#[test]
fn malformed_json_is_retried() {
    let s = FaultServer::start(|n, _| {
        if n == 0 {
            Reply::Json("{\"choices\": [".into())
        } else {
            chat_ok("fine")
        }
    });
    assert_eq!(
        one(config(&s.base_url), Duration::from_secs(5)).unwrap(),
        "fine"
    );
    assert_eq!(s.requests(), 2);
}

#[test]
fn truncated_bodies_fail_the_request_after_retries() {
    let s = FaultServer::start(|_, _| Reply::Truncated);
    let e = one(config(&s.base_url), Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Request, "{e:?}");
    assert_eq!(s.requests(), 3);
}

#[test]
fn html_instead_of_json_is_fatal() {
    let page = "<html>hello</html>";
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    );
    let s = FaultServer::start(move |_, _| Reply::Raw(raw.clone().into_bytes()));
    let e = one(config(&s.base_url), Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal);
    assert!(e.message.contains("not JSON"), "{}", e.message);
    assert_eq!(s.requests(), 1);
}

#[test]
fn json_of_the_wrong_shape_is_fatal() {
    let s = FaultServer::start(|_, _| Reply::Json("{\"result\": \"A=B()\"}".into()));
    let e = one(config(&s.base_url), Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal);
    assert!(e.message.contains("unexpected shape"), "{}", e.message);
}

#[test]
fn not_http_at_all_is_fatal() {
    let s = FaultServer::start(|_, _| Reply::Raw(b"SSH-2.0-OpenSSH\r\n".to_vec()));
    let e = one(config(&s.base_url), Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal, "{e:?}");
}

#[test]
fn refused_connection_fails_fast_with_a_clear_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = one(
        config(&format!("http://127.0.0.1:{port}/v1")),
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal);
    assert!(e.message.contains("cannot connect"), "{}", e.message);
}

#[test]
fn auth_and_not_found_are_fatal_and_stop_the_batch() {
    let s = FaultServer::start(|_, _| Reply::Status(401, vec![], "{\"error\":\"bad key\"}".into()));
    let e = one(config(&s.base_url), Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Fatal);
    assert!(e.message.contains("API key"), "{}", e.message);

    let s = FaultServer::start(|_, _| Reply::Status(404, vec![], "no such model".into()));
    let g = OpenAiGenerator::new(config(&s.base_url)).unwrap();
    let reqs: Vec<GenRequest> = (0..8).map(request).collect();
    let out = g.generate(&reqs);
    assert!(out
        .iter()
        .all(|r| r.as_ref().is_err_and(|e| e.kind == GenErrorKind::Fatal)));
    assert!(out[0].as_ref().unwrap_err().message.contains("--base-url"));
    // Only the requests already in flight reached the server.
    assert!(s.requests() <= 2, "{} requests", s.requests());
}

#[test]
fn bad_request_fails_only_that_request_without_retry() {
    let s = FaultServer::start(|_, _| Reply::Status(400, vec![], "prompt too long".into()));
    let e = one(config(&s.base_url), Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind, GenErrorKind::Request);
    assert_eq!(s.requests(), 1);
}

#[test]
fn invalid_base_url_is_rejected_up_front() {
    assert!(OpenAiGenerator::new(config("localhost:8000")).is_err());
}
