//! The status endpoint of the real binary: the Go tool's health answer on every path, the
//! `/status` document and `/metrics` following leadership, prompt answers while the API hangs,
//! and robustness against idle and garbage connections.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_apiserver::Fault;

use crate::cluster::Cluster;
use crate::wait::wait_for;

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// 127.0.0.1:`port`.
pub(crate) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Sends `raw` and returns the whole answer (the server closes after each response), or
/// None if the connection fails or nothing arrives within `timeout`.
fn exchange(port: u16, raw: &[u8], timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr(port), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(raw).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// (status code, body) of `METHOD path`.
pub(crate) fn request(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let raw =
        format!("{method} {path} HTTP/1.1\r\nHost: probe\r\nUser-Agent: kube-probe/1.31\r\n\r\n");
    let text = exchange(port, raw.as_bytes(), Duration::from_secs(2))?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// The `/status` document, if the answer is a 200.
pub(crate) fn status_doc(port: u16) -> Option<Value> {
    let (code, body) = request(port, "GET", "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The value of the sample `name{name="test"}` in `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let (code, body) = request(port, "GET", "/metrics")?;
    assert_eq!(code, 200);
    let prefix = format!("{name}{{name=\"test\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

#[test]
fn status_and_metrics_follow_leadership_and_survive_a_hanging_api() {
    let c = Cluster::new("status");
    let mut a = c.first_leader("a");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut b = c.replica(
        "b",
        None,
        &[("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", &endpoint)],
    );

    // A follower: healthy everywhere, the document names the leader, the gauge is 0.
    let doc = wait_for("b's /status naming a", Duration::from_secs(10), || {
        status_doc(port).filter(|d| d["holder"] == "a")
    });
    assert_eq!(doc["leading"], false, "{doc}");
    assert_eq!(doc["identity"], "b");
    assert_eq!(doc["name"], "test");
    assert_eq!(doc["lock"], "default/my-lock");
    assert_eq!(doc["status"], "ok");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("POST", "/x"),
        ("HEAD", "/"),
    ] {
        let (code, body) = request(port, method, path).expect("answer");
        assert_eq!(code, 200, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(body, r#"{"status": "ok"}"#, "{method} {path}");
        } else {
            assert!(body.is_empty());
        }
    }
    assert_eq!(metric(port, "leader_election_master_status"), Some(0.0));
    assert_eq!(
        metric(port, "k8s_await_election_transitions_total"),
        Some(0.0)
    );

    // a hands over; b leads and says so.
    a.signal("TERM");
    a.wait_exit(Duration::from_secs(10));
    let doc = wait_for("b's /status leading", Duration::from_secs(10), || {
        status_doc(port).filter(|d| d["leading"] == true)
    });
    assert_eq!(doc["holder"], "b", "{doc}");
    assert!(
        doc["lastRenewTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{doc}"
    );
    assert!(doc["leaseExpiryTime"].is_string(), "{doc}");
    assert_eq!(metric(port, "leader_election_master_status"), Some(1.0));
    assert_eq!(
        metric(port, "k8s_await_election_transitions_total"),
        Some(1.0)
    );
    wait_for("a renewal by b", Duration::from_secs(5), || {
        metric(port, "k8s_await_election_renewals_total").filter(|n| *n >= 2.0)
    });
    assert_eq!(request(port, "GET", "/").map(|r| r.0), Some(200));

    // The API hangs for b: the status thread keeps answering at once until b steps down.
    c.api.set_token_fault(&b.token, Fault::Hang);
    let hang_started = Instant::now();
    let mut answered = 0;
    while !b.has_exited() && hang_started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        match request(port, "GET", "/") {
            Some((code, body)) => {
                assert!(
                    t.elapsed() < Duration::from_millis(500),
                    "a probe took {:?}",
                    t.elapsed()
                );
                // Step-down comes after the renew deadline (3 s), long before "expired"
                // (lease 4 s + 2 s), so the answer stays healthy.
                assert_eq!((code, body.as_str()), (200, r#"{"status": "ok"}"#));
                answered += 1;
            }
            // The process is exiting.
            None => break,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        answered >= 10,
        "only {answered} probes answered during the hang"
    );
    let status = b.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(75), "lost leadership\n{}", b.log_text());
    c.api.clear_faults();
}

#[test]
fn idle_and_garbage_connections_do_not_delay_a_probe() {
    let c = Cluster::new("status-flood");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let _a = c.replica(
        "a",
        None,
        &[("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", &endpoint)],
    );
    wait_for("a to lead", Duration::from_secs(10), || {
        status_doc(port).filter(|d| d["leading"] == true)
    });

    // 100 clients that connect and say nothing, and some that send half a request.
    let mut idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr(port)).expect("connect"))
        .collect();
    for s in idle.iter_mut().take(10) {
        let _ = s.write_all(b"GET /status HTTP/1.1\r\nHost: slow");
    }
    // Garbage gets a 400 and does not take the server down.
    let garbage = exchange(
        port,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\xff\xfe\r\n\r\n",
        Duration::from_secs(2),
    )
    .expect("an answer to garbage");
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    // An oversized head gets 431.
    let mut big = b"GET / HTTP/1.1\r\nX-Fill: ".to_vec();
    big.resize(16 * 1024, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(port, &big, Duration::from_secs(2));
    assert!(
        answer
            .as_deref()
            .is_none_or(|a| a.starts_with("HTTP/1.1 431 ")),
        "{answer:?}"
    );

    for _ in 0..5 {
        let t = Instant::now();
        let (code, body) = request(port, "GET", "/healthz").expect("probe answered");
        assert_eq!((code, body.as_str()), (200, r#"{"status": "ok"}"#));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "probe took {:?}",
            t.elapsed()
        );
        assert_eq!(metric(port, "leader_election_master_status"), Some(1.0));
    }
    drop(idle);
    assert_eq!(request(port, "GET", "/").map(|r| r.0), Some(200));
}
