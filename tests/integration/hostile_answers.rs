//! Hostile or broken API answers (issue #13): a leader and a follower of the real binary while
//! the test API server answers every request with an oversized, deeply nested, endlessly
//! chunked, dripping or event-flooding body. Each process's peak resident memory (`VmHWM`)
//! stays under 8 MiB, and the leader's CMD is stopped before the Lease it last renewed could
//! expire. And a server that echoes our bearer token in any answer never gets it into a log.

use std::time::{Duration, Instant};

use test_apiserver::{Body, Fault};

use crate::cluster::{Cluster, LEASE};
use crate::prereqs::{require, static_binary};
use crate::procs::status_field;
use crate::wait::{poll, wait_for};

/// The peak resident memory either replica (the static release build) may reach, in KiB.
const MAX_HWM_KIB: u64 = 8 * 1024;

/// Peak resident set (`VmHWM`) of `pid` in KiB, while it runs.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field(&text, "VmHWM")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A leader and a follower; then every request is answered with `code` and `body`. Asserts
/// that the leader's CMD is gone before its last renewal could have expired and that neither
/// process's VmHWM ever exceeds [`MAX_HWM_KIB`] (sampled every 20 ms until both exit or 3 s
/// after the step-down).
fn survive(test: &str, tag: &str, code: u16, body: Body) {
    let Some(bin) = require(test, static_binary()) else {
        return;
    };
    let c = Cluster::new(tag).with_binary(bin);
    let mut leader = c.first_leader("leader");
    let mut follower = c.replica("follower", None, &[]);
    // The follower is watching (or at least has read the Lease) before the fault starts.
    follower.wait_log("leader", Duration::from_secs(10));
    let (_, cmd) = c.running_cmds().pop().expect("the leader's CMD runs");
    let pids = [leader.pid(), follower.pid()];
    let mut peak = [0u64; 2];
    let sample = |peak: &mut [u64; 2]| {
        for (p, pid) in peak.iter_mut().zip(pids) {
            if let Some(kib) = vm_hwm_kib(pid) {
                *p = (*p).max(kib);
            }
        }
    };
    let faulted_at = Instant::now();
    c.api.set_fault(Fault::Answer {
        code,
        headers: Vec::new(),
        body,
    });
    // Renewals the server read before the fault may be logged a little later.
    std::thread::sleep(Duration::from_millis(100));
    let last_renewal = c
        .lease_writes(&leader.token)
        .into_iter()
        .filter(|at| *at < faulted_at)
        .max()
        .expect("the leader renewed");
    let expiry = last_renewal + LEASE;
    let stopped = poll(expiry.saturating_duration_since(Instant::now()), || {
        sample(&mut peak);
        (!c.cmd_alive(cmd)).then_some(Instant::now())
    });
    assert!(
        stopped.is_some(),
        "the leader's CMD still ran when the Lease it last renewed expired\n{}",
        c.dump()
    );
    let _ = poll(Duration::from_secs(3), || {
        sample(&mut peak);
        (leader.has_exited() && follower.has_exited()).then_some(())
    });
    c.assert_no_overlap();
    for (who, kib) in ["leader", "follower"].iter().zip(peak) {
        assert!(
            kib > 0 && kib < MAX_HWM_KIB,
            "{who}: VmHWM {kib} KiB (limit {MAX_HWM_KIB} KiB)\n{}",
            c.dump()
        );
    }
    eprintln!(
        "{tag}: VmHWM leader {} KiB, follower {} KiB",
        peak[0], peak[1]
    );
}

#[test]
fn an_oversized_answer_costs_no_memory_and_the_leader_steps_down_in_time() {
    survive(
        "an_oversized_answer_costs_no_memory_and_the_leader_steps_down_in_time",
        "hostile-huge",
        200,
        Body::Huge(8 << 20),
    );
}

#[test]
fn a_deeply_nested_answer_is_refused_and_the_leader_steps_down_in_time() {
    survive(
        "a_deeply_nested_answer_is_refused_and_the_leader_steps_down_in_time",
        "hostile-nested",
        200,
        Body::Nested {
            depth: 100,
            size: 3 << 19,
        },
    );
}

