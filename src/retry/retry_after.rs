//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
//!
//! A pure function so a fuzzer can call it: any input gives `Some` or `None`, never a panic.
//! Garbage, negative numbers, fractions and absurd values (more than a day) are ignored.

use std::time::{Duration, SystemTime};

/// Longer than any server means seriously; such a value is treated as garbage.
const ABSURD: Duration = Duration::from_secs(24 * 60 * 60);

/// How long `value` asks to wait, measured from `now` for the date form. A date in the past
/// means "now" (zero).
pub(crate) fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let wait = if text.bytes().all(|b| b.is_ascii_digit()) {
        // Longer digit strings than u64 holds are absurd anyway.
        Duration::from_secs(text.parse::<u64>().ok()?)
    } else {
        let at = httpdate::parse_http_date(text).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    (wait <= ABSURD).then_some(wait)
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
    fn garbage_negative_fractional_and_absurd_values_are_ignored() {
        for value in [
            &b""[..],
            b"soon",
            b"-5",
            b"1.5",
            b"+3",
            b"99999999999999999999999",
            b"86401",
            b"Fri, 31 Dec 9999 23:59:59 GMT",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse(value, now()),
                None,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
