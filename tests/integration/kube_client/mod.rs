//! The Kubernetes REST client (`k8s_await_election::kube`) against the test API server:
//! every error class, TLS trust, token rotation, IPv6, deadlines, watches, and that the
//! token never shows up in errors, Debug output or log lines.

mod common;

use std::time::{Duration, Instant};

use k8s_await_election::kube::{
    self, Client, Error, InClusterConfig, ListParams, WatchEvent, WatchStream,
};
use serde_json::{json, Value};
use test_apiserver::{ApiServer, Fault, Options};

use common::TempDir;

const NS: &str = "default";

/// A server, a service-account dir holding `token` (registered with the server) and a
/// client built through `InClusterConfig::from_env`.
struct Setup {
    server: ApiServer,
    dir: TempDir,
    client: Client,
}

fn env_for(host: &str, port: u16, dir: &TempDir) -> impl Fn(&str) -> Option<String> + use<> {
    let host = host.to_string();
    let dir = dir.path().display().to_string();
    move |k: &str| match k {
        "KUBERNETES_SERVICE_HOST" => Some(host.clone()),
        "KUBERNETES_SERVICE_PORT" => Some(port.to_string()),
        "K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR" => Some(dir.clone()),
        _ => None,
    }
}

fn setup(token: &str) -> Setup {
    setup_with(token, ApiServer::start(), None)
}

fn setup_with(token: &str, server: ApiServer, refresh: Option<Duration>) -> Setup {
    let dir = TempDir::new("kube");
    server.add_token(token, "system:serviceaccount:default:test");
    server
        .write_service_account_dir(dir.path(), token, NS)
        .expect("write service-account dir");
    let cfg = InClusterConfig::from_env(&env_for("127.0.0.1", server.port(), &dir))
        .expect("in-cluster config");
    assert_eq!(cfg.namespace(), Some(NS));
    let client = match refresh {
        Some(r) => Client::with_token_refresh(cfg, r),
        None => Client::new(cfg),
    }
    .expect("client");
    Setup {
        server,
        dir,
        client,
    }
}

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

fn lease(name: &str, holder: &str) -> Value {
    let now = test_apiserver::micro_time_now();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0
        }
    })
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string()
}

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
fn wrong_ca_is_a_clear_tls_error() {
    let s = setup("tok-ca");
    let other = ApiServer::start();
    std::fs::write(s.dir.path().join("ca.crt"), other.ca_pem()).expect("write ca.crt");
    let cfg =
        InClusterConfig::from_env(&env_for("127.0.0.1", s.server.port(), &s.dir)).expect("config");
    let c = Client::new(cfg).expect("client");
    let e = c
        .get::<Value>(&kube::lease_path(NS, "x"), secs(5))
        .unwrap_err();
    let Error::Tls(msg) = &e else {
        panic!("expected Tls, got {e:?}")
    };
    assert!(msg.contains("certificate"), "{msg}");
    assert!(msg.contains("ca.crt"), "{msg}");
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(!e.is_transient());
}

