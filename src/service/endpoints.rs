//! The v1 `Endpoints` object (`/api/v1`, named like the Service):
//! `subsets: [{addresses: [{ip, nodeName}], ports}]`. Writing it conditionally, and deleting
//! a stale one in auto mode (see the module header of [`super`]).

use std::time::Instant;

use log::{info, warn};
use serde_json::{json, Map};

use super::object::{base_object, ports_json, Object};
use super::retry::{race_on_missing, retry};
use super::{Kind, Router};
use crate::config::Service;
use crate::kube::Error;

impl Router {
    /// Auto mode: no Endpoints object may keep (mirrored) addresses next to our slice.
    /// A refusal is returned (and reported by the caller only if the slice write works).
    pub(super) fn delete_stale_endpoints(&mut self, deadline: Instant) -> Result<(), Error> {
        let path = self.path(Kind::Endpoints);
        let result = retry(deadline, || match self.client.delete(&path, deadline) {
            Err(Error::NotFound(_)) => Ok(false),
            Ok(()) => Ok(true),
            Err(e) => Err(e),
        });
        match result {
            Ok(true) => info!(
                "deleted the v1 Endpoints object {}/{} (the EndpointSlice replaces it)",
                self.ns(),
                self.settings.name
            ),
            Ok(false) => {}
            Err(e @ Error::Forbidden(_)) => return Err(self.denied(e, "delete", Kind::Endpoints)),
            Err(e) => warn!(
                "could not delete the v1 Endpoints object {}/{}: {e}",
                self.ns(),
                self.settings.name
            ),
        }
        Ok(())
    }

    /// Writes the v1 Endpoints object so that it lists this pod only.
    pub(super) fn point_endpoints(&mut self, deadline: Instant) -> Result<(), Error> {
        let path = self.path(Kind::Endpoints);
        let collection = self.collection(Kind::Endpoints);
        let stored = retry(deadline, || {
            match self.client.get::<Object>(&path, deadline) {
                Ok(current) => {
                    let body = endpoints_body(Some(current), &self.settings);
                    self.client
                        .replace::<_, Object>(&path, &body, deadline)
                        .map_err(|e| self.denied(race_on_missing(e), "update", Kind::Endpoints))
                }
                Err(Error::NotFound(_)) => {
                    let body = endpoints_body(None, &self.settings);
                    self.client
                        .create::<_, Object>(&collection, &body, deadline)
                        .map_err(|e| self.denied(e, "create", Kind::Endpoints))
                }
                Err(e) => Err(self.denied(e, "get", Kind::Endpoints)),
            }
        })?;
        self.endpoints_written = Some(stored);
        Ok(())
    }
}

/// The Endpoints object pointing at us: `existing` (as read; everything but `subsets` is
/// kept, including the resourceVersion that makes the PUT conditional) or a new one.
pub fn endpoints_body(existing: Option<Object>, s: &Service) -> Object {
    let mut obj = base_object(existing, s, s.name.clone(), "v1", "Endpoints");
    let mut address = Map::new();
    address.insert("ip".into(), json!(s.pod_ip.to_canonical().to_string()));
    if let Some(node) = &s.node_name {
        address.insert("nodeName".into(), json!(node));
    }
    let mut subset = Map::new();
    subset.insert("addresses".into(), json!([address]));
    if !s.ports.is_empty() {
        subset.insert("ports".into(), ports_json(s));
    }
    obj.rest.insert("subsets".into(), json!([subset]));
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixtures::{object, settings, value};

    #[test]
    fn new_endpoints_object() {
        let v = value(&endpoints_body(None, &settings("10.0.0.5", Some("node-1"))));
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "prod"},
                "subsets": [{
                    "addresses": [{"ip": "10.0.0.5", "nodeName": "node-1"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
                }]
            })
        );
        let mut s = settings("10.0.0.5", None);
        s.ports.clear();
        let v = value(&endpoints_body(None, &s));
        assert_eq!(v["subsets"], json!([{"addresses": [{"ip": "10.0.0.5"}]}]));
    }

    #[test]
    fn endpoints_update_keeps_what_others_wrote() {
        let current = object(json!({
            "kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "42",
                         "labels": {"team": "db"}, "annotations": {"a": "b"}, "uid": "u-1"},
            "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}],
            "futureField": {"x": 1}
        }));
        let v = value(&endpoints_body(Some(current), &settings("10.0.0.5", None)));
        assert_eq!(
            v["metadata"]["resourceVersion"], "42",
            "the PUT is conditional"
        );
        assert_eq!(v["metadata"]["labels"], json!({"team": "db"}));
        assert_eq!(v["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(v["metadata"]["uid"], "u-1");
        assert_eq!(v["futureField"], json!({"x": 1}));
        assert_eq!(v["subsets"][0]["addresses"], json!([{"ip": "10.0.0.5"}]));
    }
}
