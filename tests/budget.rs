//! The spending ceiling: a runaway loop stops at `[budget] max_calls`, retries count, and a
//! ceiling that could not work is refused at load.

mod support;

use std::time::Duration;

use support::{Reply, TestServer, client_for};

#[tokio::test]
async fn a_runaway_loop_is_stopped_at_the_ceiling_with_nothing_sent_past_it() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = client_for(&server)
        .budget(25, Duration::from_secs(86_400))
        .build()
        .expect("client");
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..100 {
        match client.get("/v1/paid-lookup").send().await {
            Ok(_) => ok += 1,
            Err(err) => {
                assert!(err.is_budget_exhausted(), "{err}");
                assert!(
                    err.to_string().contains("spending ceiling reached"),
                    "{err}"
                );
                let wait = err.retry_after().expect("when the period ends");
                assert!(wait <= Duration::from_secs(86_400), "{wait:?}");
                assert_eq!(err.attempts(), 0, "nothing sent");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (25, 75));
    assert_eq!(server.hits(), 25);
    assert_eq!(client.budget_remaining(), Some(0));
}

#[tokio::test]
async fn retries_count_against_the_ceiling() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = client_for(&server)
        .initial_backoff(Duration::from_millis(1))
        .budget(4, Duration::from_secs(86_400))
        .build()
        .expect("client");
    let response = client.get("/").send().await.expect("answered");
    assert_eq!(response.attempts(), 3);
    assert_eq!(client.budget_remaining(), Some(1));
    // One request left: the next call's retry is refused by the ceiling, not sent.
    let err = client.get("/").send().await.expect_err("ceiling");
    assert!(err.is_budget_exhausted(), "{err}");
    assert_eq!(
        err.status().map(|s| s.as_u16()),
        Some(503),
        "the status it last saw"
    );
    assert_eq!(server.hits(), 4);
}

#[test]
fn a_ceiling_that_cannot_work_is_refused_naming_the_key() {
    for (budget, key) in [
        ("max_calls = 0\nper = \"1d\"", "budget.max_calls"),
        ("max_calls = 10\nper = \"1dd\"", "per"),
        ("max_calls = 10\nper = \"0s\"", "budget.per"),
        ("max_calls = 10\nper = \"400d\"", "budget.per"),
        ("max_calls = 10\nper = \"1d\"\nmax_cals = 5", "max_cals"),
        ("max_calls = -1\nper = \"1d\"", "max_calls"),
    ] {
        let text = format!("[p]\nbase_url = \"https://a.example\"\n[p.budget]\n{budget}\n");
        let err = outbound::Profiles::from_toml_str(&text).expect_err(budget);
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains(key), "{budget}: {err}");
    }
}
