//! Profiles: every section parses, and every mistake is a config error that names the profile
//! and the key.

use outbound::{Client, ErrorKind, Profiles};

const FULL: &str = r#"
[crm]
base_url = "https://api.crm.example/v1"
allowed_hosts = ["api.crm.example", "files.crm.example"]
allow_insecure_http = false
max_response_bytes = 1048576
follow_redirects = true
proxy = "none"

[crm.timeouts]
connect = "2s"
read = "10s"
attempt = "15s"
total = "45s"

[crm.retry]
max_attempts = 4
initial_backoff = "50ms"
max_backoff = "5s"
multiplier = 1.5
retry_on_status = [429, 503]
idempotency_header = "X-Idempotency-Key"
auto_idempotency_key = true
max_retry_after = "30s"
budget_percent = 10

[crm.circuit_breaker]
enabled = true
failure_ratio = 0.6
minimum_requests = 20
window = "1m"
open_for = "30s"
half_open_requests = 2

[crm.rate_limit]
requests_per_second = 50
burst = 100

[crm.auth]
type = "oauth2_client_credentials"
token_url = "https://auth.crm.example/oauth/token"
client_id = "orders-service"
client_secret = { env = "CRM_CLIENT_SECRET" }
scopes = ["contacts.read", "contacts.write"]
auth_method = "client_secret_post"
audience = "https://api.crm.example"
refresh_before_expiry = "30s"

[crm.tls]
min_version = "1.3"

[crm.redact]
headers = ["x-partner-signature"]
query_params = ["sig"]
json_fields = ["card_number"]

[partner]
base_url = "https://partner.example"
proxy = "http://proxy.internal:3128"

[partner.auth]
type = "api_key"
key = { file = "/run/secrets/partner" }
query_param = "api_key"

[static]
base_url = "https://static.example"

[static.auth]
type = "bearer"
token = { env = "STATIC_TOKEN" }
"#;

