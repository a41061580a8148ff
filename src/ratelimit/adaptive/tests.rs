use super::*;

fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

/// Sends `rate` answers a second for `ms` from `from`, all fine.
fn steady(a: &Adaptive, start: Instant, from: u64, ms: u64, rate: u64) {
    let every = 1000 / rate;
    for t in (from..from + ms).step_by(every as usize) {
        a.observe(at(start, t), at(start, t), false);
    }
}

#[test]
fn nothing_is_paced_before_the_first_throttle() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 2000, 100);
    assert_eq!(a.rate(), None);
    for t in 0..1000 {
        assert!(a.take(at(start, 2000 + t / 100)).map(Slot::keep).is_ok());
    }
}

#[test]
fn a_throttle_cuts_the_sending_rate_by_beta() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 2000, 200);
    let rate = a
        .observe(at(start, 2000), at(start, 2000), true)
        .expect("cut");
    assert!((rate - 140.0).abs() < 15.0, "rate {rate}");
    // The bucket now refuses a burst beyond its tenth of a second.
    let now = at(start, 2100);
    let taken = (0..100)
        .filter(|_| a.take(now).map(Slot::keep).is_ok())
        .count();
    assert!((13..=15).contains(&taken), "took {taken}");
    assert!(a.take(now).err().expect("empty") <= Duration::from_millis(8));
}

#[test]
fn throttles_to_requests_sent_before_a_cut_do_not_cut_again() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 2000, 200);
    let first = a
        .observe(at(start, 1990), at(start, 2000), true)
        .expect("cut");
    for t in 0..50 {
        assert_eq!(a.observe(at(start, 1995), at(start, 2001 + t), true), None);
    }
    assert_eq!(a.rate(), Some(first));
    let second = a
        .observe(at(start, 2060), at(start, 2070), true)
        .expect("a request sent after the cut cuts");
    assert!(second < first);
}

#[test]
fn the_rate_climbs_back_to_the_last_max_and_past_it() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 2000, 100);
    a.observe(at(start, 2000), at(start, 2000), true)
        .expect("cut");
    // K = cbrt(100 × 0.3 / 0.4) ≈ 4.2 s to climb back to about 100.
    steady(&a, start, 2001, 2000, 70);
    let mid = a.rate().expect("paced");
    assert!((70.0..100.0).contains(&mid), "after 2 s: {mid}");
    steady(&a, start, 4001, 2500, 95);
    let back = a.rate().expect("paced");
    assert!(back > 99.0, "after 4.5 s: {back}");
}

#[test]
fn a_quiet_spell_keeps_the_learned_rate() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 2000, 100);
    a.observe(at(start, 2000), at(start, 2000), true)
        .expect("cut");
    steady(&a, start, 2001, 8000, 90);
    // One answer a minute later: the measured rate is about nothing.
    a.observe(at(start, 70_000), at(start, 70_000), false);
    let rate = a.rate().expect("paced");
    assert!(
        rate >= 90.0,
        "resumes at the learned limit, not near 0: {rate}"
    );
}

#[test]
fn a_throttle_after_a_silence_cuts_from_the_rate_sent_since() {
    // Built, idle for 5 s, then 400 answers a second: the first 429 comes 0.25 s in.
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 5000, 250, 400);
    let rate = a
        .observe(at(start, 5250), at(start, 5250), true)
        .expect("cut");
    assert!(rate > 150.0, "cut from the idle average: {rate}");
}

#[test]
fn a_slot_not_kept_goes_back() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 1000, 10);
    a.observe(at(start, 1000), at(start, 1000), true)
        .expect("cut");
    let now = at(start, 3000);
    let slot = a.take(now).expect("a full bucket of one");
    assert!(a.take(now).is_err(), "the only slot is out");
    drop(slot);
    a.take(now).expect("given back").keep();
    assert!(a.take(now).is_err(), "kept");
}

#[test]
fn pacing_engaged_by_a_pattern_is_released_after_a_quiet_spell_and_woken_by_the_next() {
    let start = Instant::now();
    let a = Adaptive::engaged(start, 100.0);
    assert!(a.rate().is_some_and(|r| (r - 70.0).abs() < 1.0));
    steady(&a, start, 1, 29_000, 50);
    assert!(a.rate().is_some(), "still paced before the release");
    steady(&a, start, 31_000, 1000, 50);
    assert!(a.is_asleep());
    assert_eq!(a.rate(), None, "released: a burst is not paced");
    assert!(a.take(at(start, 32_001)).is_ok());
    // Asleep, a lone bare 429 changes nothing; the next pattern wakes it.
    assert_eq!(a.observe(at(start, 32_100), at(start, 32_100), true), None);
    assert_eq!(a.rate(), None);
    a.wake(at(start, 33_000), 40.0);
    assert!(a.rate().is_some_and(|r| (r - 28.0).abs() < 1.0));
}

#[test]
fn configured_pacing_is_never_released() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    steady(&a, start, 0, 1000, 100);
    a.observe(at(start, 1000), at(start, 1000), true)
        .expect("cut");
    steady(&a, start, 1001, 60_000, 10);
    assert!(!a.is_asleep());
    assert!(a.rate().is_some());
}

#[test]
fn the_rate_never_falls_below_the_floor() {
    let start = Instant::now();
    let a = Adaptive::new(start);
    for t in 0..200 {
        a.observe(at(start, t * 10), at(start, t * 10 + 5), true);
    }
    let rate = a.rate().expect("paced");
    assert!(rate >= MIN_RATE);
    assert!(a.take(at(start, 10_000)).is_ok());
}
