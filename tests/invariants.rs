//! The guard of the core promise: a model-based test of the whole pipeline.
//!
//! Each case draws a server script (statuses, resets before and after the body, stalls,
//! trickles, redirect chains within and across origins, 401s, `Retry-After` and `RateLimit`
//! values including huge and garbage ones), a profile (attempts, timeouts including extremes,
//! breaker, quota, auth kind, redirects), a call (method, key, per-call timeout) and a point at
//! which the caller drops the call. After every case, checked against what the server counted:
//!
//! 1. a request that is not replay-safe reached the server at most once (401 resends aside:
//!    the server refused those before acting), and a keyed one carried one key throughout;
//! 2. nothing panicked, in the caller or in any task the library spawned;
//! 3. the call ended within its total deadline (or its cancellation) plus a slack;
//! 4. requests on the wire per call ≤ `max_attempts` + 1 (the one 401 resend);
//! 5. no canary secret in the error, any `Debug`, or any log line (text and JSON);
//! 6. no state is stuck: with the server healthy again (and `open_for` elapsed), a fresh call
//!    succeeds.
//!
//! CI runs a fixed seed and `DEFAULT_CASES` cases; `PROPTEST_CASES` raises the count and
//! `INVARIANTS_SEED` (a number) draws other cases. A shrunk failure becomes a named test below.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use outbound::{Client, ClientBuilder, SecretString};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use support::trace::Capture;
use support::{Reply, TestServer};
use tokio::time::Instant;

const DEFAULT_CASES: u32 = 48;
const SEED: u64 = 20_261_130;

const KEY: &str = "key-canary-31";
const BEARER: &str = "bearer-canary-31";
const CLIENT_SECRET: &str = "secret-canary-31";
/// Every secret above, and every token the server issues, contains this.
const CANARY: &str = "canary";

/// Slack on top of a deadline for scheduling, connection teardown and the test's own work.
const SLACK: Duration = Duration::from_millis(1500);

// ===== the model =====

#[derive(Debug, Clone, Copy)]
enum Credential {
    None,
    ApiKeyHeader,
    ApiKeyQuery,
    Bearer,
    OAuth2,
}

#[derive(Debug, Clone)]
struct Profile {
    max_attempts: u32,
    attempt_ms: u64,
    total_ms: u64,
    read_ms: u64,
    breaker: Option<(u32, u64)>,
    rate: Option<(f64, u32)>,
    auth: Credential,
    follow: bool,
    max_retry_after_ms: u64,
    auto_key: bool,
}

#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    key: bool,
    timeout_ms: Option<u64>,
    cancel_after_ms: Option<u64>,
}

/// One answer of the server, in the order requests arrive.
#[derive(Debug, Clone)]
enum Step {
    Status {
        code: u16,
        retry_after: Option<&'static str>,
        ratelimit: Option<&'static str>,
    },
    Reset,
    Truncated,
    Stall,
    StallBody,
    Trickle,
    Slow,
    Redirect {
        code: u16,
        to: Target,
    },
}

/// Where a redirect points.
#[derive(Debug, Clone, Copy)]
enum Target {
    SameOrigin,
    OtherOrigin,
    /// A loopback port nobody listens on.
    DeadPort,
}

#[derive(Debug, Clone)]
struct Case {
    profile: Profile,
    call: Call,
    script: Vec<Step>,
    /// What the other origin answers to a redirect.
    other: Step,
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        (1u32..=4, 100u64..1500, 200u64..1500),
        prop_oneof![Just(50u64), 100u64..1000, Just(3_600_000)],
        proptest::option::of((1u32..=4, 50u64..300)),
        proptest::option::of((5.0f64..100.0, 1u32..=3)),
        prop_oneof![
            Just(Credential::None),
            Just(Credential::ApiKeyHeader),
            Just(Credential::ApiKeyQuery),
            Just(Credential::Bearer),
            Just(Credential::OAuth2),
        ],
        (any::<bool>(), 50u64..600, any::<bool>()),
    )
        .prop_map(
            |(
                (max_attempts, attempt, total),
                read_ms,
                breaker,
                rate,
                auth,
                (follow, mra, auto_key),
            )| {
                Profile {
                    max_attempts,
                    attempt_ms: attempt.min(total),
                    total_ms: total,
                    read_ms,
                    breaker,
                    rate,
                    auth,
                    follow,
                    max_retry_after_ms: mra,
                    auto_key,
                }
            },
        )
}

