//! Service routing with real replicas of the binary: after every fail-over the Service's
//! Endpoints / EndpointSlice point at the new leader and nowhere else, labels others wrote
//! survive, the Go tool's RBAC keeps working in auto mode, withdrawal is conditional, and a
//! missing permission is named.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::cluster::{Cluster, Replica, NS};
use crate::routing::{self, advertised, endpoints, endpoints_ips, slice, slice_ips, SERVICE};
use crate::wait::wait_for;

/// Starts replica `identity` routing the Service to `ip`, in `mode` (None: the default, auto).
fn replica(c: &Cluster, identity: &str, ip: &str, mode: Option<&str>) -> Replica {
    let node = format!("node-{identity}");
    let mut env = routing::env(ip, &node).to_vec();
    if let Some(m) = mode {
        env.push(("K8S_AWAIT_ELECTION_SERVICE_MODE", m));
    }
    c.replica(identity, None, &env)
}

/// The set of just `ip`.
fn only(ip: &str) -> BTreeSet<String> {
    BTreeSet::from([ip.to_string()])
}

/// Waits for the `n`th CMD start; returns whose it was.
fn wait_leader(c: &Cluster, n: usize) -> String {
    wait_for(&format!("CMD start #{n}"), Duration::from_secs(15), || {
        c.starts().get(n - 1).cloned()
    })
}

/// SIGTERMs `old`, which must exit 0, and waits for the `n`th CMD start; returns whose it was.
fn hand_over(c: &Cluster, old: &mut Replica, n: usize) -> String {
    old.signal("TERM");
    let status = old.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", old.log_text());
    wait_leader(c, n)
}

#[test]
fn auto_mode_slice_follows_the_leader_and_keeps_foreign_labels() {
    let c = Cluster::new("route-auto");
    // An Endpoints object left behind by the Go tool with another pod in it.
    c.api.put_object(
        "endpoints",
        NS,
        json!({"metadata": {"name": SERVICE, "labels": {"old": "yes"}},
               "subsets": [{"addresses": [{"ip": "10.0.0.99"}], "ports": [{"port": 8080}]}]}),
    );
    let mut a = replica(&c, "a", "10.0.0.1", None);
    let mut b = replica(&c, "b", "10.0.0.2", None);
    let first = wait_leader(&c, 1);
    let (mut leader, mut follower, leader_ip, follower_ip) = if first == "a" {
        (&mut a, &mut b, "10.0.0.1", "10.0.0.2")
    } else {
        (&mut b, &mut a, "10.0.0.2", "10.0.0.1")
    };
    // Routing is done before CMD starts.
    let s = slice(&c).expect("slice");
    assert_eq!(slice_ips(&s), [leader_ip], "{s}");
    assert_eq!(
        advertised(&c),
        only(leader_ip),
        "the stale Endpoints object is gone"
    );
    assert!(endpoints(&c).is_none());
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(
        s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "k8s-await-election"
    );
    assert_eq!(s["endpoints"][0]["conditions"]["ready"], true);
    assert_eq!(s["endpoints"][0]["nodeName"], format!("node-{first}"));
    assert_eq!(
        s["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}])
    );

    // Somebody else labels and annotates our slice.
    let mut labelled = s.clone();
    labelled["metadata"]["labels"]["team"] = json!("db");
    labelled["metadata"]["annotations"] = json!({"note": "keep me"});
    c.api.put_object("endpointslices", NS, labelled);

    let second = hand_over(&c, leader, 2);
    assert_ne!(second, first);
    let s = slice(&c).expect("slice");
    assert_eq!(slice_ips(&s), [follower_ip], "{s}\n{}", c.dump());
    assert_eq!(advertised(&c), only(follower_ip));
    assert_eq!(s["metadata"]["labels"]["team"], "db", "{s}");
    assert_eq!(s["metadata"]["annotations"]["note"], "keep me", "{s}");
    assert_eq!(s["endpoints"][0]["nodeName"], format!("node-{second}"));
    std::mem::swap(&mut leader, &mut follower);
    leader.signal("TERM");
    leader.wait_exit(Duration::from_secs(10));
    c.assert_no_overlap();
}

#[test]
fn endpoints_mode_keeps_labels_and_never_touches_slices() {
    let c = Cluster::new("route-endpoints");
    c.api.put_object(
        "endpoints",
        NS,
        json!({"metadata": {"name": SERVICE, "labels": {"team": "db"},
                            "annotations": {"note": "keep me"}},
               "subsets": []}),
    );
    let mut a = replica(&c, "a", "10.0.0.1", Some("endpoints"));
    wait_leader(&c, 1);
    let e = endpoints(&c).expect("endpoints");
    assert_eq!(endpoints_ips(&e), ["10.0.0.1"], "{e}");
    assert_eq!(e["subsets"][0]["addresses"][0]["nodeName"], "node-a");
    assert_eq!(e["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(e["metadata"]["labels"]["team"], "db", "{e}");
    assert_eq!(e["metadata"]["annotations"]["note"], "keep me");

    let mut b = replica(&c, "b", "10.0.0.2", Some("endpoints"));
    b.wait_log("new leader", Duration::from_secs(10));
    hand_over(&c, &mut a, 2);
    let e = endpoints(&c).expect("endpoints");
    assert_eq!(advertised(&c), only("10.0.0.2"), "{e}");
    assert_eq!(e["metadata"]["labels"]["team"], "db", "{e}");
    assert!(slice(&c).is_none());
    assert!(
        c.api
            .requests()
            .iter()
            .all(|r| r.resource != "endpointslices"),
        "endpoints mode must not touch EndpointSlices"
    );
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));
    // The last leader withdrew itself.
    assert_eq!(
        endpoints_ips(&endpoints(&c).expect("endpoints")),
        Vec::<String>::new()
    );
}

#[test]
fn auto_mode_with_the_go_tool_rbac_falls_back_to_endpoints() {
    let c = Cluster::new("route-gotool");
    // The Go tool's Role (every release, up to v0.4.2): get, create, update on endpoints;
    // nothing on endpointslices.
    for id in ["a", "b"] {
        let token = format!("token-{id}");
        c.api.forbid(&token, "*", "endpointslices");
        c.api.forbid(&token, "delete", "endpoints");
    }
    let mut a = replica(&c, "a", "10.0.0.1", None);
    wait_leader(&c, 1);
    assert_eq!(advertised(&c), only("10.0.0.1"));
    assert!(slice(&c).is_none());
    a.wait_log("using the v1 Endpoints object", Duration::from_secs(5));

    let mut b = replica(&c, "b", "10.0.0.2", None);
    b.wait_log("new leader", Duration::from_secs(10));
    hand_over(&c, &mut a, 2);
    assert_eq!(advertised(&c), only("10.0.0.2"), "{}", c.dump());
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));
    c.assert_no_overlap();
}

