//! What operators see: Kubernetes Events for each leadership transition (none when disabled
//! or forbidden, and a hanging events endpoint changes nothing of the election), JSON log
//! lines that parse and carry their fields, and untrusted text that cannot forge log lines.

use std::time::Duration;

use serde_json::{json, Value};
use test_apiserver::Fault;

use crate::cluster::{Cluster, Replica, LEASE, LOCK, NS};
use crate::wait::wait_for;

/// The events stored for the Lease, as (type, message), oldest first.
fn events(c: &Cluster) -> Vec<(String, String)> {
    let mut items = c.api.list_objects("events", NS);
    items.sort_by_key(|e| {
        e.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|rv| rv.parse::<u64>().ok())
    });
    items
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn wait_event(c: &Cluster, kind: &str, message_start: &str) -> Value {
    let what = format!("a {kind} event {message_start:?}");
    wait_for(&what, Duration::from_secs(15), || {
        c.api.list_objects("events", NS).into_iter().find(|e| {
            e["type"] == kind
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message_start))
        })
    })
}

/// Requests the API server saw to the events resource.
fn event_requests(c: &Cluster) -> Vec<test_apiserver::LoggedRequest> {
    c.api
        .requests()
        .into_iter()
        .filter(|r| r.resource == "events")
        .collect()
}

/// A Lease held by `holder` (not one of our replicas), renewed just now.
fn foreign_lease(holder: &str) -> Value {
    let now = test_apiserver::micro_time_now();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LOCK, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 4,
                 "acquireTime": now, "renewTime": now, "leaseTransitions": 7}
    })
}

