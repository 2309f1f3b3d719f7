//! The Kubernetes manifests in `examples/` stay in step with the code: every document is a
//! well-formed object, the Deployment's environment is accepted by `config::from_env` and
//! names only variables the code knows, the Service matches the routing environment, and the
//! Role grants exactly the verbs the code uses.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_await_election::config;
use k8s_await_election::kube::SERVICEACCOUNT_DIR_ENV;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

use crate::prereqs::require;
use crate::tempdir::TempDir;

/// The requests the code makes with the recommended `K8S_AWAIT_ELECTION_SERVICE_MODE=auto`,
/// as (API group, resource, RBAC verbs). Keep in step with the code:
/// - leases, `src/election.rs`: `client.get` (first read, re-reads), `client.create` (no
///   Lease yet, or ours was deleted), `client.replace` = update (acquire, renew, release, all
///   conditional), `client.watch` (followers watch the one Lease with
///   `fieldSelector=metadata.name=...`; no list).
/// - endpointslices, `src/service.rs` `point_slice` / `withdraw_from`: get, create, update.
///   (`delete` only when the pod IP family changes; not granted in the example, see the
///   comment in `examples/rbac.yaml`.)
/// - endpoints, `src/service.rs` `delete_stale_endpoints`: delete. (get/create/update only in
///   `endpoints` mode or as the fallback when slices are forbidden.)
const USED: &[(&str, &str, &[&str])] = &[
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update", "watch"],
    ),
    (
        "discovery.k8s.io",
        "endpointslices",
        &["get", "create", "update"],
    ),
    ("", "endpoints", &["delete"]),
    // events, `src/events.rs`: create (optional: without it one WARN, and no events).
    ("", "events", &["create"]),
];

/// `Client` methods → RBAC verbs, to notice when the code starts making a new kind of request.
const CLIENT_CALLS: &[(&str, &str)] = &[
    ("client.get::<", "get"),
    ("client.create::<", "create"),
    ("client.replace::<", "update"),
    ("client.delete(", "delete"),
    ("client.post(", "create"),
    ("client.watch::<", "watch"),
    ("client.list::<", "list"),
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every YAML document of every `examples/*.yaml` file, with its file name.
fn documents() -> Vec<(String, Yaml)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("read examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in examples/");
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read example");
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
        for doc in docs {
            if !doc.is_null() {
                out.push((name.clone(), doc));
            }
        }
    }
    out
}

fn str_at<'a>(y: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    path.iter().fold(y, |y, k| &y[*k]).as_str()
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn strings(y: &Yaml) -> Vec<String> {
    list(y)
        .iter()
        .map(|v| v.as_str().expect("a list of strings").to_string())
        .collect()
}

/// The one object of `kind` in examples/.
fn object(kind: &str) -> Yaml {
    let found: Vec<Yaml> = documents()
        .into_iter()
        .filter(|(_, d)| str_at(d, &["kind"]) == Some(kind))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} in examples/");
    found.into_iter().next().unwrap()
}

fn container() -> Yaml {
    let deploy = object("Deployment");
    let containers = list(&deploy["spec"]["template"]["spec"]["containers"]);
    assert_eq!(containers.len(), 1, "the example has one container");
    containers[0].clone()
}

/// What the downward API would put in each `fieldRef`.
fn downward(field: &str) -> &'static str {
    match field {
        "metadata.name" => "my-singleton-5d8f7c9b6-x2k4q",
        "metadata.namespace" => "default",
        "status.podIP" => "10.244.1.17",
        "spec.nodeName" => "node-1",
        other => panic!("unexpected fieldRef {other}"),
    }
}

/// The container's environment as a pod would see it, plus each variable's fieldRef if any.
fn container_env() -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut values = BTreeMap::new();
    let mut field_refs = BTreeMap::new();
    for e in list(&container()["env"]) {
        let name = str_at(e, &["name"]).expect("env name").to_string();
        let value = if let Some(v) = str_at(e, &["value"]) {
            v.to_string()
        } else if let Some(f) = str_at(e, &["valueFrom", "fieldRef", "fieldPath"]) {
            field_refs.insert(name.clone(), f.to_string());
            downward(f).to_string()
        } else {
            panic!("env {name}: expected a string value or a fieldRef");
        };
        assert!(
            values.insert(name.clone(), value).is_none(),
            "env {name} is set twice"
        );
    }
    (values, field_refs)
}