fn call() -> impl Strategy<Value = Call> {
    (
        prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("POST"),
            Just("PATCH"),
            Just("PUT"),
            Just("DELETE"),
        ],
        any::<bool>(),
        proptest::option::of(100u64..1500),
        proptest::option::of(0u64..1200),
    )
        .prop_map(|(method, key, timeout_ms, cancel_after_ms)| Call {
            method,
            key,
            timeout_ms,
            cancel_after_ms,
        })
}

fn retry_after() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![
        Just("0"),
        Just("1"),
        Just("soon"),
        Just("-1"),
        Just("99999999999999999999999"),
        Just("Fri, 31 Dec 9999 23:59:59 GMT"),
        Just("Thu, 01 Jan 1970 00:00:00 GMT"),
    ])
}

fn ratelimit() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![
        Just("\"d\";r=0;t=1"),
        Just("\"d\";r=0;t=99999999999999999999"),
        Just("\"d\";r=5;t=1"),
        Just("garbage;;=="),
    ])
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            prop_oneof![
                Just(200u16), Just(201), Just(401), Just(408), Just(409), Just(429),
                Just(500), Just(502), Just(503), Just(504)
            ],
            retry_after(),
            ratelimit(),
        )
            .prop_map(|(code, retry_after, ratelimit)| Step::Status { code, retry_after, ratelimit }),
        1 => Just(Step::Reset),
        1 => Just(Step::Truncated),
        1 => Just(Step::Stall),
        1 => Just(Step::StallBody),
        1 => Just(Step::Trickle),
        1 => Just(Step::Slow),
        2 => (
            prop_oneof![Just(301u16), Just(302), Just(303), Just(307), Just(308)],
            prop_oneof![Just(Target::SameOrigin), Just(Target::OtherOrigin), Just(Target::DeadPort)],
        )
            .prop_map(|(code, to)| Step::Redirect { code, to }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        profile(),
        call(),
        proptest::collection::vec(step(), 1..6),
        step(),
    )
        .prop_map(|(profile, call, script, other)| Case {
            profile,
            call,
            script,
            // The other origin never redirects back: a loop is covered by the hop limit.
            other: match other {
                Step::Redirect { .. } => Step::Status {
                    code: 200,
                    retry_after: None,
                    ratelimit: None,
                },
                other => other,
            },
        })
}

// ===== the servers =====

/// What the main server saw of the call under test.
#[derive(Default)]
struct Seen {
    /// For each request to `/call`: whether it was answered 401, and its idempotency key.
    calls: Mutex<Vec<(bool, Option<String>)>>,
    tokens: AtomicUsize,
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

struct World {
    server: TestServer,
    other: TestServer,
    seen: Arc<Seen>,
    healthy: Arc<AtomicBool>,
}

async fn world(case: &Case) -> World {
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

fn client(case: &Case, world: &World) -> Client {
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

// ===== panics anywhere =====

/// Threads on which a panic happened, whoever caught it (tokio catches a spawned task's).
static PANICKED_ON: Mutex<Vec<std::thread::ThreadId>> = Mutex::new(Vec::new());

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED_ON
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(std::thread::current().id());
            previous(info);
        }));
    });
}

fn panicked_here() -> bool {
    let here = std::thread::current().id();
    PANICKED_ON
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(&here)
}

// ===== one case =====

fn is_replay_safe(case: &Case) -> bool {
    let idempotent = matches!(case.call.method, "GET" | "PUT" | "DELETE");
    idempotent || case.call.key || case.profile.auto_key
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    watch_panics();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = case.script.len().is_multiple_of(2);
    let (capture, guard) = if json {
        Capture::start_json()
    } else {
        Capture::start()
    };
    let result = runtime.block_on(run(case, &capture));
    drop(guard);
    drop(runtime);
    prop_assert!(!panicked_here(), "a panic (see the output above)");
    result
}

