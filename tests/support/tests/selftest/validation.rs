//! Request validation and wire decoding: content types (415), malformed bodies (400), the
//! MicroTime format, and object validation (422).
use crate::client::*;
use serde_json::{json, Value};

#[test]
fn content_type_rules() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let body = serde_json::to_vec(&lease("a", "x")).unwrap();
    c.send(
        "POST",
        LEASES,
        Some(TOKEN),
        Some(&body),
        &[("Content-Type", "text/plain")],
    )
    .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(status_of(&r).0, 415);
    assert_eq!(status_of(&r).1, "UnsupportedMediaType");
    c.send(
        "POST",
        LEASES,
        Some(TOKEN),
        Some(&body),
        &[("Content-Type", "application/json; charset=utf-8")],
    )
    .unwrap();
    assert_eq!(c.read_response().unwrap().code, 201);
    // upstream defaults a missing Content-Type to application/json
    let body = serde_json::to_vec(&lease("b", "x")).unwrap();
    c.send(
        "POST",
        LEASES,
        Some(TOKEN),
        Some(&body),
        &[("Content-Type", "")],
    )
    .unwrap();
    assert_eq!(c.read_response().unwrap().code, 201);
}

#[test]
fn bad_bodies_are_400() {
    let srv = server();
    let mut c = Client::connect(&srv);
    c.send("POST", LEASES, Some(TOKEN), Some(b"{not json"), &[])
        .unwrap();
    assert_eq!(status_of(&c.read_response().unwrap()).1, "BadRequest");
    c.send("POST", LEASES, Some(TOKEN), Some(b"[1,2]"), &[])
        .unwrap();
    assert_eq!(c.read_response().unwrap().code, 400);
    let mut l = lease("a", "x");
    l["spec"]["leaseDurationSeconds"] = json!("15");
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(r.code, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Lease in version \"v1\" cannot be handled as a Lease"));
    l["spec"]["leaseDurationSeconds"] = json!(4294967296u64);
    assert_eq!(
        c.request("POST", LEASES, Some(TOKEN), Some(&l)).code,
        400,
        "int32 overflow"
    );
    // kind / apiVersion mismatch
    let mut l = lease("a", "x");
    l["apiVersion"] = json!("v1");
    assert_eq!(c.request("POST", LEASES, Some(TOKEN), Some(&l)).code, 400);
    // name / namespace must match the URL
    let l = lease("a", "x");
    let r = c.request("PUT", &format!("{LEASES}/b"), Some(TOKEN), Some(&l));
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "the name of the object (a) does not match the name on the URL (b)"
    );
    let mut l = lease("a", "x");
    l["metadata"]["namespace"] = json!("other");
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // a resourceVersion on create is rejected by storage
    let mut l = lease("a", "x");
    l["metadata"]["resourceVersion"] = json!("5");
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(r.code, 500);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("resourceVersion should not be set on objects to be created"));
    assert!(srv.get_object("leases", NS, "a").is_none());
}

fn with_time(t: &str) -> Value {
    let mut l = lease("t", "x");
    l["spec"]["renewTime"] = json!(t);
    l
}

#[test]
fn microtime_needs_exactly_six_fraction_digits() {
    let srv = server();
    let mut c = Client::connect(&srv);
    for bad in [
        "2026-11-24T08:15:30.12345Z",
        "2026-11-24T08:15:30.123456789Z",
        "2026-11-24T08:15:30Z",
        "2026-11-24 08:15:30.123456Z",
        "yesterday",
    ] {
        let r = c.request("POST", LEASES, Some(TOKEN), Some(&with_time(bad)));
        assert_eq!(status_of(&r).0, 400, "{bad} must be rejected");
        assert_eq!(status_of(&r).1, "BadRequest");
    }
    let r = c.request(
        "POST",
        LEASES,
        Some(TOKEN),
        Some(&with_time("2026-11-24T08:15:30.123456Z")),
    );
    assert_eq!(r.code, 201);
    assert_eq!(r.json()["spec"]["renewTime"], "2026-11-24T08:15:30.123456Z");
    // numeric offsets are accepted and re-encoded in UTC
    let mut l = r.json();
    l["spec"]["renewTime"] = json!("2026-11-24T10:15:31.000001+02:00");
    let r = c.request("PUT", &format!("{LEASES}/t"), Some(TOKEN), Some(&l));
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["spec"]["renewTime"], "2026-11-24T08:15:31.000001Z");
    let mut l = r.json();
    l["spec"]["renewTime"] = json!("2026-11-24T08:15:32.000001+00:00");
    l["spec"]["acquireTime"] = Value::Null;
    let r = c.request("PUT", &format!("{LEASES}/t"), Some(TOKEN), Some(&l));
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["spec"]["renewTime"], "2026-11-24T08:15:32.000001Z");
    assert!(
        r.json()["spec"].get("acquireTime").is_none(),
        "null means absent"
    );
}