fn config_error(toml: &str) -> String {
    let err = Profiles::from_toml_str(toml).expect_err("profile must be refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    err.to_string()
}

#[test]
fn every_section_of_the_format_parses() {
    let profiles = Profiles::from_toml_str(FULL).expect("the full example is valid");
    assert_eq!(
        profiles.names().collect::<Vec<_>>(),
        ["crm", "partner", "static"]
    );
    let debug = format!("{:?}", profiles.get("crm").expect("crm"));
    for shown in [
        "max_attempts: 4",
        "failure_ratio: 0.6",
        "requests_per_second: Some(50.0)",
        "Tls13",
    ] {
        assert!(debug.contains(shown), "{shown} missing from {debug}");
    }
}

#[test]
fn unknown_key_in_any_section_is_an_error_naming_it() {
    for (section, key) in [
        ("", "base_ur"),
        ("timeouts", "conect"),
        ("retry", "max_attempt"),
        ("circuit_breaker", "enable"),
        ("tls", "min_versions"),
        ("redact", "header"),
    ] {
        let toml = if section.is_empty() {
            format!("[p]\nbase_url = 'https://a.example'\n{key} = 1\n")
        } else {
            format!("[p]\nbase_url = 'https://a.example'\n[p.{section}]\n{key} = 1\n")
        };
        let message = config_error(&toml);
        let path = if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        assert!(
            message.contains(&format!("profile \"p\": {path}: unknown field `{key}`")),
            "{message}"
        );
    }
}

#[test]
fn unknown_key_in_auth_and_rate_limit_is_refused() {
    let auth = config_error(
        "[p]\nbase_url = 'https://a.example'\n[p.auth]\ntype = 'bearer'\ntoken = { env = 'T' }\ntokn = 1\n",
    );
    assert!(
        auth.contains("profile \"p\": auth") && auth.contains("tokn"),
        "{auth}"
    );
    let limit = config_error(
        "[p]\nbase_url = 'https://a.example'\n[p.rate_limit]\nrequests_per_second = 5\nbrust = 1\n",
    );
    assert!(limit.contains("rate_limit.brust"), "{limit}");
}

#[test]
fn bad_duration_names_profile_key_and_value() {
    let message =
        config_error("[crm]\nbase_url = 'https://a.example'\n[crm.timeouts]\nconnect = '3 s'\n");
    assert!(
        message.contains(r#"profile "crm": timeouts.connect: invalid duration "3 s""#),
        "{message}"
    );
}

#[test]
fn http_base_url_needs_allow_insecure_http() {
    let message = config_error("[crm]\nbase_url = 'http://api.crm.example'\n");
    assert!(
        message.contains(
            r#"profile "crm": base_url: must be https unless allow_insecure_http = true"#
        ),
        "{message}"
    );
    Profiles::from_toml_str(
        "[crm]\nbase_url = 'http://127.0.0.1:8080'\nallow_insecure_http = true\n",
    )
    .expect("the opt-in allows http");
}

#[test]
fn base_url_with_credentials_is_refused_without_echoing_them() {
    let message = config_error("[crm]\nbase_url = 'https://orders:hunter2@api.crm.example'\n");
    assert!(
        message.contains("base_url: must not contain credentials"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn range_rules_name_the_key() {
    for (section, line, expected) in [
        (
            "retry",
            "multiplier = 0.5",
            "retry.multiplier: must be >= 1.0",
        ),
        (
            "retry",
            "max_attempts = 0",
            "retry.max_attempts: must be between 1 and 10",
        ),
        (
            "retry",
            "budget_percent = 250",
            "retry.budget_percent: must be between 0 and 100",
        ),
        (
            "retry",
            "retry_on_status = [503, 42]",
            "retry.retry_on_status: 42 is not an HTTP status",
        ),
        (
            "retry",
            "idempotency_header = 'bad header'",
            "retry.idempotency_header",
        ),
        (
            "retry",
            "initial_backoff = '2s'\nmax_backoff = '1s'",
            "retry.max_backoff: must not be less than",
        ),
        (
            "timeouts",
            "attempt = '90s'",
            "timeouts.attempt: must not be greater than timeouts.total",
        ),
        (
            "timeouts",
            "read = '0s'",
            "timeouts.read: must be greater than 0",
        ),
        (
            "circuit_breaker",
            "failure_ratio = 1.5",
            "circuit_breaker.failure_ratio",
        ),
        (
            "circuit_breaker",
            "half_open_requests = 0",
            "circuit_breaker.half_open_requests: must be at least 1",
        ),
        (
            "rate_limit",
            "requests_per_second = 0",
            "rate_limit.requests_per_second: must be between",
        ),
        (
            "rate_limit",
            "burst = 5",
            "rate_limit.burst: needs rate_limit.requests_per_second",
        ),
        (
            "rate_limit",
            "",
            "rate_limit: sets neither requests_per_second nor adaptive",
        ),
        ("rate_limit", "adaptive = 'yes'", "rate_limit.adaptive"),
        (
            "auth",
            "type = 'api_key'\nkey = { env = 'PARTNER_KEY' }\nheader = 'bad header'",
            "auth.header: \"bad header\" is not a valid header name",
        ),
        (
            "auth",
            "type = 'bearer'\ntoken = { env = 'PARTNER_TOKEN' }\nhosts = ['cdn.example']",
            "auth.hosts: \"cdn.example\" is not in allowed_hosts",
        ),
        ("tls", "min_version = '1.1'", "tls.min_version"),
        (
            "tls",
            "client_cert_file = 'c.pem'",
            "tls.client_key_file: is required",
        ),
    ] {
        let message = config_error(&format!(
            "[crm]\nbase_url = 'https://a.example'\n[crm.{section}]\n{line}\n"
        ));
        assert!(message.contains("profile \"crm\""), "{message}");
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message}"
        );
    }
}

#[test]
fn allowed_hosts_must_be_bare_hosts_including_the_base_host() {
    let message = config_error(
        "[p]\nbase_url = 'https://a.example'\nallowed_hosts = ['https://a.example']\n",
    );
    assert!(
        message.contains("allowed_hosts") && message.contains("bare host"),
        "{message}"
    );
    let message =
        config_error("[p]\nbase_url = 'https://a.example'\nallowed_hosts = ['b.example']\n");
    assert!(
        message.contains("must include base_url's host"),
        "{message}"
    );
}

#[test]
fn inline_secret_is_refused_without_echoing_it() {
    let message = config_error(
        "[p]\nbase_url = 'https://a.example'\n[p.auth]\ntype = 'bearer'\ntoken = 'tok-canary-42'\n",
    );
    assert!(
        message.contains("inline secret is not accepted"),
        "{message}"
    );
    assert!(!message.contains("tok-canary-42"), "{message}");
}

#[test]
fn proxy_must_be_system_none_or_a_url() {
    let message = config_error("[p]\nbase_url = 'https://a.example'\nproxy = 'sometimes'\n");
    assert!(
        message.contains("proxy: must be \"system\", \"none\""),
        "{message}"
    );
}

#[test]
fn top_level_setting_outside_a_profile_is_refused() {
    let message = config_error("base_url = 'https://a.example'\n");
    assert!(message.contains("base_url: is not a profile"), "{message}");
}

#[test]
fn syntax_error_gives_a_position_without_quoting_the_line() {
    let message =
        config_error("[p]\nbase_url = 'https://a.example'\nsecret-ish = \"tok-canary-42\n");
    assert!(message.contains("line 3"), "{message}");
    assert!(!message.contains("tok-canary-42"), "{message}");
}

#[test]
fn missing_env_var_fails_the_build_naming_the_variable() {
    let profiles = Profiles::from_toml_str(
        "[p]\nbase_url = 'https://a.example'\n[p.auth]\ntype = 'api_key'\nkey = { env = 'OUTBOUND_TEST_SURELY_UNSET' }\n",
    )
    .expect("parses: secrets are only read when a client is built");
    let err = Client::from_profile(profiles.get("p").expect("p")).expect_err("variable is unset");
    assert!(err.is_config());
    assert!(
        err.to_string().contains(
            r#"profile "p": auth.key: environment variable OUTBOUND_TEST_SURELY_UNSET is not set"#
        ),
        "{err}"
    );
}

#[test]
fn unreadable_secret_file_names_the_path() {
    let profiles = Profiles::from_toml_str(
        "[p]\nbase_url = 'https://a.example'\n[p.auth]\ntype = 'bearer'\ntoken = { file = '/nonexistent/outbound-token' }\n",
    )
    .expect("parses");
    let err = Client::from_profile(profiles.get("p").expect("p")).expect_err("no such file");
    assert!(
        err.to_string()
            .contains("auth.token: cannot read secret file /nonexistent/outbound-token"),
        "{err}"
    );
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let profiles = Profiles::from_toml_str(FULL).expect("valid");
    let err = profiles.get("billing").expect_err("no such profile");
    assert!(err.is_config());
    assert!(
        err.to_string().contains("known: crm, partner, static"),
        "{err}"
    );
}

#[test]
fn missing_profile_file_names_the_path() {
    let err = Profiles::from_toml_file("/nonexistent/integrations.toml").expect_err("no file");
    assert!(err.is_config());
    assert!(
        err.to_string().contains("/nonexistent/integrations.toml"),
        "{err}"
    );
}

#[test]
fn builder_errors_name_the_same_keys_as_profiles() {
    let err = Client::builder()
        .base_url("https://a.example")
        .attempt_timeout(std::time::Duration::from_secs(120))
        .build()
        .expect_err("attempt > total");
    assert!(
        err.to_string()
            .contains("timeouts.attempt: must not be greater than timeouts.total"),
        "{err}"
    );
    let err = Client::builder().build().expect_err("no base_url");
    assert!(err.to_string().contains("base_url: is required"), "{err}");
    let err = Client::builder()
        .base_url("not a url")
        .build()
        .expect_err("bad url");
    assert!(err.to_string().contains("base_url: invalid URL"), "{err}");
}

#[cfg(not(feature = "fleet"))]
#[test]
fn a_fleet_profile_is_refused_by_a_build_without_the_fleet_feature() {
    let err = outbound::Profiles::from_toml_str(
        "[crm]\nbase_url = \"https://api.crm.example\"\n[crm.fleet]\nredis_url = { env = \"R\" }\n",
    )
    .expect_err("one replica must not pace itself to the whole fleet's quota");
    assert!(err.is_config(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("fleet") && shown.contains("feature"),
        "{shown}"
    );
}

#[cfg(not(feature = "opentelemetry"))]
#[test]
fn trace_context_propagation_needs_the_opentelemetry_feature() {
    let err = outbound::Profiles::from_toml_str(
        "[crm]\nbase_url = \"https://api.crm.example\"\npropagate_trace_context = true\n",
    )
    .expect_err("no silent no-op");
    assert!(err.to_string().contains("propagate_trace_context"), "{err}");
}
