//! Fault injection, the request log, connection handling and the TLS setup.
use crate::client::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_apiserver::{ApiServer, Body, Fault, Options};

fn addr(srv: &ApiServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], srv.port()))
}

#[test]
fn latency_delays_responses() {
    let srv = server();
    let mut c = Client::connect(&srv);
    srv.set_fault(Fault::Latency(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    srv.clear_faults();
    let t = Instant::now();
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[test]
fn hang_never_answers_until_cleared() {
    let srv = server();
    srv.set_fault(Fault::Hang);
    let mut c = Client::connect(&srv);
    c.set_timeout(Duration::from_millis(300));
    c.send("GET", LEASES, Some(TOKEN), None, &[]).unwrap();
    let err = c.read_response().unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
    assert_eq!(
        srv.requests().last().unwrap().code,
        0,
        "hung requests are logged with code 0"
    );
    srv.clear_faults();
    // the hung connection is then closed without an answer; new requests work
    c.set_timeout(Duration::from_secs(5));
    assert!(c.read_response().is_err());
    assert_eq!(call(&srv, "GET", LEASES, None).code, 200);
}

#[test]
fn status_faults_answer_with_status_bodies() {
    let srv = server();
    let mut c = Client::connect(&srv);
    for (code, reason) in [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (504, "Timeout"),
    ] {
        srv.set_fault(Fault::Status {
            code,
            retry_after: None,
        });
        let r = c.request("GET", &format!("{LEASES}/x"), Some(TOKEN), None);
        assert_eq!(r.code, code);
        assert_eq!(r.json()["kind"], "Status");
        assert_eq!(r.json()["reason"], reason);
        assert_eq!(r.json()["code"], code);
        assert!(r.header("retry-after").is_none());
    }
    srv.set_fault(Fault::Status {
        code: 429,
        retry_after: Some(3),
    });
    let r = c.request(
        "PUT",
        &format!("{LEASES}/x"),
        Some(TOKEN),
        Some(&lease("x", "a")),
    );
    assert_eq!(r.code, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["reason"], "TooManyRequests");
    assert_eq!(r.json()["details"]["retryAfterSeconds"], 3);
    assert!(
        srv.get_object("leases", NS, "x").is_none(),
        "faulted writes do not happen"
    );
    // watches get the Status too
    assert_eq!(
        c.request("GET", &format!("{LEASES}?watch=1"), Some(TOKEN), None)
            .code,
        429
    );
}

#[test]
fn reset_closes_without_answer() {
    let srv = server();
    srv.set_fault(Fault::Reset);
    let mut c = Client::connect(&srv);
    c.send("GET", LEASES, Some(TOKEN), None, &[]).unwrap();
    assert!(c.read_response().is_err());
    srv.clear_faults();
    assert_eq!(call(&srv, "GET", LEASES, None).code, 200);
}

#[test]
fn refuse_connections_closes_before_tls() {
    let srv = server();
    srv.set_fault(Fault::RefuseConnections);
    assert!(Client::try_connect(&srv.ca_pem(), addr(&srv)).is_err());
    srv.clear_faults();
    assert!(Client::try_connect(&srv.ca_pem(), addr(&srv)).is_ok());
}

#[test]
fn token_faults_partition_one_replica() {
    let srv = server();
    srv.add_token("token-2", "system:serviceaccount:default:replica-2");
    srv.set_token_fault(
        "token-2",
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let mut c = Client::connect(&srv);
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    assert_eq!(c.request("GET", LEASES, Some("token-2"), None).code, 503);
    srv.set_token_fault("token-2", Fault::Reset);
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    let mut c2 = Client::connect(&srv);
    c2.send("GET", LEASES, Some("token-2"), None, &[]).unwrap();
    assert!(c2.read_response().is_err());
    // a per-token fault wins over the global one
    srv.set_fault(Fault::Status {
        code: 500,
        retry_after: None,
    });
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 500);
    srv.set_token_fault(
        TOKEN,
        Fault::Status {
            code: 504,
            retry_after: None,
        },
    );
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 504);
    srv.clear_faults();
    assert_eq!(
        Client::connect(&srv)
            .request("GET", LEASES, Some("token-2"), None)
            .code,
        200
    );
}

#[test]
fn request_log_records_everything() {
    let dir = std::env::temp_dir().join(format!("test-apiserver-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("requests.log");
    let _ = std::fs::remove_file(&file);
    let srv = ApiServer::start_with(Options {
        ipv6: false,
        request_log_file: Some(file.clone()),
    })
    .unwrap();
    srv.add_token(TOKEN, USER);
    srv.forbid(TOKEN, "delete", "leases");
    let mut c = Client::connect(&srv);
    c.request(
        "GET",
        &format!("{LEASES}?labelSelector=a%3Db"),
        Some(TOKEN),
        None,
    );
    c.request("POST", LEASES, Some(TOKEN), Some(&lease("a", "x")));
    c.request("GET", &format!("{LEASES}/a"), Some(TOKEN), None);
    c.request("DELETE", &format!("{LEASES}/a"), Some(TOKEN), None);
    c.request("GET", &format!("{ENDPOINTS}/svc"), None, None);
    srv.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    c.request("PUT", &format!("{SLICES}/s"), Some(TOKEN), Some(&json!({})));
    srv.clear_faults();
    let mut w = Client::connect(&srv);
    w.watch(&format!("{LEASES}?watch=1&timeoutSeconds=1"), TOKEN);
    while w.next_event().unwrap().is_some() {}
    let log = srv.requests();
    type Row<'a> = (&'a str, &'a str, &'a str, u16, &'a str, Option<&'a str>);
    let got: Vec<Row> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.verb.as_str(),
                r.resource.as_str(),
                r.code,
                r.query.as_str(),
                r.token.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "GET",
                "list",
                "leases",
                200,
                "labelSelector=a%3Db",
                Some(TOKEN)
            ),
            ("POST", "create", "leases", 201, "", Some(TOKEN)),
            ("GET", "get", "leases", 200, "", Some(TOKEN)),
            ("DELETE", "delete", "leases", 403, "", Some(TOKEN)),
            ("GET", "get", "endpoints", 401, "", None),
            ("PUT", "update", "endpointslices", 503, "", Some(TOKEN)),
            (
                "GET",
                "watch",
                "leases",
                200,
                "watch=1&timeoutSeconds=1",
                Some(TOKEN)
            ),
        ]
    );
    assert_eq!(log[2].path, format!("{LEASES}/a"));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    let parts: Vec<&str> = lines[3].splitn(4, ' ').collect();
    assert!(parts[0].parse::<u128>().unwrap() > 1_600_000_000_000);
    assert_eq!(&parts[1..], ["delete", "403", &format!("{LEASES}/a")]);
    assert!(!text.contains(TOKEN), "no tokens in the log file");
    srv.clear_requests();
    assert!(srv.requests().is_empty());
}

