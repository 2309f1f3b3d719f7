//! Namespaces exist or not (NamespaceLifecycle admission): creates and updates in a missing
//! namespace get the namespace's 404; reads and deletes never look at it.
use crate::client::*;
use serde_json::{json, Value};

fn leases(ns: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")
}

fn lease_in(ns: &str, name: &str) -> Value {
    let mut l = lease(name, "a");
    l["metadata"]["namespace"] = json!(ns);
    l
}

fn namespace_not_found(ns: &str) -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message": format!("namespaces \"{ns}\" not found"),"reason":"NotFound",
        "details":{"name": ns,"kind":"namespaces"},"code":404})
}

#[test]
fn create_and_update_in_a_missing_namespace_are_the_namespaces_404() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = c.request(
        "POST",
        &leases("nope"),
        Some(TOKEN),
        Some(&lease_in("nope", "x")),
    );
    assert_eq!(r.code, 404);
    assert_eq!(r.json(), namespace_not_found("nope"));
    // A PUT of a missing Lease is a create (AllowCreateOnUpdate), admitted as one.
    let put = format!("{}/x", leases("nope"));
    let r = c.request("PUT", &put, Some(TOKEN), Some(&lease_in("nope", "x")));
    assert_eq!(r.json(), namespace_not_found("nope"));
    // Admission comes before validation: an invalid Lease gets the namespace's 404 too.
    let mut bad = lease_in("nope", "x");
    bad["spec"]["leaseDurationSeconds"] = json!(-1);
    let r = c.request("POST", &leases("nope"), Some(TOKEN), Some(&bad));
    assert_eq!(r.json(), namespace_not_found("nope"));
    // Endpoints create on update too.
    let ep = json!({"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"svc"}});
    let r = c.request(
        "PUT",
        "/api/v1/namespaces/nope/endpoints/svc",
        Some(TOKEN),
        Some(&ep),
    );
    assert_eq!(r.json(), namespace_not_found("nope"));
    // An EndpointSlice PUT may not create: the object's 404 comes first.
    let slice = json!({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
        "metadata":{"name":"svc"},"addressType":"IPv4","endpoints":[]});
    let r = c.request(
        "PUT",
        "/apis/discovery.k8s.io/v1/namespaces/nope/endpointslices/svc",
        Some(TOKEN),
        Some(&slice),
    );
    assert_eq!(
        status_of(&r),
        (
            404,
            "NotFound".into(),
            "endpointslices.discovery.k8s.io \"svc\" not found".into()
        )
    );
    let r = c.request(
        "POST",
        "/apis/discovery.k8s.io/v1/namespaces/nope/endpointslices",
        Some(TOKEN),
        Some(&slice),
    );
    assert_eq!(r.json(), namespace_not_found("nope"));
    assert!(srv.list_objects("leases", "nope").is_empty());
}

#[test]
fn reads_and_deletes_in_a_missing_namespace_do_not_look_at_it() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = c.request("GET", &format!("{}/x", leases("nope")), Some(TOKEN), None);
    assert_eq!(
        status_of(&r),
        (
            404,
            "NotFound".into(),
            "leases.coordination.k8s.io \"x\" not found".into()
        )
    );
    let r = c.request(
        "DELETE",
        &format!("{}/x", leases("nope")),
        Some(TOKEN),
        None,
    );
    assert_eq!(
        status_of(&r).2,
        "leases.coordination.k8s.io \"x\" not found"
    );
    let r = c.request("GET", &leases("nope"), Some(TOKEN), None);
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["items"], json!([]));
    let mut w = Client::connect(&srv);
    let (code, _) = w.watch(
        &format!("{}?watch=true&timeoutSeconds=1", leases("nope")),
        TOKEN,
    );
    assert_eq!(code, 200);
    assert!(
        w.next_event().unwrap().is_none(),
        "an empty stream that ends"
    );
}

#[test]
fn declared_namespaces_exist() {
    let srv = server();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(srv.has_namespace(ns), "{ns}");
    }
    assert!(!srv.has_namespace("team-a"));
    srv.add_namespace("team-a");
    let mut c = Client::connect(&srv);
    let r = c.request(
        "POST",
        &leases("team-a"),
        Some(TOKEN),
        Some(&lease_in("team-a", "x")),
    );
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    // put_object declares its namespace (an object cannot live in a missing one).
    srv.put_object("leases", "team-b", lease_in("team-b", "y"));
    assert!(srv.has_namespace("team-b"));
    // Once the namespace is gone, an update of an object still in it is refused.
    let mut l = srv.get_object("leases", "team-b", "y").unwrap();
    assert!(srv.remove_namespace("team-b"));
    l["spec"]["holderIdentity"] = json!("z");
    let r = c.request(
        "PUT",
        &format!("{}/y", leases("team-b")),
        Some(TOKEN),
        Some(&l),
    );
    assert_eq!(r.json(), namespace_not_found("team-b"));
}
