#![no_main]
//! Redaction: a canary placed in any sensitive position of a URL (userinfo, a sensitive query
//! parameter, the fragment) or in a sensitive header never survives.

use libfuzzer_sys::fuzz_target;
use outbound::{HeaderMap, HeaderName, HeaderValue};

const CANARY: &str = "cv-canary-3d7a";
const PARAMS: [&str; 6] = [
    "api_key",
    "token",
    "access_token",
    "client_secret",
    "sig",
    "X-Amz-Signature",
];
const HEADERS: [&str; 4] = [
    "authorization",
    "x-api-key",
    "cookie",
    "proxy-authorization",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let selector = data.first().copied().unwrap_or(0) as usize;
    let param = PARAMS[selector % PARAMS.len()];
    // Free text around the canary, in the path and in other parameters. It has no '-', so it
    // cannot spell the canary itself: what shows there is shown on purpose.
    let noise: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != '#' && *c != '-')
        .take(64)
        .collect();
    let candidates = [
        format!("https://u:{CANARY}@api.example/{noise}?a={noise}"),
        format!("https://{CANARY}@api.example/?x=1"),
        format!("https://api.example/p?{param}={CANARY}&q={noise}"),
        format!("https://api.example/p?q={noise}&{param}={CANARY}{noise}"),
        format!("https://api.example/p?{}={CANARY}", param.to_uppercase()),
        format!("https://api.example/p#{noise}{CANARY}"),
    ];
    for candidate in candidates {
        if let Ok(url) = url::Url::parse(&candidate) {
            let shown = outbound::internals::redact_url(&url);
            assert!(!shown.contains(CANARY), "{candidate} -> {shown}");
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("{noise}{CANARY}")) {
        headers.insert(
            HeaderName::from_static(HEADERS[selector % HEADERS.len()]),
            value,
        );
        let shown = outbound::internals::redact_headers(&headers);
        assert!(!shown.contains(CANARY), "{shown}");
    }
});
