//! Our `discovery.k8s.io/v1` EndpointSlice, named exactly like the Service: writing it
//! conditionally, and re-creating it when the pod IP family changes (`addressType` is
//! immutable). See the module header of [`super`].

use std::net::IpAddr;
use std::time::Instant;

use log::debug;
use serde_json::{json, Map};

use super::object::{base_object, ports_json, Object};
use super::retry::{race_on_missing, retry};
use super::{Kind, Router, CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::config::Service;
use crate::kube::Error;

impl Router {
    /// Writes our EndpointSlice so that it lists this pod only (see the module header).
    pub(super) fn point_slice(&mut self, deadline: Instant) -> Result<(), Error> {
        let path = self.path(Kind::Slice);
        let collection = self.collection(Kind::Slice);
        let stored = retry(deadline, || {
            match self.client.get::<Object>(&path, deadline) {
                Ok(current)
                    if current.rest.get("addressType") != Some(&json!(address_type(self.ip()))) =>
                {
                    // addressType is immutable: replace the object.
                    debug!("the EndpointSlice has another address type; re-creating it");
                    match self.client.delete(&path, deadline) {
                        Ok(()) | Err(Error::NotFound(_)) => {}
                        Err(e) => return Err(self.denied(e, "delete", Kind::Slice)),
                    }
                    let body = slice_body(Some(current), &self.settings);
                    self.client
                        .create::<_, Object>(&collection, &body, deadline)
                        .map_err(|e| self.denied(e, "create", Kind::Slice))
                }
                Ok(current) => {
                    let body = slice_body(Some(current), &self.settings);
                    self.client
                        .replace::<_, Object>(&path, &body, deadline)
                        .map_err(|e| self.denied(race_on_missing(e), "update", Kind::Slice))
                }
                Err(Error::NotFound(_)) => {
                    let body = slice_body(None, &self.settings);
                    self.client
                        .create::<_, Object>(&collection, &body, deadline)
                        .map_err(|e| self.denied(e, "create", Kind::Slice))
                }
                Err(e) => Err(self.denied(e, "get", Kind::Slice)),
            }
        });
        self.slice_written = Some(stored?);
        Ok(())
    }
}

/// `IPv4` or `IPv6`, as EndpointSlice `addressType` wants it.
pub fn address_type(ip: IpAddr) -> &'static str {
    match ip.to_canonical() {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// Our EndpointSlice pointing at us: `existing` (as read; everything but our two labels,
/// `addressType`, `endpoints` and `ports` is kept) or a new one.
pub fn slice_body(existing: Option<Object>, s: &Service) -> Object {
    let mut obj = base_object(
        existing,
        s,
        s.name.clone(),
        "discovery.k8s.io/v1",
        "EndpointSlice",
    );
    obj.metadata.add_labels([
        (LABEL_SERVICE_NAME, s.name.as_str()),
        (LABEL_MANAGED_BY, CONTROLLER_NAME),
    ]);
    let ip = s.pod_ip.to_canonical();
    let mut endpoint = Map::new();
    endpoint.insert("addresses".into(), json!([ip.to_string()]));
    endpoint.insert(
        "conditions".into(),
        json!({"ready": true, "serving": true, "terminating": false}),
    );
    if let Some(node) = &s.node_name {
        endpoint.insert("nodeName".into(), json!(node));
    }
    obj.rest
        .insert("addressType".into(), json!(address_type(ip)));
    obj.rest.insert("endpoints".into(), json!([endpoint]));
    obj.rest.insert("ports".into(), ports_json(s));
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixtures::{object, settings, value};

    #[test]
    fn slice_for_ipv4_and_ipv6() {
        let v = value(&slice_body(None, &settings("10.0.0.5", Some("node-1"))));
        assert_eq!(
            v,
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web", "namespace": "prod", "labels": {
                    "kubernetes.io/service-name": "web",
                    "endpointslice.kubernetes.io/managed-by": "k8s-await-election"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.5"],
                               "conditions": {"ready": true, "serving": true, "terminating": false},
                               "nodeName": "node-1"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
            })
        );
        let v = value(&slice_body(None, &settings("fd00:0:0::0:5", None)));
        assert_eq!(v["addressType"], "IPv6");
        assert_eq!(
            v["endpoints"][0]["addresses"],
            json!(["fd00::5"]),
            "canonical form"
        );
        assert!(v["endpoints"][0].get("nodeName").is_none());
        // An IPv4-mapped IPv6 address is an IPv4 endpoint.
        let v = value(&slice_body(None, &settings("::ffff:10.1.2.3", None)));
        assert_eq!(v["addressType"], "IPv4");
        assert_eq!(v["endpoints"][0]["addresses"], json!(["10.1.2.3"]));
    }

    #[test]
    fn slice_update_keeps_foreign_labels_and_fields() {
        let current = object(json!({
            "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "7",
                         "labels": {"team": "db", "endpointslice.kubernetes.io/managed-by": "someone-else"},
                         "ownerReferences": [{"kind": "Service", "name": "web"}]},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.9"]}],
            "ports": [{"port": 1}]
        }));
        let v = value(&slice_body(Some(current), &settings("10.0.0.5", None)));
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"team": "db", "kubernetes.io/service-name": "web",
                   "endpointslice.kubernetes.io/managed-by": "k8s-await-election"})
        );
        assert_eq!(v["metadata"]["ownerReferences"][0]["name"], "web");
        assert_eq!(v["endpoints"][0]["addresses"], json!(["10.0.0.5"]));
        assert_eq!(v["ports"][0]["port"], 8080);
        assert_eq!(v["kind"], "EndpointSlice");
    }
}
