//! The names of the `K8S_AWAIT_ELECTION_*` variables, written once: a constant for each, and
//! [`VARIABLES`], the list of all of them with their default and a one-line description.
//!
//! `K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR` is not here: `kube` reads it
//! (`kube::SERVICEACCOUNT_DIR_ENV`), not [`super::from_env`].

/// Any non-empty value enables election.
pub const ENABLED: &str = "K8S_AWAIT_ELECTION_ENABLED";
/// Name of the election, for logs and metrics.
pub const NAME: &str = "K8S_AWAIT_ELECTION_NAME";
/// Name of the Lease.
pub const LOCK_NAME: &str = "K8S_AWAIT_ELECTION_LOCK_NAME";
/// Namespace of the Lease.
pub const LOCK_NAMESPACE: &str = "K8S_AWAIT_ELECTION_LOCK_NAMESPACE";
/// This replica's identity (the pod name).
pub const IDENTITY: &str = "K8S_AWAIT_ELECTION_IDENTITY";
/// `[IP]:PORT` of the status endpoint.
pub const STATUS_ENDPOINT: &str = "K8S_AWAIT_ELECTION_STATUS_ENDPOINT";
/// The Service to point at the leader.
pub const SERVICE_NAME: &str = "K8S_AWAIT_ELECTION_SERVICE_NAME";
/// Namespace of the Service.
pub const SERVICE_NAMESPACE: &str = "K8S_AWAIT_ELECTION_SERVICE_NAMESPACE";
/// The Service's ports, as a JSON list of EndpointPorts.
pub const SERVICE_PORTS_JSON: &str = "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON";
/// Which objects point the Service at the leader.
pub const SERVICE_MODE: &str = "K8S_AWAIT_ELECTION_SERVICE_MODE";
/// This pod's IP.
pub const POD_IP: &str = "K8S_AWAIT_ELECTION_POD_IP";
/// This pod's node.
pub const NODE_NAME: &str = "K8S_AWAIT_ELECTION_NODE_NAME";
/// The lease duration.
pub const LEASE_DURATION: &str = "K8S_AWAIT_ELECTION_LEASE_DURATION";
/// The renew deadline.
pub const RENEW_DEADLINE: &str = "K8S_AWAIT_ELECTION_RENEW_DEADLINE";
/// The retry period.
pub const RETRY_PERIOD: &str = "K8S_AWAIT_ELECTION_RETRY_PERIOD";
/// Time CMD gets between SIGTERM and SIGKILL after leadership is lost.
pub const GRACE_PERIOD: &str = "K8S_AWAIT_ELECTION_GRACE_PERIOD";
/// Where forwarded signals go: `child` or `group`.
pub const SIGNAL_TARGET: &str = "K8S_AWAIT_ELECTION_SIGNAL_TARGET";
/// Time kept between the SIGKILL of a stepping-down CMD and the lease's expiry.
pub const KILL_MARGIN: &str = "K8S_AWAIT_ELECTION_KILL_MARGIN";
/// `on` or `off`: Kubernetes Events on leadership changes.
pub const EVENTS: &str = "K8S_AWAIT_ELECTION_EVENTS";
/// `text` or `json`: the format of our log lines.
pub const LOG_FORMAT: &str = "K8S_AWAIT_ELECTION_LOG_FORMAT";

/// One variable the configuration reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name, `K8S_AWAIT_ELECTION_*`.
    pub name: &'static str,
    /// What an unset (or empty) variable means, in words: `"required"`, `"unset"`, `"15"`.
    pub default: &'static str,
    /// What it sets, in one line.
    pub doc: &'static str,
}

/// Every variable [`super::from_env`] reads, in a fixed order (the fuzz corpus of
/// `tests/fuzz` indexes into it: append new ones at the end).
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: ENABLED,
        default: "unset",
        doc: "any non-empty value enables election; unset or empty: exec CMD directly",
    },
    Variable {
        name: NAME,
        default: "the lock name",
        doc: "name of the election, for logs and the `name` label of the metrics",
    },
    Variable {
        name: LOCK_NAME,
        default: "required",
        doc: "name of the Lease; a DNS-1123 subdomain",
    },
    Variable {
        name: LOCK_NAMESPACE,
        default: "required",
        doc: "namespace of the Lease; a DNS-1123 label",
    },
    Variable {
        name: IDENTITY,
        default: "required",
        doc: "this replica's unique identity, normally the pod name",
    },
    Variable {
        name: STATUS_ENDPOINT,
        default: "off",
        doc: "`[IP]:PORT` of the status endpoint, e.g. `:9999`",
    },
    Variable {
        name: SERVICE_NAME,
        default: "off",
        doc: "selector-less Service to point at the leader; a DNS-1035 label",
    },
    Variable {
        name: SERVICE_NAMESPACE,
        default: "the lock namespace",
        doc: "namespace of the Service; a DNS-1123 label",
    },
    Variable {
        name: SERVICE_PORTS_JSON,
        default: "[]",
        doc: "JSON list of EndpointPorts, e.g. `[{\"name\":\"http\",\"port\":8080}]`",
    },
    Variable {
        name: SERVICE_MODE,
        default: "auto",
        doc: "`auto`, `endpointslice` or `endpoints`",
    },
    Variable {
        name: POD_IP,
        default: "required with a Service",
        doc: "this pod's IP (downward API `status.podIP`)",
    },
    Variable {
        name: NODE_NAME,
        default: "unset",
        doc: "node name for the endpoint (downward API `spec.nodeName`)",
    },
    Variable {
        name: LEASE_DURATION,
        default: "15",
        doc: "how long others wait for a silent leader (seconds, or with `ms`, `s`, `m`)",
    },
    Variable {
        name: RENEW_DEADLINE,
        default: "10",
        doc: "how long the leader keeps trying to renew before it steps down",
    },
    Variable {
        name: RETRY_PERIOD,
        default: "2",
        doc: "time between renewals, and between attempts after errors",
    },
    Variable {
        name: GRACE_PERIOD,
        default: "lease duration - renew deadline - kill margin",
        doc: "time CMD gets between SIGTERM and SIGKILL after leadership is lost",
    },
    Variable {
        name: SIGNAL_TARGET,
        default: "child",
        doc: "`child`: forward signals to CMD only; `group`: to CMD's process group",
    },
    Variable {
        name: KILL_MARGIN,
        default: "2s",
        doc: "time kept between the SIGKILL of a stepping-down CMD and the lease's expiry, for the kernel to finish CMD",
    },
    Variable {
        name: EVENTS,
        default: "on",
        doc: "`on`: post Kubernetes Events when this replica becomes or stops being leader (best effort); `off`: none",
    },
    Variable {
        name: LOG_FORMAT,
        default: "text",
        doc: "`text`: one plain line per log record; `json`: one JSON object per line",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn variables_are_unique_and_prefixed() {
        let names: BTreeSet<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(names.len(), VARIABLES.len());
        for v in VARIABLES {
            assert!(v.name.starts_with("K8S_AWAIT_ELECTION_"), "{}", v.name);
            assert!(!v.doc.is_empty() && !v.default.is_empty(), "{}", v.name);
        }
    }
}
