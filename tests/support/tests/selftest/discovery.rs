//! Discovery documents and Tables, what typed kubectl needs: `/version`, `/api`, `/api/v1`,
//! `/apis`, the group and group-version documents, and `as=Table` answers to get, list and
//! watch.
use crate::client::*;
use serde_json::{json, Value};

const KUBECTL_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

fn get_with(srv: &test_apiserver::ApiServer, path: &str, accept: &str) -> Resp {
    let mut c = Client::connect(srv);
    c.send("GET", path, Some(TOKEN), None, &[("Accept", accept)])
        .unwrap();
    c.read_response().unwrap()
}

fn resource_names(doc: &Value) -> Vec<&str> {
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

#[test]
fn discovery_documents_list_what_is_served() {
    let srv = server();
    let v = call(&srv, "GET", "/version", None);
    assert_eq!(v.code, 200);
    assert_eq!(v.json()["major"], "1");
    assert!(v.json()["gitVersion"].as_str().unwrap().starts_with("v1."));

    let api = call(&srv, "GET", "/api", None).json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let core = call(&srv, "GET", "/api/v1", None).json();
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    assert_eq!(resource_names(&core), ["endpoints", "events"]);
    assert_eq!(core["resources"][0]["kind"], "Endpoints");
    assert_eq!(core["resources"][0]["namespaced"], true);

    let apis = call(&srv, "GET", "/apis", None).json();
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["coordination.k8s.io", "discovery.k8s.io"]);
    assert_eq!(
        apis["groups"][0]["preferredVersion"],
        json!({"groupVersion": "coordination.k8s.io/v1", "version": "v1"})
    );
    let group = call(&srv, "GET", "/apis/coordination.k8s.io", None).json();
    assert_eq!(group["kind"], "APIGroup");

    let coord = call(&srv, "GET", "/apis/coordination.k8s.io/v1", None).json();
    assert_eq!(coord["groupVersion"], "coordination.k8s.io/v1");
    assert_eq!(resource_names(&coord), ["leases"]);
    let verbs = &coord["resources"][0]["verbs"];
    for v in ["get", "list", "watch", "create", "update", "delete"] {
        assert!(verbs.as_array().unwrap().contains(&json!(v)), "{v}");
    }
    let disc = call(&srv, "GET", "/apis/discovery.k8s.io/v1", None).json();
    assert_eq!(resource_names(&disc), ["endpointslices"]);

    // What is not served is the generic 404; discovery needs a token like everything else.
    for p in [
        "/apis/apps/v1",
        "/apis/coordination.k8s.io/v2",
        "/apis/events.k8s.io",
    ] {
        assert_eq!(call(&srv, "GET", p, None).code, 404, "{p}");
    }
    let mut c = Client::connect(&srv);
    assert_eq!(c.request("GET", "/api", None, None).code, 401);
}

#[test]
fn kubectl_gets_tables_for_get_and_list() {
    let srv = server();
    srv.put_object("leases", NS, lease("my-lock", "pod-a"));
    let list = get_with(&srv, LEASES, KUBECTL_ACCEPT);
    assert_eq!(list.code, 200);
    let t = list.json();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], srv.resource_version());
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Holder", "Age"]);
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "my-lock");
    assert_eq!(row["cells"][1], "pod-a");
    assert!(row["cells"][2].as_str().unwrap().ends_with('s'), "{row}");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "my-lock");
    assert!(row["object"].get("spec").is_none());

    let full = get_with(
        &srv,
        &format!("{LEASES}?includeObject=Object"),
        KUBECTL_ACCEPT,
    )
    .json();
    assert_eq!(full["rows"][0]["object"]["kind"], "Lease");
    assert_eq!(full["rows"][0]["object"]["spec"]["holderIdentity"], "pod-a");

    let one = get_with(&srv, &format!("{LEASES}/my-lock"), KUBECTL_ACCEPT).json();
    assert_eq!(one["kind"], "Table");
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);

    // v1beta1 when that comes first; plain JSON when no Table is asked for; errors stay Status.
    let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    assert_eq!(
        get_with(&srv, LEASES, beta).json()["apiVersion"],
        "meta.k8s.io/v1beta1"
    );
    assert_eq!(
        get_with(&srv, LEASES, "application/json").json()["kind"],
        "LeaseList"
    );
    let missing = get_with(&srv, &format!("{LEASES}/nope"), KUBECTL_ACCEPT);
    assert_eq!(missing.code, 404);
    assert_eq!(missing.json()["kind"], "Status");

    srv.put_object(
        "endpointslices",
        NS,
        json!({"metadata": {"name": "web"}, "addressType": "IPv4",
               "ports": [{"name": "http", "port": 8080}],
               "endpoints": [{"addresses": ["10.0.0.1"]}]}),
    );
    let slices = get_with(&srv, SLICES, KUBECTL_ACCEPT).json();
    let cells = &slices["rows"][0]["cells"];
    assert_eq!(cells[0], "web");
    assert_eq!(cells[1], "IPv4");
    assert_eq!(cells[2], "8080");
    assert_eq!(cells[3], "10.0.0.1");
}

#[test]
fn a_table_watch_sends_one_row_tables_with_the_columns_only_first() {
    let srv = server();
    srv.put_object("leases", NS, lease("a", "x"));
    let mut w = Client::connect(&srv);
    w.send(
        "GET",
        &format!("{LEASES}?watch=1&timeoutSeconds=5"),
        Some(TOKEN),
        None,
        &[("Accept", KUBECTL_ACCEPT)],
    )
    .unwrap();
    assert_eq!(w.read_head().unwrap().0, 200);
    let first = w.next_event().unwrap().unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Table");
    assert!(first["object"]["columnDefinitions"].is_array());
    assert_eq!(first["object"]["rows"][0]["cells"][1], "x");
    let mut l = srv.get_object("leases", NS, "a").unwrap();
    l["spec"]["holderIdentity"] = json!("y");
    srv.put_object("leases", NS, l);
    let next = w.next_event().unwrap().unwrap();
    assert_eq!(next["type"], "MODIFIED");
    assert_eq!(next["object"]["columnDefinitions"], Value::Null);
    assert_eq!(next["object"]["rows"][0]["cells"][1], "y");
}
