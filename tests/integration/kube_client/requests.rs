//! Requests and what their failures become: CRUD and the error classes (404, 409, 422, 403
//! with the RBAC message, 401 without retry, 429 and 5xx as transient, resets and refusals as
//! transport errors), deadlines against hung and slow servers, IPv6, and the deprecation
//! warning of the Endpoints API.

use std::time::{Duration, Instant};

use k8s_await_election::kube::{self, Client, Error, InClusterConfig, ListParams};
use serde_json::{json, Value};
use test_apiserver::{ApiServer, Fault, Options};

use super::*;
use crate::logs;
use crate::tempdir::TempDir;

#[test]
fn crud_and_error_classes() {
    let s = setup("tok-crud");
    let c = &s.client;
    let path = kube::lease_path(NS, "crud");

    let created: Value = c
        .create(&kube::leases_path(NS), &lease("crud", "a"), secs(5))
        .expect("create");
    assert_eq!(created["spec"]["holderIdentity"], "a");

    // 409 AlreadyExists on a second POST.
    let e = c
        .create::<_, Value>(&kube::leases_path(NS), &lease("crud", "b"), secs(5))
        .unwrap_err();
    assert!(
        matches!(&e, Error::AlreadyExists(m) if m.contains("already exists")),
        "{e:?}"
    );
    assert!(!e.is_transient());

    let got: Value = c.get(&path, secs(5)).expect("get");
    assert_eq!(rv(&got), rv(&created));

    // Conditional PUT with the current resourceVersion succeeds...
    let mut next = got.clone();
    next["spec"]["holderIdentity"] = json!("b");
    let updated: Value = c.replace(&path, &next, secs(5)).expect("replace");
    assert_eq!(updated["spec"]["holderIdentity"], "b");
    assert_ne!(rv(&updated), rv(&got));

    // ...and with the stale one is a 409 Conflict.
    let e = c.replace::<_, Value>(&path, &next, secs(5)).unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("has been modified")),
        "{e:?}"
    );

    // 422 Invalid: leaseDurationSeconds <= 0.
    let mut bad = lease("bad", "a");
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    let e = c
        .create::<_, Value>(&kube::leases_path(NS), &bad, secs(5))
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");

    // list with a field selector.
    let list: Value = c
        .list(&kube::leases_path(NS), &ListParams::named("crud"), secs(5))
        .expect("list");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "crud");

    // delete, then 404 for get and delete.
    c.delete(&path, secs(5)).expect("delete");
    let e = c.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(
        matches!(&e, Error::NotFound(m) if m.contains("not found")),
        "{e:?}"
    );
    assert_eq!(e.status_code(), Some(404));
    assert!(matches!(
        c.delete(&path, secs(5)).unwrap_err(),
        Error::NotFound(_)
    ));
}

#[test]
fn forbidden_carries_the_rbac_message() {
    let s = setup("tok-rbac");
    s.server.forbid("tok-rbac", "update", "leases");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("rbac", "a"), secs(5))
        .expect("create is allowed");
    let e = s
        .client
        .replace::<_, Value>(&kube::lease_path(NS, "rbac"), &created, secs(5))
        .unwrap_err();
    let Error::Forbidden(msg) = &e else {
        panic!("expected Forbidden, got {e:?}")
    };
    assert!(
        msg.contains(r#"cannot update resource "leases" in API group "coordination.k8s.io""#),
        "{msg}"
    );
    assert!(msg.contains("system:serviceaccount:default:test"), "{msg}");
    assert!(e.to_string().contains(msg.as_str()), "{e}");
    assert!(!e.is_transient());
}

#[test]
fn unknown_token_is_unauthorized_without_retry() {
    let s = setup("tok-known");
    s.server.remove_token("tok-known");
    s.server.clear_requests();
    let e = s
        .client
        .get::<Value>(&kube::lease_path(NS, "x"), secs(5))
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert!(e.is_transient());
    // The token file did not change, so the request is not repeated.
    assert_eq!(s.server.requests().len(), 1);
}

#[test]
fn throttling_and_server_errors_are_transient() {
    let s = setup("tok-5xx");
    let path = kube::lease_path(NS, "x");

    s.server.set_fault(Fault::Status {
        code: 429,
        retry_after: Some(7),
    });
    let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::TooManyRequests { .. }), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.is_transient());

    for code in [500, 503, 504] {
        s.server.set_fault(Fault::Status {
            code,
            retry_after: None,
        });
        let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
        assert!(
            matches!(e, Error::Server { code: c, .. } if c == code),
            "{e:?}"
        );
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), None);
    }

    // Other 4xx codes keep code and reason.
    s.server.set_fault(Fault::Status {
        code: 400,
        retry_after: None,
    });
    let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::Http { code: 400, .. }), "{e:?}");
    assert!(!e.is_transient());

    s.server.clear_faults();
    let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[test]
