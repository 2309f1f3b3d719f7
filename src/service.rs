//! Service routing: point a selector-less Service at the leader, and only at the leader.
//!
//! Owns the Service's v1 `Endpoints` object and our `discovery.k8s.io/v1` `EndpointSlice`
//! (`K8S_AWAIT_ELECTION_SERVICE_*`). The elector thread calls [`Router::point_here`] after
//! winning the election and before CMD starts, and [`Router::withdraw`] on release or step
//! down. Knows Kubernetes (through [`crate::kube`]), nothing of processes.
//!
//! # Objects
//! - **Endpoints** (`/api/v1`, named like the Service):
//!   `subsets: [{addresses: [{ip, nodeName}], ports}]`.
//! - **EndpointSlice** (`discovery.k8s.io/v1`), also named exactly like the Service, so every
//!   replica writes the same object; names the Kubernetes controllers generate always carry a
//!   random suffix (`<service>-abcde`), so they cannot clash with it. Labels
//!   `kubernetes.io/service-name: <service>` and
//!   `endpointslice.kubernetes.io/managed-by: k8s-await-election` ([`CONTROLLER_NAME`]),
//!   `addressType` `IPv4` or `IPv6` from the pod IP, one endpoint
//!   `{addresses: [ip], conditions: {ready, serving: true, terminating: false}, nodeName}`, and
//!   the ports of `K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON`.
//!
//! Every write is conditional: GET, then PUT carrying the resourceVersion read (or POST when
//! missing); a 409 means read again and retry until the deadline. The PUT body is the object
//! we read with only our fields replaced, so labels, annotations, owner references and unknown
//! fields written by others survive (the Go tool's unconditional update lost them).
//! Withdrawing empties `subsets` / `endpoints` — conditionally, and only while the object
//! still lists our IP, so it never removes a newer leader.
//!
//! # `K8S_AWAIT_ELECTION_SERVICE_MODE=auto` (the default)
//! 1. Delete the v1 Endpoints object (404 is fine). For a selector-less Service the
//!    endpointslice-mirroring controller copies that object into slices of its own; one left
//!    behind (by the Go tool up to v0.4, or by a replica that used Endpoints) would keep
//!    advertising another pod next to our slice. Deleting also removes the mirrored slices.
//!    Forbidden is tolerated (logged once).
//! 2. Write our EndpointSlice. If RBAC forbids it (or the API is missing), fall back to the v1
//!    Endpoints object for the rest of the process life (logged once); the mirroring
//!    controller then publishes it as slices, and no slice of ours is written that could
//!    disagree.
//!
//! This keeps both RBAC sets of the Go tool working unchanged: v0.4's `get`, `create`,
//! `update` on `endpoints` (slices forbidden → Endpoints), and v0.5's `create`, `update` on
//! `endpointslices` plus `delete` on `endpoints`. Without `get` on `endpointslices` the slice
//! is written blind, as v0.5 did: POST, and on AlreadyExists an unconditional PUT (the
//! EndpointSlice API allows it); labels others put on the slice are then lost, which is
//! logged once, and withdrawing uses the resourceVersion of our own last write (a 409 means
//! somebody else wrote it since, so it is left alone). The recommended rules are
//! `get`, `create`, `update` on `endpointslices` (`discovery.k8s.io`) and `delete` on
//! `endpoints` (`""`).
//!
//! `endpoints` mode needs `get`, `create`, `update` on `endpoints` only; `endpointslice` mode
//! needs `get`, `create`, `update` on `endpointslices` only (plus `delete` when the pod IP
//! family changes, since `addressType` is immutable) and leaves any Endpoints object alone.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{Service, ServiceMode, SERVICE_MODE};
use crate::kube::{self, Client, Error};

/// Our value of `endpointslice.kubernetes.io/managed-by`.
pub const CONTROLLER_NAME: &str = "k8s-await-election";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

const CORE_GROUP: &str = "";
const DISCOVERY_GROUP: &str = "discovery.k8s.io";

/// First pause between retries; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Points the Service at this replica while it leads.
pub struct Router {
    client: Arc<Client>,
    settings: Service,
    /// Auto mode: the EndpointSlice API is forbidden (or missing); Endpoints from now on.
    slices_unavailable: bool,
    /// We may not GET our slice: write it blind.
    slice_blind: bool,
    /// The slice and the Endpoints object as our last write stored them.
    slice_written: Option<Object>,
    endpoints_written: Option<Object>,
    warned_endpoints_delete: bool,
    /// point_here ran since the last complete withdrawal (a second withdraw is a no-op).
    pointed: bool,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("settings", &self.settings)
            .field("slices_unavailable", &self.slices_unavailable)
            .field("slice_blind", &self.slice_blind)
            .finish_non_exhaustive()
    }
}

