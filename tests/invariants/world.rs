//! The servers a case runs against: the main one plays the script and counts what it saw, the
//! other origin answers redirects; and the client a case's profile describes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outbound::{Client, ClientBuilder, SecretString};

use crate::model::{Case, Credential, Step, Target};
use crate::support::{self, Reply, TestServer};
use crate::{BEARER, CLIENT_SECRET, KEY};

/// What the main server saw of the call under test.
#[derive(Default)]
pub struct Seen {
    /// For each request to `/call`: whether it was answered 401, and its idempotency key.
    pub calls: Mutex<Vec<(bool, Option<String>)>>,
    pub tokens: AtomicUsize,
}

fn reply(step: &Step, other_origin: &str) -> Reply {
    match step {
        Step::Status {
            code,
            retry_after,
            ratelimit,
        } => {
            let mut reply = Reply::status(*code).body("body");
            if let Some(value) = retry_after {
                reply = reply.header("retry-after", value);
            }
            if let Some(value) = ratelimit {
                reply = reply.header("ratelimit", value);
            }
            reply
        }
        Step::Reset => Reply::Reset,
        Step::Truncated => Reply::Truncated { status: 200 },
        Step::Stall => Reply::Stall,
        Step::StallBody => Reply::StallBody { status: 200 },
        Step::Trickle => Reply::ok("trickled-body").trickle(Duration::from_millis(15)),
        Step::Slow => Reply::ok("slow").delay(Duration::from_millis(300)),
        Step::Redirect { code, to } => {
            let location = match to {
                Target::SameOrigin => "/hop".to_owned(),
                Target::OtherOrigin => format!("{other_origin}/landing?api_key={KEY}&page=1"),
                Target::DeadPort => format!("http://127.0.0.1:{}/gone", dead_port()),
            };
            Reply::redirect(*code, &location)
        }
    }
}

fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn is_401(step: &Step) -> bool {
    matches!(step, Step::Status { code: 401, .. })
}

pub struct World {
    pub server: TestServer,
    pub other: TestServer,
    pub seen: Arc<Seen>,
    pub healthy: Arc<AtomicBool>,
}

pub async fn world(case: &Case) -> World {
    let other_step = case.other.clone();
    let healthy = Arc::new(AtomicBool::new(false));
    let other = TestServer::start({
        let healthy = healthy.clone();
        move |_| {
            if healthy.load(Ordering::SeqCst) {
                Reply::ok("fine")
            } else {
                reply(&other_step, "")
            }
        }
    })
    .await;
    let other_origin = other.origin();
    let seen = Arc::new(Seen::default());
    let script = Arc::new(Mutex::new(case.script.clone().into_iter()));
    let server = TestServer::start({
        let (seen, healthy) = (seen.clone(), healthy.clone());
        move |request| {
            if request.path() == "/oauth/token" {
                let n = seen.tokens.fetch_add(1, Ordering::SeqCst) + 1;
                return Reply::json(
                    200,
                    &format!(
                        r#"{{"access_token":"tok-canary-{n}","token_type":"Bearer","expires_in":600}}"#
                    ),
                );
            }
            let step = if healthy.load(Ordering::SeqCst) {
                None
            } else {
                script.lock().expect("lock").next()
            };
            if request.path() == "/call" {
                let key = request.header("idempotency-key").map(str::to_owned);
                let refused = step.as_ref().is_some_and(is_401);
                seen.calls.lock().expect("lock").push((refused, key));
            }
            step.map_or_else(|| Reply::ok("fine"), |step| reply(&step, &other_origin))
        }
    })
    .await;
    World {
        server,
        other,
        seen,
        healthy,
    }
}

pub fn client(case: &Case, world: &World) -> Client {
    let p = &case.profile;
    let ms = Duration::from_millis;
    let mut builder: ClientBuilder = support::client_for(&world.server)
        .max_attempts(p.max_attempts)
        .initial_backoff(ms(10))
        .max_backoff(ms(100))
        .attempt_timeout(ms(p.attempt_ms))
        .total_timeout(ms(p.total_ms))
        .read_timeout(ms(p.read_ms))
        .follow_redirects(p.follow)
        .max_retry_after(ms(p.max_retry_after_ms))
        .auto_idempotency_key(p.auto_key)
        .circuit_breaker_enabled(p.breaker.is_some());
    if let Some((minimum, open_for)) = p.breaker {
        builder = builder
            .circuit_breaker_minimum_requests(minimum)
            .circuit_breaker_open_for(ms(open_for));
    }
    if let Some((rate, burst)) = p.rate {
        builder = builder.rate_limit(rate, Some(burst));
    }
    builder = match p.auth {
        Credential::None => builder,
        Credential::ApiKeyHeader => builder.api_key("x-api-key", SecretString::from(KEY)),
        Credential::ApiKeyQuery => builder.api_key_query_param("api_key", SecretString::from(KEY)),
        Credential::Bearer => builder.bearer_token(SecretString::from(BEARER)),
        Credential::OAuth2 => builder.oauth2_client_credentials(
            world.server.url("/oauth/token"),
            "orders",
            SecretString::from(CLIENT_SECRET),
        ),
    };
    builder.build().expect("every drawn profile is valid")
}
