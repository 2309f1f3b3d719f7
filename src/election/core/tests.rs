//! Unit tests of the election state machine: made-up instants, no I/O, no sleeping.

use super::*;

fn settings() -> Settings {
    Settings {
        namespace: "ns".into(),
        lock_name: "lock".into(),
        identity: "me".into(),
        timings: Timings {
            lease_duration: Duration::from_secs(4),
            renew_deadline: Duration::from_secs(3),
            retry_period: Duration::from_secs(1),
        },
    }
}

fn lease(holder: &str, renew: &str, rv: &str) -> Lease {
    let mut l = Lease::new(
        "ns",
        "lock",
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(10),
            acquire_time: Some("2026-11-24T08:00:00.000000Z".into()),
            renew_time: Some(renew.into()),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        },
    );
    l.metadata.resource_version = Some(rv.into());
    l.metadata
        .rest
        .insert("labels".into(), serde_json::json!({"keep": "me"}));
    l
}

fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_594_530)
}

#[test]
fn first_step_is_a_read_then_create_when_missing() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    assert_eq!(c.candidate_step(t0, wall()), Step::Read);
    c.observe(None, t0);
    let Step::Create(body) = c.candidate_step(t0, wall()) else {
        panic!("expected create")
    };
    assert_eq!(body.spec.holder(), Some("me"));
    assert_eq!(body.spec.lease_transitions, Some(0));
    assert_eq!(body.spec.lease_duration_seconds, Some(4));
    assert_eq!(
        body.spec.renew_time.as_deref(),
        Some("2026-11-25T08:15:30.000000Z")
    );
    assert_eq!(body.resource_version(), None);
}

#[test]
fn foreign_lease_expires_by_our_clock_from_the_last_change() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    // A renewTime far in the past does not matter: we judge by our own clock.
    c.observe(Some(lease("other", "2000-01-01T00:00:00.000000Z", "1")), t0);
    assert_eq!(
        c.candidate_step(t0, wall()),
        Step::WaitUntil(t0 + Duration::from_secs(10))
    );
    // The holder renews at t0+5: the clock restarts.
    let t5 = t0 + Duration::from_secs(5);
    c.observe(Some(lease("other", "2000-01-01T00:00:05.000000Z", "2")), t5);
    assert_eq!(
        c.candidate_step(t5, wall()),
        Step::WaitUntil(t5 + Duration::from_secs(10))
    );
    // A metadata-only change (new rv, same record) does not restart it.
    let t6 = t0 + Duration::from_secs(6);
    c.observe(Some(lease("other", "2000-01-01T00:00:05.000000Z", "3")), t6);
    assert_eq!(
        c.candidate_step(t6, wall()),
        Step::WaitUntil(t5 + Duration::from_secs(10))
    );
    // Just before expiry we wait, at expiry we take it, bumping transitions.
    let almost = t5 + Duration::from_millis(9_999);
    assert!(matches!(
        c.candidate_step(almost, wall()),
        Step::WaitUntil(_)
    ));
    let Step::Take(body) = c.candidate_step(t5 + Duration::from_secs(10), wall()) else {
        panic!("expected take")
    };
    assert_eq!(body.spec.holder(), Some("me"));
    assert_eq!(body.spec.lease_transitions, Some(5));
    assert_eq!(
        body.spec.acquire_time.as_deref(),
        Some("2026-11-25T08:15:30.000000Z")
    );
    assert_eq!(
        body.resource_version(),
        Some("3"),
        "the write is conditional"
    );
    assert_eq!(
        body.metadata.rest.get("labels"),
        Some(&serde_json::json!({"keep": "me"}))
    );
}

#[test]
fn free_lease_is_taken_at_once_and_own_lease_keeps_its_history() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    c.observe(Some(lease("", "2026-11-24T08:00:00.000000Z", "7")), t0);
    let Step::Take(body) = c.candidate_step(t0, wall()) else {
        panic!("expected take")
    };
    assert_eq!(body.spec.lease_transitions, Some(5));

    let mut c = Core::new(settings());
    let own = lease("me", "2026-11-24T08:00:00.000000Z", "8");
    c.stored(&own);
    c.observe(Some(own), t0);
    let Step::Take(body) = c.candidate_step(t0, wall()) else {
        panic!("expected take")
    };
    assert_eq!(
        body.spec.lease_transitions,
        Some(4),
        "our own record: no transition"
    );
    assert_eq!(
        body.spec.acquire_time.as_deref(),
        Some("2026-11-24T08:00:00.000000Z")
    );
    assert_eq!(
        body.spec.renew_time.as_deref(),
        Some("2026-11-25T08:15:30.000000Z")
    );
}