/// A Kubernetes object with typed metadata; every other field is kept as it came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Object {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The metadata fields we touch; the others ride along in `rest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Which object a request was about, for error messages that name the missing permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Endpoints,
    Slice,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Endpoints => "endpoints",
            Kind::Slice => "endpointslices",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Kind::Endpoints => CORE_GROUP,
            Kind::Slice => DISCOVERY_GROUP,
        }
    }
}

impl Router {
    pub fn new(client: Arc<Client>, settings: Service) -> Router {
        Router {
            client,
            settings,
            slices_unavailable: false,
            slice_blind: false,
            slice_written: None,
            endpoints_written: None,
            warned_endpoints_delete: false,
            pointed: false,
        }
    }

    /// On election, before CMD starts: points the Service at us only. A
    /// [`kube::Error::Forbidden`] names the missing permission (verb, resource, API group,
    /// namespace); the caller treats it as fatal.
    pub fn point_here(&mut self, deadline: Instant) -> Result<(), Error> {
        self.pointed = true;
        let result = match self.settings.mode {
            ServiceMode::Endpoints => self.point_endpoints(deadline),
            ServiceMode::EndpointSlice => self.point_slice(deadline),
            ServiceMode::Auto if self.slices_unavailable => self.point_endpoints(deadline),
            ServiceMode::Auto => self.point_auto(deadline),
        };
        match &result {
            Ok(()) => debug!(
                "service {}/{} now points at {}",
                self.settings.namespace,
                self.settings.name,
                self.ip()
            ),
            Err(e) => debug!(
                "could not point service {}/{} at {}: {e}",
                self.settings.namespace,
                self.settings.name,
                self.ip()
            ),
        }
        result
    }

    /// On release or step-down: removes our address from the objects that still list it
    /// (conditional writes), so no traffic goes to a stopping pod. Best effort, bounded by
    /// `deadline`; failures are logged.
    pub fn withdraw(&mut self, deadline: Instant) {
        if !self.pointed {
            return;
        }
        let kind = match self.settings.mode {
            ServiceMode::Endpoints => Kind::Endpoints,
            ServiceMode::Auto if self.slices_unavailable => Kind::Endpoints,
            ServiceMode::Auto | ServiceMode::EndpointSlice => Kind::Slice,
        };
        let result = self.withdraw_from(kind, deadline);
        self.pointed = result.is_err();
        match result {
            Ok(true) => info!(
                "removed {} from service {}/{}",
                self.ip(),
                self.settings.namespace,
                self.settings.name
            ),
            Ok(false) => debug!(
                "service {}/{} does not point at us; nothing to withdraw",
                self.settings.namespace, self.settings.name
            ),
            Err(e) => warn!(
                "could not remove {} from service {}/{}: {e}",
                self.ip(),
                self.settings.namespace,
                self.settings.name
            ),
        }
    }

    fn ip(&self) -> IpAddr {
        self.settings.pod_ip.to_canonical()
    }

    fn ns(&self) -> &str {
        &self.settings.namespace
    }

    fn path(&self, kind: Kind) -> String {
        match kind {
            Kind::Endpoints => kube::endpoints_path(self.ns(), &self.settings.name),
            Kind::Slice => kube::endpointslice_path(self.ns(), &self.slice_name()),
        }
    }

    fn collection(&self, kind: Kind) -> String {
        match kind {
            Kind::Endpoints => kube::endpoints_collection(self.ns()),
            Kind::Slice => kube::endpointslices_path(self.ns()),
        }
    }

    /// The name of our EndpointSlice.
    pub fn slice_name(&self) -> String {
        self.settings.name.clone()
    }

    /// Turns a 403 into a message naming the permission that is missing.
    fn denied(&self, e: Error, verb: &str, kind: Kind) -> Error {
        match e {
            Error::Forbidden(msg) => Error::Forbidden(permission_message(
                verb,
                kind,
                self.ns(),
                self.settings.mode,
                &msg,
            )),
            other => other,
        }
    }

