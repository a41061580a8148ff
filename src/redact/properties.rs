//! Properties of redaction, and body masking through the redactor.

use proptest::prelude::*;

use super::*;

const CANARY: &str = "pq-canary-1c9e";

fn sensitive_param() -> impl Strategy<Value = String> {
    prop::sample::select(SENSITIVE_QUERY_PARAMS.to_vec()).prop_flat_map(|name| {
        // Any capitalization of a built-in name.
        prop::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
            name.chars()
                .zip(upper)
                .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                .collect()
        })
    })
}

proptest! {
    #[test]
    fn a_canary_in_a_sensitive_position_never_survives(
        param in sensitive_param(),
        before in "[a-z0-9=&%._~]{0,20}",
        after in "[a-z0-9=&%._~]{0,20}",
        path in "[a-z0-9/._~]{0,20}",
    ) {
        let redactor = Redactor::default();
        for text in [
            format!("https://api.example/{path}?{before}&{param}={CANARY}{after}"),
            format!("https://user:{CANARY}@api.example/{path}?{before}"),
            format!("https://{CANARY}@api.example/{path}"),
            format!("https://api.example/{path}?{before}#{CANARY}{after}"),
        ] {
            if let Ok(url) = Url::parse(&text) {
                let shown = redactor.url(&url).to_string();
                prop_assert!(!shown.contains(CANARY), "{} -> {}", text, shown);
            }
        }
    }
}

#[test]
fn form_bodies_are_masked_like_queries_and_other_bodies_only_described() {
    let redactor = Redactor::new(&[], &[], &["pin".into()]);
    let form = redactor.body(
        Some("application/x-www-form-urlencoded"),
        b"grant_type=client_credentials&client_secret=s3cr3t",
        1024,
    );
    assert_eq!(form, "grant_type=client_credentials&client_secret=REDACTED");
    assert_eq!(
        redactor.body(Some("image/png"), b"\x89PNG", 1024),
        "<4 bytes of image/png>"
    );
    let json = redactor.body(Some("application/json"), br#"{"Pin":"0000"}"#, 1024);
    assert_eq!(json, r#"{"Pin":"************"}"#);
    let big = redactor.body(Some("application/json"), &[b' '; 2048], 1024);
    assert!(big.contains("over log.max_body_bytes"), "{big}");
}
