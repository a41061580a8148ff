//! The loopback partner: a hidden quota of 200 requests/s (a token bucket one second deep; a
//! 429 with `Retry-After: 1` beyond it), a token endpoint that counts what it issues, and, on
//! demand, one answer that throttles the whole account for 2 s.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::server::{Recorded, Reply, TestServer};

pub const QUOTA: f64 = 200.0;

#[derive(Default)]
pub struct Books {
    /// Answers to `/api`: when, and whether admitted.
    pub answers: Mutex<Vec<(Instant, bool)>>,
    pub tokens: Mutex<Vec<String>>,
    bucket: Mutex<Option<(f64, Instant)>>,
    /// Set: the next `/api` request is told the account is throttled for 2 s.
    pub throttle_next: AtomicBool,
    /// When that answer was sent.
    pub throttled_at: Mutex<Option<Instant>>,
    issued: AtomicUsize,
}

impl Books {
    pub fn reset(&self) {
        self.answers.lock().expect("lock").clear();
        self.tokens.lock().expect("lock").clear();
        *self.bucket.lock().expect("lock") = None;
        self.throttle_next.store(false, Ordering::SeqCst);
        *self.throttled_at.lock().expect("lock") = None;
    }

    /// Admitted and throttled answers in `[from, to)`.
    pub fn count(&self, from: Instant, to: Instant) -> (usize, usize) {
        let answers = self.answers.lock().expect("lock");
        let inside = answers.iter().filter(|(at, _)| *at >= from && *at < to);
        inside.fold((0, 0), |(ok, no), (_, admitted)| {
            if *admitted {
                (ok + 1, no)
            } else {
                (ok, no + 1)
            }
        })
    }

    fn admit(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().expect("lock");
        let (level, at) = bucket.get_or_insert((QUOTA, now));
        *level = (*level + (now - *at).as_secs_f64() * QUOTA).min(QUOTA);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            return true;
        }
        false
    }

    fn answer(&self, request: &Recorded) -> Reply {
        if request.path() == "/oauth/token" {
            let n = self.issued.fetch_add(1, Ordering::SeqCst);
            let token = format!("tok-{n}-{}", uuid::Uuid::new_v4().simple());
            self.tokens.lock().expect("lock").push(token.clone());
            let body =
                format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":600}}"#);
            return Reply::json(200, &body);
        }
        let now = Instant::now();
        if self.throttle_next.swap(false, Ordering::SeqCst) {
            *self.throttled_at.lock().expect("lock") = Some(now);
            self.answers.lock().expect("lock").push((now, false));
            return Reply::status(429)
                .header("Retry-After", "2")
                .header("RateLimit-Remaining", "0")
                .header("RateLimit-Reset", "2");
        }
        let admitted = self.admit(now);
        self.answers.lock().expect("lock").push((now, admitted));
        if admitted {
            Reply::ok("")
        } else {
            Reply::status(429).header("Retry-After", "1")
        }
    }
}

pub async fn start() -> (TestServer, Arc<Books>) {
    let books = Arc::new(Books::default());
    let handler = books.clone();
    let server = TestServer::start(move |request| handler.answer(request)).await;
    server.stop_recording();
    (server, books)
}
