//! Lease election with real replicas of the binary against the test API server, short timings
//! (lease 4 s, renew deadline 3 s, retry period 1 s).

#[path = "common/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{wait_for, Cluster, LOCK, NS};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(4);

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Successful lease writes made with `token`, oldest first.
fn lease_writes(c: &Cluster, token: &str) -> Vec<Instant> {
    c.lease_writes(token)
}

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
        (lease_writes(&c, &leader_token).len() >= 4).then_some(())
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
    let events = c.events();
    let stop = events
        .iter()
        .find(|(k, id, _)| k == "stop" && *id == leader)
        .expect("stop event")
        .2;
    let start = events
        .iter()
        .find(|(k, id, _)| k == "start" && *id == next)
        .expect("start event")
        .2;
    let handover = Duration::from_nanos((start.saturating_sub(stop)) as u64);
    assert!(
        handover < Duration::from_secs(1),
        "hand-over took {} ms, expected well under the {} ms lease\n{}",
        ms(handover),
        ms(LEASE),
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
    let last_renewal = *lease_writes(&c, "token-a").last().expect("a renewed");
    wait_for("b to lead", Duration::from_secs(15), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    let taken = lease_writes(&c, "token-b")
        .into_iter()
        .find(|t| *t > last_renewal)
        .expect("b wrote the lease");
    let gap = taken.duration_since(last_renewal);
    assert!(
        gap >= LEASE,
        "b took the lease {} ms after a's last renewal, before the {} ms lease expired\n{}",
        ms(gap),
        ms(LEASE),
        c.dump()
    );
    assert!(
        gap < LEASE + Duration::from_secs(2),
        "b took the lease only {} ms after a's last renewal\n{}",
        ms(gap),
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
    let took = lease_writes(&c, "token-ours")
        .first()
        .copied()
        .expect("ours wrote the lease");
    assert!(
        took.duration_since(last_foreign) >= LEASE,
        "took over {} ms after the last foreign renewal\n{}",
        ms(took.duration_since(last_foreign)),
        c.dump()
    );
    // Taken and renewed, keeping everything we do not own.
    wait_for(
        "a renewal after the take-over",
        Duration::from_secs(10),
        || (lease_writes(&c, "token-ours").len() >= 3).then_some(()),
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

#[test]
fn same_identity_restart_reacquires_at_once_without_a_transition() {
    let c = Cluster::new("restart");
    let mut first = c.replica("pod-x", None, &[]);
    wait_for("pod-x to lead", Duration::from_secs(10), || {
        (c.starts() == ["pod-x"]).then_some(())
    });
    let transitions = c
        .lease()
        .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64());
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    let restarted_at = Instant::now();
    let _second = c.replica("pod-x", None, &[]);
    wait_for(
        "the restarted pod-x to lead",
        Duration::from_secs(10),
        || (c.starts() == ["pod-x", "pod-x"]).then_some(()),
    );
    let waited = restarted_at.elapsed();
    assert!(
        waited < LEASE,
        "re-acquiring our own lease took {} ms; it should not wait for expiry\n{}",
        ms(waited),
        c.dump()
    );
    assert_eq!(
        c.lease()
            .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64()),
        transitions
    );
    c.assert_no_overlap();
}

#[test]
fn cmd_exit_code_passes_through_and_the_lease_is_released() {
    let c = Cluster::new("exitcode");
    let mut r = c.replica(
        "solo",
        Some(vec!["sh".into(), "-c".into(), "exit 42".into()]),
        &[],
    );
    let status = r.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(42), "{}", r.log_text());
    let l = c.lease().expect("lease exists");
    assert_eq!(l["spec"]["holderIdentity"], "", "released: {l}");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 1);
    assert_eq!(l["spec"]["acquireTime"], l["spec"]["renewTime"]);
}

#[test]
fn sigterm_before_leading_exits_promptly_without_cmd() {
    let c = Cluster::new("termwait");
    let _leader = c.replica("leader", None, &[]);
    wait_for("leader to lead", Duration::from_secs(10), || {
        (c.starts() == ["leader"]).then_some(())
    });
    let mut f = c.replica("follower", None, &[]);
    f.wait_log("new leader: leader", Duration::from_secs(10));
    let t = Instant::now();
    f.signal("TERM");
    let status = f.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(143), "{}", f.log_text());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {} ms",
        ms(t.elapsed())
    );
    assert_eq!(c.starts(), ["leader"]);
    assert_eq!(c.holder().as_deref(), Some("leader"));
}

