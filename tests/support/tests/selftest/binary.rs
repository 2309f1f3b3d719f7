//! The standalone `test-apiserver` binary: service-account dir, the `listening` line, serving.
use crate::client::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

#[test]
fn binary_writes_sa_dir_prints_url_and_serves() {
    let dir = std::env::temp_dir().join(format!("test-apiserver-bin-{}", std::process::id()));
    let log = dir.join("requests.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
        .args([
            "--sa-dir",
            dir.join("sa").to_str().unwrap(),
            "--token",
            "t1",
            "--token",
            "t2",
            "--namespace",
            "demo",
            "--namespace",
            "team-b",
        ])
        .args([
            "--request-log",
            log.to_str().unwrap(),
            "--exit-on-stdin-eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening ").unwrap().to_string();
    let port: u16 = url
        .strip_prefix("https://127.0.0.1:")
        .unwrap()
        .parse()
        .unwrap();
    let sa = dir.join("sa");
    assert_eq!(std::fs::read_to_string(sa.join("token")).unwrap(), "t1");
    assert_eq!(
        std::fs::read_to_string(sa.join("namespace")).unwrap(),
        "demo"
    );
    let ca = std::fs::read_to_string(sa.join("ca.crt")).unwrap();
    let mut c = Client::try_connect(&ca, SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    let path = "/apis/coordination.k8s.io/v1/namespaces/demo/leases";
    assert_eq!(c.request("GET", path, Some("t2"), None).code, 200);
    assert_eq!(c.request("GET", path, Some("nope"), None).code, 401);
    // Every --namespace exists; other namespaces do not.
    let lease = |ns: &str| {
        serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": ns}, "spec": {}})
    };
    for (ns, code) in [
        ("demo", 201),
        ("team-b", 201),
        ("default", 201),
        ("other", 404),
    ] {
        let p = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
        assert_eq!(
            c.request("POST", &p, Some("t1"), Some(&lease(ns))).code,
            code,
            "{ns}"
        );
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 6);
    assert!(
        Command::new(env!("CARGO_BIN_EXE_test-apiserver"))
            .arg("--bogus")
            .output()
            .unwrap()
            .status
            .code()
            == Some(2)
    );
}
