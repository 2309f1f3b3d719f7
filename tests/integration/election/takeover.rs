//! Who takes the Lease, and when: one leader among five and a clean hand-over on SIGTERM, a
//! SIGKILLed leader replaced only after the lease duration, a foreign (client-go) holder that
//! renews or falls silent, a restart under the same identity, and a twin with the same identity.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Cluster, LEASE, LOCK, NS};
use crate::wait::wait_for;

#[test]
fn exactly_one_leader_among_five_and_clean_handover_on_sigterm() {
    let c = Cluster::new("five");
    let mut replicas: Vec<_> = (0..5)
        .map(|i| c.replica(&format!("pod-{i}"), None, &[]))
        .collect();
    let leader = wait_for("a CMD to start", Duration::from_secs(10), || {
        c.starts().first().cloned()
    });
    assert_eq!(c.holder().as_deref(), Some(leader.as_str()), "{}", c.dump());
    // Let the leader renew a few times while four followers watch.
    let leader_token = format!("token-{leader}");
    wait_for("three renewals", Duration::from_secs(10), || {
        (c.lease_writes(&leader_token).len() >= 4).then_some(())
    });
    assert_eq!(c.starts(), vec![leader.clone()], "{}", c.dump());
    c.assert_no_overlap();
    for r in replicas.iter_mut() {
        assert!(
            !r.has_exited(),
            "{} exited early:\n{}",
            r.identity,
            r.log_text()
        );
    }
    let transitions_before = c
        .lease()
        .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64());

    // Graceful hand-over: SIGTERM reaches CMD, CMD exits 0, the lease is released, and the
    // next replica starts well within the lease duration.
    let idx = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("leader replica");
    let mut old = replicas.remove(idx);
    old.signal("TERM");
    let status = old.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", old.log_text());
    assert!(
        old.log_text().contains("released the lease"),
        "{}",
        old.log_text()
    );
    let next = wait_for("a second CMD to start", Duration::from_secs(10), || {
        c.starts().get(1).cloned()
    });
    assert_ne!(next, leader);
    let events = c.cmd_events();
    let stop = events
        .iter()
        .find(|e| e.kind == "stop" && e.identity == leader)
        .expect("stop event")
        .nanos;
    let start = events
        .iter()
        .find(|e| e.kind == "start" && e.identity == next)
        .expect("start event")
        .nanos;
    let handover = Duration::from_nanos((start.saturating_sub(stop)) as u64);
    assert!(
        handover < Duration::from_secs(1),
        "hand-over took {} ms, expected well under the {} ms lease\n{}",
        handover.as_millis(),
        LEASE.as_millis(),
        c.dump()
    );
    wait_for(
        "the new holder in the Lease",
        Duration::from_secs(5),
        || (c.holder().as_deref() == Some(next.as_str())).then_some(()),
    );
    let transitions_after = c
        .lease()
        .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64());
    assert_eq!(transitions_after, transitions_before.map(|t| t + 1));
    c.assert_no_overlap();
}

#[test]
fn sigkilled_leader_is_replaced_after_the_lease_duration_and_not_before() {
    let c = Cluster::new("crash");
    let mut a = c.first_leader("a");
    let mut b = c.replica("b", None, &[]);
    // b has seen the lease once it watches it.
    wait_for("b to follow", Duration::from_secs(10), || {
        b.log_text().contains("new leader: a").then_some(())
    });
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5));
    let last_renewal = *c.lease_writes("token-a").last().expect("a renewed");
    wait_for("b to lead", Duration::from_secs(15), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    let taken = c
        .lease_writes("token-b")
        .into_iter()
        .find(|t| *t > last_renewal)
        .expect("b wrote the lease");
    let gap = taken.duration_since(last_renewal);
    assert!(
        gap >= LEASE,
        "b took the lease {} ms after a's last renewal, before the {} ms lease expired\n{}",
        gap.as_millis(),
        LEASE.as_millis(),
        c.dump()
    );
    assert!(
        gap < LEASE + Duration::from_secs(2),
        "b took the lease only {} ms after a's last renewal\n{}",
        gap.as_millis(),
        c.dump()
    );
    assert!(!b.has_exited());
    c.assert_no_overlap();
}