fn election_config() -> config::Election {
    let (env, _) = container_env();
    let cfg = config::from_env(vec![OsString::from("/my-server")], &|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("examples/deployment.yaml: {e}"));
    cfg.election.expect("the example enables the election")
}

#[test]
fn every_document_is_a_named_object() {
    let docs = documents();
    let mut kinds = BTreeSet::new();
    for (file, doc) in &docs {
        let api = str_at(doc, &["apiVersion"]);
        let kind = str_at(doc, &["kind"]);
        let name = str_at(doc, &["metadata", "name"]);
        assert!(
            api.is_some_and(|s| !s.is_empty()),
            "{file}: a document without apiVersion"
        );
        assert!(
            kind.is_some_and(|s| !s.is_empty()),
            "{file}: a document without kind"
        );
        let name = name.unwrap_or_else(|| panic!("{file}: a {kind:?} without metadata.name"));
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{file}: {name:?} is not a DNS-1123 label"
        );
        kinds.insert(kind.unwrap().to_string());
    }
    let expected: BTreeSet<String> = [
        "Deployment",
        "PrometheusRule",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds, expected);
}

#[test]
fn every_variable_the_code_reads_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    for v in config::VARIABLES {
        assert!(
            readme.contains(&format!("`{}`", v.name)),
            "README.md does not document {}",
            v.name
        );
    }
}

#[test]
fn deployment_env_is_known_to_the_code_and_valid() {
    // The variable list is written once, in `config`.
    let known: BTreeSet<&str> = config::VARIABLES
        .iter()
        .map(|v| v.name)
        .chain([SERVICEACCOUNT_DIR_ENV])
        .collect();
    let (env, field_refs) = container_env();
    for name in env.keys() {
        assert!(
            known.contains(name.as_str()),
            "examples/deployment.yaml sets {name}, which the code does not read"
        );
    }
    // Per-pod values come from the downward API.
    for (var, field) in [
        (config::IDENTITY, "metadata.name"),
        (config::LOCK_NAMESPACE, "metadata.namespace"),
        (config::POD_IP, "status.podIP"),
        (config::NODE_NAME, "spec.nodeName"),
    ] {
        assert_eq!(
            field_refs.get(var).map(String::as_str),
            Some(field),
            "{var}"
        );
    }

    let deploy = object("Deployment");
    assert_eq!(deploy["spec"]["replicas"].as_i64(), Some(3));
    let c = container();
    assert_eq!(
        strings(&c["command"]).first().map(String::as_str),
        Some("/k8s-await-election"),
        "the binary is the entrypoint"
    );

    // config accepts the whole environment, with the documented defaults.
    let e = election_config();
    assert_eq!(e.timings, config::Timings::default());
    assert_eq!(e.grace_period, e.timings.max_grace(e.kill_margin));

    // The liveness probe asks the status endpoint.
    let status = e.status_endpoint.expect("a status endpoint");
    let probe_port = &c["livenessProbe"]["httpGet"]["port"];
    let port = match probe_port.as_str() {
        Some(name) => list(&c["ports"])
            .iter()
            .find(|p| str_at(p, &["name"]) == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("no container port named {name}")),
        None => probe_port.as_i64().expect("probe port"),
    };
    assert_eq!(
        port,
        i64::from(status.port),
        "liveness probe vs {}",
        config::STATUS_ENDPOINT
    );

    // Deleting the leader's pod: CMD gets up to the grace period to stop, then the Lease is
    // released within renew deadline + 1 s (src/app.rs, the exit budget). Kubernetes must not
    // SIGKILL us before that.
    let tgps = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    let needed = e.grace_period + e.timings.renew_deadline + Duration::from_secs(1);
    assert!(
        Duration::from_secs(tgps as u64) >= needed,
        "terminationGracePeriodSeconds {tgps} < {needed:?}"
    );

    // The pod runs as the ServiceAccount of rbac.yaml.
    assert_eq!(
        str_at(&deploy, &["spec", "template", "spec", "serviceAccountName"]),
        str_at(&object("ServiceAccount"), &["metadata", "name"])
    );
}

