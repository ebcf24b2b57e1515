//! The `openai` backend: any server speaking the OpenAI chat or completions API
//! (OpenAI itself, vLLM, llama.cpp's server, TGI, Ollama…).
//!
//! Behaviour on trouble, chosen so a long run neither hangs nor silently degrades:
//!
//! | what happens | what this backend does |
//! | --- | --- |
//! | connection refused, unknown host, not HTTP at all | fatal at once (no retries): the server is dead or the URL wrong |
//! | 401 / 403 | fatal: the key is missing or refused |
//! | 404 | fatal: wrong base URL or model name |
//! | 200 that is not JSON (e.g. an HTML page) or JSON of another shape | fatal: not an OpenAI-compatible endpoint |
//! | timeout, dropped connection, truncated body, malformed JSON | retried with exponential backoff and jitter |
//! | 408, 409, 429, 5xx | retried; a 429's `Retry-After` is waited at least |
//! | other 4xx (e.g. 400 prompt too long) | this request fails, no retry |
//! | retries used up | this request fails (a recorded generation failure) |
//! | a wait or request would pass the run's total deadline | deadline error at once; the run stops |
//!
//! After a fatal error every request still queued fails with the same error without
//! touching the network. Jitter comes from a seeded generator, so retry timing is
//! reproducible.

