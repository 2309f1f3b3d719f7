//! The Kubernetes REST client (`k8s_await_election::kube`) against the test API server:
//! every error class, TLS trust, token rotation, IPv6, deadlines, watches, and that the
//! token never shows up in errors, Debug output or log lines.

mod credentials;
mod requests;
mod watch;

use std::time::{Duration, Instant};

use k8s_await_election::kube::{Client, InClusterConfig};
use serde_json::{json, Value};
use test_apiserver::ApiServer;

use crate::tempdir::TempDir;

const NS: &str = "default";

/// A server, a service-account dir holding `token` (registered with the server) and a
/// client built through `InClusterConfig::from_env`.
struct Setup {
    server: ApiServer,
    dir: TempDir,
    client: Client,
}

fn env_for(host: &str, port: u16, dir: &TempDir) -> impl Fn(&str) -> Option<String> + use<> {
    let host = host.to_string();
    let dir = dir.path().display().to_string();
    move |k: &str| match k {
        "KUBERNETES_SERVICE_HOST" => Some(host.clone()),
        "KUBERNETES_SERVICE_PORT" => Some(port.to_string()),
        "K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR" => Some(dir.clone()),
        _ => None,
    }
}

fn setup(token: &str) -> Setup {
    setup_with(token, ApiServer::start(), None)
}

fn setup_with(token: &str, server: ApiServer, refresh: Option<Duration>) -> Setup {
    let dir = TempDir::new("kube");
    server.add_token(token, "system:serviceaccount:default:test");
    server
        .write_service_account_dir(dir.path(), token, NS)
        .expect("write service-account dir");
    let cfg = InClusterConfig::from_env(&env_for("127.0.0.1", server.port(), &dir))
        .expect("in-cluster config");
    assert_eq!(cfg.namespace(), Some(NS));
    let client = match refresh {
        Some(r) => Client::with_token_refresh(cfg, r),
        None => Client::new(cfg),
    }
    .expect("client");
    Setup {
        server,
        dir,
        client,
    }
}

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

fn lease(name: &str, holder: &str) -> Value {
    let now = test_apiserver::micro_time_now();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0
        }
    })
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string()
}