#[test]
fn service_matches_the_routing_env() {
    let e = election_config();
    let routing = e.service.expect("the example routes a Service");
    let svc = object("Service");
    assert_eq!(
        str_at(&svc, &["metadata", "name"]),
        Some(routing.name.as_str())
    );
    assert!(
        svc["spec"]["selector"].is_badvalue() || svc["spec"]["selector"].is_null(),
        "the Service must not have a selector (the leader writes its endpoints)"
    );
    let ports = list(&svc["spec"]["ports"]);
    assert_eq!(
        ports.len(),
        routing.ports.len(),
        "one Service port per endpoint port"
    );
    for p in ports {
        let name = str_at(p, &["name"]).expect("Service port name");
        let ep = routing
            .ports
            .iter()
            .find(|ep| ep.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{} has no port named {name}", config::SERVICE_PORTS_JSON));
        assert_eq!(p["targetPort"].as_i64(), Some(ep.port), "port {name}");
        assert_eq!(
            str_at(p, &["protocol"]).unwrap_or("TCP"),
            ep.protocol.as_deref().unwrap_or("TCP"),
            "port {name}"
        );
        // The container listens where the endpoint says.
        assert!(
            list(&container()["ports"])
                .iter()
                .any(|cp| cp["containerPort"].as_i64() == Some(ep.port)),
            "no containerPort {}",
            ep.port
        );
    }
}

#[test]
fn role_grants_exactly_the_verbs_the_code_uses() {
    let e = election_config();
    let service = e.service.expect("service routing").name;
    let role = object("Role");
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in list(&role["rules"]) {
        let verbs = strings(&rule["verbs"]);
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                assert!(!verbs.iter().any(|v| v == "*"), "no wildcard verbs");
                if !names.is_empty() {
                    // The name in the URL: the Lease, or the Service's objects.
                    let expected = if resource == "leases" {
                        &e.lock_name
                    } else {
                        &service
                    };
                    assert_eq!(
                        &names,
                        &vec![expected.clone()],
                        "resourceNames of {resource}"
                    );
                    assert!(
                        !verbs.iter().any(|v| v == "create" || v == "list"),
                        "{resource}: create/list requests carry no name, so a rule with \
                         resourceNames never allows them"
                    );
                }
                granted
                    .entry((group.clone(), resource))
                    .or_default()
                    .extend(verbs.iter().cloned());
            }
        }
    }
    let used: BTreeMap<(String, String), BTreeSet<String>> = USED
        .iter()
        .map(|(g, r, v)| {
            (
                (g.to_string(), r.to_string()),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        granted, used,
        "examples/rbac.yaml vs the requests of the code"
    );

    // The RoleBinding gives that Role to the pods' ServiceAccount.
    let binding = object("RoleBinding");
    assert_eq!(str_at(&binding, &["roleRef", "kind"]), Some("Role"));
    assert_eq!(
        str_at(&binding, &["roleRef", "name"]),
        str_at(&role, &["metadata", "name"])
    );
    let sa = str_at(&object("ServiceAccount"), &["metadata", "name"]).map(String::from);
    assert!(list(&binding["subjects"])
        .iter()
        .any(|s| str_at(s, &["kind"]) == Some("ServiceAccount")
            && str_at(s, &["name"]).map(String::from) == sa));
}

/// `USED` must move with the code: the kinds of requests each module makes.
#[test]
fn used_verbs_match_the_client_calls_in_the_code() {
    let calls = |module: &str| -> BTreeSet<&'static str> {
        // Production code only (unit tests may drive fakes), whitespace removed so that
        // `self\n.client\n.replace::<..>` reads as one call.
        let code: String = module_sources(module)
            .iter()
            .map(|text| text.split("#[cfg(test)]").next().unwrap_or_default())
            .flat_map(|code| code.chars().filter(|c| !c.is_whitespace()))
            .collect();
        CLIENT_CALLS
            .iter()
            .filter(|(pattern, _)| code.contains(pattern))
            .map(|(_, verb)| *verb)
            .collect()
    };
    let verbs_of = |resources: &[&str]| -> BTreeSet<&'static str> {
        USED.iter()
            .filter(|(_, r, _)| resources.contains(r))
            .flat_map(|(_, _, v)| v.iter().copied())
            .collect()
    };
    assert_eq!(calls("election"), verbs_of(&["leases"]), "src/election");
    assert_eq!(calls("events"), verbs_of(&["events"]), "src/events.rs");
    assert_eq!(
        calls("service"),
        verbs_of(&["endpointslices", "endpoints"]),
        "src/service"
    );
}

