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
//!    behind (by the Go tool, which writes only Endpoints, or by a replica that used them)
//!    would keep advertising another pod next to our slice. Deleting also removes the
//!    mirrored slices. Forbidden is tolerated (logged once).
//! 2. Write our EndpointSlice. If RBAC forbids reading or writing it (or the API is missing),
//!    fall back to the v1 Endpoints object for the rest of the process life (logged once);
//!    the mirroring controller then publishes it as slices, and no slice of ours is written
//!    that could disagree.
//!
//! Why both, and why slices first: kube-proxy and every other consumer read EndpointSlices,
//! and v1 Endpoints is deprecated (Kubernetes 1.33 warns on every use). A slice of our own is
//! published at once and carries `ready`/`serving`; an Endpoints object reaches consumers only
//! through the mirroring controller. The fallback exists for the RBAC the Go tool (every
//! release up to v0.4.2, which writes only v1 Endpoints) asked for: `get`, `create`, `update`
//! on `endpoints`, nothing on `endpointslices`. A Role that grants slices must grant `get`,
//! `create`, `update` on `endpointslices` (`discovery.k8s.io`); one that lacks any of them
//! (a 403 on the slice) gets the fallback. `delete` on `endpoints` (`""`) is recommended for
//! the stale-object clean-up of step 1.
//!
//! `endpoints` mode needs `get`, `create`, `update` on `endpoints` only; `endpointslice` mode
//! needs `get`, `create`, `update` on `endpointslices` only (plus `delete` when the pod IP
//! family changes, since `addressType` is immutable) and leaves any Endpoints object alone.
//!
//! # Layout
//! This file holds the [`Router`] (mode choice, auto mode, withdrawal); `endpoints` writes the
//! v1 Endpoints object, `slice` our EndpointSlice, `object` holds the object type and what is
//! common to both bodies, `retry` the retry loop for conditional writes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};

use crate::config::{Service, ServiceMode, SERVICE_MODE};
use crate::kube::{self, Client, Error};

mod endpoints;
mod object;
mod retry;
mod slice;

pub use endpoints::endpoints_body;
pub use object::Object;
pub use slice::{address_type, slice_body};

use object::{emptied, lists_ip};
use retry::{race_on_missing, retry};

/// Our value of `endpointslice.kubernetes.io/managed-by`.
pub const CONTROLLER_NAME: &str = "k8s-await-election";
/// The label that ties an EndpointSlice to its Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages an EndpointSlice (ours: [`CONTROLLER_NAME`]).
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

const CORE_GROUP: &str = "";
const DISCOVERY_GROUP: &str = "discovery.k8s.io";

/// Points the Service at this replica while it leads.
pub struct Router {
    client: Arc<Client>,
    settings: Service,
    /// Auto mode: the EndpointSlice API is forbidden (or missing); Endpoints from now on.
    slices_unavailable: bool,
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
            .finish_non_exhaustive()
    }
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
    /// A router for `settings`, writing through `client`. Sends nothing yet.
    pub fn new(client: Arc<Client>, settings: Service) -> Router {
        Router {
            client,
            settings,
            slices_unavailable: false,
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

#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::config::EndpointPort;
    use serde_json::Value;

    pub(super) fn settings(ip: &str, node: Option<&str>) -> Service {
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

    pub(super) fn object(v: Value) -> Object {
        serde_json::from_value(v).expect("object")
    }

    pub(super) fn value(o: &Object) -> Value {
        serde_json::to_value(o).expect("value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
