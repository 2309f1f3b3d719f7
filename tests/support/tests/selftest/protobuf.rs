//! Protobuf request bodies, as client-go (v0.35 and later) sends them for a Lease by default:
//! `Content-Type: application/vnd.kubernetes.protobuf`, `Accept:
//! application/vnd.kubernetes.protobuf,application/json`. The server stores what the same
//! object in JSON would give (empty holder kept, MicroTimes with six digits, zero
//! creationTimestamp dropped) and answers in JSON; other kinds get a 415.
use crate::client::*;
use serde_json::json;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const ACCEPT: &str = "application/vnd.kubernetes.protobuf,application/json";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, n: u64, b: &[u8]) {
    varint(out, n << 3 | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn int_field(out: &mut Vec<u8>, n: u64, v: i64) {
    varint(out, n << 3);
    varint(out, v as u64);
}

fn timestamp(secs: i64, nanos: i64) -> Vec<u8> {
    let mut t = Vec::new();
    int_field(&mut t, 1, secs);
    int_field(&mut t, 2, nanos);
    t
}

/// A Lease in the k8s protobuf envelope, laid out as client-go's generated code writes it
/// (every ObjectMeta string, even empty ones; a zero creationTimestamp as Go's zero time).
fn lease_pb(kind: &str, name: &str, rv: &str, holder: &str, duration: i64) -> Vec<u8> {
    let mut meta = Vec::new();
    bytes_field(&mut meta, 1, name.as_bytes());
    bytes_field(&mut meta, 2, b"");
    bytes_field(&mut meta, 3, NS.as_bytes());
    bytes_field(&mut meta, 4, b"");
    bytes_field(&mut meta, 5, b"");
    bytes_field(&mut meta, 6, rv.as_bytes());
    int_field(&mut meta, 7, 0);
    bytes_field(&mut meta, 8, &timestamp(-62_135_596_800, 0));
    let mut spec = Vec::new();
    bytes_field(&mut spec, 1, holder.as_bytes());
    int_field(&mut spec, 2, duration);
    // 2026-12-05T12:00:00.123456789Z: nanoseconds beyond micros are cut.
    bytes_field(&mut spec, 3, &timestamp(1_796_472_000, 123_456_789));
    bytes_field(&mut spec, 4, &timestamp(1_796_472_001, 5_000));
    int_field(&mut spec, 5, 3);
    let mut lease = Vec::new();
    bytes_field(&mut lease, 1, &meta);
    bytes_field(&mut lease, 2, &spec);
    let mut type_meta = Vec::new();
    bytes_field(&mut type_meta, 1, b"coordination.k8s.io/v1");
    bytes_field(&mut type_meta, 2, kind.as_bytes());
    let mut unknown = Vec::new();
    bytes_field(&mut unknown, 1, &type_meta);
    bytes_field(&mut unknown, 2, &lease);
    bytes_field(&mut unknown, 3, b"");
    bytes_field(&mut unknown, 4, b"");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown);
    body
}

fn send_pb(c: &mut Client, method: &str, target: &str, body: &[u8]) -> Resp {
    c.send(
        method,
        target,
        Some(TOKEN),
        Some(body),
        &[("Content-Type", PROTOBUF), ("Accept", ACCEPT)],
    )
    .unwrap();
    c.read_response().unwrap()
}

#[test]
fn a_protobuf_lease_is_stored_as_its_json_and_answered_in_json() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = send_pb(
        &mut c,
        "POST",
        LEASES,
        &lease_pb("Lease", "my-lock", "", "a", 15),
    );
    assert_eq!(r.code, 201, "{}", r.json());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let created = r.json();
    assert_eq!(
        created["spec"],
        json!({"holderIdentity": "a", "leaseDurationSeconds": 15,
            "acquireTime": "2026-12-05T12:00:00.123456Z",
            "renewTime": "2026-12-05T12:00:01.000005Z", "leaseTransitions": 3})
    );
    let ts = created["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(!ts.starts_with("0001"), "{ts}");
    assert!(created["metadata"].get("generateName").is_none());

    // client-go's release record: an empty holder is kept, not dropped.
    let target = format!("{LEASES}/my-lock");
    let r = send_pb(
        &mut c,
        "PUT",
        &target,
        &lease_pb("Lease", "my-lock", &rv(&created), "", 1),
    );
    assert_eq!(r.code, 200, "{}", r.json());
    let stored = srv.get_object("leases", NS, "my-lock").unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], 1);

    // Optimistic concurrency applies as for JSON.
    let r = send_pb(
        &mut c,
        "PUT",
        &target,
        &lease_pb("Lease", "my-lock", &rv(&created), "b", 1),
    );
    assert_eq!(r.code, 409, "{}", r.json());
}

#[test]
fn protobuf_that_is_not_a_lease_or_not_enveloped_is_refused() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = send_pb(
        &mut c,
        "POST",
        ENDPOINTS,
        &lease_pb("Endpoints", "svc", "", "a", 1),
    );
    assert_eq!(status_of(&r).0, 415, "{}", r.json());
    let r = send_pb(&mut c, "POST", LEASES, b"{\"kind\":\"Lease\"}");
    assert_eq!(status_of(&r).0, 415, "{}", r.json());
    assert!(srv.get_object("leases", NS, "my-lock").is_none());
}