fn reset_and_refused_connections_are_transport_errors() {
    let s = setup("tok-reset");
    let path = kube::lease_path(NS, "x");
    s.server.set_fault(Fault::Reset);
    let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_transient());

    s.server.set_fault(Fault::RefuseConnections);
    let e = s.client.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");

    // Nothing listening at all.
    let port = s.server.port();
    drop(s.server);
    let cfg = InClusterConfig::from_env(&env_for("127.0.0.1", port, &s.dir)).expect("config");
    let c = Client::new(cfg).expect("client");
    let e = c.get::<Value>(&path, secs(5)).unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
}

#[test]
fn ipv6_loopback() {
    let server = ApiServer::start_with(Options {
        ipv6: true,
        ..Options::default()
    })
    .expect("start");
    let Some(port) = server.port_v6() else {
        eprintln!("skipping: no IPv6 loopback on this host");
        return;
    };
    let dir = TempDir::new("v6");
    server.add_token("tok-v6", "system:serviceaccount:default:test");
    server
        .write_service_account_dir(dir.path(), "tok-v6", NS)
        .expect("write dir");
    let cfg = InClusterConfig::from_env(&env_for("::1", port, &dir)).expect("config");
    let c = Client::new(cfg).expect("client");
    assert_eq!(c.base_url(), format!("https://[::1]:{port}"));
    let created: Value = c
        .create(&kube::leases_path(NS), &lease("v6", "a"), secs(5))
        .expect("create over IPv6 (certificate has an IP SAN for ::1)");
    assert_eq!(created["metadata"]["name"], "v6");
}

#[test]
fn hung_server_times_out_at_the_deadline() {
    let s = setup("tok-hang");
    let path = kube::lease_path(NS, "x");
    // Warm up a pooled connection too: the timeout must hold on reused connections.
    let _ = s.client.get::<Value>(&path, secs(5));
    s.server.set_fault(Fault::Hang);
    for _ in 0..2 {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(700);
        let e = s.client.get::<Value>(&path, deadline).unwrap_err();
        let late = Instant::now().saturating_duration_since(deadline);
        assert_eq!(e, Error::Timeout);
        assert!(Instant::now() >= deadline - Duration::from_millis(20));
        assert!(late < Duration::from_millis(200), "{late:?} late");
        assert!(e.is_transient());
    }
    let start = Instant::now();
    let e = s
        .client
        .replace::<_, Value>(&path, &lease("x", "a"), start + Duration::from_millis(500))
        .unwrap_err();
    assert_eq!(e, Error::Timeout);
    assert!(start.elapsed() < Duration::from_millis(700));

    // A deadline already passed fails at once, without a request.
    s.server.clear_faults();
    s.server.clear_requests();
    let e = s
        .client
        .get::<Value>(&path, Instant::now() - Duration::from_millis(1))
        .unwrap_err();
    assert_eq!(e, Error::Timeout);
    assert!(s.server.requests().is_empty());
}

#[test]
fn slow_server_within_deadline_succeeds() {
    let s = setup("tok-slow");
    s.server
        .set_fault(Fault::Latency(Duration::from_millis(300)));
    let e = s
        .client
        .get::<Value>(&kube::lease_path(NS, "x"), secs(5))
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let start = Instant::now();
    let e = s
        .client
        .get::<Value>(
            &kube::lease_path(NS, "x"),
            start + Duration::from_millis(100),
        )
        .unwrap_err();
    assert_eq!(e, Error::Timeout);
}

#[test]
fn endpoints_deprecation_warning_is_logged_once() {
    logs::capture_logs();
    let s = setup("tok-warn");
    let ep = |ip: &str| {
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "svc-warn", "namespace": NS},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]
        })
    };
    let path = kube::endpoints_path(NS, "svc-warn");
    let _: Value = s
        .client
        .replace(&path, &ep("10.0.0.1"), secs(5))
        .expect("PUT creates endpoints");
    let _: Value = s.client.get(&path, secs(5)).expect("get endpoints");
    let warned: Vec<String> = logs::logged_lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN") && l.contains("v1 Endpoints is deprecated"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
}
