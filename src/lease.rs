//! The `coordination.k8s.io/v1` Lease object as JSON, keeping what we do not own.
//!
//! Every field we do not interpret (metadata such as labels, annotations, ownerReferences,
//! managedFields; spec fields such as `strategy` and `preferredHolder`; any future field) lands
//! in a `rest` map and is written back unchanged, because a PUT replaces the whole object.
//! MicroTime values are kept as the text the server sent; we only parse them for display and
//! only ever write six fractional digits (see [`crate::timefmt::micro_time`]).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::kube::ObjectMeta;
use crate::timefmt;

/// The Lease's `apiVersion`.
pub const API_VERSION: &str = "coordination.k8s.io/v1";
/// The Lease's `kind`.
pub const KIND: &str = "Lease";

/// A Lease as read from or written to the API server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// `apiVersion`; [`API_VERSION`] when missing.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// `kind`; [`KIND`] when missing.
    #[serde(default = "kind")]
    pub kind: String,
    /// The object's metadata (name, namespace, resourceVersion; the rest kept as it came).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The election record.
    #[serde(default)]
    pub spec: LeaseSpec,
    /// Top-level fields we do not know (e.g. a future `status`).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

fn api_version() -> String {
    API_VERSION.to_string()
}

fn kind() -> String {
    KIND.to_string()
}

/// The five fields of the election record, borrowed: what client-go compares to decide
/// whether the lease changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// `holderIdentity`, `None` when missing or empty (the lease is free).
    pub holder: Option<&'a str>,
    /// `leaseDurationSeconds`.
    pub duration: Option<i32>,
    /// `acquireTime`, as the text the server sent.
    pub acquire_time: Option<&'a str>,
    /// `renewTime`, as the text the server sent.
    pub renew_time: Option<&'a str>,
    /// `leaseTransitions`.
    pub transitions: Option<i32>,
}

/// The election record. `Option` fields that are `None` are left out of the JSON we write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    /// `holderIdentity`: who holds the lease (empty or missing: nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    /// `leaseDurationSeconds`: how long others wait for a silent holder. A value that is not
    /// an int32 (out of range, fractional, not a number) reads as `Some(0)`: invalid like any
    /// value ≤ 0, rather than a Lease that cannot be read at all.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_int32"
    )]
    pub lease_duration_seconds: Option<i32>,
    /// `acquireTime` (MicroTime text): when the current holder took the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    /// `renewTime` (MicroTime text): the holder's last renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    /// `leaseTransitions`: how many times the holder changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_transitions: Option<i32>,
    /// `strategy`, `preferredHolder` and anything newer.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An int32, `None` for `null`, and `Some(0)` for any other JSON value (see
/// [`LeaseSpec::lease_duration_seconds`]).
fn lenient_int32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.map(|v| v.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0)))
}

impl LeaseSpec {
    /// The holder, or `None` when the lease is free (missing or empty `holderIdentity`).
    pub fn holder(&self) -> Option<&str> {
        self.holder_identity.as_deref().filter(|h| !h.is_empty())
    }

    /// The election record client-go compares to decide whether the lease changed: the five
    /// fields it owns. A change of labels alone is not a renewal.
    pub fn record(&self) -> Record<'_> {
        Record {
            holder: self.holder(),
            duration: self.lease_duration_seconds,
            acquire_time: self.acquire_time.as_deref(),
            renew_time: self.renew_time.as_deref(),
            transitions: self.lease_transitions,
        }
    }

    /// `renewTime` as a wall-clock time, for display only (never for expiry decisions).
    pub fn renew_time(&self) -> Option<SystemTime> {
        self.renew_time.as_deref().and_then(timefmt::parse_rfc3339)
    }
}

impl Lease {
    /// A new Lease object for `POST`.
    pub fn new(namespace: &str, name: &str, spec: LeaseSpec) -> Lease {
        Lease {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                resource_version: None,
                rest: Map::new(),
            },
            spec,
            rest: Map::new(),
        }
    }

    /// The opaque resourceVersion (compare for equality only).
    pub fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_GO_LEASE: &str = r#"{
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "lock", "namespace": "ns", "resourceVersion": "42", "uid": "u-1",
            "labels": {"app": "x"}, "annotations": {"a": "b"},
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]},
        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-24T08:15:30.123456Z", "renewTime": "2026-11-24T08:15:40.000001+00:00",
            "leaseTransitions": 3, "strategy": "OldestEmulationVersion", "preferredHolder": "p"},
        "status": {"future": true}
    }"#;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let lease: Lease = serde_json::from_str(CLIENT_GO_LEASE).expect("parse");
        assert_eq!(lease.spec.holder(), Some("other"));
        assert_eq!(lease.resource_version(), Some("42"));
        let back: Value = serde_json::to_value(&lease).expect("serialize");
        let orig: Value = serde_json::from_str(CLIENT_GO_LEASE).expect("parse");
        assert_eq!(back, orig);
    }

    #[test]
    fn a_duration_that_is_not_an_int32_reads_as_invalid_not_as_an_error() {
        let cases = [
            ("15", Some(15)),
            ("null", None),
            ("-3", Some(-3)),
            ("2147483647", Some(i32::MAX)),
            ("2147483648", Some(0)),
            ("-2147483649", Some(0)),
            ("18446744073709551616", Some(0)),
            ("1.5", Some(0)),
            ("\"15\"", Some(0)),
        ];
        for (json, want) in cases {
            let text = format!(
                r#"{{"metadata":{{"name":"l"}},"spec":{{"holderIdentity":"h","leaseDurationSeconds":{json}}}}}"#
            );
            let lease: Lease = serde_json::from_str(&text).expect(json);
            assert_eq!(lease.spec.lease_duration_seconds, want, "{json}");
            assert_eq!(lease.spec.holder(), Some("h"));
        }
    }

    #[test]
    fn null_and_missing_times_and_empty_holder() {
        let lease: Lease = serde_json::from_str(
            r#"{"metadata":{"name":"l"},"spec":{"holderIdentity":"","renewTime":null}}"#,
        )
        .expect("parse");
        assert_eq!(lease.spec.holder(), None);
        assert_eq!(lease.spec.renew_time(), None);
        assert_eq!(lease.kind, "Lease");
    }

    #[test]
    fn new_lease_serializes_only_what_is_set() {
        let l = Lease::new(
            "ns",
            "lock",
            LeaseSpec {
                holder_identity: Some("me".into()),
                ..LeaseSpec::default()
            },
        );
        let v = serde_json::to_value(&l).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
                "metadata":{"name":"lock","namespace":"ns"},"spec":{"holderIdentity":"me"}})
        );
    }
}
