//! Rate-limit headers that say the quota is exhausted, and for how long.
//!
//! Understood, in this order:
//! - `RateLimit` from the IETF httpapi ratelimit-headers draft, a structured-field list whose
//!   items carry `r` (remaining) and `t` (seconds until reset): `"default";r=0;t=30`;
//! - the draft's earlier separate fields: `RateLimit-Remaining: 0` with `RateLimit-Reset: 30`;
//! - the common `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, which some APIs send as
//!   seconds and others (GitHub, Twitter) as a Unix timestamp.
//!
//! A pure function, so a fuzzer can call it: garbage is ignored, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};

// Parsed once: looking a header up by `&str` parses the name on every call.
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A reset value above this is a Unix timestamp, not a number of seconds.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// Whether any header this module reads is present. One pass over the names is cheaper than
/// looking each one up, and most responses carry none.
pub(crate) fn mentions_quota(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("ratelimit") || name.starts_with("x-ratelimit")
    })
}

/// How long until the quota resets, if the headers say it is exhausted now.
pub(crate) fn exhausted_for(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if !mentions_quota(headers) {
        return None;
    }
    if let Some(wait) = headers
        .get_all(&RATELIMIT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(structured_item)
        .max()
    {
        return Some(wait);
    }
    for (remaining, reset) in [
        (&RATELIMIT_REMAINING, &RATELIMIT_RESET),
        (&X_RATELIMIT_REMAINING, &X_RATELIMIT_RESET),
    ] {
        let remaining = number(headers, remaining);
        if remaining == Some(0)
            && let Some(reset) = number(headers, reset)
        {
            return reset_wait(reset, now);
        }
    }
    None
}

/// One list item `name;r=0;t=30`: the wait when `r` is 0.
fn structured_item(item: &str) -> Option<Duration> {
    let mut remaining = None;
    let mut reset = None;
    for param in item.split(';').skip(1) {
        let (key, value) = param.trim().split_once('=')?;
        let value = saturating_u64(value.trim())?;
        match key.trim() {
            "r" => remaining = Some(value),
            "t" => reset = Some(value),
            _ => {}
        }
    }
    let wait = Duration::from_secs(reset?);
    (remaining? == 0).then_some(wait)
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    saturating_u64(headers.get(name)?.to_str().ok()?.trim())
}

/// A decimal number; more digits than a `u64` holds saturate (a huge value is a long wait, not
/// garbage).
fn saturating_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// Far resets are long waits, not garbage: the caller caps them with `retry.max_retry_after`.
fn reset_wait(reset: u64, now: SystemTime) -> Option<Duration> {
    if reset <= EPOCH_THRESHOLD {
        return Some(Duration::from_secs(reset));
    }
    let wait = UNIX_EPOCH
        .checked_add(Duration::from_secs(reset))
        .map_or(Duration::MAX, |at| {
            at.duration_since(now).unwrap_or(Duration::ZERO)
        });
    Some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("value"));
        }
        map
    }

    #[test]
    fn every_header_read_counts_as_a_mention() {
        for name in [
            &RATELIMIT,
            &RATELIMIT_REMAINING,
            &RATELIMIT_RESET,
            &X_RATELIMIT_REMAINING,
            &X_RATELIMIT_RESET,
        ] {
            let mut map = headers(&[("content-type", "application/json")]);
            map.insert(name.clone(), "0".parse().expect("value"));
            assert!(mentions_quota(&map), "{name} not noticed");
        }
        assert!(!mentions_quota(&headers(&[("content-type", "text/plain")])));
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn structured_ratelimit_with_no_remaining_pauses() {
        let h = headers(&[("ratelimit", r#""default";r=0;t=30"#)]);
        assert_eq!(exhausted_for(&h, now()), Some(Duration::from_secs(30)));
        let h = headers(&[("ratelimit", r#""burst";r=5;t=1, "daily";r=0;t=600"#)]);
        assert_eq!(exhausted_for(&h, now()), Some(Duration::from_secs(600)));
        let h = headers(&[("ratelimit", r#""default";r=3;t=30"#)]);
        assert_eq!(exhausted_for(&h, now()), None);
    }

    #[test]
    fn separate_fields_and_x_prefixed_fields_pause() {
        let h = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "12")]);
        assert_eq!(exhausted_for(&h, now()), Some(Duration::from_secs(12)));
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000045"),
        ]);
        assert_eq!(exhausted_for(&h, now()), Some(Duration::from_secs(45)));
        let h = headers(&[("x-ratelimit-remaining", "7"), ("x-ratelimit-reset", "5")]);
        assert_eq!(exhausted_for(&h, now()), None);
    }

    #[test]
    fn garbage_is_ignored() {
        for pairs in [
            &[("ratelimit", "r=0;t=5")][..],
            &[("ratelimit", r#""d";r=zero;t=5"#)],
            &[("ratelimit", r#""d";r=0;t=-5"#)],
            &[("ratelimit", r#""d";r=0"#)],
            &[("x-ratelimit-remaining", "0")],
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "soon"),
            ],
        ] {
            assert_eq!(exhausted_for(&headers(pairs), now()), None, "{pairs:?}");
        }
    }

    #[test]
    fn far_resets_are_long_waits_not_garbage() {
        let day = Duration::from_secs(86_400);
        for pairs in [
            &[("ratelimit", r#""d";r=0;t=99999999999"#)][..],
            &[("ratelimit", r#""d";r=0;t=999999999999999999999999"#)],
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "18446744073709551615"),
            ],
            &[("ratelimit-remaining", "0"), ("ratelimit-reset", "172800")],
        ] {
            let wait = exhausted_for(&headers(pairs), now());
            assert!(wait.is_some_and(|w| w > day), "{pairs:?}: {wait:?}");
        }
    }
}