#[test]
fn missing_duration_counts_as_ours() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    let mut l = lease("other", "2026-11-24T08:00:00.000000Z", "1");
    l.spec.lease_duration_seconds = None;
    c.observe(Some(l), t0);
    assert_eq!(c.expires_at(), Some(t0 + Duration::from_secs(4)));
}

#[test]
fn renewal_and_release_only_for_our_lease() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
    assert!(c.renewal(wall()).is_none());
    assert!(c.release(wall()).is_none());
    let own = lease("me", "2026-11-24T08:00:00.000000Z", "2");
    c.stored(&own);
    c.observe(Some(own), t0);
    let r = c.renewal(wall()).expect("ours");
    assert_eq!(
        r.spec.acquire_time.as_deref(),
        Some("2026-11-24T08:00:00.000000Z")
    );
    assert_eq!(r.resource_version(), Some("2"));
    let rel = c.release(wall()).expect("ours");
    assert_eq!(rel.spec.holder_identity.as_deref(), Some(""));
    assert_eq!(rel.spec.lease_duration_seconds, Some(1));
    assert_eq!(rel.spec.lease_transitions, Some(4));
    assert_eq!(rel.spec.acquire_time, rel.spec.renew_time);
}

#[test]
fn observe_reports_holder_changes_once() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    assert_eq!(
        c.observe(Some(lease("a", "2026-11-24T08:00:00.000000Z", "1")), t0),
        HolderChange::Taken("a".into())
    );
    assert_eq!(
        c.observe(Some(lease("a", "2026-11-24T08:00:01.000000Z", "2")), t0),
        HolderChange::Unchanged
    );
    assert_eq!(c.observe(None, t0), HolderChange::Freed);
}

#[test]
fn a_lease_deleted_under_a_live_holder_is_not_recreated_before_it_would_expire() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
    let t1 = t0 + Duration::from_secs(2);
    c.observe(None, t1);
    assert_eq!(
        c.candidate_step(t1, wall()),
        Step::WaitUntil(t1 + Duration::from_secs(10))
    );
    // Still gone on a later read: the wait does not restart.
    c.invalidate();
    assert_eq!(c.candidate_step(t1, wall()), Step::Read);
    c.observe(None, t1 + Duration::from_secs(3));
    assert_eq!(
        c.candidate_step(t1, wall()),
        Step::WaitUntil(t1 + Duration::from_secs(10))
    );
    assert!(matches!(
        c.candidate_step(t1 + Duration::from_secs(10), wall()),
        Step::Create(_)
    ));
    // Our own vanished lease may be re-created at once; a never-seen one too.
    let mut c = Core::new(settings());
    let own = lease("me", "2026-11-24T08:00:00.000000Z", "1");
    c.stored(&own);
    c.observe(Some(own), t0);
    c.observe(None, t1);
    assert!(matches!(c.candidate_step(t1, wall()), Step::Create(_)));
    let mut c = Core::new(settings());
    c.observe(None, t0);
    assert!(matches!(c.candidate_step(t0, wall()), Step::Create(_)));
}

#[test]
fn a_fresh_read_of_an_unchanged_record_keeps_the_expiry_clock() {
    let mut c = Core::new(settings());
    let t0 = Instant::now();
    c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
    c.invalidate();
    assert_eq!(c.candidate_step(t0, wall()), Step::Read);
    c.observe(
        Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")),
        t0 + Duration::from_secs(5),
    );
    assert_eq!(c.expires_at(), Some(t0 + Duration::from_secs(10)));
}

/// What a candidate does with the record of a table case.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Wait until this many seconds after the record was first seen.
    WaitUntil(u64),
    /// Take it as a new term: transitions bumped, acquireTime now.
    TakeAsNewTerm,
    /// Take it as the same term: transitions and acquireTime kept.
    TakeAsSameTerm,
    /// Create the Lease.
    Create,
}

