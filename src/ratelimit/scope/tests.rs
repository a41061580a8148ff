use super::*;
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

fn throttled(answers: u32, throttled: u32) -> Counts {
    Counts {
        answers,
        throttled,
        silent: 0,
    }
}

#[test]
fn quota_headers_and_503s_pause_the_origin() {
    let quota = decide(
        StatusCode::OK,
        None,
        Some(SECOND),
        Counts::default(),
        || None,
    );
    assert_eq!(
        quota,
        Scope::Origin {
            wait: SECOND,
            reason: Reason::QuotaExhausted
        }
    );
    let unavailable = decide(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(SECOND),
        None,
        Counts::default(),
        || None,
    );
    assert!(matches!(
        unavailable,
        Scope::Origin {
            reason: Reason::Unavailable,
            ..
        }
    ));
}

#[test]
fn a_lone_429_delays_its_own_call_only() {
    let lone = decide(
        StatusCode::TOO_MANY_REQUESTS,
        Some(SECOND),
        None,
        throttled(50, 1),
        || None,
    );
    assert_eq!(lone, Scope::Call { wait: SECOND });
    let no_wait = decide(
        StatusCode::TOO_MANY_REQUESTS,
        None,
        None,
        throttled(50, 1),
        || Some(SECOND),
    );
    assert_eq!(
        no_wait,
        Scope::None,
        "a lone 429 without a wait changes nothing"
    );
}

#[test]
fn a_pattern_of_429s_without_a_wait_pauses_the_origin_on_the_clients_backoff() {
    let pattern = decide(
        StatusCode::TOO_MANY_REQUESTS,
        None,
        None,
        throttled(3, 3),
        || Some(SECOND),
    );
    assert_eq!(
        pattern,
        Scope::Origin {
            wait: SECOND,
            reason: Reason::Throttling
        }
    );
}

#[test]
fn the_headerless_backoff_doubles_once_per_pause_and_a_success_resets_it() {
    let start = Instant::now();
    let max = Duration::from_secs(5);
    let mut backoff = HeaderlessBackoff::new();
    assert_eq!(backoff.pause(start, max), Some(SECOND));
    // The rest of the burst, inside the pause: no new pause, no doubling.
    for ms in [1, 10, 999] {
        assert_eq!(backoff.pause(start + Duration::from_millis(ms), max), None);
    }
    let after = start + Duration::from_millis(1_001);
    assert_eq!(backoff.pause(after, max), Some(2 * SECOND));
    let after = after + 2 * SECOND;
    assert_eq!(backoff.pause(after, max), Some(4 * SECOND));
    let after = after + 4 * SECOND;
    assert_eq!(
        backoff.pause(after, max),
        Some(max),
        "capped at max_retry_after"
    );
    backoff.reset();
    assert_eq!(backoff.pause(after + max, max), Some(SECOND));
}

#[test]
fn a_pattern_of_429s_pauses_the_origin() {
    let pattern = decide(
        StatusCode::TOO_MANY_REQUESTS,
        Some(SECOND),
        None,
        throttled(4, 3),
        || None,
    );
    assert!(matches!(
        pattern,
        Scope::Origin {
            reason: Reason::Throttling,
            ..
        }
    ));
}

#[test]
fn every_answer_of_a_throttling_origin_forms_the_pattern_by_the_third() {
    let start = Instant::now();
    let mut recent = Recent::new(start);
    let counts: Vec<Counts> = (0..3)
        .map(|i| recent.record(start + Duration::from_millis(i), Answer::Throttled))
        .collect();
    assert!(!counts[1].is_pattern());
    assert!(counts[2].is_pattern());
}

#[test]
fn answers_older_than_the_window_do_not_count() {
    let start = Instant::now();
    let mut recent = Recent::new(start);
    for i in 0..2 {
        recent.record(start + Duration::from_millis(i), Answer::Throttled);
    }
    let later = recent.record(
        start + WINDOW + Duration::from_millis(200),
        Answer::Throttled,
    );
    assert_eq!(later, throttled(1, 1));
}

#[test]
fn only_429s_that_say_nothing_form_a_silent_pattern() {
    let start = Instant::now();
    let mut recent = Recent::new(start);
    let at = |i: u64| start + Duration::from_millis(i);
    // Four 429s of five answers, two of them silent: a pattern of 429s, not a silent one.
    let mut counts = Counts::default();
    for (i, answer) in [
        Answer::Admitted,
        Answer::Throttled,
        Answer::Throttled,
        Answer::Silent,
        Answer::Silent,
    ]
    .into_iter()
    .enumerate()
    {
        counts = recent.record(at(i as u64), answer);
    }
    assert!(counts.is_pattern(), "{counts:?}");
    assert!(!counts.is_silent_pattern(), "{counts:?}");
    // A third silent one is half of six: silent 429s as a pattern of their own.
    let counts = recent.record(at(5), Answer::Silent);
    assert_eq!(counts.silent, 3);
    assert!(counts.is_silent_pattern(), "{counts:?}");
}

/// Answers at `per_second`, each a 429 when its roll is under `share`: how many of them
/// saw a pattern once a whole window had passed.
fn patterns(rolls: &[f64], share: f64, per_second: u64) -> usize {
    let start = Instant::now();
    let mut recent = Recent::new(start);
    rolls
        .iter()
        .enumerate()
        .filter(|(i, roll)| {
            let at = start + Duration::from_nanos(*i as u64 * 1_000_000_000 / per_second);
            let answer = if **roll < share {
                Answer::Throttled
            } else {
                Answer::Admitted
            };
            let counts = recent.record(at, answer);
            *i as u64 >= per_second && counts.is_pattern()
        })
        .count()
}

proptest! {
    // A healthy origin answering a small share of 429s (up to a quarter) does not pause
    // everyone, however busy the client. (At a third and 120 answers a second, half of a
    // window's answers are 429s about once in 7 000 windows: a real tail, found once.)
    #[test]
    fn isolated_429s_do_not_form_a_pattern(
        rolls in proptest::collection::vec(0.0f64..1.0, 2_000..4_000),
        share in 0.0f64..0.25,
        per_second in 100u64..2_000,
    ) {
        let seen = patterns(&rolls, share, per_second);
        prop_assert!(seen * 1_000 <= rolls.len(), "{seen} of {}", rolls.len());
    }

    // An origin answering mostly 429s does, within a window.
    #[test]
    fn mostly_429s_form_a_pattern(
        rolls in proptest::collection::vec(0.0f64..1.0, 2_000..4_000),
        share in 0.7f64..1.0,
        per_second in 100u64..2_000,
    ) {
        let seen = patterns(&rolls, share, per_second);
        let judged = rolls.len().saturating_sub(per_second as usize);
        prop_assert!(seen * 100 >= judged * 99, "{seen} of {judged}");
    }
}
