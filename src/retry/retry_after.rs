//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
//!
//! A pure function so a fuzzer can call it: any input gives `Some` or `None`, never a panic.
//! Garbage, negative numbers and fractions are ignored. A very long wait (days, or more seconds
//! than a `u64` holds) is a long wait, not garbage: it saturates, and the caller caps it with
//! `retry.max_retry_after`, which ends the call and pauses the origin for that long.

use std::time::{Duration, SystemTime};

/// How long `value` asks to wait, measured from `now` for the date form. A date in the past
/// means "now" (zero).
pub(crate) fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds still mean "wait very long".
        return Some(
            text.parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn delay_seconds_are_parsed() {
        assert_eq!(parse(b"120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse(b" 0 ", now()), Some(Duration::ZERO));
    }

    #[test]
    fn http_date_is_measured_from_now() {
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:50:07 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        // The obsolete forms RFC 9110 still requires recipients to accept.
        assert_eq!(
            parse(b"Sunday, 06-Nov-94 08:50:07 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse(b"Sun Nov  6 08:50:07 1994", now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn waits_of_days_and_beyond_are_long_waits_not_garbage() {
        assert_eq!(parse(b"86401", now()), Some(Duration::from_secs(86_401)));
        assert_eq!(
            parse(b"99999999999999999999999", now()),
            Some(Duration::MAX)
        );
        let far = parse(b"Fri, 31 Dec 9999 23:59:59 GMT", now()).expect("a date");
        assert!(far > Duration::from_secs(200 * 365 * 86_400), "{far:?}");
    }

    #[test]
    fn garbage_negative_and_fractional_values_are_ignored() {
        for value in [&b""[..], b"soon", b"-5", b"1.5", b"+3", b"\xff\xfe"] {
            assert_eq!(
                parse(value, now()),
                None,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