#[test]
fn bad_ca_bundle_is_a_config_error() {
    let server = ApiServer::start();
    let dir = TempDir::new("badca");
    server
        .write_service_account_dir(dir.path(), "tok", NS)
        .expect("write dir");
    let env = env_for("127.0.0.1", server.port(), &dir);
    for garbage in [
        "".to_string(),
        "not a certificate\n".to_string(),
        "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n".to_string(),
    ] {
        std::fs::write(dir.path().join("ca.crt"), garbage).expect("write");
        let e = InClusterConfig::from_env(&env).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("ca.crt")),
            "{e:?}"
        );
    }
    // Several certificates (a rotated CA bundle) are fine.
    let bundle = format!("{}\n{}", ApiServer::start().ca_pem(), server.ca_pem());
    std::fs::write(dir.path().join("ca.crt"), bundle).expect("write");
    server.add_token("tok", "system:serviceaccount:default:test");
    let c = Client::new(InClusterConfig::from_env(&env).expect("config")).expect("client");
    let e = c
        .get::<Value>(&kube::lease_path(NS, "x"), secs(5))
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[test]
fn token_rotation_does_not_lose_a_request() {
    // Hour-long refresh: only the 401 can make the client re-read the file.
    let s = setup_with(
        "tok-old",
        ApiServer::start(),
        Some(Duration::from_secs(3600)),
    );
    let path = kube::lease_path(NS, "x");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("x", "a"), secs(5))
        .expect("create");

    // The kubelet writes a new token; the server stops accepting the old one.
    s.server
        .add_token("tok-new", "system:serviceaccount:default:test");
    std::fs::write(s.dir.path().join("token"), "tok-new\n").expect("rotate");
    s.server.remove_token("tok-old");
    s.server.clear_requests();

    let got: Value = s.client.get(&path, secs(5)).expect("get after rotation");
    assert_eq!(rv(&got), rv(&created));
    let log = s.server.requests();
    let seen: Vec<(Option<String>, u16)> = log.iter().map(|r| (r.token.clone(), r.code)).collect();
    assert_eq!(
        seen,
        vec![
            (Some("tok-old".to_string()), 401),
            (Some("tok-new".to_string()), 200)
        ]
    );

    // A briefly empty token file keeps the last good token.
    std::fs::write(s.dir.path().join("token"), "").expect("truncate");
    let _: Value = s.client.get(&path, secs(5)).expect("get with empty file");
}

#[test]
fn token_is_re_read_periodically() {
    let s = setup_with("tok-p1", ApiServer::start(), Some(Duration::ZERO));
    let path = kube::lease_path(NS, "x");
    let _ = s.client.get::<Value>(&path, secs(5));
    s.server
        .add_token("tok-p2", "system:serviceaccount:default:test");
    std::fs::write(s.dir.path().join("token"), "tok-p2").expect("rotate");
    s.server.clear_requests();
    let _ = s.client.get::<Value>(&path, secs(5));
    let log = s.server.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].token.as_deref(), Some("tok-p2"));
    assert_eq!(log[0].code, 404);
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

fn next_event(w: &mut WatchStream<Value>) -> WatchEvent<Value> {
    match w.next() {
        Some(Ok(ev)) => ev,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

#[test]
fn watch_sees_modified_and_deleted() {
    let s = setup("tok-watch");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("w", "a"), secs(5))
        .expect("create");
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("w"),
            &rv(&created),
            30,
            secs(10),
        )
        .expect("watch");
    let q = s
        .server
        .requests()
        .last()
        .map(|r| r.query.clone())
        .unwrap_or_default();
    for part in [
        "watch=1",
        "allowWatchBookmarks=true",
        "timeoutSeconds=30",
        "fieldSelector=metadata.name%3Dw",
    ] {
        assert!(q.contains(part), "{q}");
    }

    let mut changed = created.clone();
    changed["spec"]["holderIdentity"] = json!("b");
    let updated: Value = s
        .client
        .replace(&kube::lease_path(NS, "w"), &changed, secs(5))
        .expect("replace");
    match next_event(&mut w) {
        WatchEvent::Modified(obj) => {
            assert_eq!(obj["spec"]["holderIdentity"], "b");
            assert_eq!(rv(&obj), rv(&updated));
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // Another lease does not match the field selector.
    let _: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("other", "a"), secs(5))
        .expect("create other");
    s.client
        .delete(&kube::lease_path(NS, "w"), secs(5))
        .expect("delete");
    match next_event(&mut w) {
        WatchEvent::Deleted(obj) => assert_eq!(obj["metadata"]["name"], "w"),
        other => panic!("expected DELETED, got {other:?}"),
    }

    // The server ends the stream cleanly (timeoutSeconds reached): None, and stays None.
    s.server.finish_watches();
    assert!(w.next().is_none());
    assert!(w.next().is_none());
}

#[test]
fn watch_reports_bookmarks() {
    let s = setup("tok-bm");
    s.server.set_bookmark_interval(Duration::from_millis(100));
    let rv0 = s.server.resource_version();
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::default(),
            &rv0,
            30,
            secs(10),
        )
        .expect("watch");
    match next_event(&mut w) {
        WatchEvent::Bookmark { resource_version } => assert!(!resource_version.is_empty()),
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
}

#[test]
fn watch_from_compacted_version_is_gone() {
    let s = setup("tok-gone");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("g", "a"), secs(5))
        .expect("create");
    let mut changed = created.clone();
    changed["spec"]["holderIdentity"] = json!("b");
    let _: Value = s
        .client
        .replace(&kube::lease_path(NS, "g"), &changed, secs(5))
        .expect("replace");
    s.server.compact();
    let result = s.client.watch::<Value>(
        &kube::leases_path(NS),
        &ListParams::named("g"),
        &rv(&created),
        30,
        secs(10),
    );
    let mut w = match result {
        Ok(w) => w,
        // A server may also refuse with an HTTP 410; both mean "re-list".
        Err(e) => {
            assert!(matches!(e, Error::Gone(_)), "{e:?}");
            return;
        }
    };
    match w.next() {
        Some(Err(Error::Gone(msg))) => assert!(!msg.is_empty()),
        other => panic!("expected Gone, got {other:?}"),
    }
    assert!(w.next().is_none());
}