#[test]
fn malformed_requests_get_400_and_do_not_hurt_the_server() {
    let srv = server();
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nbad header\r\n\r\n",
        b"GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
    ] {
        let mut c = Client::connect(&srv);
        c.stream.write_all(raw).unwrap();
        c.stream.flush().unwrap();
        let r = c.read_response().unwrap();
        assert_eq!(r.code, 400, "{raw:?}");
    }
    // plain HTTP on the TLS port, and a client that connects and vanishes
    let mut tcp = TcpStream::connect(addr(&srv)).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = tcp.read(&mut [0u8; 64]);
    drop(TcpStream::connect(addr(&srv)).unwrap());
    // truncated body
    let mut c = Client::connect(&srv);
    c.send(
        "POST",
        LEASES,
        Some(TOKEN),
        None,
        &[("Content-Length", "100")],
    )
    .unwrap();
    c.stream.write_all(b"{").unwrap();
    c.stream.conn.send_close_notify();
    let _ = c.stream.flush();
    assert_eq!(call(&srv, "GET", LEASES, None).code, 200);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let srv = server();
    let mut c = Client::connect(&srv);
    for _ in 0..50 {
        assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    }
    assert_eq!(srv.connections_accepted(), 1);
    c.send("GET", LEASES, Some(TOKEN), None, &[("Connection", "close")])
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.read_response().is_err());
}

#[test]
fn ureq_with_the_ca_as_only_root_works() {
    let srv = server();
    let cert = ureq::tls::Certificate::from_pem(srv.ca_pem().as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{LEASES}", srv.url());
    let mut r = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/json")
        .send(serde_json::to_string(&lease("via-ureq", "a")).unwrap())
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let body: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["metadata"]["name"], "via-ureq");
    for _ in 0..3 {
        let mut r = agent
            .get(&format!("{url}/via-ureq"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // the body must be consumed for ureq to pool the connection
        assert!(r.body_mut().read_to_string().unwrap().contains("via-ureq"));
    }
    assert_eq!(srv.requests().len(), 4);
    assert_eq!(srv.connections_accepted(), 1, "ureq reused its connection");
}

#[test]
fn service_account_dir_and_ipv6() {
    let srv = ApiServer::start_with(Options {
        ipv6: true,
        request_log_file: None,
    })
    .unwrap();
    let dir = std::env::temp_dir()
        .join(format!("test-apiserver-sa-{}", std::process::id()))
        .join("sa");
    srv.write_service_account_dir(&dir, "tok", "ns1").unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("token")).unwrap(), "tok");
    assert_eq!(
        std::fs::read_to_string(dir.join("namespace")).unwrap(),
        "ns1"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        srv.ca_pem()
    );
    assert!(srv.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(srv.url(), format!("https://127.0.0.1:{}", srv.port()));
    srv.add_token("tok", "u");
    let host_has_v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    assert_eq!(srv.port_v6().is_some(), host_has_v6);
    if let Some(p6) = srv.port_v6() {
        let mut c = Client::try_connect(
            &srv.ca_pem(),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p6)),
        )
        .unwrap();
        assert_eq!(c.request("GET", LEASES, Some("tok"), None).code, 200);
    }
}