    fn point_auto(&mut self, deadline: Instant) -> Result<(), Error> {
        let deleted = self.delete_stale_endpoints(deadline);
        match self.point_slice(deadline) {
            Ok(()) => {
                if let Err(e) = deleted {
                    if !self.warned_endpoints_delete {
                        self.warned_endpoints_delete = true;
                        warn!(
                            "{e}; an Endpoints object left behind would keep advertising another pod through mirrored EndpointSlices"
                        );
                    }
                }
                Ok(())
            }
            Err(e @ (Error::Forbidden(_) | Error::NotFound(_))) => {
                warn!(
                    "cannot write the EndpointSlice ({e}); using the v1 Endpoints object {}/{} from now on",
                    self.ns(),
                    self.settings.name
                );
                self.slices_unavailable = true;
                self.point_endpoints(deadline).map_err(|e2| match e2 {
                    Error::Forbidden(m) => Error::Forbidden(format!(
                        "{m}; grant either create, get and update on endpointslices in API group \"{DISCOVERY_GROUP}\" or get, create and update on endpoints in API group \"\" in the namespace \"{}\"",
                        self.ns()
                    )),
                    other => other,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Auto mode: no Endpoints object may keep (mirrored) addresses next to our slice.
    /// A refusal is returned (and reported by the caller only if the slice write works).
    fn delete_stale_endpoints(&mut self, deadline: Instant) -> Result<(), Error> {
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

    fn point_endpoints(&mut self, deadline: Instant) -> Result<(), Error> {
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

    fn point_slice(&mut self, deadline: Instant) -> Result<(), Error> {
        let path = self.path(Kind::Slice);
        let collection = self.collection(Kind::Slice);
        let mut blind = self.slice_blind;
        let mut warn_blind = false;
        let stored = retry(deadline, || {
            let current = if blind {
                Err(Error::Forbidden(String::new()))
            } else {
                self.client.get::<Object>(&path, deadline)
            };
            match current {
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
                Err(Error::Forbidden(msg)) => {
                    // Without `get` (the Go tool v0.5's RBAC): POST, or an unconditional PUT.
                    if !blind {
                        blind = true;
                        warn_blind = true;
                        debug!("may not read the EndpointSlice: {msg}");
                    }
                    let body = slice_body(None, &self.settings);
                    match self
                        .client
                        .create::<_, Object>(&collection, &body, deadline)
                    {
                        Err(Error::AlreadyExists(_)) => self
                            .client
                            .replace::<_, Object>(&path, &body, deadline)
                            .map_err(|e| self.denied(race_on_missing(e), "update", Kind::Slice)),
                        other => other.map_err(|e| self.denied(e, "create", Kind::Slice)),
                    }
                }
                Err(e) => Err(self.denied(e, "get", Kind::Slice)),
            }
        });
        if warn_blind && stored.is_ok() {
            warn!(
                "{}; writing the EndpointSlice without reading it first: labels and annotations others put on it are lost",
                permission_message("get", Kind::Slice, self.ns(), self.settings.mode, "")
            );
        }
        self.slice_blind = blind;
        self.slice_written = Some(stored?);
        Ok(())
    }

    /// Empties `kind` if it still lists our IP. `Ok(true)`: we removed ourselves.
    fn withdraw_from(&mut self, kind: Kind, deadline: Instant) -> Result<bool, Error> {
        let path = self.path(kind);
        let ip = self.ip();
        let cached = match kind {
            Kind::Endpoints => self.endpoints_written.take(),
            Kind::Slice => self.slice_written.take(),
        };
        // Our own last write, if nobody changed it since (the PUT is conditional on its
        // resourceVersion), still lists only us: empty it without reading first.
        if let Some(ours) =
            cached.filter(|o| lists_ip(kind, o, ip) && o.metadata.resource_version.is_some())
        {
            match self
                .client
                .replace::<_, Object>(&path, &emptied(kind, ours), deadline)
            {
                Ok(_) => return Ok(true),
                Err(Error::Conflict(_) | Error::NotFound(_)) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(self.denied(e, "update", kind)),
            }
        }
        if kind == Kind::Slice && self.slice_blind {
            debug!("the EndpointSlice changed since our write and we may not read it; leaving it alone");
            return Ok(false);
        }
        retry(deadline, || {
            match self.client.get::<Object>(&path, deadline) {
                Ok(current) if lists_ip(kind, &current, ip) => self
                    .client
                    .replace::<_, Object>(&path, &emptied(kind, current), deadline)
                    .map(|_| true)
                    .map_err(|e| self.denied(race_on_missing(e), "update", kind)),
                Ok(_) | Err(Error::NotFound(_)) => Ok(false),
                Err(e) => Err(self.denied(e, "get", kind)),
            }
        })
    }
}

/// A 404 on PUT means the object vanished between our GET and PUT: a race, read again.
fn race_on_missing(e: Error) -> Error {
    match e {
        Error::NotFound(m) => Error::Conflict(format!("deleted while we wrote it: {m}")),
        other => other,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `deadline` passes. Conflicts and
/// AlreadyExists (races with another writer) and transient errors are retried with a short,
/// growing pause (or the server's `Retry-After`).
fn retry<T>(deadline: Instant, mut attempt: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut pause = FIRST_PAUSE;
    loop {
        let e = match attempt() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let retryable =
            matches!(e, Error::Conflict(_) | Error::AlreadyExists(_)) || e.is_transient();
        let wait = e.retry_after().unwrap_or(pause);
        if !retryable || Instant::now() + wait >= deadline {
            return Err(e);
        }
        debug!("service routing: {e}; retrying");
        thread::sleep(wait);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn permission_message(verb: &str, kind: Kind, ns: &str, mode: ServiceMode, server: &str) -> String {
    let mode = match mode {
        ServiceMode::Auto => "auto",
        ServiceMode::Endpoints => "endpoints",
        ServiceMode::EndpointSlice => "endpointslice",
    };
    let mut m = format!(
        "service routing ({SERVICE_MODE}={mode}) needs permission to {verb} resource \"{}\" in API group \"{}\" in the namespace \"{ns}\"",
        kind.resource(),
        kind.group()
    );
    if !server.is_empty() {
        m.push_str(" (");
        m.push_str(server);
        m.push(')');
    }
    m
}

/// `IPv4` or `IPv6`, as EndpointSlice `addressType` wants it.
pub fn address_type(ip: IpAddr) -> &'static str {
    match ip.to_canonical() {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn ports_json(s: &Service) -> Value {
    serde_json::to_value(&s.ports).unwrap_or_else(|_| Value::Array(Vec::new()))
}

fn base_object(
    existing: Option<Object>,
    s: &Service,
    name: String,
    api_version: &str,
    kind: &str,
) -> Object {
    let mut obj = existing.unwrap_or_default();
    obj.metadata.name = Some(name);
    obj.metadata.namespace = Some(s.namespace.clone());
    obj.rest.insert("apiVersion".into(), json!(api_version));
    obj.rest.insert("kind".into(), json!(kind));
    obj
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
    let labels = obj.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_SERVICE_NAME.into(), s.name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
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

/// `obj` with our addresses gone: `subsets: []` or `endpoints: []`.
fn emptied(kind: Kind, mut obj: Object) -> Object {
    let field = match kind {
        Kind::Endpoints => "subsets",
        Kind::Slice => "endpoints",
    };
    obj.rest.insert(field.into(), json!([]));
    obj
}

/// Whether `obj` (an Endpoints object or an EndpointSlice) lists `ip`.
fn lists_ip(kind: Kind, obj: &Object, ip: IpAddr) -> bool {
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
    use crate::config::EndpointPort;
    use std::cell::Cell;

    fn settings(ip: &str, node: Option<&str>) -> Service {
        Service {
            name: "web".into(),
            namespace: "prod".into(),
            ports: vec![EndpointPort {
                name: Some("http".into()),
                port: 8080,
                protocol: Some("TCP".into()),
                app_protocol: Some("http".into()),
            }],
            pod_ip: ip.parse().expect("ip"),
            node_name: node.map(String::from),
            mode: ServiceMode::Auto,
        }
    }

    fn object(v: Value) -> Object {
        serde_json::from_value(v).expect("object")
    }

    fn value(o: &Object) -> Value {
        serde_json::to_value(o).expect("value")
    }

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

    #[test]
    fn permission_messages_name_verb_resource_group_and_namespace() {
        let m = permission_message(
            "update",
            Kind::Slice,
            "prod",
            ServiceMode::Auto,
            "server says no",
        );
        for part in [
            "update",
            "\"endpointslices\"",
            "API group \"discovery.k8s.io\"",
            "namespace \"prod\"",
            "K8S_AWAIT_ELECTION_SERVICE_MODE=auto",
            "server says no",
        ] {
            assert!(m.contains(part), "{part} missing in {m}");
        }
        let m = permission_message("get", Kind::Endpoints, "prod", ServiceMode::Endpoints, "");
        assert!(m.contains("\"endpoints\" in API group \"\""), "{m}");
        assert!(!m.ends_with(')'), "{m}");
    }

    #[test]
    fn retry_rules() {
        let far = Instant::now() + Duration::from_secs(5);
        let calls = Cell::new(0);
        let r = retry(far, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(Error::Conflict("modified".into()))
            } else {
                Ok(calls.get())
            }
        });
        assert_eq!(r, Ok(3));

        calls.set(0);
        let r: Result<(), Error> = retry(far, || {
            calls.set(calls.get() + 1);
            Err(Error::Forbidden("no".into()))
        });
        assert_eq!(r, Err(Error::Forbidden("no".into())));
        assert_eq!(calls.get(), 1, "forbidden is final");

        let started = Instant::now();
        let soon = started + Duration::from_millis(300);
        let r: Result<(), Error> = retry(soon, || Err(Error::Timeout));
        assert_eq!(r, Err(Error::Timeout));
        assert!(started.elapsed() < Duration::from_millis(600));

        // A Retry-After beyond the deadline ends the attempts at once.
        let started = Instant::now();
        let r: Result<(), Error> = retry(started + Duration::from_secs(2), || {
            Err(Error::TooManyRequests {
                retry_after: Some(Duration::from_secs(10)),
                message: String::new(),
            })
        });
        assert!(r.is_err());
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
