//! How the leader and followers follow changes to the Lease: a Lease deleted under the leader,
//! a deleted Lease whose holder may still run, a watch gone half-open, and a slow but steady
//! renewer.

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, LEASE, LOCK, NS};
use crate::wait::wait_for;

#[test]
fn a_lease_deleted_under_the_leader_is_recreated_by_it_not_by_a_follower() {
    let c = Cluster::new("deleted");
    let a = c.first_leader("a");
    let b = c.replica("b", None, &[]);
    b.wait_log("new leader: a", Duration::from_secs(10));
    assert!(c.api.delete_object("leases", NS, LOCK));
    wait_for("a to re-create the lease", Duration::from_secs(10), || {
        (c.holder().as_deref() == Some("a")).then_some(())
    });
    // b saw the deletion but waits out a's lease; by then a has renewed the new one.
    let until = Instant::now() + LEASE + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(c.starts(), ["a"], "{}", c.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        a.log_text().contains("creating it again"),
        "{}",
        a.log_text()
    );
    c.assert_no_overlap();
}

#[test]
fn a_follower_waits_out_a_deleted_lease_whose_holder_may_still_run() {
    let c = Cluster::new("deleted-stuck");
    let mut a = c.first_leader("a");
    let b = c.replica("b", None, &[]);
    b.wait_log("new leader: a", Duration::from_secs(10));
    // a cannot re-create the Lease, so it must step down; b must not start before a's lease
    // would have expired, although the Lease is gone.
    c.api.forbid("token-a", "create", "leases");
    let deleted_at = Instant::now();
    assert!(c.api.delete_object("leases", NS, LOCK));
    assert_eq!(
        a.wait_exit(Duration::from_secs(10)).code(),
        Some(75),
        "{}",
        a.log_text()
    );
    wait_for("b to lead", Duration::from_secs(15), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    let created = c
        .lease_writes("token-b")
        .first()
        .copied()
        .expect("b created the lease");
    assert!(
        created.duration_since(deleted_at) >= LEASE,
        "b re-created the lease {} ms after the deletion\n{}",
        created.duration_since(deleted_at).as_millis(),
        c.dump()
    );
    c.assert_no_overlap();
}

/// A follower's watch goes half-open (no events, no end: the API server or the path to it
/// went away without closing the connection) while the leader keeps renewing. The follower
/// must notice the quiet watch and look again rather than mistake the renewals it missed for
/// an expired lease: it never tries to take the lease, and it watches anew.
#[test]
fn a_follower_notices_a_dead_watch_before_the_lease_looks_expired() {
    let c = Cluster::new("quiet-watch");
    let _a = c.first_leader("a");
    let b = c.replica("b", None, &[]);
    let watches_by_b = || {
        c.api
            .requests()
            .iter()
            .filter(|r| r.verb == "watch" && r.code == 200)
            .filter(|r| r.token.as_deref() == Some("token-b"))
            .count()
    };
    wait_for("b to watch the lease", Duration::from_secs(10), || {
        (watches_by_b() == 1).then_some(())
    });
    c.api.silence_watches();
    let silenced = Instant::now();
    let (watches_before, log_before) = (watches_by_b(), b.log_text().len());
    wait_for("b to watch anew", Duration::from_secs(10), || {
        (watches_by_b() > watches_before).then_some(())
    });
    super::assert_b_leaves_a_live_lease_alone(&c, silenced);
    let log = b.log_text();
    assert!(
        log[log_before..].contains("its watch said nothing"),
        "b noticed the silence only after it began:\n{log}"
    );
    assert_eq!(c.holder().as_deref(), Some("a"));
    c.assert_no_overlap();
}

/// A holder that renews more slowly than a third of its lease duration (legal: lease 6 s,
/// renew deadline 5 s, retry period 3 s) keeps its follower's watch busy enough: the follower
/// learns the rhythm and neither re-reads the Lease nor re-opens its watch in steady state.
#[test]
fn a_slow_but_steady_renewer_costs_its_follower_no_requests() {
    let mut c = Cluster::new("slow-renewer");
    c.timings = ("6".into(), "5".into(), "3".into());
    let _a = c.first_leader("a");
    let _b = c.replica("b", None, &[]);
    let by_b = |verb: &str| {
        c.api
            .requests()
            .iter()
            .filter(|r| r.token.as_deref() == Some("token-b") && r.verb == verb)
            .count()
    };
    let renewals_since = |t: Instant| {
        c.lease_writes("token-a")
            .into_iter()
            .filter(|w| *w > t)
            .count()
    };
    wait_for("b to watch the lease", Duration::from_secs(10), || {
        (by_b("watch") == 1).then_some(())
    });
    // Two renewals seen through the watch: b knows the rhythm from here on.
    let watching = Instant::now();
    wait_for("two renewals", Duration::from_secs(15), || {
        (renewals_since(watching) >= 2).then_some(())
    });
    let (gets, watches) = (by_b("get"), by_b("watch"));
    let steady = Instant::now();
    wait_for("four more renewals", Duration::from_secs(30), || {
        (renewals_since(steady) >= 4).then_some(())
    });
    assert_eq!(
        (by_b("get"), by_b("watch")),
        (gets, watches),
        "b's reads and watches during four steady renewals\n{}",
        c.dump()
    );
}
