#![no_main]
//! Rate-limit headers: any values give a pause within a day, or none; never a panic.

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use outbound::{HeaderMap, HeaderValue};

const NAMES: [&str; 5] = [
    "ratelimit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, part) in data.split(|b| *b == b'\n').enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(NAMES[i % NAMES.len()], value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(wait) = outbound::internals::ratelimit_pause(&headers, now) {
        assert!(wait <= Duration::from_secs(24 * 60 * 60), "{wait:?}");
    }
});
