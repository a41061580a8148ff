#![no_main]
//! Token responses: any status, content type and body give a token or a typed failure, and the
//! failure never quotes the body (a canary placed in it never comes out), except the OAuth
//! error response's own `error` and `error_description`, which are shown on purpose.

use libfuzzer_sys::fuzz_target;

const CANARY: &str = "tok-canary-51f2";

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let content_type = match data[2] % 4 {
        0 => Some("application/json"),
        1 => Some("text/html"),
        2 => Some("application/json; charset=utf-8"),
        _ => None,
    };
    // Put the canary where a token, a secret or an error text would be.
    let body = String::from_utf8_lossy(&data[3..]).replace('#', CANARY);
    match outbound::internals::token_response(status, content_type, body.as_bytes()) {
        Ok(_) => {}
        // An OAuth error response (RFC 6749 §5.2) is shown: its `error` and
        // `error_description` are the server's words for the on-call engineer.
        Err(message) if message.contains("token endpoint refused the request") => {}
        Err(message) => assert!(!message.contains(CANARY), "{message}"),
    }
});