use crate::backend::{GenError, GenRequest, Generator};
use sdvp_core::rng::SplitMix64;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which API the server is called through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST {base}/chat/completions` with system + user messages.
    Chat,
    /// `POST {base}/completions` with the prompt as one text.
    Completions,
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// E.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub endpoint: Endpoint,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// Limit for one request (connect, send, wait, read).
    pub request_timeout: Duration,
    /// Retries after the first try of a request.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Limit for everything this backend does from its creation on.
    pub total_timeout: Option<Duration>,
    pub jitter_seed: u64,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            endpoint: Endpoint::Chat,
            concurrency: 4,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            total_timeout: None,
            jitter_seed: 0,
        }
    }

    /// Read the key from the environment variable `name` (unset or empty: no key).
    pub fn with_key_from_env(mut self, name: &str) -> Self {
        self.api_key = std::env::var(name).ok().filter(|k| !k.trim().is_empty());
        self
    }
}

pub struct OpenAiGenerator {
    config: OpenAiConfig,
    agent: ureq::Agent,
    url: String,
    deadline: Option<Instant>,
    fatal: Mutex<Option<GenError>>,
}

/// What one attempt came to.
enum Attempt {
    Done(String),
    Retry {
        why: String,
        wait_at_least: Duration,
    },
    Fail(GenError),
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn stream_of(id: &str, sample: usize, attempt: u32) -> u64 {
    // FNV-1a over the id, mixed with sample and attempt: a stable per-retry jitter stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ ((sample as u64) << 32) ^ u64::from(attempt)
}

impl OpenAiGenerator {
    pub fn new(config: OpenAiConfig) -> Result<Self, GenError> {
        let base = config.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(GenError::fatal(format!(
                "base URL `{}` must start with http:// or https://",
                config.base_url
            )));
        }
        let url = match config.endpoint {
            Endpoint::Chat => format!("{base}/chat/completions"),
            Endpoint::Completions => format!("{base}/completions"),
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.request_timeout)
            .build();
        Ok(Self {
            deadline: config
                .total_timeout
                .and_then(|t| Instant::now().checked_add(t)),
            config,
            agent,
            url,
            fatal: Mutex::new(None),
        })
    }

    fn body(&self, r: &GenRequest) -> Value {
        let s = &r.sampling;
        let mut body = json!({
            "model": self.config.model,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "n": 1,
            "seed": s.seed.wrapping_add(r.sample_index as u64),
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        match self.config.endpoint {
            Endpoint::Chat => {
                body["messages"] = json!([
                    {"role": "system", "content": r.prompt.system},
                    {"role": "user", "content": r.prompt.user},
                ]);
            }
            Endpoint::Completions => body["prompt"] = json!(r.prompt.completion_text()),
        }
        body
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn attempt(&self, body: &str) -> Attempt {
        let mut timeout = self.config.request_timeout;
        if let Some(left) = self.remaining() {
            if left.is_zero() {
                return Attempt::Fail(GenError::deadline("the generation deadline has passed"));
            }
            timeout = timeout.min(left);
        }
        let mut req = self
            .agent
            .post(&self.url)
            .timeout(timeout)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let url = &self.url;
        match req.send_string(body) {
            Ok(resp) => {
                let content_type = resp.content_type().to_string();
                match resp.into_string() {
                    Ok(text) => self.parse_ok(&text, &content_type),
                    Err(e) => Attempt::Retry {
                        why: format!("reading the answer from {url} failed: {e}"),
                        wait_at_least: Duration::ZERO,
                    },
                }
            }
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64);
                let text = excerpt(&resp.into_string().unwrap_or_default());
                match code {
                    401 | 403 => Attempt::Fail(GenError::fatal(format!(
                        "{url} refused the request ({code}): {text} — is the API key (e.g. OPENAI_API_KEY) set and valid?"
                    ))),
                    404 => Attempt::Fail(GenError::fatal(format!(
                        "{url} answered 404: {text} — check --base-url (usually ends in /v1) and --model"
                    ))),
                    408 | 409 | 429 | 500..=599 => Attempt::Retry {
                        why: format!("{url} answered {code}: {text}"),
                        wait_at_least: retry_after.unwrap_or(Duration::ZERO),
                    },
                    _ => Attempt::Fail(GenError::request(format!("{url} answered {code}: {text}"))),
                }
            }
            Err(ureq::Error::Transport(t)) => match t.kind() {
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => {
                    Attempt::Fail(GenError::fatal(format!(
                        "cannot connect to {url}: {t} — is the server running and --base-url right?"
                    )))
                }
                ureq::ErrorKind::BadStatus
                | ureq::ErrorKind::BadHeader
                | ureq::ErrorKind::InvalidUrl
                | ureq::ErrorKind::UnknownScheme => Attempt::Fail(GenError::fatal(format!(
                    "{url} does not speak HTTP as expected: {t}"
                ))),
                _ => Attempt::Retry {
                    why: format!("request to {url} failed: {t}"),
                    wait_at_least: Duration::ZERO,
                },
            },
        }
    }

    fn parse_ok(&self, text: &str, content_type: &str) -> Attempt {
        let url = &self.url;
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) if content_type.contains("json") => {
                return Attempt::Retry {
                    why: format!("{url} sent malformed JSON ({e})"),
                    wait_at_least: Duration::ZERO,
                }
            }
            Err(_) => {
                return Attempt::Fail(GenError::fatal(format!(
                    "{url} answered `{content_type}`, not JSON: {} — not an OpenAI-compatible endpoint?",
                    excerpt(text)
                )))
            }
        };
        let choice = value.get("choices").and_then(|c| c.get(0));
        let content = match self.config.endpoint {
            Endpoint::Chat => choice
                .and_then(|c| c.get("message"))
                .map(|m| m.get("content")),
            Endpoint::Completions => choice.map(|c| c.get("text")),
        };
        match content {
            Some(Some(Value::String(s))) => Attempt::Done(s.clone()),
            Some(Some(Value::Null)) | Some(None) => Attempt::Fail(GenError::request(format!(
                "{url} returned a choice without text: {}",
                excerpt(text)
            ))),
            _ => Attempt::Fail(GenError::fatal(format!(
                "{url} answered JSON of an unexpected shape (no choices[0] with text): {} — not an OpenAI-compatible {} endpoint?",
                excerpt(text),
                match self.config.endpoint {
                    Endpoint::Chat => "chat",
                    Endpoint::Completions => "completions",
                }
            ))),
        }
    }

    fn one(&self, r: &GenRequest) -> Result<String, GenError> {
        let body = self.body(r).to_string();
        let mut last = String::new();
        for attempt in 0..=self.config.max_retries {
            if let Some(e) = self.fatal.lock().map(|f| f.clone()).unwrap_or(None) {
                return Err(e);
            }
            let wait_at_least = match self.attempt(&body) {
                Attempt::Done(text) => return Ok(text),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { why, wait_at_least } => {
                    last = why;
                    wait_at_least
                }
            };
            if attempt == self.config.max_retries {
                break;
            }
            let exp = self
                .config
                .backoff_base
                .saturating_mul(1u32 << attempt.min(16))
                .min(self.config.backoff_max);
            let jitter = SplitMix64::derive(
                self.config.jitter_seed,
                stream_of(&r.id, r.sample_index, attempt),
            )
            .next_f64();
            let wait = exp.mul_f64(0.5 + 0.5 * jitter).max(wait_at_least);
            if self.remaining().is_some_and(|left| wait >= left) {
                return Err(GenError::deadline(format!(
                    "giving up on {}: the next retry (in {:.1}s) would pass the generation deadline; last error: {last}",
                    r.id,
                    wait.as_secs_f64()
                )));
            }
            std::thread::sleep(wait);
        }
        Err(GenError::request(format!(
            "{} failed after {} tries: {last}",
            r.id,
            self.config.max_retries + 1
        )))
    }
}

impl Generator for OpenAiGenerator {
    fn backend(&self) -> String {
        match self.config.endpoint {
            Endpoint::Chat => "openai/chat".into(),
            Endpoint::Completions => "openai/completions".into(),
        }
    }

    fn model(&self) -> String {
        self.config.model.clone()
    }

    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<String, GenError>> {
        let results: Mutex<Vec<Option<Result<String, GenError>>>> =
            Mutex::new(vec![None; requests.len()]);
        let next = AtomicUsize::new(0);
        let workers = self.config.concurrency.clamp(1, requests.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = requests.get(i) else { break };
                    let out = self.one(r);
                    if let Err(e) = &out {
                        if e.stops_run() {
                            if let Ok(mut f) = self.fatal.lock() {
                                f.get_or_insert_with(|| e.clone());
                            }
                        }
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(out);
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GenError::request("request was not run"))))
            .collect()
    }
}
