#![no_main]
//! Profile files: any text is a set of profiles or a config error, never a panic, and an error
//! never quotes a value that looks like an inline secret.

use libfuzzer_sys::fuzz_target;

const CANARY: &str = "sk-canary-8e41";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.replace('#', CANARY);
    match outbound::Profiles::from_toml_str(&text) {
        Ok(profiles) => {
            let _ = format!("{profiles:?}");
        }
        Err(err) => {
            assert!(err.is_config(), "{err}");
            let shown = format!("{err} {err:?}");
            // A quoted canary can only come from a duration or host the file spelled out, which
            // are echoed on purpose; a secret source never is.
            if shown.contains(CANARY) {
                assert!(
                    !text.contains(&format!("token = \"{CANARY}\""))
                        && !text.contains(&format!("key = \"{CANARY}\""))
                        && !text.contains(&format!("client_secret = \"{CANARY}\"")),
                    "{shown}"
                );
            }
        }
    }
});