/// The source of the crate module `module`: `src/<module>.rs`, or every file of the directory
/// `src/<module>/` except unit-test files (`tests.rs`, `tests/`).
fn module_sources(module: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return vec![std::fs::read_to_string(&file).expect("read source")];
    }
    let mut texts = Vec::new();
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source directory") {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name == "tests" || name == "tests.rs" {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".rs") {
                texts.push(std::fs::read_to_string(&path).expect("read source"));
            }
        }
    }
    assert!(!texts.is_empty(), "no source for module {module}");
    texts
}

/// The rule groups of `examples/prometheus-rules.yaml` (a PrometheusRule) as the plain rules
/// file Prometheus and promtool read: its `spec`.
fn plain_rules_file() -> String {
    let rule = object("PrometheusRule");
    assert_eq!(
        str_at(&rule, &["apiVersion"]),
        Some("monitoring.coreos.com/v1")
    );
    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(&rule["spec"])
        .expect("emit the rule groups");
    out
}

/// The metric names an expression uses (ours and client-go's).
fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("k8s_await_election_") || w.starts_with("leader_election_"))
        .map(String::from)
        .collect()
}

#[test]
fn prometheus_rules_pass_promtool() {
    let Some(promtool) = require(
        "prometheus_rules_pass_promtool",
        which("promtool").ok_or_else(|| "promtool is not installed (Debian: prometheus)".into()),
    ) else {
        return;
    };
    let dir = TempDir::new("promrules");
    let file = dir.join("rules.yaml");
    std::fs::write(&file, plain_rules_file()).expect("write rules");
    let out = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        plain_rules_file()
    );
}

#[test]
fn prometheus_rules_use_metrics_that_metrics_serves() {
    let rule = object("PrometheusRule");
    let mut alerts = BTreeSet::new();
    let mut used = BTreeSet::new();
    for group in list(&rule["spec"]["groups"]) {
        for r in list(&group["rules"]) {
            alerts.insert(str_at(r, &["alert"]).expect("an alert name").to_string());
            let expr = str_at(r, &["expr"]).expect("an expr");
            assert!(expr.contains("by (namespace, name)"), "{expr}");
            used.extend(metrics_in(expr));
        }
    }
    let expected: BTreeSet<String> = [
        "ElectionFlapping",
        "ElectionMoreThanOneLeader",
        "ElectionNoLeader",
        "ElectionRenewalFailuresRising",
    ]
    .map(String::from)
    .into();
    assert_eq!(alerts, expected);
    // What /metrics serves (every metric, as for a replica that has renewed).
    let served =
        k8s_await_election::status::metrics_text(&k8s_await_election::leadership::Status {
            name: "my-election".into(),
            leading: true,
            last_renew_wall: Some(std::time::SystemTime::now()),
            ..Default::default()
        });
    for metric in &used {
        let sample = format!("{metric}{{name=\"my-election\"}} ");
        assert!(
            served.lines().any(|l| l.starts_with(&sample)),
            "the rules use {metric} with a `name` label, which /metrics does not serve:\n{served}"
        );
    }
    assert!(used.len() >= 3, "{used:?}");
}

/// The path of `program` on PATH, if any.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}
