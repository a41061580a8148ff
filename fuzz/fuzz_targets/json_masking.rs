#![no_main]
//! JSON masking: any body is masked or described, never a panic, and a sensitive field's value
//! never comes out whole.

use libfuzzer_sys::fuzz_target;

const CANARY: &str = "pw-canary-77c1a0";

fuzz_target!(|data: &[u8]| {
    // Arbitrary JSON, as is.
    let _ = outbound::internals::mask_json_body(data);
    // The same bytes around a sensitive field holding the canary.
    let noise: String = String::from_utf8_lossy(data)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .take(32)
        .collect();
    let body = format!(
        r#"{{"{noise}":[{{"password":"{CANARY}"}},{{"n":{{"Access-Token":"{CANARY}","x":"{noise}"}}}}]}}"#
    );
    let shown = outbound::internals::mask_json_body(body.as_bytes());
    assert!(!shown.contains(CANARY), "{shown}");
});
