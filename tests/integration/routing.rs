//! Service routing as the tests set it up and read it back: the replica environment that
//! turns routing on for Service [`SERVICE`], and the addresses its EndpointSlices and its
//! Endpoints object advertise.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::cluster::{Cluster, NS};

/// The Service the replicas route.
pub const SERVICE: &str = "web";
/// Its ports, as `K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON`.
pub const PORTS: &str = r#"[{"name":"http","port":8080,"protocol":"TCP","appProtocol":"http"}]"#;

/// The environment of a replica routing [`SERVICE`] to `ip` on node `node`.
pub fn env<'a>(ip: &'a str, node: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("K8S_AWAIT_ELECTION_SERVICE_NAME", SERVICE),
        ("K8S_AWAIT_ELECTION_POD_IP", ip),
        ("K8S_AWAIT_ELECTION_NODE_NAME", node),
        ("K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON", PORTS),
    ]
}

/// Our EndpointSlice (named like the Service).
pub fn slice(c: &Cluster) -> Option<Value> {
    c.api.get_object("endpointslices", NS, SERVICE)
}

/// The Service's Endpoints object.
pub fn endpoints(c: &Cluster) -> Option<Value> {
    c.api.get_object("endpoints", NS, SERVICE)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses an EndpointSlice lists.
pub fn slice_ips(s: &Value) -> Vec<String> {
    s["endpoints"]
        .as_array()
        .map(|eps| {
            eps.iter()
                .flat_map(|e| strings(e.get("addresses")))
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses an Endpoints object lists.
pub fn endpoints_ips(e: &Value) -> Vec<String> {
    e["subsets"]
        .as_array()
        .map(|ss| {
            ss.iter()
                .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["ip"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every address any object advertises for the Service: all EndpointSlices labelled with it,
/// plus the Endpoints object (the mirroring controller would publish that one too).
pub fn advertised(c: &Cluster) -> BTreeSet<String> {
    let mut ips: BTreeSet<String> = c
        .api
        .list_objects("endpointslices", NS)
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == SERVICE)
        .flat_map(slice_ips)
        .collect();
    ips.extend(endpoints(c).as_ref().map(endpoints_ips).unwrap_or_default());
    ips
}
