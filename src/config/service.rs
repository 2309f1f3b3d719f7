//! Service routing settings (`K8S_AWAIT_ELECTION_SERVICE_*`, `_POD_IP`, `_NODE_NAME`) and
//! the EndpointPort list of `K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::error::{bad, ConfigError};
use super::names::{
    check_dns1035_label, check_dns1123_label, check_dns1123_subdomain, is_dns1123_label,
};
use super::vars::{
    NODE_NAME, POD_IP, SERVICE_MODE, SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_PORTS_JSON,
};

/// Which objects point the Service at the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMode {
    /// An EndpointSlice if RBAC allows it, else a v1 Endpoints object (see README).
    Auto,
    /// Only the v1 Endpoints object, all the Go tool (latest release v0.4.2) ever writes.
    Endpoints,
    /// Only an EndpointSlice managed by us.
    EndpointSlice,
}

/// Service routing settings (`K8S_AWAIT_ELECTION_SERVICE_*`, `_POD_IP`, `_NODE_NAME`).
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The Service's name (a DNS-1035 label).
    pub name: String,
    /// The Service's namespace (defaults to the lock namespace).
    pub namespace: String,
    /// The ports of the endpoint (may be empty).
    pub ports: Vec<EndpointPort>,
    /// This pod's IP, the address the Service is pointed at.
    pub pod_ip: IpAddr,
    /// This pod's node, written as the endpoint's `nodeName` when set.
    pub node_name: Option<String>,
    /// Which objects are written.
    pub mode: ServiceMode,
}

/// One `EndpointPort`, as in `K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointPort {
    /// `name`: a DNS-1123 label, required when there are several ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `port`: 1-65535.
    pub port: i64,
    /// `protocol`: `TCP`, `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `appProtocol`, such as `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// The Service settings, or `None` when no Service is named (then none of its other
/// variables may be set). `get` reads a variable (empty counts as unset).
pub(super) fn service_from_env(
    get: &dyn Fn(&str) -> Option<String>,
    lock_namespace: &str,
) -> Result<Option<Service>, ConfigError> {
    let Some(name) = get(SERVICE_NAME) else {
        for k in [SERVICE_NAMESPACE, SERVICE_PORTS_JSON, SERVICE_MODE] {
            if let Some(v) = get(k) {
                return Err(bad(k, &v, format!("it needs {SERVICE_NAME} to be set too")));
            }
        }
        return Ok(None);
    };
    check_dns1035_label(SERVICE_NAME, &name)?;
    let namespace = get(SERVICE_NAMESPACE).unwrap_or_else(|| lock_namespace.to_string());
    check_dns1123_label(SERVICE_NAMESPACE, &namespace)?;
    let pod_ip_text = get(POD_IP).ok_or_else(|| ConfigError {
        variable: POD_IP,
        value: None,
        problem: format!(
            "it is required when {SERVICE_NAME} is set (use the downward API: fieldRef status.podIP)"
        ),
    })?;
    let pod_ip: IpAddr = pod_ip_text
        .parse()
        .map_err(|_| bad(POD_IP, &pod_ip_text, "expected an IPv4 or IPv6 address"))?;
    if pod_ip.is_unspecified() || pod_ip.is_multicast() || pod_ip.is_loopback() {
        // The API server rejects these in Endpoints and EndpointSlices (422).
        return Err(bad(
            POD_IP,
            &pod_ip_text,
            "expected the pod's unicast address (not loopback, multicast or unspecified)",
        ));
    }
    let node_name = get(NODE_NAME);
    if let Some(n) = &node_name {
        check_dns1123_subdomain(NODE_NAME, n)?;
    }
    let ports = match get(SERVICE_PORTS_JSON) {
        None => Vec::new(),
        Some(v) => parse_ports(&v)?,
    };
    let mode = match get(SERVICE_MODE).as_deref() {
        None | Some("auto") => ServiceMode::Auto,
        Some("endpoints") => ServiceMode::Endpoints,
        Some("endpointslice") => ServiceMode::EndpointSlice,
        Some(v) => {
            return Err(bad(
                SERVICE_MODE,
                v,
                "expected \"auto\", \"endpoints\" or \"endpointslice\"",
            ))
        }
    };
    Ok(Some(Service {
        name,
        namespace,
        ports,
        pod_ip,
        node_name,
        mode,
    }))
}

/// Parses and validates the EndpointPort list.
pub fn parse_ports(v: &str) -> Result<Vec<EndpointPort>, ConfigError> {
    let ports: Vec<EndpointPort> = serde_json::from_str(v).map_err(|e| {
        bad(
            SERVICE_PORTS_JSON,
            v,
            format!(
                "expected a JSON list like [{{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}}] ({e})"
            ),
        )
    })?;
    let mut names = BTreeSet::new();
    for p in &ports {
        if !(1..=65535).contains(&p.port) {
            return Err(bad(
                SERVICE_PORTS_JSON,
                v,
                format!("port {} is not in 1-65535", p.port),
            ));
        }
        if let Some(proto) = &p.protocol {
            if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    format!("protocol {proto:?} is not one of TCP, UDP, SCTP"),
                ));
            }
        }
        match &p.name {
            Some(n) => {
                if !is_dns1123_label(n) || n.is_empty() {
                    return Err(bad(
                        SERVICE_PORTS_JSON,
                        v,
                        format!("port name {n:?} must be a DNS-1123 label (lowercase letters, digits, '-', at most 63)"),
                    ));
                }
                if !names.insert(n.clone()) {
                    return Err(bad(
                        SERVICE_PORTS_JSON,
                        v,
                        format!("port name {n:?} is used twice"),
                    ));
                }
            }
            None if ports.len() > 1 => {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    "every port needs a name when there are several",
                ))
            }
            None => {}
        }
        if let Some(ap) = &p.app_protocol {
            if ap.is_empty()
                || ap.len() > 253
                || ap.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    format!("appProtocol {ap:?} is not a valid protocol name"),
                ));
            }
        }
    }
    Ok(ports)
}