#[test]
fn validation_failures_are_422() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let mut l = lease("my-lock", "a");
    l["spec"]["leaseDurationSeconds"] = json!(0);
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(
        status_of(&r),
        (422, "Invalid".into(), "Lease.coordination.k8s.io \"my-lock\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".into())
    );
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "spec.leaseDurationSeconds"
    );
    let mut l = lease("my-lock", "a");
    l["spec"]["leaseTransitions"] = json!(-1);
    assert_eq!(c.request("POST", LEASES, Some(TOKEN), Some(&l)).code, 422);
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&lease("Bad_Name", "a")));
    assert_eq!(r.code, 422);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
    let mut l = lease("my-lock", "a");
    l["spec"]["preferredHolder"] = json!("b");
    assert_eq!(
        c.request("POST", LEASES, Some(TOKEN), Some(&l)).code,
        422,
        "preferredHolder needs strategy"
    );
    let mut l = lease("my-lock", "a");
    l["metadata"]["labels"] = json!({"bad key!": "v"});
    assert_eq!(c.request("POST", LEASES, Some(TOKEN), Some(&l)).code, 422);

    let slice = |at: &str, addr: &str, port: i64, proto: &str| {
        json!({"metadata":{"name":"s"},"addressType":at,
        "endpoints":[{"addresses":[addr]}],"ports":[{"name":"http","port":port,"protocol":proto}]})
    };
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv4", "127.0.0.1", 80, "TCP"))
        )
        .code,
        422,
        "loopback"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv4", "fd00::1", 80, "TCP"))
        )
        .code,
        422,
        "family"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv4", "10.0.0.1", 0, "TCP"))
        )
        .code,
        422,
        "port 0"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv4", "10.0.0.1", 65536, "TCP"))
        )
        .code,
        422,
        "port"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv4", "10.0.0.1", 80, "HTTP"))
        )
        .code,
        422,
        "protocol"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IP", "10.0.0.1", 80, "TCP"))
        )
        .code,
        422,
        "addressType"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("FQDN", "nodots", 80, "TCP"))
        )
        .code,
        422,
        "fqdn"
    );
    assert_eq!(
        c.request(
            "POST",
            SLICES,
            Some(TOKEN),
            Some(&slice("IPv6", "fd00::1", 80, "SCTP"))
        )
        .code,
        201
    );

    let ep = |ip: &str, port: i64| json!({"metadata":{"name":"svc"},"subsets":[{"addresses":[{"ip":ip}],"ports":[{"port":port,"protocol":"TCP"}]}]});
    assert_eq!(
        c.request("POST", ENDPOINTS, Some(TOKEN), Some(&ep("not-an-ip", 80)))
            .code,
        422
    );
    assert_eq!(
        c.request("POST", ENDPOINTS, Some(TOKEN), Some(&ep("127.0.0.1", 80)))
            .code,
        422
    );
    assert_eq!(
        c.request("POST", ENDPOINTS, Some(TOKEN), Some(&ep("10.0.0.1", 70000)))
            .code,
        422
    );
    assert_eq!(
        c.request("POST", ENDPOINTS, Some(TOKEN), Some(&ep("10.0.0.1", 80)))
            .code,
        201
    );
}
