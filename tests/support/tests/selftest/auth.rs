//! Authentication (bearer tokens, 401) and authorization (`forbid`, 403 RBAC messages).
use crate::client::*;
use serde_json::json;

#[test]
fn missing_or_unknown_token_is_401_with_exact_status() {
    let srv = server();
    let expected = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"Unauthorized","reason":"Unauthorized","code":401});
    let mut c = Client::connect(&srv);
    let r = c.request("GET", &format!("{LEASES}/x"), None, None);
    assert_eq!(r.code, 401);
    assert_eq!(r.json(), expected);
    let r = c.request("GET", &format!("{LEASES}/x"), Some("wrong"), None);
    assert_eq!(r.code, 401);
    assert_eq!(r.json(), expected);
    // Basic auth is not a bearer token
    c.send(
        "GET",
        LEASES,
        None,
        None,
        &[("Authorization", "Basic dG9rZW4tMQ==")],
    )
    .unwrap();
    assert_eq!(c.read_response().unwrap().code, 401);
    // unknown paths are 401 too before authentication
    assert_eq!(c.request("GET", "/nope", None, None).code, 401);
}

#[test]
fn tokens_are_a_mutable_set() {
    let srv = server();
    let mut c = Client::connect(&srv);
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 200);
    srv.remove_token(TOKEN);
    assert_eq!(c.request("GET", LEASES, Some(TOKEN), None).code, 401);
    srv.add_token("rotated", USER);
    assert_eq!(c.request("GET", LEASES, Some("rotated"), None).code, 200);
}

#[test]
fn forbid_gives_rbac_403_and_allow_undoes_it() {
    let srv = server();
    srv.forbid(TOKEN, "update", "leases");
    srv.forbid(TOKEN, "list", "endpoints");
    srv.forbid(TOKEN, "create", "endpointslices");
    let mut c = Client::connect(&srv);
    let l = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "a")))
        .json();
    let r = c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&l));
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"leases.coordination.k8s.io \"my-lock\" is forbidden: User \"system:serviceaccount:default:replica-1\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\"",
            "reason":"Forbidden","details":{"name":"my-lock","group":"coordination.k8s.io","kind":"leases"},"code":403})
    );
    // other verbs still work
    assert_eq!(
        c.request("GET", &format!("{LEASES}/my-lock"), Some(TOKEN), None)
            .code,
        200
    );
    // core group, collection (no name)
    let r = c.request("GET", ENDPOINTS, Some(TOKEN), None);
    assert_eq!(r.code, 403);
    assert_eq!(
        r.json()["message"],
        "endpoints is forbidden: User \"system:serviceaccount:default:replica-1\" cannot list resource \"endpoints\" in API group \"\" in the namespace \"default\""
    );
    let r = c.request(
        "POST",
        SLICES,
        Some(TOKEN),
        Some(&json!({"metadata":{"name":"s"},"addressType":"IPv4"})),
    );
    assert_eq!(r.code, 403);
    assert!(r.json()["message"].as_str().unwrap().starts_with(
        "endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:default:replica-1\" cannot create resource \"endpointslices\" in API group \"discovery.k8s.io\""
    ));
    srv.allow(TOKEN, "update", "leases");
    assert_eq!(
        c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&l))
            .code,
        200
    );
    // another token is unaffected by a forbid on this one
    srv.add_token("other", "system:serviceaccount:default:replica-2");
    assert_eq!(c.request("GET", ENDPOINTS, Some("other"), None).code, 200);
}

#[test]
fn forbid_applies_to_watch() {
    let srv = server();
    srv.forbid(TOKEN, "watch", "leases");
    let r = call(&srv, "GET", &format!("{LEASES}?watch=1"), None);
    assert_eq!(r.code, 403);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("cannot watch resource \"leases\""));
}
