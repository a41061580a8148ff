//! `[defaults]` under every profile, and environment overrides over both: the same validation,
//! and errors that say where a bad value came from.

use outbound::Profiles;

const FILE: &str = r#"
[defaults]
timeouts = { total = "20s", connect = "2s" }
retry = { max_attempts = 4 }

[crm]
base_url = "https://api.crm.example"
[crm.timeouts]
total = "5s"

[billing-eu]
base_url = "https://api.billing.example"
"#;

#[test]
fn defaults_apply_under_every_profile_and_a_profiles_own_keys_win() {
    let profiles = Profiles::from_toml_str(FILE).expect("valid");
    let crm = format!("{:?}", profiles.get("crm").expect("crm"));
    let billing = format!("{:?}", profiles.get("billing-eu").expect("billing"));
    // Tables merge key by key: crm keeps its own total and takes connect from [defaults].
    assert!(
        crm.contains("total: 5s") && crm.contains("connect: 2s"),
        "{crm}"
    );
    assert!(
        billing.contains("total: 20s") && billing.contains("max_attempts: 4"),
        "{billing}"
    );
    assert!(
        profiles.get("defaults").is_err(),
        "[defaults] is not a profile"
    );
}

#[test]
fn a_bad_value_from_defaults_says_so() {
    let err = Profiles::from_toml_str(
        "[defaults]\nretry = { max_attempts = 0 }\n[crm]\nbase_url = \"https://a.example\"\n",
    )
    .expect_err("0 attempts");
    let shown = err.to_string();
    assert!(
        shown.contains("profile \"crm\"") && shown.contains("retry.max_attempts"),
        "{shown}"
    );
    assert!(shown.contains("[defaults]"), "{shown}");
    let err = Profiles::from_toml_str(
        "[defaults]\nretry = { max_atempts = 3 }\n[crm]\nbase_url = \"https://a.example\"\n",
    )
    .expect_err("typo in defaults");
    assert!(err.to_string().contains("max_atempts"), "{err}");
}

#[test]
fn an_environment_variable_overrides_one_key_of_one_profile() {
    let profiles = Profiles::from_toml_str(FILE)
        .expect("valid")
        .with_env_from(
            "OUTBOUND",
            [
                ("OUTBOUND_CRM__TIMEOUTS__TOTAL", "3s"),
                ("OUTBOUND_BILLING_EU__RETRY__MAX_ATTEMPTS", "2"),
                ("OUTBOUND_BILLING_EU__RETRY__RETRY_ON_STATUS", "[503]"),
                ("UNRELATED_VARIABLE", "x"),
            ],
        )
        .expect("valid overrides");
    let crm = format!("{:?}", profiles.get("crm").expect("crm"));
    let billing = format!("{:?}", profiles.get("billing-eu").expect("billing"));
    assert!(
        crm.contains("total: 3s") && crm.contains("connect: 2s"),
        "{crm}"
    );
    assert!(
        billing.contains("max_attempts: 2") && billing.contains("retry_on_status: [503]"),
        "{billing}"
    );
}

#[test]
fn bad_overrides_are_refused_naming_the_variable() {
    for (variable, value, expected) in [
        (
            "OUTBOUND_CRM__TIMEOUTS__TOTAL",
            "5 s",
            "OUTBOUND_CRM__TIMEOUTS__TOTAL",
        ),
        (
            "OUTBOUND_CRM__TIMEOUTS__TOTL",
            "5s",
            "OUTBOUND_CRM__TIMEOUTS__TOTL",
        ),
        (
            "OUTBOUND_CRM__RETRY__MAX_ATTEMPTS",
            "many",
            "OUTBOUND_CRM__RETRY__MAX_ATTEMPTS",
        ),
        (
            "OUTBOUND_CRM__RETRY__MAX_ATTEMPTS",
            "0",
            "OUTBOUND_CRM__RETRY__MAX_ATTEMPTS",
        ),
        (
            "OUTBOUND_ERP__TIMEOUTS__TOTAL",
            "5s",
            "OUTBOUND_ERP__TIMEOUTS__TOTAL",
        ),
        ("OUTBOUND_CRM", "5s", "OUTBOUND_CRM"),
        (
            "OUTBOUND_CRM__BASE_URL__X",
            "5s",
            "OUTBOUND_CRM__BASE_URL__X",
        ),
    ] {
        let err = Profiles::from_toml_str(FILE)
            .expect("valid")
            .with_env_from("OUTBOUND", [(variable, value)])
            .expect_err(variable);
        assert!(err.is_config(), "{err}");
        assert!(
            err.to_string().contains(expected),
            "{variable}={value}: {err}"
        );
    }
}

#[test]
fn a_secret_cannot_be_given_inline_through_the_environment_either() {
    let file = "[crm]\nbase_url = \"https://a.example\"\n[crm.auth]\ntype = \"bearer\"\ntoken = { env = \"CRM_TOKEN\" }\n";
    let err = Profiles::from_toml_str(file)
        .expect("valid")
        .with_env_from(
            "OUTBOUND",
            [("OUTBOUND_CRM__AUTH__TOKEN", "sk_live_canary")],
        )
        .expect_err("inline secret");
    let shown = err.to_string();
    assert!(
        shown.contains("OUTBOUND_CRM__AUTH__TOKEN") && !shown.contains("sk_live_canary"),
        "{shown}"
    );
    // Pointing it at another variable is what the environment may do.
    Profiles::from_toml_str(file)
        .expect("valid")
        .with_env_from(
            "OUTBOUND",
            [("OUTBOUND_CRM__AUTH__TOKEN__ENV", "CRM_TOKEN_ROTATED")],
        )
        .expect("a secret source");
}