#[test]
fn an_event_marks_each_leadership_transition() {
    let c = Cluster::new("events");
    let mut a = c.first_leader("pod-a");
    let became = wait_event(&c, "Normal", "pod-a became leader");
    assert_eq!(became["reason"], "LeaderElection");
    assert_eq!(became["involvedObject"]["kind"], "Lease");
    assert_eq!(became["involvedObject"]["name"], LOCK);
    let uid = c.lease().expect("lease")["metadata"]["uid"].clone();
    assert_eq!(became["involvedObject"]["uid"], uid, "{became}");
    assert_eq!(became["reportingInstance"], "pod-a");

    // Taken over behind its back: a Warning with the cause, then "stopped leading".
    let mut l = c.lease().expect("lease");
    l["spec"] = foreign_lease("intruder")["spec"].clone();
    c.api.put_object("leases", NS, l);
    let lost = wait_event(&c, "Warning", "pod-a lost leadership");
    assert!(
        lost["message"].as_str().unwrap_or("").contains("intruder"),
        "{lost}"
    );
    wait_event(&c, "Normal", "pod-a stopped leading");
    a.wait_exit(Duration::from_secs(15));

    // A clean term: elected once the intruder's lease expires, released on SIGTERM.
    let mut b = c.replica("pod-b", None, &[]);
    wait_event(&c, "Normal", "pod-b became leader");
    // The event may be posted before the main thread started CMD; a SIGTERM before that ends
    // the start-up (143) instead of handing over: wait for CMD.
    wait_for("pod-b's CMD to run", Duration::from_secs(10), || {
        c.running_cmds()
            .iter()
            .any(|(id, _)| id == "pod-b")
            .then_some(())
    });
    b.signal("TERM");
    assert_eq!(b.wait_exit(Duration::from_secs(10)).code(), Some(0));
    wait_event(&c, "Normal", "pod-b stopped leading");
    let seen = events(&c);
    let expected = [
        ("Normal", "pod-a became leader"),
        ("Warning", "pod-a lost leadership"),
        ("Normal", "pod-a stopped leading"),
        ("Normal", "pod-b became leader"),
        ("Normal", "pod-b stopped leading"),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    for ((kind, msg), (want_kind, want_msg)) in seen.iter().zip(expected) {
        assert!(kind == want_kind && msg.starts_with(want_msg), "{seen:?}");
    }
}

#[test]
fn no_events_when_disabled_and_one_warning_when_forbidden() {
    let c = Cluster::new("events-off");
    // Forbidden: one attempt, one WARN naming the permission, then no more tries.
    c.api.forbid("token-pod-f", "create", "events");
    let mut f = c.replica("pod-f", None, &[]);
    wait_for("pod-f to lead", Duration::from_secs(10), || {
        (c.starts() == ["pod-f"]).then_some(())
    });
    f.wait_log("cannot post Kubernetes Events", Duration::from_secs(10));
    f.signal("TERM");
    assert_eq!(f.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = f.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot post Kubernetes Events"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert!(warnings[0].contains("create on events"), "{log}");
    let tried = event_requests(&c);
    assert_eq!(tried.len(), 1, "one try only");
    assert_eq!(tried[0].code, 403);

    // Disabled: not a single request to the events resource.
    c.api.clear_requests();
    let mut d = c.replica("pod-d", None, &[("K8S_AWAIT_ELECTION_EVENTS", "off")]);
    wait_for("pod-d to lead", Duration::from_secs(10), || {
        (c.starts().last().map(String::as_str) == Some("pod-d")).then_some(())
    });
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(event_requests(&c).is_empty(), "{:?}", event_requests(&c));
    assert!(c.api.list_objects("events", NS).is_empty());
}

#[test]
fn a_hanging_or_failing_events_endpoint_holds_up_no_renewal_and_no_hand_over() {
    let c = Cluster::new("events-hang");
    c.api.set_resource_fault("events", Fault::Hang);
    let mut a = c.first_leader("pod-a");
    let mut b = c.replica("pod-b", None, &[]);
    // The leader keeps renewing while its "became leader" event hangs.
    wait_for(
        "pod-a to renew three times",
        Duration::from_secs(10),
        || (c.lease_writes("token-pod-a").len() >= 4).then_some(()),
    );
    assert!(
        event_requests(&c).iter().any(|r| r.code == 0),
        "the event was not attempted"
    );
    // Hand-over by release: pod-b leads before the lease could have expired.
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(
        a.log_text().contains("released the lease"),
        "{}",
        a.log_text()
    );
    wait_for("pod-b to lead", LEASE, || {
        (c.starts() == ["pod-a", "pod-b"]).then_some(())
    });
    c.assert_no_overlap();
    assert!(c.api.list_objects("events", NS).is_empty());

    // A failing endpoint: one warning, and the new leader renews on.
    c.api.set_resource_fault(
        "events",
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    let since = std::time::Instant::now();
    b.signal("TERM");
    assert_eq!(b.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = b.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("cannot post a Kubernetes Event"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(log.contains("released the lease"), "{log}");
    assert!(
        event_requests(&c)
            .iter()
            .any(|r| r.code == 500 && r.at > since),
        "the last event was not attempted"
    );
}

/// Every line of `r`'s log as a JSON object (panics naming the line that is not).
fn json_lines(r: &Replica) -> Vec<Value> {
    let text = r.log_text();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{text}"));
            let ts = v["ts"].as_str().unwrap_or("");
            // RFC 3339 with sub-second digits, UTC.
            assert!(
                ts.len() >= 24 && ts.as_bytes()[19] == b'.' && ts.ends_with('Z'),
                "{l}"
            );
            assert!(v["level"].is_string() && v["msg"].is_string(), "{l}");
            v
        })
        .collect()
}

#[test]
fn json_logs_parse_line_by_line_and_carry_their_fields() {
    let c = Cluster::new("json-logs");
    let json = [("K8S_AWAIT_ELECTION_LOG_FORMAT", "json")];
    let mut a = c.replica("pod-a", None, &json);
    wait_for("pod-a to lead", Duration::from_secs(10), || {
        (c.starts() == ["pod-a"]).then_some(())
    });
    let mut b = c.replica("pod-b", None, &json);
    b.wait_log("new leader", Duration::from_secs(10));
    // CMD exits 3 on its own: the exit code is logged and becomes ours.
    std::fs::write(c.dir.join("crash"), "").expect("crash file");
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(3));
    wait_for("pod-b to lead", Duration::from_secs(10), || {
        (c.starts().len() == 2).then_some(())
    });
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));

    let a_lines = json_lines(&a);
    for v in a_lines.iter().chain(json_lines(&b).iter()) {
        let id = v["identity"].as_str().unwrap_or("");
        assert!(id == "pod-a" || id == "pod-b", "{v}");
        assert_eq!(v["lease"], format!("{NS}/{LOCK}"), "{v}");
    }
    let has = |lines: &[Value], f: &dyn Fn(&Value) -> bool| lines.iter().any(f);
    assert!(has(&a_lines, &|v| v["pid"].as_u64().is_some_and(|p| p > 1)));
    assert!(has(&a_lines, &|v| v["exitCode"] == 3
        && v["msg"].as_str().unwrap_or("").starts_with("CMD exited")));
    assert!(has(&a_lines, &|v| v["exitCode"] == 3
        && v["msg"].as_str().unwrap_or("").starts_with("exiting")));
    assert!(has(&json_lines(&b), &|v| v["holder"] == "pod-a"));
}

#[test]
fn a_holder_with_a_newline_and_escape_codes_stays_one_log_line() {
    let c = Cluster::new("log-forging");
    let forged = "evil\n2026-01-01T00:00:00.000Z INFO  k8s-await-election: became leader\u{1b}[2J";
    c.api.put_object("leases", NS, foreign_lease(forged));
    let text_r = c.replica("pod-t", None, &[]);
    let json_r = c.replica("pod-j", None, &[("K8S_AWAIT_ELECTION_LOG_FORMAT", "json")]);
    text_r.wait_log("new leader", Duration::from_secs(10));
    json_r.wait_log("new leader", Duration::from_secs(10));

    let text = text_r.log_text();
    assert!(
        !text.contains('\u{1b}'),
        "an escape code reached the log:\n{text}"
    );
    let leader_lines: Vec<&str> = text.lines().filter(|l| l.contains("new leader")).collect();
    assert_eq!(leader_lines.len(), 1, "{text}");
    assert!(
        leader_lines[0].contains(
            r"evil\n2026-01-01T00:00:00.000Z INFO  k8s-await-election: became leader\u001b[2J"
        ),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00.000Z")),
        "a forged line:\n{text}"
    );

    let lines = json_lines(&json_r);
    let leader: Vec<&Value> = lines
        .iter()
        .filter(|v| v["msg"].as_str().unwrap_or("").starts_with("new leader"))
        .collect();
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0]["holder"], forged);
    assert!(!json_r.log_text().contains('\u{1b}'));
}
