//! The model: what a case draws (a profile, a call, a server script) and the strategies that
//! draw it.

use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
pub enum Credential {
    None,
    ApiKeyHeader,
    ApiKeyQuery,
    Bearer,
    OAuth2,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub max_attempts: u32,
    pub attempt_ms: u64,
    pub total_ms: u64,
    pub read_ms: u64,
    pub breaker: Option<(u32, u64)>,
    pub rate: Option<(f64, u32)>,
    pub auth: Credential,
    pub follow: bool,
    pub max_retry_after_ms: u64,
    pub auto_key: bool,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub key: bool,
    pub timeout_ms: Option<u64>,
    pub cancel_after_ms: Option<u64>,
}

/// One answer of the server, in the order requests arrive.
#[derive(Debug, Clone)]
pub enum Step {
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
pub enum Target {
    SameOrigin,
    OtherOrigin,
    /// A loopback port nobody listens on.
    DeadPort,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub profile: Profile,
    pub call: Call,
    pub script: Vec<Step>,
    /// What the other origin answers to a redirect.
    pub other: Step,
}

pub fn profile() -> impl Strategy<Value = Profile> {
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

pub fn call() -> impl Strategy<Value = Call> {
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

pub fn retry_after() -> impl Strategy<Value = Option<&'static str>> {
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

pub fn ratelimit() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![
        Just("\"d\";r=0;t=1"),
        Just("\"d\";r=0;t=99999999999999999999"),
        Just("\"d\";r=5;t=1"),
        Just("garbage;;=="),
    ])
}

pub fn step() -> impl Strategy<Value = Step> {
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

pub fn case() -> impl Strategy<Value = Case> {
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