#[test]
fn an_endless_answer_is_cut_off_and_the_leader_steps_down_in_time() {
    survive(
        "an_endless_answer_is_cut_off_and_the_leader_steps_down_in_time",
        "hostile-endless",
        200,
        Body::Endless {
            unit: r#"{"metadata":{"annotations":{"a":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0"#.into(),
            chunk: 64 << 10,
            every: Duration::ZERO,
        },
    );
}

#[test]
fn a_dripping_answer_ends_at_the_deadline_and_the_leader_steps_down_in_time() {
    survive(
        "a_dripping_answer_ends_at_the_deadline_and_the_leader_steps_down_in_time",
        "hostile-drip",
        200,
        Body::Endless {
            unit: "[0,".into(),
            chunk: 512 << 10,
            every: Duration::from_millis(100),
        },
    );
}

#[test]
fn a_flood_of_events_costs_no_memory_and_the_leader_steps_down_in_time() {
    let event = r#"{"type":"MODIFIED","object":{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"my-lock","namespace":"default","resourceVersion":"1"},"spec":{"holderIdentity":"leader","leaseDurationSeconds":4}}}"#;
    survive(
        "a_flood_of_events_costs_no_memory_and_the_leader_steps_down_in_time",
        "hostile-flood",
        200,
        Body::Endless {
            unit: format!("{event}\n"),
            chunk: 64 << 10,
            every: Duration::ZERO,
        },
    );
}

/// `{token}` in a [`Body::Text`] or a header value: the request's bearer token.
fn echo(code: u16, body: &str) -> Fault {
    Fault::Answer {
        code,
        headers: vec![("Warning".into(), r#"299 - "deprecated for {token}""#.into())],
        body: Body::Text(body.into()),
    }
}

#[test]
fn a_server_echoing_the_token_never_gets_it_into_the_log() {
    let c = Cluster::new("echo");
    let faults = [
        // 2xx bodies that do not decode: not JSON, and JSON of the wrong shape
        echo(200, "<html>proxy says hello to {token}</html>"),
        echo(200, r#"{"kind":"Lease","metadata":"{token}"}"#),
        // a well-formed Lease held by "the token"
        echo(
            200,
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"my-lock","namespace":"default","resourceVersion":"9"},"spec":{"holderIdentity":"{token}","leaseDurationSeconds":4,"renewTime":"2030-01-01T00:00:00.000000Z"}}"#,
        ),
        // the same with the token in JSON escapes, which only decoding turns into the token
        echo(
            200,
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"my-lock","namespace":"default","resourceVersion":"9"},"spec":{"holderIdentity":"{token-escaped}","leaseDurationSeconds":4,"renewTime":"2030-01-01T00:00:00.000000Z"}}"#,
        ),
        // a Status message of a 5xx and of a 4xx
        echo(
            503,
            r#"{"kind":"Status","status":"Failure","message":"overloaded; token {token}","reason":"ServiceUnavailable","code":503}"#,
        ),
        echo(
            409,
            r#"{"kind":"Status","status":"Failure","message":"conflict for {token}","reason":"Conflict","code":409}"#,
        ),
        // bodies of errors that are not Status objects
        echo(500, "internal error: bad token {token}\n"),
        echo(403, "{token} is not allowed"),
    ];
    let mut replicas: Vec<_> = (0..faults.len())
        .map(|i| c.replica(&format!("echo-{i}"), None, &[]))
        .collect();
    for (r, fault) in replicas.iter().zip(&faults) {
        c.api.set_token_fault(&r.token, fault.clone());
    }
    // Each replica gets two answers echoing its token, or one if it gives up on it.
    let what = "echoing answers to every replica";
    wait_for(what, Duration::from_secs(10), || {
        let log = c.api.requests();
        replicas
            .iter_mut()
            .zip(&faults)
            .all(|(r, f)| {
                let Fault::Answer { code, .. } = f else {
                    return false;
                };
                let answers = log
                    .iter()
                    .filter(|q| q.token.as_deref() == Some(&r.token) && q.code == *code)
                    .count();
                answers >= 2 || (answers == 1 && r.has_exited())
            })
            .then_some(())
    });
    // A second request, or the exit, comes after the first answer was handled and logged.
    for r in replicas {
        let log = r.log_text();
        assert!(
            !log.contains(&r.token),
            "{}'s token in its log:\n{log}",
            r.identity
        );
        drop(r);
    }
}
