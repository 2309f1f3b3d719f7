//! Two processes with one identity (issue #17): a second replica started with our identity, a
//! replacement pod with the same name, or our own restart after a crash. A Lease naming our
//! identity that this process did not write is treated like anyone else's: taken only once
//! released or expired, so the twin's CMD never overlaps ours. Real replicas of the binary
//! against the test API server, short timings (lease 4 s, renew deadline 3 s, retry period
//! 1 s), and the `flock` overlap detector of [`Cluster::singleton_cmd`].

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Cluster, Replica, LEASE, NS};
use crate::wait::wait_for;

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Starts a replica with identity `identity` whose CMD events and log are named `name`, so
/// two processes sharing one identity can be told apart.
fn twin(c: &Cluster, identity: &str, name: &str) -> Replica {
    c.replica_appending(
        identity,
        &format!("{name}.log"),
        Some(c.singleton_cmd()),
        &[("T_ID", name)],
    )
}

fn transitions(c: &Cluster) -> Option<i64> {
    c.lease()
        .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64())
}

#[test]
fn a_second_replica_with_our_identity_waits_while_we_renew_and_takes_over_on_release() {
    let c = Cluster::new("twin-wait");
    let mut a = twin(&c, "x", "a");
    wait_for("a to lead", Duration::from_secs(10), || {
        (c.starts() == ["a"]).then_some(())
    });
    let b = twin(&c, "x", "b");
    wait_for("b to see the lease", Duration::from_secs(10), || {
        let waits = b.log_text().contains("this process did not write it");
        let ran = c.cmd_events().iter().any(|e| e.identity == "b");
        (waits || ran).then_some(())
    });
    // a renews for three lease durations: b never runs CMD, a never steps down.
    let until = Instant::now() + 3 * LEASE;
    while Instant::now() < until {
        c.assert_no_overlap();
        assert_eq!(c.starts(), ["a"], "b started while a runs\n{}", c.dump());
        assert!(!a.has_exited(), "a stepped down\n{}", c.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = transitions(&c);

    // a releases on SIGTERM; b takes the released lease at once, as a new term.
    a.signal("TERM");
    let status = a.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", c.dump());
    assert!(a.log_text().contains("released the lease"), "{}", c.dump());
    wait_for("b to lead", Duration::from_secs(10), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    let events = c.cmd_events();
    let stop = events
        .iter()
        .find(|e| e.kind == "stop" && e.identity == "a")
        .expect("a's stop event")
        .nanos;
    let start = events
        .iter()
        .find(|e| e.kind == "start" && e.identity == "b")
        .expect("b's start event")
        .nanos;
    let handover = Duration::from_nanos(start.saturating_sub(stop) as u64);
    assert!(
        handover < LEASE,
        "hand-over took {} ms: b waited for expiry\n{}",
        ms(handover),
        c.dump()
    );
    assert_eq!(c.holder().as_deref(), Some("x"));
    assert_eq!(transitions(&c), before.map(|t| t + 1), "{}", c.dump());
    c.assert_no_overlap();
}

#[test]
fn a_restart_with_our_identity_after_a_sigkill_waits_for_the_lease_to_expire() {
    let c = Cluster::new("twin-restart");
    let mut first = twin(&c, "x", "first");
    wait_for("first to lead", Duration::from_secs(10), || {
        (c.starts() == ["first"]).then_some(())
    });
    wait_for("two renewals", Duration::from_secs(10), || {
        (c.lease_writes("token-x").len() >= 3).then_some(())
    });
    let before = transitions(&c);
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    let killed = Instant::now();
    let last_renewal = *c.lease_writes("token-x").last().expect("first renewed");
    let _second = twin(&c, "x", "second");
    wait_for("second to lead", Duration::from_secs(15), || {
        (c.starts() == ["first", "second"]).then_some(())
    });
    let taken = c
        .lease_writes("token-x")
        .into_iter()
        .find(|t| *t > killed)
        .expect("second wrote the lease");
    let gap = taken.duration_since(last_renewal);
    assert!(
        gap >= LEASE,
        "second took the lease {} ms after first's last renewal, before the {} ms lease expired\n{}",
        ms(gap),
        ms(LEASE),
        c.dump()
    );
    assert!(
        gap < LEASE + Duration::from_secs(2),
        "second took the lease only {} ms after first's last renewal\n{}",
        ms(gap),
        c.dump()
    );
    // A new term: this process never held the lease.
    assert_eq!(transitions(&c), before.map(|t| t + 1), "{}", c.dump());
    c.assert_no_overlap();
}

/// A twin that follows client-go's rule (a Lease naming itself is its own, e.g. an older
/// version of this tool or the Go original) takes our lease at once and renews it: our
/// replica notices at its next renewal, steps down without releasing, and leaves the lease to
/// the twin.
#[test]
fn a_twin_renewing_under_our_identity_makes_us_step_down_without_releasing() {
    let c = Cluster::new("twin-renewing");
    let spin = Some(vec![
        "sh".into(),
        "-c".into(),
        "while :; do sleep 0.1; done".into(),
    ]);
    let mut ours = c.replica("x", spin, &[]);
    ours.wait_log("became leader", Duration::from_secs(10));
    // The twin writes the lease under our identity, with a renewTime of its own.
    let mut l = c.lease().expect("lease exists");
    l["spec"]["renewTime"] = json!("2026-11-24T08:00:00.000000Z");
    c.api.put_object("leases", NS, l);
    let twin_record = c.lease().expect("lease exists")["spec"].clone();
    let status = ours.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(75), "{}", ours.log_text());
    let log = ours.log_text();
    assert!(log.contains("another process renews the lease"), "{log}");
    assert!(log.contains("not releasing"), "{log}");
    assert_eq!(log.matches("lost leadership").count(), 1, "{log}");
    // The twin's record is untouched: not released, not overwritten.
    assert_eq!(c.lease().expect("lease exists")["spec"], twin_record);
}
