//! Fixed fault scenarios with three replicas: API outages longer than the renew deadline, a
//! partition of the leader, hung requests, short blips, a 429 storm, token rotation, a
//! SIGKILLed leader, a crashing CMD, a rolling restart, a CMD that ignores SIGTERM, and a read
//! racing a renewal.

use std::time::{Duration, Instant};

use test_apiserver::Fault;

use super::{log_of, Chaos, Leader, CMD_CRASH, LOST_LEADERSHIP};
use crate::cluster::{LEASE, RENEW_DEADLINE};
use crate::wait::wait_for;

/// The API is down (every request answered with `fault`) for longer than the renew deadline:
/// the leader stops its CMD and exits 75 before its lease could expire for anybody, and once
/// the API is back a leader exists again.
fn api_outage(tag: &str, fault: Fault) {
    let mut ch = Chaos::new(tag, 3);
    let Leader {
        identity: leader,
        index: li,
        token,
        cmd,
    } = ch.steady_leader();
    let fault_at = Instant::now();
    ch.c.api.set_fault(fault);
    std::thread::sleep(Duration::from_secs(5));
    ch.c.api.clear_faults();
    let code = ch.wait_exit(li, Duration::from_secs(15));
    let log = log_of(&ch, &leader);
    assert_eq!(code, LOST_LEADERSHIP, "{}", ch.c.dump());
    assert!(log.contains("lost leadership"), "{log}");
    assert!(!ch.c.cmd_alive(cmd), "CMD survived the step-down");
    // CMD got SIGTERM and stopped before the lease could have expired for anybody.
    let last = *ch
        .c
        .lease_writes(&token)
        .iter()
        .rfind(|t| **t < fault_at)
        .expect("renewed before the outage");
    let stop =
        ch.c.cmd_events()
            .into_iter()
            .find(|e| e.kind == "stop" && e.pid == Some(cmd))
            .unwrap_or_else(|| panic!("CMD {cmd} never logged stop\n{}", ch.c.dump()));
    assert!(
        stop.nanos < ch.wall(last + LEASE),
        "CMD stopped {} ms after the last renewal, later than the {} ms lease\n{}",
        (stop.nanos.saturating_sub(ch.wall(last))) / 1_000_000,
        LEASE.as_millis(),
        ch.c.dump()
    );
    let new_leader = ch.settle();
    assert!(ch.c.starts().len() >= 2, "{}", ch.c.dump());
    ch.c.assert_no_overlap();
    eprintln!("{tag}: {leader} stepped down, {new_leader} leads");
    ch.finish();
}

