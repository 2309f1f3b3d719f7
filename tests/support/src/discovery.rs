//! Discovery, so that typed clients (kubectl) find what this server serves: `/version`,
//! `/api`, `/api/v1`, `/apis`, `/apis/<group>` and `/apis/<group>/<version>`, in the legacy
//! (unaggregated) JSON form, which kube-apiserver still serves to every client whose Accept
//! lets it (kubectl offers `application/json` after the aggregated `apidiscovery.k8s.io`
//! types, and falls back to reading each group version). Only the three resource types this
//! server serves are listed, with the verbs it serves.

use serde_json::{json, Value};

use crate::status::Kind;

/// The Kubernetes version this server claims to be.
pub const MAJOR: &str = "1";
/// The minor version (kubectl warns when it is more than one minor away from its own).
pub const MINOR: &str = "33";

/// The verbs every served resource supports here.
const VERBS: [&str; 6] = ["create", "delete", "get", "list", "update", "watch"];

/// The discovery document at `path`, or None if `path` is not a discovery path. `host` is
/// the request's Host header (for `serverAddressByClientCIDRs`).
pub fn document(path: &str, host: Option<&str>) -> Option<Value> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/version" => Some(version()),
        "/api" => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{
                "clientCIDR": "0.0.0.0/0",
                "serverAddress": host.unwrap_or("127.0.0.1:443"),
            }],
        })),
        "/apis" => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups().iter().map(|g| group(g)).collect::<Vec<_>>(),
        })),
        _ => {
            if let Some(gv) = path.strip_prefix("/apis/") {
                return match gv.split_once('/') {
                    None => groups().contains(&gv).then(|| {
                        let mut g = group(gv);
                        g["kind"] = json!("APIGroup");
                        g["apiVersion"] = json!("v1");
                        g
                    }),
                    Some((g, "v1")) if groups().contains(&g) => Some(resources(g)),
                    Some(_) => None,
                };
            }
            (path == "/api/v1").then(|| resources(""))
        }
    }
}

fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "emulationMajor": MAJOR,
        "emulationMinor": MINOR,
        "minCompatibilityMajor": MAJOR,
        "minCompatibilityMinor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// The named groups served (all in version v1).
fn groups() -> Vec<&'static str> {
    Kind::ALL
        .iter()
        .map(|k| k.group())
        .filter(|g| !g.is_empty())
        .collect()
}

fn group(name: &str) -> Value {
    let v = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [v.clone()], "preferredVersion": v})
}

/// The APIResourceList of group `group` ("" for the core group), version v1.
fn resources(group: &str) -> Value {
    let list: Vec<Value> = Kind::ALL
        .iter()
        .filter(|k| k.group() == group)
        .map(|k| {
            let mut r = json!({
                "name": k.resource(),
                "singularName": k.kind().to_ascii_lowercase(),
                "namespaced": true,
                "kind": k.kind(),
                "verbs": VERBS,
            });
            if *k == Kind::Endpoints {
                r["shortNames"] = json!(["ep"]);
            }
            r
        })
        .collect();
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": gv, "resources": list});
    if !group.is_empty() {
        doc["apiVersion"] = json!("v1");
    }
    doc
}