#[test]
fn dropping_the_server_closes_connections() {
    let srv = server();
    let mut idle = Client::connect(&srv);
    assert_eq!(idle.request("GET", LEASES, Some(TOKEN), None).code, 200);
    let mut w = Client::connect(&srv);
    w.watch(&format!("{LEASES}?watch=1"), TOKEN);
    let a = addr(&srv);
    let t = Instant::now();
    drop(srv);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(w.next_event().is_err());
    assert!(idle.request_checked().is_err());
    assert!(TcpStream::connect(a).is_err());
}

trait Checked {
    fn request_checked(&mut self) -> std::io::Result<Resp>;
}
impl Checked for Client {
    fn request_checked(&mut self) -> std::io::Result<Resp> {
        self.send("GET", LEASES, Some(TOKEN), None, &[])?;
        self.read_response()
    }
}

#[test]
fn answer_text_echoes_the_requests_token() {
    let srv = server();
    srv.set_fault(Fault::Answer {
        code: 500,
        headers: vec![("Warning".into(), r#"299 - "for {token}""#.into())],
        body: Body::Text(r#"{"kind":"Status","message":"saw {token}"}"#.into()),
    });
    let r = Client::connect(&srv).request("GET", LEASES, Some(TOKEN), None);
    assert_eq!(r.code, 500);
    assert_eq!(
        r.header("warning"),
        Some(format!(r#"299 - "for {TOKEN}""#).as_str())
    );
    assert_eq!(r.json()["message"], format!("saw {TOKEN}"));
    assert_eq!(srv.requests().last().unwrap().code, 500);
}

#[test]
fn answer_huge_and_nested_have_the_asked_shape() {
    let srv = server();
    srv.set_fault(Fault::Answer {
        code: 200,
        headers: Vec::new(),
        body: Body::Huge(5 << 20),
    });
    let r = Client::connect(&srv).request("PUT", &format!("{LEASES}/x"), Some(TOKEN), None);
    assert_eq!((r.code, r.body.len()), (200, 5 << 20));
    assert_eq!(r.json()["kind"], "Lease");
    srv.set_fault(Fault::Answer {
        code: 200,
        headers: Vec::new(),
        body: Body::Nested {
            depth: 100,
            size: 100_000,
        },
    });
    let r = Client::connect(&srv).request("GET", LEASES, Some(TOKEN), None);
    assert_eq!(r.body.len(), 100_000);
    let nest = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(String::from_utf8(r.body)
        .unwrap()
        .contains(&format!("[{nest},{nest},")));
}

#[test]
fn answer_endless_streams_until_cleared_and_drips_on_request() {
    let srv = server();
    let event =
        r#"{"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"1"}}}"#;
    srv.set_fault(Fault::Answer {
        code: 200,
        headers: Vec::new(),
        body: Body::Endless {
            unit: format!("{event}\n"),
            chunk: 1000,
            every: Duration::ZERO,
        },
    });
    let mut c = Client::connect(&srv);
    let (code, headers) = c.watch(&format!("{LEASES}?watch=1"), TOKEN);
    assert_eq!(code, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    // far more than one chunk: the stream goes on, each chunk `chunk` bytes of the repeated unit
    let mut got = Vec::new();
    while got.len() < 200_000 {
        let chunk = c.read_chunk().unwrap().expect("never finished");
        assert_eq!(chunk.len(), 1000);
        got.extend(chunk);
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches(event).count(), text.len() / (event.len() + 1));
    // clearing the fault ends the stream (the connection is dropped, no last chunk)
    srv.clear_faults();
    c.set_timeout(Duration::from_secs(5));
    let ended = (0..10_000).find_map(|_| match c.read_chunk() {
        Ok(Some(_)) => None,
        other => Some(other),
    });
    assert!(matches!(ended, Some(Err(_))), "{ended:?}");

    srv.set_fault(Fault::Answer {
        code: 200,
        headers: Vec::new(),
        body: Body::Endless {
            unit: "{".into(),
            chunk: 1,
            every: Duration::from_millis(100),
        },
    });
    let mut c = Client::connect(&srv);
    let t = Instant::now();
    let (code, _) = c.watch(LEASES, TOKEN);
    assert_eq!(code, 200);
    for _ in 0..3 {
        assert_eq!(c.read_chunk().unwrap().unwrap(), b"{");
    }
    assert!(t.elapsed() >= Duration::from_millis(300), "drips");
    srv.clear_faults();
}
