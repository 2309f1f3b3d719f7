//! core/v1 Events: create and list, the legacy validation, RBAC, and per-resource faults.
use crate::client::*;
use serde_json::{json, Value};
use std::time::Duration;
use test_apiserver::Fault;

const EVENTS: &str = "/api/v1/namespaces/default/events";

fn event(name: &str, ns: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": NS},
        "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "name": "my-lock", "namespace": ns},
        "reason": "LeaderElection",
        "message": "pod-0 became leader",
        "type": kind,
        "source": {"component": "k8s-await-election"},
        "firstTimestamp": "2026-11-24T08:15:30Z",
        "lastTimestamp": "2026-11-24T08:15:30Z",
        "count": 1,
        "reportingComponent": "k8s-await-election",
        "reportingInstance": "pod-0"
    })
}

#[test]
fn events_are_created_listed_and_validated() {
    let srv = server();
    let r = call(
        &srv,
        "POST",
        EVENTS,
        Some(&event("my-lock.1", NS, "Normal")),
    );
    assert_eq!(r.code, 201, "{}", r.json());
    assert!(!r.json()["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .is_empty());
    let listed = call(&srv, "GET", EVENTS, None).json();
    assert_eq!(listed["kind"], "EventList");
    assert_eq!(listed["items"][0]["message"], "pod-0 became leader");
    assert_eq!(srv.list_objects("events", NS).len(), 1);

    let r = call(
        &srv,
        "POST",
        EVENTS,
        Some(&event("my-lock.2", "other", "Normal")),
    );
    let (code, reason, msg) = status_of(&r);
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{msg}");
    assert!(msg.contains("involvedObject.namespace"), "{msg}");
    let r = call(&srv, "POST", EVENTS, Some(&event("my-lock.3", NS, "Loud")));
    assert_eq!(status_of(&r).0, 422);
    // Events are not created by a PUT (AllowCreateOnUpdate is false for them).
    let r = call(
        &srv,
        "PUT",
        &format!("{EVENTS}/my-lock.4"),
        Some(&event("my-lock.4", NS, "Normal")),
    );
    assert_eq!(status_of(&r).0, 404);
}

#[test]
fn creating_events_can_be_forbidden() {
    let srv = server();
    srv.forbid(TOKEN, "create", "events");
    let r = call(
        &srv,
        "POST",
        EVENTS,
        Some(&event("my-lock.1", NS, "Normal")),
    );
    let (code, _, msg) = status_of(&r);
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "events is forbidden: User \"system:serviceaccount:default:replica-1\" cannot create resource \"events\" in API group \"\" in the namespace \"default\""
    );
}

#[test]
fn a_resource_fault_hits_only_that_resource() {
    let srv = server();
    srv.set_resource_fault("events", Fault::Hang);
    assert_eq!(call(&srv, "GET", LEASES, None).code, 200);
    let mut c = Client::connect(&srv);
    c.set_timeout(Duration::from_millis(300));
    c.send("GET", EVENTS, Some(TOKEN), None, &[]).unwrap();
    assert!(c.read_response().is_err(), "the events request must hang");
    srv.set_resource_fault(
        "events",
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    assert_eq!(call(&srv, "GET", EVENTS, None).code, 500);
    srv.clear_faults();
    assert_eq!(call(&srv, "GET", EVENTS, None).code, 200);
}
