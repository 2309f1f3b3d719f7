//! The objects we write as JSON ([`Object`]: typed metadata, every other field kept as it
//! came) and what the Endpoints and EndpointSlice bodies share: the base object, the ports,
//! emptying and the "does it list our IP" test.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::Kind;
use crate::config::Service;
use crate::kube::ObjectMeta;

/// A Kubernetes object with typed metadata; every other field is kept as it came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// `metadata`: name, namespace and resourceVersion typed, the rest (labels included) kept.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other field (`apiVersion`, `kind`, `subsets`, `endpoints`, ...), as it came.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

pub(super) fn ports_json(s: &Service) -> Value {
    serde_json::to_value(&s.ports).unwrap_or_else(|_| Value::Array(Vec::new()))
}

pub(super) fn base_object(
    existing: Option<Object>,
    s: &Service,
    name: String,
    api_version: &str,
    kind: &str,
) -> Object {
    let mut obj = existing.unwrap_or_default();
    obj.metadata.name = name;
    obj.metadata.namespace = Some(s.namespace.clone());
    obj.rest.insert("apiVersion".into(), json!(api_version));
    obj.rest.insert("kind".into(), json!(kind));
    obj
}

/// `obj` with our addresses gone: `subsets: []` or `endpoints: []`.
pub(super) fn emptied(kind: Kind, mut obj: Object) -> Object {
    let field = match kind {
        Kind::Endpoints => "subsets",
        Kind::Slice => "endpoints",
    };
    obj.rest.insert(field.into(), json!([]));
    obj
}

/// Whether `obj` (an Endpoints object or an EndpointSlice) lists `ip`.
pub(super) fn lists_ip(kind: Kind, obj: &Object, ip: IpAddr) -> bool {
    let same = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .is_some_and(|a| a.to_canonical() == ip.to_canonical())
    };
    fn list(v: Option<&Value>) -> &[Value] {
        v.and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
    }
    match kind {
        Kind::Endpoints => list(obj.rest.get("subsets")).iter().any(|subset| {
            ["addresses", "notReadyAddresses"].iter().any(|k| {
                list(subset.get(*k))
                    .iter()
                    .any(|a| a.get("ip").is_some_and(same))
            })
        }),
        Kind::Slice => list(obj.rest.get("endpoints"))
            .iter()
            .any(|e| list(e.get("addresses")).iter().any(same)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixtures::{object, value};

    #[test]
    fn withdraw_only_when_our_ip_is_listed() {
        let me: IpAddr = "fd00::5".parse().expect("ip");
        let ep = |ips: Value| object(json!({"subsets": [{"addresses": ips}]}));
        assert!(lists_ip(
            Kind::Endpoints,
            &ep(json!([{"ip": "fd00:0::5"}])),
            me
        ));
        assert!(!lists_ip(
            Kind::Endpoints,
            &ep(json!([{"ip": "fd00::6"}])),
            me
        ));
        assert!(lists_ip(
            Kind::Endpoints,
            &object(json!({"subsets": [{"notReadyAddresses": [{"ip": "fd00::5"}]}]})),
            me
        ));
        assert!(!lists_ip(
            Kind::Endpoints,
            &object(json!({"subsets": []})),
            me
        ));
        assert!(!lists_ip(Kind::Endpoints, &object(json!({})), me));
        assert!(!lists_ip(
            Kind::Endpoints,
            &object(json!({"subsets": "garbage"})),
            me
        ));

        let slice = |ips: Value| object(json!({"endpoints": [{"addresses": ips}]}));
        assert!(lists_ip(Kind::Slice, &slice(json!(["fd00::5"])), me));
        assert!(!lists_ip(
            Kind::Slice,
            &slice(json!(["fd00::7", "not-an-ip", 5])),
            me
        ));
        assert!(!lists_ip(
            Kind::Slice,
            &object(json!({"endpoints": []})),
            me
        ));

        let v4: IpAddr = "10.0.0.5".parse().expect("ip");
        assert!(lists_ip(Kind::Slice, &slice(json!(["10.0.0.5"])), v4));

        let cleared = value(&emptied(Kind::Slice, slice(json!(["fd00::5"]))));
        assert_eq!(cleared["endpoints"], json!([]));
        let cleared = emptied(Kind::Endpoints, ep(json!([{"ip": "fd00::5"}])));
        assert_eq!(value(&cleared)["subsets"], json!([]));
        assert!(!lists_ip(Kind::Endpoints, &cleared, me));
    }
}
