//! `outbound check FILE [--secrets]`, run as the binary a CI job runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outbound::Profiles;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("outbound-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(args: &[&str], file: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outbound"));
    command.arg("check").arg(file).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run outbound");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).expect("utf-8"),
        String::from_utf8(stderr).expect("utf-8"),
    )
}

const CANARY: &str = "s3cret-canary-4f1d";

#[test]
fn a_valid_file_prints_effective_settings_with_secrets_as_sources() {
    let dir = Dir::new("valid");
    let file = dir.write(
        "integrations.toml",
        r#"
[defaults]
timeouts = { total = "20s" }

[crm]
base_url = "https://api.crm.example"
proxy = "http://user:hunter2@proxy.internal:3128"
[crm.auth]
type = "oauth2_client_credentials"
token_url = "https://auth.crm.example/token"
client_id = "orders"
client_secret = { env = "CRM_SECRET" }
extra_params = { client_assertion = "eyJ-assertion-canary" }
[crm.rate_limit]
adaptive = true

[billing]
base_url = "https://api.billing.example"
auth = { type = "bearer", token = { file = "/run/secrets/billing" } }
"#,
    );
    let (code, out, err) = check(&[], &file, &[("CRM_SECRET", CANARY)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    for shown in [
        "[crm]",
        "[billing]",
        // From [defaults], and the attempt timeout that follows from it.
        "total = \"20s\"",
        "attempt = \"20s\"",
        // A default no file mentions.
        "max_attempts = 3",
        "adaptive = true",
        "[crm.auth.client_secret]\nenv = \"CRM_SECRET\"",
        "[billing.auth.token]\nfile = \"/run/secrets/billing\"",
    ] {
        assert!(out.contains(shown), "{shown:?} missing from\n{out}");
    }
    assert!(
        !out.contains("hunter2"),
        "the proxy password is shown:\n{out}"
    );
    assert!(!out.contains(CANARY));
    // What it prints is itself a valid profile file with the same settings.
    let reparsed = Profiles::from_toml_str(&out.replace("REDACTED", "x")).expect("valid TOML");
    assert_eq!(reparsed.names().collect::<Vec<_>>(), ["billing", "crm"]);
}

#[test]
fn every_bad_profile_is_reported_with_the_librarys_message() {
    let dir = Dir::new("bad");
    let one = "[crm]\nbase_url = 'https://a.example'\n[crm.timeouts]\nconect = '1s'\n";
    let two = "[erp]\nbase_url = 'https://b.example'\n[erp.retry]\nmultiplier = 0.5\n";
    let good = "[ok]\nbase_url = 'https://c.example'\n";
    let file = dir.write("integrations.toml", &format!("{one}{two}{good}"));
    let (code, out, err) = check(&[], &file, &[]);
    assert_eq!(code, 1);
    for alone in [one, two] {
        let library = Profiles::from_toml_str(alone).expect_err("bad").to_string();
        assert!(err.contains(&library), "{library:?} missing from\n{err}");
    }
    assert!(
        out.contains("[ok]"),
        "the valid profile is still shown:\n{out}"
    );
}

#[test]
fn secrets_are_checked_only_when_asked_and_never_printed() {
    let dir = Dir::new("secrets");
    let key = dir.write("key", CANARY);
    let empty = dir.write("empty", "");
    let folder = dir.0.join("folder");
    std::fs::create_dir_all(&folder).expect("dir");
    let text = format!(
        r#"
[a]
base_url = "https://a.example"
auth = {{ type = "api_key", key = {{ file = "{key}" }} }}
[b]
base_url = "https://b.example"
auth = {{ type = "bearer", token = {{ env = "B_TOKEN_UNSET" }} }}
[c]
base_url = "https://c.example"
auth = {{ type = "bearer", token = {{ file = "{empty}" }} }}
[d]
base_url = "https://d.example"
auth = {{ type = "bearer", token = {{ file = "{folder}" }} }}
[f]
base_url = "https://f.example"
auth = {{ type = "bearer", token = {{ env = "F_TOKEN" }} }}
[e]
base_url = "https://e.example"
auth = {{ type = "bearer", token = {{ env = "E_TOKEN" }} }}
[e.tls]
client_cert_file = "{key}"
client_key_file = "{missing}"
"#,
        key = key.display(),
        empty = empty.display(),
        folder = folder.display(),
        missing = dir.0.join("missing.pem").display(),
    );
    let file = dir.write("integrations.toml", &text);

    // Without --secrets the file is valid: the secrets are where production has them.
    let env = [("E_TOKEN", CANARY), ("F_TOKEN", "line\nbreak")];
    let (code, _, err) = check(&[], &file, &env);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = check(&["--secrets"], &file, &env);
    assert_eq!(code, 1);
    for expected in [
        "profile \"b\": auth.token: environment variable B_TOKEN_UNSET is not set",
        "profile \"c\": auth.token: secret file",
        "profile \"d\": auth.token: cannot read secret file",
        "profile \"e\": tls.client_key_file: cannot read",
        "profile \"f\": auth.token: holds characters a header cannot carry",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from\n{err}");
    }
    assert!(!err.contains("profile \"a\""), "a's secret is fine:\n{err}");
    assert!(!out.contains(CANARY) && !err.contains(CANARY));
}

#[test]
fn usage_errors_exit_with_two_and_an_unreadable_file_with_one() {
    let missing = Path::new("/nonexistent/outbound/integrations.toml");
    let (code, _, err) = check(&[], missing, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read /nonexistent/outbound/integrations.toml"),
        "{err}"
    );

    let (code, _, err) = check(&["--secret"], missing, &[]);
    assert_eq!(code, 2, "{err}");
    let status = Command::new(env!("CARGO_BIN_EXE_outbound"))
        .output()
        .expect("run");
    assert_eq!(status.status.code(), Some(2));

    let help = Command::new(env!("CARGO_BIN_EXE_outbound"))
        .args(["check", "--help"])
        .output()
        .expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--secrets"));

    let dir = Dir::new("empty");
    let file = dir.write("integrations.toml", "# nothing yet\n");
    let (code, _, err) = check(&[], &file, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("defines no profile"), "{err}");

    let dir = Dir::new("syntax");
    let file = dir.write("integrations.toml", "[crm\nbase_url = 'x'\n");
    let (code, _, err) = check(&[], &file, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid TOML at line 1"), "{err}");
}