fn foreign_lease(renew: &str, rv_fields: serde_json::Value) -> serde_json::Value {
    let mut l = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": LOCK, "namespace": NS,
            "labels": {"app.kubernetes.io/name": "other-elector"},
            "annotations": {"example.com/note": "keep me"},
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                "apiVersion": "coordination.k8s.io/v1", "time": "2026-11-24T08:00:00Z"}]
        },
        "spec": {
            "holderIdentity": "client-go-pod",
            "leaseDurationSeconds": 4,
            "acquireTime": "2026-11-24T08:00:00.000000Z",
            "renewTime": renew,
            "leaseTransitions": 7,
            "strategy": "OldestEmulationVersion",
            "preferredHolder": "client-go-pod"
        }
    });
    if let (Some(obj), Some(extra)) = (l.as_object_mut(), rv_fields.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    l
}

#[test]
fn a_renewing_foreign_holder_is_never_displaced_and_a_silent_one_is_replaced() {
    let c = Cluster::new("foreign");
    c.api.put_object(
        "leases",
        NS,
        foreign_lease("2026-11-24T08:00:00.000000Z", json!({})),
    );
    let r = c.replica("ours", None, &[]);
    wait_for(
        "ours to see the foreign holder",
        Duration::from_secs(10),
        || {
            r.log_text()
                .contains("new leader: client-go-pod")
                .then_some(())
        },
    );
    // The foreign elector renews every second for three lease durations.
    let until = Instant::now() + 3 * LEASE;
    let mut n = 0;
    let mut last_foreign = Instant::now();
    while Instant::now() < until {
        n += 1;
        let mut l = c.lease().expect("lease exists");
        l["spec"]["renewTime"] = json!(format!("2026-11-24T08:00:{:02}.000000Z", n % 60));
        c.api.put_object("leases", NS, l);
        last_foreign = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            c.starts().is_empty(),
            "displaced a live holder\n{}",
            c.dump()
        );
    }
    wait_for(
        "ours to take over the silent lease",
        Duration::from_secs(15),
        || (c.starts() == ["ours"]).then_some(()),
    );
    let took = c
        .lease_writes("token-ours")
        .first()
        .copied()
        .expect("ours wrote the lease");
    assert!(
        took.duration_since(last_foreign) >= LEASE,
        "took over {} ms after the last foreign renewal\n{}",
        took.duration_since(last_foreign).as_millis(),
        c.dump()
    );
    // Taken and renewed, keeping everything we do not own.
    wait_for(
        "a renewal after the take-over",
        Duration::from_secs(10),
        || (c.lease_writes("token-ours").len() >= 3).then_some(()),
    );
    let l = c.lease().expect("lease");
    assert_eq!(l["spec"]["holderIdentity"], "ours");
    assert_eq!(l["spec"]["leaseTransitions"], 8);
    assert_eq!(l["spec"]["strategy"], "OldestEmulationVersion");
    assert_eq!(l["spec"]["preferredHolder"], "client-go-pod");
    assert_eq!(
        l["metadata"]["labels"]["app.kubernetes.io/name"],
        "other-elector"
    );
    assert_eq!(l["metadata"]["annotations"]["example.com/note"], "keep me");
    assert_eq!(
        l["metadata"]["managedFields"][0]["manager"],
        "kube-controller-manager"
    );
    let renew = l["spec"]["renewTime"].as_str().expect("renewTime");
    assert_eq!(
        renew.len(),
        "2026-11-24T08:00:00.000000Z".len(),
        "six fractional digits: {renew}"
    );
    c.assert_no_overlap();
}
