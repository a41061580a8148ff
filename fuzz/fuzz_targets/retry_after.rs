#![no_main]
//! `Retry-After` parsing: any bytes give a wait or nothing, never a panic; delay-seconds of any
//! length are that many seconds, saturating (a long wait is not garbage).

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let wait = outbound::internals::retry_after(data, now);
    let Ok(text) = std::str::from_utf8(data) else {
        assert_eq!(wait, None, "non-UTF-8 is garbage");
        return;
    };
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text.parse::<u64>().map_or(Duration::MAX, Duration::from_secs);
        assert_eq!(wait, Some(seconds), "{text:?}");
    }
});
