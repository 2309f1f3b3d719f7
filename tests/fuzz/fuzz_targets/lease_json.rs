//! Lease JSON: any bytes the API server (or another elector) could send. Parsing never panics;
//! a parsed Lease serializes back with every field it did not interpret unchanged (metadata,
//! unknown spec fields, unknown top-level fields), and re-parses to the same value. The
//! election state machine then digests the record without panicking.
#![no_main]

use std::time::{Duration, Instant, UNIX_EPOCH};

use k8s_await_election::config::Timings;
use k8s_await_election::election::{Core, Settings, Step};
use k8s_await_election::lease::Lease;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// JSON equality, except that two floats within a few ULP count as equal: without its
/// `float_roundtrip` feature serde_json's text → f64 is not always correctly rounded, so a
/// float written and read back can move in the last bit. (Integers beyond 64 bits are f64 on
/// both sides already.) Everything else must be identical.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x != y => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
            }
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Two Leases are the same up to float rounding (see [`same`]).
fn same_lease(a: &Lease, b: &Lease) -> bool {
    let (Ok(x), Ok(y)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return false;
    };
    same(&x, &y)
}

/// Every non-null member of `input` appears unchanged in `output`.
fn keeps(input: &Map<String, Value>, output: &Value, at: &str) {
    for (k, v) in input {
        if v.is_null() {
            continue; // `null` means absent (Option fields are then left out)
        }
        match (k.as_str(), v) {
            // One level down: the known sub-objects, checked member by member.
            ("metadata" | "spec", Value::Object(inner)) if at.is_empty() => {
                keeps(inner, &output[k.as_str()], k)
            }
            _ => assert!(
                output.get(k).is_some_and(|w| same(v, w)),
                "{at}.{k} changed in the round trip: {v} -> {output}"
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(lease) = serde_json::from_slice::<Lease>(data) else {
        return;
    };
    let out = serde_json::to_value(&lease).expect("a parsed Lease serializes");
    if let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) {
        keeps(&input, &out, "");
    }
    let again: Lease = serde_json::from_value(out.clone()).expect("our own output parses");
    assert_eq!(again, lease, "round trip changed the Lease: {out}");
    let text = serde_json::to_string(&lease).expect("serializes to text");
    let again: Lease = serde_json::from_str(&text).expect("our own text parses");
    assert!(same_lease(&again, &lease), "{text}");

    // Accessors and the state machine on whatever was read.
    let _ = lease.spec.record();
    let _ = lease.spec.renew_time();
    let _ = lease.resource_version();
    let identity = lease.spec.holder().unwrap_or("me").to_string();
    for who in [identity.as_str(), "someone-else"] {
        let mut core = Core::new(Settings {
            namespace: "default".into(),
            lock_name: "lock".into(),
            identity: who.to_string(),
            timings: Timings {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            },
        });
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_795_594_530);
        let _ = core.observe(Some(lease.clone()), t0);
        let _ = core.expires_at();
        for dt in [0u64, 1, 15, 3600, 1 << 31] {
            let step = core.candidate_step(t0 + Duration::from_secs(dt), wall);
            if let Step::Take(body) | Step::Create(body) = step {
                assert_eq!(body.spec.holder(), Some(who));
                let _ = serde_json::to_vec(&body).expect("serializes");
            }
        }
        let _ = core.renewal(wall);
        let _ = core.release(wall);
        let _ = core.observe(None, t0 + Duration::from_secs(1));
        let _ = core.candidate_step(t0 + Duration::from_secs(2), wall);
    }
});