/// A Role that may write EndpointSlices but not read them is no way to write ours (every
/// write is conditional on what was read): auto mode falls back to the v1 Endpoints object, and
/// no slice is written without reading it first.
#[test]
fn auto_mode_that_may_not_read_endpointslices_falls_back_to_endpoints() {
    let c = Cluster::new("route-noget");
    for id in ["a", "b"] {
        let token = format!("token-{id}");
        for verb in ["get", "list", "watch"] {
            c.api.forbid(&token, verb, "endpointslices");
        }
    }
    let mut a = replica(&c, "a", "10.0.0.1", None);
    wait_leader(&c, 1);
    a.wait_log("using the v1 Endpoints object", Duration::from_secs(5));
    assert!(
        slice(&c).is_none(),
        "a slice was written blind: {}",
        c.dump()
    );
    assert_eq!(
        endpoints_ips(&endpoints(&c).expect("endpoints")),
        ["10.0.0.1"],
        "{}",
        c.dump()
    );
    let mut b = replica(&c, "b", "10.0.0.2", None);
    b.wait_log("new leader", Duration::from_secs(10));
    hand_over(&c, &mut a, 2);
    assert_eq!(advertised(&c), only("10.0.0.2"), "{}", c.dump());
    assert!(slice(&c).is_none(), "{}", c.dump());
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));
    assert_eq!(advertised(&c), BTreeSet::new(), "{}", c.dump());
}

#[test]
fn ipv6_pod_ip_gives_an_ipv6_slice_and_a_family_change_replaces_it() {
    let c = Cluster::new("route-v6");
    let mut a = replica(&c, "a", "fd00:0:0:0::a", None);
    wait_leader(&c, 1);
    let s = slice(&c).expect("slice");
    assert_eq!(s["addressType"], "IPv6", "{s}");
    assert_eq!(slice_ips(&s), ["fd00::a"], "canonical form");

    // addressType is immutable: an IPv4 leader re-creates the slice.
    let mut b = replica(&c, "b", "10.0.0.2", None);
    b.wait_log("new leader", Duration::from_secs(10));
    hand_over(&c, &mut a, 2);
    let s = slice(&c).expect("slice");
    assert_eq!(s["addressType"], "IPv4", "{s}\n{}", c.dump());
    assert_eq!(advertised(&c), only("10.0.0.2"));
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));
}

#[test]
fn withdrawal_only_removes_our_own_address() {
    let c = Cluster::new("route-withdraw");
    let mut a = replica(&c, "a", "10.0.0.1", None);
    wait_leader(&c, 1);
    a.signal("TERM");
    a.wait_exit(Duration::from_secs(10));
    let s = slice(&c).expect("slice");
    assert_eq!(
        s["endpoints"],
        json!([]),
        "a stopping leader withdraws itself: {s}"
    );

    let mut b = replica(&c, "b", "10.0.0.2", None);
    wait_leader(&c, 2);
    // Meanwhile somebody (say, a newer leader) points the slice elsewhere.
    let mut other = slice(&c).expect("slice");
    other["endpoints"] = json!([{"addresses": ["10.0.0.77"], "conditions": {"ready": true}}]);
    c.api.put_object("endpointslices", NS, other);
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(10));
    let s = slice(&c).expect("slice");
    assert_eq!(
        slice_ips(&s),
        ["10.0.0.77"],
        "b must not remove another pod: {s}"
    );
}

#[test]
fn a_missing_permission_is_fatal_and_named() {
    let c = Cluster::new("route-forbidden");
    c.api.forbid("token-a", "create", "endpointslices");
    let mut a = replica(&c, "a", "10.0.0.1", Some("endpointslice"));
    let status = a.wait_exit(Duration::from_secs(15));
    assert_ne!(status.code(), Some(0));
    let log = a.log_text();
    assert!(
        log.contains(r#"create resource "endpointslices" in API group "discovery.k8s.io" in the namespace "default""#),
        "{log}"
    );
    assert!(c.starts().is_empty(), "CMD must not start");
    assert!(
        c.holder().is_none(),
        "the lease is released: {:?}",
        c.lease()
    );
}
