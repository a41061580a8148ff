//! A fault-injecting HTTP/1.1 server on loopback, for what wiremock cannot do: reset a
//! connection, stall forever, trickle a body, send an endless body or a gzip bomb. It records
//! every request it reads (method, target, headers, body, arrival time).
//!
//! Shared by the integration tests and the tour (`examples/tour.rs` includes this file).

#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as read.
    pub body: Vec<u8>,
    /// When the request was read.
    pub at: Instant,
    /// Which connection (in accept order) carried it.
    pub connection: usize,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A normal response.
    Respond {
        /// The status code.
        status: u16,
        /// Headers, in order.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
        /// Pause between body bytes, if trickling.
        trickle: Option<Duration>,
        /// Pause before answering.
        delay: Option<Duration>,
    },
    /// Reset the connection (RST) without answering.
    Reset,
    /// Never answer; keep the connection open.
    Stall,
    /// Send the status line and headers, then never send the body.
    StallBody {
        /// The status code.
        status: u16,
    },
    /// A chunked body that never ends.
    Endless,
    /// Send the head and part of the body, then reset the connection.
    Truncated {
        /// The status code.
        status: u16,
    },
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            trickle: None,
            delay: None,
        }
    }

    /// A 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200).body(body)
    }

    /// `status` with a JSON `body` and its `Content-Type`.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body)
    }

    /// A redirect (`status`) to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).header("location", location)
    }

    /// `size` zero bytes, gzip-compressed (about a thousandth of `size` on the wire).
    pub fn gzip_bomb(size: usize) -> Reply {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len());
            encoder.write_all(&block[..n]).expect("compress");
            left -= n;
        }
        let body = encoder.finish().expect("compress");
        Reply::status(200)
            .header("content-encoding", "gzip")
            .body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Replaces the body.
    pub fn body(mut self, new: impl Into<Vec<u8>>) -> Reply {
        if let Reply::Respond { body, .. } = &mut self {
            *body = new.into();
        }
        self
    }

    /// Waits `pause` before answering.
    pub fn delay(mut self, pause: Duration) -> Reply {
        if let Reply::Respond { delay, .. } = &mut self {
            *delay = Some(pause);
        }
        self
    }

    /// Sends the body a byte at a time, `every` apart.
    pub fn trickle(mut self, every: Duration) -> Reply {
        if let Reply::Respond { trickle, .. } = &mut self {
            *trickle = Some(every);
        }
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

struct State {
    handler: Box<Handler>,
    requests: Mutex<Vec<Recorded>>,
    recording: AtomicBool,
    received: AtomicUsize,
    connections: AtomicUsize,
    panicked: AtomicBool,
}

/// A running server; stops when dropped. Its `Drop` fails the test if the handler panicked.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("received", &self.received())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server that answers every request with `handler`.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            received: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                // Without this, a response written in two parts waits for the client's delayed
                // ACK (Nagle), some 40 ms a request.
                let _ = stream.set_nodelay(true);
                let id = accept_state.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, id, accept_state.clone()));
            }
        });
        TestServer { addr, state, task }
    }

    /// Answers with `replies` in order; the last one repeats.
    pub async fn script(replies: Vec<Reply>) -> TestServer {
        assert!(!replies.is_empty(), "a script needs at least one reply");
        let next = AtomicUsize::new(0);
        TestServer::start(move |_| {
            let i = next.fetch_add(1, Ordering::SeqCst).min(replies.len() - 1);
            replies[i].clone()
        })
        .await
    }

    /// Answers every request with `reply`.
    pub async fn always(reply: Reply) -> TestServer {
        TestServer::start(move |_| reply.clone()).await
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.url("")
    }

    /// Every request read so far (while recording).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// How many requests it read.
    pub fn hits(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    /// How many recorded requests went to `path` (query aside).
    pub fn hits_on(&self, path: &str) -> usize {
        self.state
            .requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path() == path)
            .count()
    }

    /// How many requests arrived, recorded or not.
    pub fn received(&self) -> usize {
        self.state.received.load(Ordering::Relaxed)
    }

    /// Stops keeping requests, for long runs that would otherwise grow without bound.
    pub fn stop_recording(&self) {
        self.state.recording.store(false, Ordering::Relaxed);
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if self.state.panicked.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("the test server's handler panicked");
        }
    }
}

async fn serve(mut stream: TcpStream, connection: usize, state: Arc<State>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf, connection).await else {
            return;
        };
        state.received.fetch_add(1, Ordering::Relaxed);
        if state.recording.load(Ordering::Relaxed) {
            state.requests.lock().expect("lock").push(request.clone());
        }
        let reply = match std::panic::catch_unwind(AssertUnwindSafe(|| (state.handler)(&request))) {
            Ok(reply) => reply,
            Err(_) => {
                state.panicked.store(true, Ordering::SeqCst);
                Reply::status(500)
            }
        };
        match reply {
            Reply::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Reply::Stall => {
                std::future::pending::<()>().await;
            }
            Reply::StallBody { status } => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 100\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                std::future::pending::<()>().await;
            }
            Reply::Truncated { status } => {
                let partial = format!("HTTP/1.1 {status} X\r\ncontent-length: 100\r\n\r\npartial");
                let _ = stream.write_all(partial.as_bytes()).await;
                let _ = stream.flush().await;
                let _ = stream.set_zero_linger();
                return;
            }
            Reply::Endless => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Reply::Respond {
                status,
                headers,
                body,
                trickle,
                delay,
            } => {
                if let Some(pause) = delay {
                    tokio::time::sleep(pause).await;
                }
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                let mut has_length = false;
                for (name, value) in &headers {
                    has_length |= name.eq_ignore_ascii_case("content-length");
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                if !has_length {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let body = if request.method == "HEAD" {
                    &[][..]
                } else {
                    &body[..]
                };
                match trickle {
                    None => {
                        // One write: head and body in the same segment.
                        let mut whole = head.into_bytes();
                        whole.extend_from_slice(body);
                        if stream.write_all(&whole).await.is_err() {
                            return;
                        }
                    }
                    Some(every) => {
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        for byte in body {
                            tokio::time::sleep(every).await;
                            if stream.write_all(&[*byte]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reads one request (head and `Content-Length` or chunked body); `None` at EOF or on garbage.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    connection: usize,
) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 || !fill(stream, buf).await {
            return None;
        }
    };
    let at = Instant::now();
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = header("content-length") {
        let len: usize = len.parse().ok()?;
        while buf.len() < len {
            if !fill(stream, buf).await {
                return None;
            }
        }
        buf.drain(..len).collect()
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(pos) = find(buf, b"\r\n") {
                    break pos;
                }
                if !fill(stream, buf).await {
                    return None;
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                if !fill(stream, buf).await {
                    return None;
                }
            }
            body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break body;
            }
        }
    } else {
        Vec::new()
    };
    Some(Recorded {
        method,
        target,
        headers,
        body,
        at,
        connection,
    })
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
