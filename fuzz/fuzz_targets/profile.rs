#![no_main]
//! Profile files: any text is a set of profiles or a config error, never a panic; every profile
//! it accepts builds a client (or fails with a config error, e.g. a missing secret), never a
//! panic; and a secret written inline in a profile is refused without ever being echoed,
//! whatever comes before it.

use libfuzzer_sys::fuzz_target;

const CANARY: &str = "sk-canary-8e41";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Keys and durations are echoed on purpose; only the canary's own place is secret.
    if text.contains(CANARY) {
        return;
    }
    match outbound::Profiles::from_toml_str(text) {
        Ok(profiles) => {
            for name in profiles.names() {
                let profile = profiles.get(name).expect("a listed profile");
                if let Err(err) = outbound::Client::from_profile(profile) {
                    assert!(err.is_config(), "{err}");
                }
            }
        }
        Err(err) => assert!(err.is_config(), "{err}"),
    }
    let text = format!(
        "{text}\n[zz]\nbase_url = \"https://a.example\"\n[zz.auth]\ntype = \"bearer\"\ntoken = \"{CANARY}\"\n"
    );
    match outbound::Profiles::from_toml_str(&text) {
        Ok(profiles) => {
            let shown = format!("{profiles:?}");
            assert!(!shown.contains(CANARY), "{shown}");
        }
        Err(err) => {
            assert!(err.is_config(), "{err}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(CANARY), "{shown}");
        }
    }
});