/// One case of the identity table: a record (10 s duration, 4 transitions) naming
/// `holder`, whether this process wrote it, whether it then vanished, and what a
/// candidate does `at` seconds after first seeing it.
struct Case {
    name: &'static str,
    holder: &'static str,
    we_wrote: bool,
    vanished: bool,
    at: u64,
    expect: Expect,
}

const IDENTITY_CASES: &[Case] = &[
    Case {
        name: "a lease naming us that we did not write is not taken while fresh",
        holder: "me",
        we_wrote: false,
        vanished: false,
        at: 0,
        expect: Expect::WaitUntil(10),
    },
    Case {
        name: "a lease naming us that we did not write is still not taken just before expiry",
        holder: "me",
        we_wrote: false,
        vanished: false,
        at: 9,
        expect: Expect::WaitUntil(10),
    },
    Case {
        name: "a lease naming us that we did not write is taken once it expires by our clock, as a new term",
        holder: "me",
        we_wrote: false,
        vanished: false,
        at: 10,
        expect: Expect::TakeAsNewTerm,
    },
    Case {
        name: "a released lease (empty holder) is taken at once",
        holder: "",
        we_wrote: false,
        vanished: false,
        at: 0,
        expect: Expect::TakeAsNewTerm,
    },
    Case {
        name: "a record we wrote (a take whose answer was lost) is ours at once",
        holder: "me",
        we_wrote: true,
        vanished: false,
        at: 0,
        expect: Expect::TakeAsSameTerm,
    },
    Case {
        name: "a foreign lease is not taken while fresh",
        holder: "other",
        we_wrote: false,
        vanished: false,
        at: 0,
        expect: Expect::WaitUntil(10),
    },
    Case {
        name: "a foreign lease is taken once it expires, as a new term",
        holder: "other",
        we_wrote: false,
        vanished: false,
        at: 10,
        expect: Expect::TakeAsNewTerm,
    },
    Case {
        name: "a lease naming us that we did not write and that vanished is not re-created while it would live",
        holder: "me",
        we_wrote: false,
        vanished: true,
        at: 0,
        expect: Expect::WaitUntil(10),
    },
    Case {
        name: "our own lease that vanished is re-created at once",
        holder: "me",
        we_wrote: true,
        vanished: true,
        at: 0,
        expect: Expect::Create,
    },
];