#[test]
fn the_token_never_reaches_the_log_even_at_trace_level() {
    let c = Cluster::new("trace");
    let mut r = c.replica(
        "tracer",
        Some(vec!["sh".into(), "-c".into(), "exit 0".into()]),
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(r.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = r.log_text();
    assert!(log.contains("TRACE"), "trace logging was on");
    assert!(!log.contains(&r.token), "token in the log");
    // Hex dumps split the token across rows; its hex form must not appear either.
    let hex: String = r
        .token
        .bytes()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let compact: String = log.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(!compact.contains(&hex), "token bytes in a hex dump");
    assert!(
        !log.contains("Bearer"),
        "an Authorization header in the log"
    );
}

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
    let created = lease_writes(&c, "token-b")
        .first()
        .copied()
        .expect("b created the lease");
    assert!(
        created.duration_since(deleted_at) >= LEASE,
        "b re-created the lease {} ms after the deletion\n{}",
        ms(created.duration_since(deleted_at)),
        c.dump()
    );
    c.assert_no_overlap();
}

#[test]
fn default_logging_is_info_one_line_per_event() {
    let c = Cluster::new("loglevel");
    let mut r = c.replica(
        "quiet",
        Some(vec!["sh".into(), "-c".into(), "sleep 2.5".into()]),
        &[("RUST_LOG", "")],
    );
    assert_eq!(r.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = r.log_text();
    assert!(
        log.contains(" INFO  k8s-await-election: became leader"),
        "{log}"
    );
    assert!(log.contains("released the lease"), "{log}");
    for line in log.lines() {
        assert!(
            line.contains(" INFO ") || line.contains(" WARN ") || line.contains(" ERROR "),
            "unexpected line at the default level: {line}\n{log}"
        );
    }
    // A few lines for a whole term, not one per request.
    assert!(log.lines().count() <= 8, "{log}");
}

#[test]
fn a_second_replica_with_the_same_identity_makes_the_first_step_down_without_releasing() {
    let c = Cluster::new("twins");
    let spin = || {
        Some(vec![
            "sh".into(),
            "-c".into(),
            "while :; do sleep 0.1; done".into(),
        ])
    };
    let mut first = c.replica("twin", spin(), &[]);
    first.wait_log("became leader", Duration::from_secs(10));
    // A misconfigured second replica with the same identity takes the lease at once (as a
    // restarted pod would); the first one notices at its next renewal.
    let second = c.replica("twin", spin(), &[]);
    second.wait_log("became leader", Duration::from_secs(10));
    let status = first.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(75), "{}", first.log_text());
    let log = first.log_text();
    assert!(log.contains("another process renews the lease"), "{log}");
    assert!(log.contains("not releasing"), "{log}");
    // The lease stays with the survivor, which keeps renewing it.
    let renew = |c: &Cluster| {
        c.lease()
            .and_then(|l| l.pointer("/spec/renewTime").cloned())
    };
    let before = renew(&c);
    wait_for("the survivor to renew", Duration::from_secs(5), || {
        (renew(&c) != before).then_some(())
    });
    assert_eq!(c.holder().as_deref(), Some("twin"));
    // Both replicas write the log file named after their identity: exactly one of them lost.
    let log = second.log_text();
    assert_eq!(log.matches("lost leadership").count(), 1, "{log}");
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
    // Let the leader renew (every second) for three lease durations: b's view of the lease
    // from before the silence would have expired after one.
    wait_for(
        "a to renew for three lease durations",
        Duration::from_secs(30),
        || {
            let renewals = lease_writes(&c, "token-a")
                .into_iter()
                .filter(|t| *t > silenced)
                .count();
            (renewals >= 12).then_some(())
        },
    );
    let writes_by_b: Vec<String> = c
        .api
        .requests()
        .iter()
        .filter(|r| r.token.as_deref() == Some("token-b"))
        .filter(|r| r.verb != "get" && r.verb != "watch")
        .map(|r| format!("{} {} -> {}", r.verb, r.path, r.code))
        .collect();
    assert!(
        writes_by_b.is_empty(),
        "b tried to take a live lease: {writes_by_b:?}\n{}",
        c.dump()
    );
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
        lease_writes(&c, "token-a")
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