#[test]
fn api_outage_with_503_longer_than_the_renew_deadline() {
    api_outage(
        "outage503",
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
}

#[test]
fn api_outage_with_connection_resets_longer_than_the_renew_deadline() {
    api_outage("outage-reset", Fault::Reset);
}

/// Only the leader is cut off (its requests' connections are reset): it steps down before its
/// lease could expire for the others, and a follower takes over only after the lease duration.
#[test]
fn partition_of_the_leader_only() {
    let mut ch = Chaos::new("partition", 3);
    let Leader {
        index: li,
        token,
        cmd,
        ..
    } = ch.steady_leader();
    ch.c.api.set_token_fault(&token, Fault::Reset);
    let code = ch.wait_exit(li, Duration::from_secs(15));
    assert_eq!(code, LOST_LEADERSHIP, "{}", ch.c.dump());
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.finish();
}

/// The leader's requests hang (read, never answered): its requests give up at their deadlines,
/// so it steps down in time and exits without waiting on a hung request.
#[test]
fn hung_requests_beyond_their_deadline() {
    let mut ch = Chaos::new("hang", 3);
    let Leader {
        identity: leader,
        index: li,
        token,
        cmd,
    } = ch.steady_leader();
    let fault_at = Instant::now();
    ch.c.api.set_token_fault(&token, Fault::Hang);
    let code = ch.wait_exit(li, Duration::from_secs(20));
    let exited = fault_at.elapsed();
    assert_eq!(code, LOST_LEADERSHIP, "{}", ch.c.dump());
    let log = log_of(&ch, &leader);
    // The exit waits for the elector (withdraw, release) only up to renew deadline + 1 s; a
    // request blocking past its deadline would show up as this warning.
    assert!(
        !log.contains("not released in time"),
        "a hung request held up the exit\n{log}"
    );
    assert!(
        exited < RENEW_DEADLINE + LEASE + Duration::from_secs(4),
        "exiting took {} ms after the hang started\n{log}",
        exited.as_millis()
    );
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.finish();
}

/// Connection resets and refused connections shorter than the renew deadline cost nothing:
/// the leader keeps renewing and its CMD keeps running.
#[test]
fn brief_connection_resets_and_refusals_do_not_cost_leadership() {
    let mut ch = Chaos::new("blips", 3);
    let Leader {
        identity: leader,
        token,
        cmd,
        ..
    } = ch.steady_leader();
    for fault in [Fault::Reset, Fault::RefuseConnections, Fault::Reset] {
        let before = ch.c.lease_writes(&token).len();
        ch.c.api.set_fault(fault.clone());
        std::thread::sleep(Duration::from_millis(1500));
        ch.c.api.clear_faults();
        wait_for(
            "two renewals after the blip",
            Duration::from_secs(10),
            || (ch.c.lease_writes(&token).len() >= before + 2).then_some(()),
        );
        assert!(
            ch.c.cmd_alive(cmd),
            "CMD stopped after a {fault:?} blip\n{}",
            ch.c.dump()
        );
    }
    assert_eq!(ch.c.starts(), [leader.as_str()], "{}", ch.c.dump());
    assert!(
        !log_of(&ch, &leader).contains("lost leadership"),
        "{}",
        ch.c.dump()
    );
    ch.assert_all_alive();
    assert_eq!(ch.settle(), leader);
    ch.finish();
}

/// A 429 storm with `Retry-After` longer than the renew deadline: the leader steps down (it
/// cannot renew), the followers back off as told instead of hammering the server, and after
/// the storm a leader exists again.
#[test]
fn too_many_requests_storm_with_retry_after() {
    let mut ch = Chaos::new("429", 3);
    let Leader { index: li, cmd, .. } = ch.steady_leader();
    let followers: Vec<String> = (0..3).filter(|i| *i != li).map(|i| ch.token(i)).collect();
    let storm = Duration::from_secs(6);
    let retry_after = 2;
    let start = Instant::now();
    ch.c.api.set_fault(Fault::Status {
        code: 429,
        retry_after: Some(retry_after),
    });
    std::thread::sleep(storm);
    ch.c.api.clear_faults();
    let end = Instant::now();
    assert_eq!(
        ch.wait_exit(li, Duration::from_secs(15)),
        LOST_LEADERSHIP,
        "{}",
        ch.c.dump()
    );
    assert!(!ch.c.cmd_alive(cmd));
    // Honouring Retry-After: a follower makes at most one request per Retry-After interval
    // (plus one for the watch it may restart after a throttled read).
    let bound = 2 * (storm.as_secs() / retry_after + 1) as usize;
    for token in &followers {
        let throttled: Vec<_> =
            ch.c.api
                .requests()
                .into_iter()
                .filter(|r| {
                    r.token.as_deref() == Some(token.as_str())
                        && r.at >= start
                        && r.at <= end
                        && r.code == 429
                })
                .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
                .collect();
        assert!(
            throttled.len() <= bound,
            "{token} sent {} requests during a {} s storm with Retry-After {retry_after}: \
             {throttled:#?}",
            throttled.len(),
            storm.as_secs()
        );
    }
    ch.settle();
    ch.finish();
}

/// Every replica's token rotates mid-lease (server accepts the new one, the file is swapped
/// atomically, the old one is revoked): the leader re-reads the file on the first 401 and
/// keeps leading without a step-down; the followers recover too.
#[test]
fn token_rotation_mid_lease_keeps_the_leader() {
    let mut ch = Chaos::new("rotate", 3);
    let Leader {
        identity: leader,
        index: li,
        cmd,
        ..
    } = ch.steady_leader();
    let mut order: Vec<usize> = vec![li];
    order.extend((0..3).filter(|i| *i != li));
    for i in order {
        let new = format!("rotated-{}", ch.pods[i].identity);
        let c = &ch.c;
        let r = ch.pods[i].replica.as_mut().expect("running");
        c.rotate_token(r, &new);
    }
    // Followers watch on long-lived streams; restart them so they need the new token now.
    ch.c.api.end_watches();
    let new_token = ch.token(li);
    wait_for(
        "three renewals with the rotated token",
        Duration::from_secs(15),
        || (ch.c.lease_writes(&new_token).len() >= 3).then_some(()),
    );
    for i in 0..3 {
        let token = ch.token(i);
        let identity = ch.pods[i].identity.clone();
        wait_for(
            &format!("a successful request of {identity} with its rotated token"),
            Duration::from_secs(15),
            || {
                ch.c.api
                    .requests()
                    .iter()
                    .any(|r| r.token.as_deref() == Some(token.as_str()) && r.code == 200)
                    .then_some(())
            },
        );
    }
    let log = log_of(&ch, &leader);
    assert!(
        log.contains("retrying with the rotated service-account token"),
        "{log}"
    );
    assert!(!log.contains("lost leadership"), "{log}");
    assert!(ch.c.cmd_alive(cmd), "the leader's CMD stopped\n{log}");
    assert_eq!(ch.c.starts(), [leader.as_str()], "{}", ch.c.dump());
    ch.assert_all_alive();
    assert_eq!(ch.settle(), leader);
    ch.finish();
}

/// A SIGKILLed leader takes its CMD with it (parent-death signal); a follower takes over only
/// after the lease duration.
#[test]
fn sigkilled_leader_is_replaced_after_the_lease_duration() {
    let mut ch = Chaos::new("sigkill", 3);
    let Leader {
        index: li,
        token,
        cmd,
        ..
    } = ch.steady_leader();
    ch.replica(li).signal("KILL");
    assert_eq!(ch.wait_exit(li, Duration::from_secs(5)), 137);
    wait_for("the orphaned CMD to die", Duration::from_secs(5), || {
        (!ch.c.cmd_alive(cmd)).then_some(())
    });
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.finish();
}

/// CMD exits non-zero: the replica exits with CMD's code after releasing the lease, and
/// another replica leads without waiting for the lease to expire.
#[test]
fn cmd_crash_passes_its_code_and_hands_over_promptly() {
    let mut ch = Chaos::new("crash", 3);
    let Leader {
        identity: leader,
        index: li,
        token,
        ..
    } = ch.steady_leader();
    std::fs::write(ch.c.dir.join("crash"), "").expect("touch crash");
    assert_eq!(
        ch.wait_exit(li, Duration::from_secs(10)),
        CMD_CRASH,
        "{}",
        ch.c.dump()
    );
    let log = log_of(&ch, &leader);
    assert!(log.contains("released the lease"), "{log}");
    let writes = ch.c.lease_writes(&token);
    let [.., last_renewal, _release] = writes.as_slice() else {
        panic!("expected renewals and a release\n{}", ch.c.dump());
    };
    let (taken, by) = wait_for("another replica to take the Lease", LEASE * 3, || {
        ch.takeover_after(&token, *last_renewal)
    });
    assert!(
        taken.duration_since(*last_renewal) < LEASE,
        "{by} took the released Lease {} ms after the last renewal: it waited for expiry\n{}",
        taken.duration_since(*last_renewal).as_millis(),
        ch.c.dump()
    );
    ch.finish();
}

/// A Deployment rollout: for each old pod in turn a new pod starts, then the old one gets
/// SIGTERM. Never two CMDs at once, every graceful hand-over is quick, and a new pod leads at
/// the end.
#[test]
fn rolling_restart_of_every_replica() {
    let mut ch = Chaos::new("rollout", 3);
    ch.steady_leader();
    for i in 0..3 {
        let identity = format!("r{i}-new");
        let n = ch.add_pod(&identity, &format!("10.0.0.{}", i + 4));
        ch.replica(n)
            .wait_log("new leader:", Duration::from_secs(15));
        let old = ch.pods[i].identity.clone();
        ch.replica(i).signal("TERM");
        ch.pods[i].retired = true;
        let code = ch.wait_exit(i, Duration::from_secs(10));
        assert!(
            code == 0 || code == 143,
            "{old} exited with {code} on SIGTERM\n{}",
            ch.c.dump()
        );
        // The next leader (if the old one led) is up before the next pod is replaced.
        let _ = ch.try_settle(Duration::from_secs(10));
    }
    let leader = ch.settle();
    assert!(leader.ends_with("-new"), "{leader}");
    // Each graceful hand-over (stop → next start) took well under a lease duration.
    let events = ch.c.cmd_events();
    for w in events.windows(2) {
        if w[0].kind == "stop" && w[1].kind == "start" {
            let gap = Duration::from_nanos((w[1].nanos.saturating_sub(w[0].nanos)) as u64);
            assert!(
                gap < LEASE,
                "hand-over {} → {} took {} ms\n{}",
                w[0].identity,
                w[1].identity,
                gap.as_millis(),
                ch.c.dump()
            );
        }
    }
    ch.finish();
}

/// CMD ignores SIGTERM for longer than the grace period when its replica loses the lease: it
/// is SIGKILLed at the grace, before the lease could expire, so there is still no overlap.
#[test]
fn slow_cmd_shutdown_is_cut_short_by_sigkill() {
    let mut ch = Chaos::new("stubborn", 3);
    let Leader {
        identity: leader,
        index: li,
        token,
        cmd,
    } = ch.steady_leader();
    std::fs::write(ch.c.dir.join("stubborn"), "").expect("touch stubborn");
    ch.c.api.set_token_fault(&token, Fault::Reset);
    assert_eq!(
        ch.wait_exit(li, Duration::from_secs(15)),
        LOST_LEADERSHIP,
        "{}",
        ch.c.dump()
    );
    let events = ch.c.cmd_events();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "ignored" && e.pid == Some(cmd)),
        "CMD never saw SIGTERM\n{}",
        ch.c.dump()
    );
    assert!(
        !events
            .iter()
            .any(|e| e.kind == "stop" && e.pid == Some(cmd)),
        "CMD exited by itself\n{}",
        ch.c.dump()
    );
    let log = log_of(&ch, &leader);
    assert!(
        log.contains("did not exit in time: sending SIGKILL"),
        "{log}"
    );
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.finish();
}