#[test]
fn a_lease_naming_us_is_ours_only_if_this_process_wrote_it() {
    let mut failed = Vec::new();
    for case in IDENTITY_CASES {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        let record = lease(case.holder, "2026-11-24T08:00:00.000000Z", "7");
        if case.we_wrote {
            c.will_write(&record);
        }
        c.observe(Some(record), t0);
        if case.vanished {
            c.observe(None, t0);
        }
        let got = match c.candidate_step(t0 + Duration::from_secs(case.at), wall()) {
            Step::WaitUntil(t) => Ok(Expect::WaitUntil(t.duration_since(t0).as_secs())),
            Step::Create(_) => Ok(Expect::Create),
            Step::Take(body) if body.spec.holder() != Some("me") => {
                Err(format!("takes for {:?}", body.spec.holder()))
            }
            Step::Take(body) if body.resource_version() != Some("7") => {
                Err("an unconditional write".to_string())
            }
            Step::Take(body) => {
                match (
                    body.spec.lease_transitions,
                    body.spec.acquire_time.as_deref(),
                ) {
                    (Some(5), Some("2026-11-25T08:15:30.000000Z")) => Ok(Expect::TakeAsNewTerm),
                    (Some(4), Some("2026-11-24T08:00:00.000000Z")) => Ok(Expect::TakeAsSameTerm),
                    other => Err(format!("takes with the history {other:?}")),
                }
            }
            Step::Read => Err("reads again".to_string()),
        };
        if got.as_ref() != Ok(&case.expect) {
            failed.push(format!(
                "{}: expected {:?}, got {got:?}",
                case.name, case.expect
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn only_a_record_this_process_wrote_is_renewed_or_released() {
    let t0 = Instant::now();
    let twin = lease("me", "2026-11-24T08:00:00.000000Z", "1");
    let mut c = Core::new(settings());
    c.observe(Some(twin.clone()), t0);
    assert!(c.names_us());
    assert!(!c.we_hold(), "a twin's record is not ours");
    assert!(
        c.renewal(wall()).is_none(),
        "a twin's record is not renewed"
    );
    assert!(
        c.release(wall()).is_none(),
        "a twin's record is not released"
    );

    // Our renewals are recognized: the stored one, and any sent since whose answer was
    // lost; an earlier send is forgotten once a later write is stored.
    let mut c = Core::new(settings());
    c.stored(&twin);
    c.observe(Some(twin.clone()), t0);
    assert!(c.we_hold());
    let sent = c.renewal(wall()).expect("ours");
    c.will_write(&sent);
    let mut answer_lost = sent.clone();
    answer_lost.metadata.resource_version = Some("2".into());
    c.observe(Some(answer_lost.clone()), t0);
    assert!(c.we_hold(), "a renewal whose answer was lost is still ours");
    assert!(c.release(wall()).is_some());
    let mut later = answer_lost.clone();
    later.spec.renew_time = Some("2026-11-25T08:15:31.000000Z".into());
    later.metadata.resource_version = Some("3".into());
    c.will_write(&later);
    c.stored(&later);
    c.observe(Some(answer_lost), t0);
    assert!(
        !c.we_hold(),
        "an earlier send is forgotten once a later one is stored"
    );

    // Only the last few sends are remembered: forgetting errs on the safe side.
    let mut c = Core::new(settings());
    let first = lease("me", "2026-11-24T08:00:00.000000Z", "1");
    c.will_write(&first);
    for i in 0..WRITTEN_CAP {
        c.will_write(&lease(
            "me",
            &format!("2026-11-24T08:01:{i:02}.000000Z"),
            "1",
        ));
    }
    c.observe(Some(first), t0);
    assert!(!c.we_hold());
}

#[test]
fn retry_after_is_honoured_up_to_one_lease_duration() {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    let lease = s(4);
    // (jittered retry, Retry-After, wait)
    let table = [
        (ms(1500), None, ms(1500)),
        (ms(1500), Some(s(0)), ms(1500)),
        (ms(1500), Some(s(3)), s(3)),
        (ms(1500), Some(s(4)), s(4)),
        (ms(1500), Some(s(5)), s(4)),
        (ms(1500), Some(s(600)), s(4)),
        // A jittered wait above the lease duration is not cut (client-go's own wait).
        (ms(4500), Some(s(600)), ms(4500)),
    ];
    for (jittered, asked, want) in table {
        assert_eq!(
            backoff(jittered, asked, lease),
            want,
            "{jittered:?} {asked:?}"
        );
    }
}

/// A `leaseDurationSeconds` that is not a positive int32 neither fails every read nor lets
/// anyone take the lease early: the holder is waited for as long as our own lease duration.
#[test]
fn invalid_record_durations_fall_back_to_ours() {
    for bad in ["0", "-1", "-2147483648", "2147483648", "4294967296", "1e30"] {
        let text = format!(
            r#"{{"metadata":{{"name":"lock","namespace":"ns","resourceVersion":"7"}},
                "spec":{{"holderIdentity":"other","leaseDurationSeconds":{bad},
                "renewTime":"2026-11-24T08:00:00.000000Z"}}}}"#
        );
        let l: Lease = serde_json::from_str(&text).expect(bad);
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        c.observe(Some(l), t0);
        assert!(c.invalid_duration().is_some(), "{bad}");
        assert_eq!(c.observed_duration(), Some(Duration::from_secs(4)), "{bad}");
        assert_eq!(
            c.candidate_step(t0, wall()),
            Step::WaitUntil(t0 + Duration::from_secs(4)),
            "{bad}"
        );
        let Step::Take(body) = c.candidate_step(t0 + Duration::from_secs(4), wall()) else {
            panic!("{bad}: expected a take once our lease duration passed")
        };
        assert_eq!(body.spec.lease_duration_seconds, Some(4), "{bad}");
    }
    let mut c = Core::new(settings());
    c.observe(
        Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")),
        Instant::now(),
    );
    assert_eq!(c.invalid_duration(), None);
}