async fn run(case: &Case, capture: &Capture) -> Result<(), TestCaseError> {
    let world = world(case).await;
    let client = client(case, &world);
    let method = outbound::Method::from_bytes(case.call.method.as_bytes()).expect("method");
    let mut request = client.request(method, "/call").body("payload");
    if case.call.key {
        request = request.idempotency_key("key-of-this-call");
    }
    if let Some(ms) = case.call.timeout_ms {
        request = request.timeout(Duration::from_millis(ms));
    }
    let total = Duration::from_millis(case.call.timeout_ms.unwrap_or(case.profile.total_ms));
    let started = Instant::now();
    let call = async {
        match request.send().await {
            Ok(response) => {
                let shown = format!("{response:?} {}", response.url());
                let body = response.bytes().await.map(drop);
                (shown, body.err())
            }
            Err(err) => (String::new(), Some(err)),
        }
    };
    let cancelled_at = case.call.cancel_after_ms.map(Duration::from_millis);
    let outcome = match cancelled_at {
        Some(at) => tokio::time::timeout(at, call).await.ok(),
        None => Some(call.await),
    };
    let elapsed = started.elapsed();

    // 3. within the deadline (or the cancellation)
    let bound = cancelled_at.map_or(total, |at| at.min(total)) + SLACK;
    prop_assert!(elapsed <= bound, "took {elapsed:?}, bound {bound:?}");

    // 5. no canary in the error, a Debug or a log line
    if let Some((shown, err)) = &outcome {
        prop_assert!(!shown.contains(CANARY), "a secret in {shown}");
        if let Some(err) = err {
            let text = format!("{err} {err:?}");
            prop_assert!(!text.contains(CANARY), "a secret in {text}");
        }
    }

    // 1. and 4. against what the server counted
    let calls = world.seen.calls.lock().expect("lock").clone();
    let acted_on = calls.iter().filter(|(refused, _)| !refused).count();
    if !is_replay_safe(case) {
        prop_assert!(
            acted_on <= 1,
            "a keyless {} acted on {acted_on} times",
            case.call.method
        );
    }
    let limit = case.profile.max_attempts as usize + 1;
    prop_assert!(
        calls.len() <= limit,
        "{} requests, limit {limit}",
        calls.len()
    );
    if case.call.key
        || case.profile.auto_key && !matches!(case.call.method, "GET" | "PUT" | "DELETE")
    {
        let first = calls.first().and_then(|(_, key)| key.clone());
        prop_assert!(
            calls.iter().all(|(_, key)| *key == first && key.is_some()),
            "idempotency keys differ between attempts: {calls:?}"
        );
    }

    // 6. nothing stuck: healthy again, and every wait the profile allows has passed
    world.healthy.store(true, Ordering::SeqCst);
    let open_for = case.profile.breaker.map_or(0, |(_, open_for)| open_for);
    let settle = open_for.max(case.profile.max_retry_after_ms) + 50;
    tokio::time::sleep(Duration::from_millis(settle)).await;
    let recovered = client
        .get("/recover")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match recovered {
        Ok(response) => prop_assert_eq!(response.status().as_u16(), 200),
        Err(err) => prop_assert!(false, "the healthy server is unreachable: {err}"),
    }

    let logs = capture.text();
    prop_assert!(!logs.contains(CANARY), "a secret in the logs");
    drop(world.other);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn seed() -> u64 {
    std::env::var("INVARIANTS_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SEED)
}

#[test]
fn the_core_promise_holds_for_any_server_profile_call_and_cancellation() {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    if let Err(failure) = runner.run(&case(), |case| check(&case)) {
        panic!("{failure}");
    }
}

// ===== shrunk failures, kept as named regressions =====

fn quiet_profile(follow: bool, auth: Credential) -> Profile {
    Profile {
        max_attempts: 2,
        attempt_ms: 100,
        total_ms: 200,
        read_ms: 50,
        breaker: None,
        rate: None,
        auth,
        follow,
        max_retry_after_ms: 50,
        auto_key: false,
    }
}

fn plain_call(method: &'static str) -> Call {
    Call {
        method,
        key: false,
        timeout_ms: None,
        cancel_after_ms: None,
    }
}

const FINE: Step = Step::Status {
    code: 200,
    retry_after: None,
    ratelimit: None,
};

// Found by the model: a keyless POST answered with a redirect to a dead port was sent again,
// because the connect failure on the second hop was taken for "never sent".
#[test]
fn keyless_post_redirected_to_a_dead_port_is_acted_on_once() {
    let case = Case {
        profile: quiet_profile(true, Credential::None),
        call: plain_call("POST"),
        script: vec![Step::Redirect {
            code: 301,
            to: Target::DeadPort,
        }],
        other: FINE,
    };
    check(&case).expect("the invariants hold");
}

// Found by the model: a 3xx returned to the caller showed the credential a server wrote into its
// `Location` in the response's `Debug`.
#[test]
fn a_returned_redirect_shows_no_credential_from_its_location() {
    let case = Case {
        profile: quiet_profile(false, Credential::ApiKeyQuery),
        call: plain_call("GET"),
        script: vec![Step::Redirect {
            code: 301,
            to: Target::OtherOrigin,
        }],
        other: FINE,
    };
    check(&case).expect("the invariants hold");
}
