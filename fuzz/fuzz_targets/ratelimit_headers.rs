#![no_main]
//! Rate-limit headers: any values give a pause or none, never a panic; a pause only when a
//! header says nothing remains (a `0`), however far away the reset.

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
    if outbound::internals::ratelimit_pause(&headers, now).is_some() {
        let says_exhausted = ["ratelimit", "ratelimit-remaining", "x-ratelimit-remaining"]
            .iter()
            .flat_map(|name| headers.get_all(*name))
            .any(|value| value.as_bytes().contains(&b'0'));
        assert!(says_exhausted, "a pause without a remaining of 0: {headers:?}");
    }
});
