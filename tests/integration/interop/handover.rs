//! Graceful hand-over between the kinds, and each side reading the other's records: a Lease
//! created and renewed by either side (`acquireTime`/`renewTime` as each writes them), its
//! `leaseTransitions`, and the release record (empty holder, `leaseDurationSeconds` 1).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{peer, peer_or_skip, wait_contending, wait_started, CANCEL, CLIENT_GO_POLL};
use crate::cluster::{Cluster, LEASE, RETRY_PERIOD};
use crate::procs::exit_code;
use crate::wait::wait_for;

/// A Kubernetes MicroTime as kube-apiserver stores it: `2026-12-05T12:00:00.123456Z`.
fn is_micro_time(v: Option<&Value>) -> bool {
    let Some(s) = v.and_then(Value::as_str) else {
        return false;
    };
    let b = s.as_bytes();
    b.len() == 27
        && b[26] == b'Z'
        && b[19] == b'.'
        && b[10] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 26) || c.is_ascii_digit())
}

/// Asserts the Lease names `holder` with the test lease duration, `transitions` and both times.
fn assert_record(c: &Cluster, holder: &str, duration: i64, transitions_now: i64) {
    let lease = c.lease().expect("lease");
    let spec = &lease["spec"];
    assert_eq!(spec["holderIdentity"], holder, "{}", c.dump());
    assert_eq!(spec["leaseDurationSeconds"], duration, "{}", c.dump());
    assert_eq!(spec["leaseTransitions"], transitions_now, "{}", c.dump());
    assert!(is_micro_time(spec.get("acquireTime")), "{}", c.dump());
    assert!(is_micro_time(spec.get("renewTime")), "{}", c.dump());
}

/// While the holder renews, nobody else starts for longer than a lease duration.
fn assert_holds(c: &Cluster, starts: &[&str]) {
    let until = Instant::now() + LEASE + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(c.starts(), starts, "{}", c.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_client_go_lease_and_its_release_are_read_by_ours_which_takes_over_at_once() {
    let Some(bin) = peer_or_skip("a_client_go_lease_and_its_release_are_read_by_ours") else {
        return;
    };
    let c = Cluster::new("interop-cg-first");
    let mut go = peer(&c, &bin, "go-0", CANCEL);
    wait_started(&c, "go-0", Duration::from_secs(10));
    assert_record(&c, "go-0", LEASE.as_secs() as i64, 0);

    // Ours reads client-go's record and its renewals: it follows, and waits.
    let mut ours = c.replica("rs-1", None, &[]);
    ours.wait_log("new leader: go-0", Duration::from_secs(10));
    assert_holds(&c, &["go-0"]);

    // The well-behaved client-go user stops CMD, then releases; ours, watching, takes over
    // within a round trip instead of a poll.
    go.signal("TERM");
    assert_eq!(
        exit_code(go.wait_exit(Duration::from_secs(10))),
        0,
        "{}",
        go.log_text()
    );
    wait_started(&c, "rs-1", Duration::from_secs(10));
    let released = *c.lease_writes(&go.token).last().expect("go-0 wrote");
    let taken = c.lease_writes(&ours.token)[0];
    // Watching, ours learns of the release from its watch: it reads nothing in between (a
    // poller would GET the Lease first), and takes it well within one retry period.
    let reads = c
        .api
        .requests()
        .into_iter()
        .filter(|q| q.resource == "leases" && q.token.as_deref() == Some(ours.token.as_str()))
        .filter(|q| q.at > released && q.at < taken && q.verb == "get")
        .count();
    assert!(
        taken.duration_since(released) < RETRY_PERIOD && reads == 0,
        "ours took {:?} and {reads} reads after client-go's release\n{}",
        taken.duration_since(released),
        c.dump()
    );
    assert_record(&c, "rs-1", LEASE.as_secs() as i64, 1);

    // Our release record, as client-go's.
    ours.signal("TERM");
    assert_eq!(
        exit_code(ours.wait_exit(Duration::from_secs(10))),
        0,
        "{}",
        ours.log_text()
    );
    assert_record(&c, "", 1, 1);
    c.assert_no_overlap();
}

#[test]
fn our_lease_and_its_release_are_read_by_client_go_which_takes_over_within_its_retry_period() {
    let Some(bin) = peer_or_skip("our_lease_and_its_release_are_read_by_client_go") else {
        return;
    };
    let c = Cluster::new("interop-rs-first");
    let mut ours = c.first_leader("rs-0");
    assert_record(&c, "rs-0", LEASE.as_secs() as i64, 0);

    // client-go reads our record and our renewals: it names us, and waits.
    let mut go = peer(&c, &bin, "go-1", CANCEL);
    go.wait_log("long live our new leader: 'rs-0'!", Duration::from_secs(10));
    assert_holds(&c, &["rs-0"]);

    // Our release: client-go takes it at its next poll, not after the lease duration.
    ours.signal("TERM");
    assert_eq!(
        exit_code(ours.wait_exit(Duration::from_secs(10))),
        0,
        "{}",
        ours.log_text()
    );
    wait_started(&c, "go-1", Duration::from_secs(10));
    let released = *c.lease_writes(&ours.token).last().expect("rs-0 wrote");
    let taken = c.lease_writes(&go.token)[0];
    assert!(
        taken.duration_since(released) <= CLIENT_GO_POLL + Duration::from_millis(500),
        "client-go took {:?} after our release\n{}",
        taken.duration_since(released),
        c.dump()
    );
    assert_record(&c, "go-1", LEASE.as_secs() as i64, 1);

    // client-go's release record, and ours taking over from it at once.
    go.signal("TERM");
    assert_eq!(
        exit_code(go.wait_exit(Duration::from_secs(10))),
        0,
        "{}",
        go.log_text()
    );
    assert_record(&c, "", 1, 1);
    let ours2 = c.replica("rs-2", None, &[]);
    wait_contending(&c, &ours2);
    wait_started(&c, "rs-2", Duration::from_secs(2));
    assert_record(&c, "rs-2", LEASE.as_secs() as i64, 2);
    wait_for("rs-2 to renew", Duration::from_secs(5), || {
        (c.lease_writes(&ours2.token).len() >= 2).then_some(())
    });
    c.assert_no_overlap();
}