/// A follower's first read of the Lease is slow and a renewal lands while it is in flight; then
/// the leader is cut off. The follower must date what it read by the *answer* (the renewal may
/// have been stored just before the server answered), not by when it sent the request:
/// otherwise it judges the lease expired up to one request latency too early and starts CMD
/// while the old leader's CMD (here one that ignores SIGTERM, so it lives until the SIGKILL at
/// the grace) still runs.
#[test]
fn a_read_racing_a_renewal_is_dated_by_its_answer() {
    let mut ch = Chaos::new("slow-read", 1);
    let Leader {
        index: li,
        token,
        cmd,
        ..
    } = ch.steady_leader();
    wait_for("two renewals", Duration::from_secs(10), || {
        (ch.c.lease_writes(&token).len() >= 3).then_some(())
    });
    std::fs::write(ch.c.dir.join("stubborn"), "").expect("touch stubborn");
    // The follower's requests take 1.5 s: at least one renewal is stored while its GET waits.
    ch.c.api
        .set_token_fault("token-r1", Fault::Latency(Duration::from_millis(1500)));
    let fi = ch.add_pod("r1", "10.0.0.2");
    wait_for(
        "the follower's GET of the Lease",
        Duration::from_secs(10),
        || {
            ch.c.api
                .requests()
                .iter()
                .any(|r| {
                    r.token.as_deref() == Some("token-r1")
                        && r.resource == "leases"
                        && r.verb == "get"
                        && r.code == 200
                })
                .then_some(())
        },
    );
    // Cut the leader off right after the answer, before its next renewal.
    ch.c.api.set_token_fault(&token, Fault::Reset);
    ch.c.api.set_token_fault("token-r1", Fault::None);
    assert_eq!(
        ch.wait_exit(li, Duration::from_secs(15)),
        LOST_LEADERSHIP,
        "{}",
        ch.c.dump()
    );
    wait_for("the follower to take over", Duration::from_secs(15), || {
        let events = ch.c.cmd_events();
        (events.iter().filter(|e| e.kind != "ignored").count() >= 2).then_some(())
    });
    ch.c.assert_no_overlap();
    assert!(ch.alive(fi), "{}", ch.c.dump());
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.finish();
}
