//! Credentials: the cluster CA (a wrong one is a clear TLS error, a broken bundle a
//! configuration error), the bearer token re-read as it rotates, and the token never shown in
//! errors, Debug output or log lines.

use std::time::{Duration, Instant};

use k8s_await_election::kube::{self, Client, Error, InClusterConfig, ListParams};
use k8s_await_election::lease::Lease;
use serde_json::Value;
use test_apiserver::{ApiServer, Body, Fault};

use super::*;
use crate::logs;
use crate::tempdir::TempDir;

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
fn token_never_appears_in_errors_debug_or_logs() {
    logs::capture_logs();
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
    for line in shown.iter().chain(logs::logged_lines().iter()) {
        assert!(!line.contains(TOKEN), "token leaked: {line}");
    }
}

#[test]
fn a_server_echoing_the_token_never_gets_it_into_errors_or_logs() {
    logs::capture_logs();
    const TOKEN: &str = "tok-ECHOED-4e9d2a71";
    let s = setup(TOKEN);
    let path = kube::lease_path(NS, "x");
    let echo = |code: u16, body: &str| Fault::Answer {
        code,
        headers: vec![("Warning".into(), r#"299 - "hello {token}""#.into())],
        body: Body::Text(body.into()),
    };
    let status = r#"{"kind":"Status","status":"Failure","message":"no, {token}","reason":"Expired","code":410}"#;
    let mut shown = Vec::new();
    let mut collect = |e: Error| {
        shown.push(format!("{e}"));
        shown.push(format!("{e:?}"));
    };
    for (code, body) in [
        (200, "not JSON at all: {token}"),
        (200, r#"{"spec":{"leaseDurationSeconds":"{token}"}}"#),
        (200, r#"["{token}"]"#),
        // a well-formed Lease naming the token as its holder: refused, not decoded
        (
            200,
            r#"{"kind":"Lease","metadata":{"name":"x"},"spec":{"holderIdentity":"{token}"}}"#,
        ),
        (410, status),
        (400, "{token}"),
    ] {
        s.server.set_fault(echo(code, body));
        collect(s.client.get::<Lease>(&path, secs(5)).unwrap_err());
    }
    // Watch events: an ERROR event quoting the token, and lines that are not events.
    for line in [
        format!(r#"{{"type":"ERROR","object":{status}}}"#),
        r#"{"type":"{token}","object":{}}"#.to_string(),
        r#"{"type":"ADDED","object":{"spec":{"leaseDurationSeconds":"{token}"}}}"#.to_string(),
        r#"{"type":"MODIFIED","object":{"spec":{"holderIdentity":"{token}"}}}"#.to_string(),
        "{token}".to_string(),
    ] {
        s.server.set_fault(echo(200, &format!("{line}\n")));
        let mut events = s
            .client
            .watch::<Lease>(
                &kube::leases_path(NS),
                &ListParams::default(),
                "",
                5,
                secs(5),
            )
            .expect("watch starts");
        collect(events.next().expect("one event").unwrap_err());
    }
    assert_eq!(shown.len(), 22);
    let lines = logs::logged_lines();
    assert!(
        lines.iter().any(|l| l.contains("hello <redacted>")),
        "the Warning was logged"
    );
    for line in shown.iter().chain(lines.iter()) {
        assert!(!line.contains(TOKEN), "token leaked: {line}");
    }
}
