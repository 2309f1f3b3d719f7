//! Which namespaces exist, and the NamespaceLifecycle admission check that uses them.
//!
//! kube-apiserver runs the NamespaceLifecycle admission plugin on create, update and delete
//! (never on get, list or watch): a delete is always admitted; a create, or an update of an
//! object that exists, in a namespace that does not exist is refused with the namespace's own
//! NotFound (`namespaces "X" not found`, details `{name: X, kind: namespaces}`). An update
//! of a missing object that the registry turns into a create (Lease, Endpoints) is admitted
//! as a create; one the registry refuses (EndpointSlice) is the object's 404 before admission.
//! Reads never look at the namespace: a get is the object's 404, a list is empty, a watch
//! streams nothing.
//!
//! The server knows `default`, `kube-system`, `kube-public` and `kube-node-lease` (as every
//! cluster does), plus what a test declares with `ApiServer::add_namespace` (or by putting
//! an object there with `put_object`) and the standalone binary's `--namespace` flags.

use std::collections::BTreeSet;

use serde_json::json;

use crate::status::ApiError;

/// The namespaces every cluster starts with.
pub const BUILT_IN: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The set of namespaces that exist.
#[derive(Debug, Clone)]
pub struct Namespaces {
    names: BTreeSet<String>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            names: BUILT_IN.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Namespaces {
    /// Declares `ns` (idempotent).
    pub fn add(&mut self, ns: &str) {
        self.names.insert(ns.to_string());
    }

    /// Forgets `ns`; false if it did not exist.
    pub fn remove(&mut self, ns: &str) -> bool {
        self.names.remove(ns)
    }

    pub fn exists(&self, ns: &str) -> bool {
        self.names.contains(ns)
    }

    /// NamespaceLifecycle for a create (also an update that creates) or an update in `ns`.
    pub fn admit_write(&self, ns: &str) -> Result<(), ApiError> {
        if self.exists(ns) {
            Ok(())
        } else {
            Err(not_found(ns))
        }
    }
}

/// `errors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)`, as the admission
/// plugin's live lookup returns it.
pub fn not_found(ns: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        &format!("namespaces {ns:?} not found"),
        Some(json!({"name": ns, "kind": "namespaces"})),
    )
}
