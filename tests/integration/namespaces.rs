//! A namespace that does not exist (a mistyped `K8S_AWAIT_ELECTION_LOCK_NAMESPACE` or
//! `_SERVICE_NAMESPACE`): the API server refuses every create in it with 404
//! `namespaces "X" not found`, and no retry fixes that. The binary says so in one line naming
//! the variable and the namespace, exits 69 before CMD starts, and does not loop on creates.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::routing;

/// The lines of `log` that name `variable` and the namespace `ns`.
fn lines_naming(log: &str, variable: &str, ns: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(variable) && l.contains(&format!("{ns:?}")))
        .map(String::from)
        .collect()
}

/// How many creates (and updates) of `resource` the server saw.
fn writes(c: &Cluster, resource: &str) -> usize {
    c.api
        .requests()
        .iter()
        .filter(|r| r.resource == resource && (r.verb == "create" || r.verb == "update"))
        .count()
}

#[test]
fn missing_lock_namespace_is_one_line_exit_69_before_cmd() {
    let c = Cluster::new("ns-lock");
    let var = "K8S_AWAIT_ELECTION_LOCK_NAMESPACE";
    let mut r = c.replica("a", None, &[(var, "team-typo")]);
    let status = r.wait_exit(Duration::from_secs(10));
    let log = r.log_text();
    assert_eq!(status.code(), Some(69), "{log}");
    assert!(c.starts().is_empty(), "CMD must not start: {}", c.dump());
    let named = lines_naming(&log, var, "team-typo");
    assert_eq!(named.len(), 1, "one line naming the variable: {log}");
    assert!(named[0].contains("does not exist"), "{}", named[0]);
    assert_eq!(writes(&c, "leases"), 1, "one create, no loop: {log}");
    assert!(c.api.list_objects("leases", "team-typo").is_empty());
}

#[test]
fn missing_service_namespace_is_one_line_exit_69_before_cmd() {
    let c = Cluster::new("ns-service");
    let var = "K8S_AWAIT_ELECTION_SERVICE_NAMESPACE";
    let mut env = routing::env("10.0.0.1", "node-a").to_vec();
    env.push((var, "web-typo"));
    let mut r = c.replica("a", None, &env);
    let status = r.wait_exit(Duration::from_secs(10));
    let log = r.log_text();
    assert_eq!(status.code(), Some(69), "{log}");
    assert!(c.starts().is_empty(), "CMD must not start: {}", c.dump());
    let named = lines_naming(&log, var, "web-typo");
    assert_eq!(named.len(), 1, "one line naming the variable: {log}");
    assert!(named[0].contains("does not exist"), "{}", named[0]);
    // No create loop, no fallback to the v1 Endpoints object, and the Lease given back.
    assert_eq!(writes(&c, "endpointslices"), 1, "{log}");
    assert_eq!(writes(&c, "endpoints"), 0, "{log}");
    assert_eq!(c.holder(), None, "the lease is released: {}", c.dump());
}
