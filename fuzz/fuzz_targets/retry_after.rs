#![no_main]
//! `Retry-After` parsing: any bytes give a wait within a day, or nothing; never a panic.

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(wait) = outbound::internals::retry_after(data, now) {
        assert!(wait <= Duration::from_secs(24 * 60 * 60), "{wait:?}");
    }
});