#[test]
fn watch_reads_are_bounded_by_the_deadline() {
    let s = setup("tok-wdl");
    let rv0 = s.server.resource_version();
    let start = Instant::now();
    let deadline = start + Duration::from_millis(600);
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("none"),
            &rv0,
            300,
            deadline,
        )
        .expect("watch");
    match w.next() {
        Some(Err(Error::Timeout)) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(late < Duration::from_millis(200), "{late:?} late");
    assert!(w.next().is_none());

    // A watch whose connection drops mid-stream is a transport error, not a clean end.
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("none"),
            &rv0,
            300,
            secs(10),
        )
        .expect("watch");
    s.server.end_watches();
    match w.next() {
        Some(Err(e)) => assert!(e.is_transient(), "{e:?}"),
        None => {} // acceptable: some servers' drops look like a clean close
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn endpoints_deprecation_warning_is_logged_once() {
    common::capture_logs();
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
    let warned: Vec<String> = common::logged_lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN") && l.contains("v1 Endpoints is deprecated"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
}

#[test]
fn token_never_appears_in_errors_debug_or_logs() {
    common::capture_logs();
    const TOKEN: &str = "tok-SECRET-6b1f0c9e";
    let s = setup(TOKEN);
    let path = kube::lease_path(NS, "x");
    let mut shown = Vec::new();

    let cfg =
        InClusterConfig::from_env(&env_for("127.0.0.1", s.server.port(), &s.dir)).expect("config");
    shown.push(format!("{cfg:?}"));
    shown.push(format!("{:?}", s.client));

    let mut collect = |e: Error| {
        shown.push(format!("{e}"));
        shown.push(format!("{e:?}"));
    };
    collect(s.client.get::<Value>(&path, secs(5)).unwrap_err()); // 404
    s.server.forbid(TOKEN, "*", "*");
    collect(s.client.get::<Value>(&path, secs(5)).unwrap_err()); // 403
    s.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    collect(s.client.get::<Value>(&path, secs(5)).unwrap_err());
    s.server.set_fault(Fault::Hang);
    collect(
        s.client
            .get::<Value>(&path, Instant::now() + Duration::from_millis(200))
            .unwrap_err(),
    );
    s.server.set_fault(Fault::Reset);
    collect(s.client.get::<Value>(&path, secs(5)).unwrap_err());
    s.server.clear_faults();
    s.server.remove_token(TOKEN);
    collect(s.client.get::<Value>(&path, secs(5)).unwrap_err()); // 401 + re-read
    collect(
        s.client
            .watch::<Value>(
                &kube::leases_path(NS),
                &ListParams::default(),
                "",
                5,
                secs(5),
            )
            .unwrap_err(),
    );

    // A broken token file never echoes the token either.
    std::fs::write(s.dir.path().join("ca.crt"), "garbage").expect("write");
    match InClusterConfig::from_env(&env_for("127.0.0.1", s.server.port(), &s.dir)) {
        Err(e) => collect(e),
        Ok(_) => panic!("garbage ca.crt accepted"),
    }

    assert!(shown.len() >= 16);
    for line in shown.iter().chain(common::logged_lines().iter()) {
        assert!(!line.contains(TOKEN), "token leaked: {line}");
    }
}
