//! A fault-injecting OpenAI-compatible server for tests: 127.0.0.1 only, one thread per
//! connection, every behaviour bounded in time, stopped when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with a JSON body.
    Json(String),
    /// Any status with extra headers and a body.
    Status(u16, Vec<(String, String)>, String),
    /// Accept, read the request, say nothing for this long, then close.
    Hang(Duration),
    /// Announce `Content-Length: 1000`, send a few bytes, close.
    Truncated,
    /// Bytes exactly as given (e.g. not HTTP at all).
    Raw(Vec<u8>),
}

pub fn chat_ok(text: &str) -> Reply {
    Reply::Json(
        serde_json::json!({"choices": [{"message": {"role": "assistant", "content": text}}]})
            .to_string(),
    )
}

pub fn completion_ok(text: &str) -> Reply {
    Reply::Json(serde_json::json!({"choices": [{"text": text}]}).to_string())
}

type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

pub struct FaultServer {
    pub base_url: String,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// `script(n, body)` decides the reply to the `n`-th request (0-based).
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let requests = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (r, b, s) = (requests.clone(), bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            // Bounded: a test server never outlives 60 s even if a test forgets to drop it.
            while !s.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, b, script, s) = (r.clone(), b.clone(), script.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, &r, &b, &*script, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            base_url,
            requests,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf[header_end..]).into_owned())
}

fn serve(
    mut stream: TcpStream,
    count: &AtomicUsize,
    bodies: &Mutex<Vec<String>>,
    script: &Script,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let Some(body) = read_request(&mut stream) else {
        return;
    };
    let n = count.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut b) = bodies.lock() {
        b.push(body.clone());
    }
    let write = |stream: &mut TcpStream,
                 code: u16,
                 headers: &[(String, String)],
                 ctype: &str,
                 body: &str| {
        let mut out = format!("HTTP/1.1 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(body);
        let _ = stream.write_all(out.as_bytes());
    };
    match script(n, &body) {
        Reply::Json(b) => write(&mut stream, 200, &[], "application/json", &b),
        Reply::Status(code, headers, b) => {
            write(&mut stream, code, &headers, "application/json", &b)
        }
        Reply::Hang(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Reply::Truncated => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"choices\": [");
        }
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
        }
    }
    let _ = stream.flush();
}
