//! get/list/create/update/delete semantics, error bodies, update policies, lists and
//! selectors, resource versions and unknown paths.
use crate::client::*;
use serde_json::{json, Value};

#[test]
fn create_get_and_server_owned_fields() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let mut l = lease("my-lock", "a");
    l["metadata"]["uid"] = json!("client-made-up");
    l["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(r.code, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let created = r.json();
    assert_eq!(created["kind"], "Lease");
    assert_eq!(created["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(created["metadata"]["namespace"], "default");
    let uid = created["metadata"]["uid"].as_str().unwrap();
    assert_ne!(uid, "client-made-up");
    assert_eq!(uid.len(), 36);
    let ts = created["metadata"]["creationTimestamp"].as_str().unwrap();
    assert_ne!(ts, "2000-01-01T00:00:00Z");
    assert!(ts.len() == 20 && ts.ends_with('Z'), "{ts}");
    assert!(!rv(&created).is_empty());
    let got = c.request("GET", &format!("{LEASES}/my-lock"), Some(TOKEN), None);
    assert_eq!(got.code, 200);
    assert_eq!(got.json(), created);
    assert_eq!(srv.get_object("leases", NS, "my-lock").unwrap(), created);
}

#[test]
fn not_found_already_exists_and_conflict_bodies() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = c.request("GET", &format!("{LEASES}/my-lock"), Some(TOKEN), None);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"leases.coordination.k8s.io \"my-lock\" not found","reason":"NotFound",
            "details":{"name":"my-lock","group":"coordination.k8s.io","kind":"leases"},"code":404})
    );
    let r = c.request("GET", &format!("{ENDPOINTS}/svc"), Some(TOKEN), None);
    assert_eq!(r.json()["message"], "endpoints \"svc\" not found");
    assert_eq!(
        r.json()["details"],
        json!({"name":"svc","kind":"endpoints"})
    );

    let first = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "a")))
        .json();
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "b")));
    assert_eq!(
        status_of(&r),
        (
            409,
            "AlreadyExists".into(),
            "leases.coordination.k8s.io \"my-lock\" already exists".into()
        )
    );
    // update moves rv; the first copy is now stale
    let mut upd = first.clone();
    upd["spec"]["holderIdentity"] = json!("b");
    let r = c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&upd));
    assert_eq!(r.code, 200);
    assert_ne!(rv(&r.json()), rv(&first));
    let mut stale = first.clone();
    stale["spec"]["holderIdentity"] = json!("c");
    let r = c.request(
        "PUT",
        &format!("{LEASES}/my-lock"),
        Some(TOKEN),
        Some(&stale),
    );
    assert_eq!(
        status_of(&r),
        (409, "Conflict".into(), "Operation cannot be fulfilled on leases.coordination.k8s.io \"my-lock\": the object has been modified; please apply your changes to the latest version and try again".into())
    );
    assert_eq!(
        r.json()["details"],
        json!({"name":"my-lock","group":"coordination.k8s.io","kind":"leases"})
    );
    assert_eq!(
        srv.get_object("leases", NS, "my-lock").unwrap()["spec"]["holderIdentity"],
        "b"
    );
}

#[test]
fn lease_put_without_resource_version_is_422() {
    let srv = server();
    let mut c = Client::connect(&srv);
    c.request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "a")));
    let r = c.request(
        "PUT",
        &format!("{LEASES}/my-lock"),
        Some(TOKEN),
        Some(&lease("my-lock", "b")),
    );
    assert_eq!(
        status_of(&r),
        (422, "Invalid".into(), "leases.coordination.k8s.io \"my-lock\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".into())
    );
    assert_eq!(
        r.json()["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
    // unparsable resourceVersion: 422 too (storage InvalidError), never a panic
    let mut l = lease("my-lock", "b");
    l["metadata"]["resourceVersion"] = json!("abc");
    assert_eq!(
        c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&l))
            .code,
        422
    );
}

#[test]
fn lease_put_creates_missing_lease_unless_it_names_a_uid() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let r = c.request(
        "PUT",
        &format!("{LEASES}/new"),
        Some(TOKEN),
        Some(&lease("new", "a")),
    );
    assert_eq!(r.code, 201);
    let old = r.json();
    assert!(srv.delete_object("leases", NS, "new"));
    // the cached copy carries its uid, a storage precondition the missing object fails
    let r = c.request("PUT", &format!("{LEASES}/new"), Some(TOKEN), Some(&old));
    assert_eq!(
        status_of(&r),
        (409, "Conflict".into(), format!("Operation cannot be fulfilled on leases.coordination.k8s.io \"new\": StorageError: invalid object, Code: 4, Key: /registry/leases/default/new, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {}, UID in object meta: ", old["metadata"]["uid"].as_str().unwrap()))
    );
    // without a uid, the create-on-update path ignores the body's resourceVersion
    let mut no_uid = old.clone();
    no_uid["metadata"].as_object_mut().unwrap().remove("uid");
    let r = c.request("PUT", &format!("{LEASES}/new"), Some(TOKEN), Some(&no_uid));
    assert_eq!(r.code, 201);
    let created = r.json();
    assert_ne!(created["metadata"]["uid"], old["metadata"]["uid"]);
    // a uid that does not match the stored object is a 409 even with the right rv
    let mut wrong = created.clone();
    wrong["metadata"]["uid"] = json!("someone-else");
    assert_eq!(
        c.request("PUT", &format!("{LEASES}/new"), Some(TOKEN), Some(&wrong))
            .code,
        409
    );
}

#[test]
fn endpoints_and_endpointslice_update_policies() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let ep = json!({"metadata":{"name":"svc","labels":{"a":"b"}},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"name":"http","port":8080}]}]});
    // Endpoints: create on update, unconditional update
    let r = c.request("PUT", &format!("{ENDPOINTS}/svc"), Some(TOKEN), Some(&ep));
    assert_eq!(r.code, 201);
    assert_eq!(
        r.json()["subsets"][0]["ports"][0]["protocol"],
        "TCP",
        "defaulted"
    );
    let mut ep2 = ep.clone();
    ep2["subsets"][0]["addresses"][0]["ip"] = json!("10.0.0.2");
    assert_eq!(
        c.request("PUT", &format!("{ENDPOINTS}/svc"), Some(TOKEN), Some(&ep2))
            .code,
        200
    );
    ep2["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(
        c.request("PUT", &format!("{ENDPOINTS}/svc"), Some(TOKEN), Some(&ep2))
            .code,
        409
    );

    // EndpointSlice: no create on update, unconditional update allowed
    let s = json!({"metadata":{"name":"svc-abc","labels":{"kubernetes.io/service-name":"svc"}},
        "addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true}}],
        "ports":[{"name":"http","port":8080,"protocol":"TCP","appProtocol":"http"}]});
    let r = c.request("PUT", &format!("{SLICES}/svc-abc"), Some(TOKEN), Some(&s));
    assert_eq!(r.code, 404);
    assert_eq!(
        r.json()["message"],
        "endpointslices.discovery.k8s.io \"svc-abc\" not found"
    );
    assert_eq!(c.request("POST", SLICES, Some(TOKEN), Some(&s)).code, 201);
    let mut s2 = s.clone();
    s2["endpoints"][0]["conditions"]["ready"] = json!(false);
    let r = c.request("PUT", &format!("{SLICES}/svc-abc"), Some(TOKEN), Some(&s2));
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["endpoints"][0]["conditions"]["ready"], false);
    s2["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(
        c.request("PUT", &format!("{SLICES}/svc-abc"), Some(TOKEN), Some(&s2))
            .code,
        409
    );
    // addressType is immutable
    let mut s3 = r.json();
    s3["addressType"] = json!("IPv6");
    s3["endpoints"][0]["addresses"][0] = json!("fd00::1");
    assert_eq!(
        c.request("PUT", &format!("{SLICES}/svc-abc"), Some(TOKEN), Some(&s3))
            .code,
        422
    );
}

#[test]
fn fields_survive_round_trips_and_unknown_fields_are_dropped_with_a_warning() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let mut l = lease("my-lock", "a");
    l["metadata"]["labels"] = json!({"app": "x"});
    l["metadata"]["annotations"] = json!({"note": "keep me"});
    l["metadata"]["ownerReferences"] =
        json!([{"apiVersion":"v1","kind":"Pod","name":"p","uid":"u-1","controller":true}]);
    l["metadata"]["managedFields"] = json!([{"manager":"m","operation":"Update","apiVersion":"coordination.k8s.io/v1","time":"2026-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]);
    l["spec"]["strategy"] = json!("OldestEmulationVersion");
    l["spec"]["preferredHolder"] = json!("b");
    l["spec"]["futureField"] = json!(1);
    let r = c.request("POST", LEASES, Some(TOKEN), Some(&l));
    assert_eq!(r.code, 201);
    assert_eq!(
        r.header("warning"),
        Some("299 - \"unknown field \\\"spec.futureField\\\"\"")
    );
    let got = r.json();
    for p in [
        "/metadata/labels",
        "/metadata/annotations",
        "/metadata/ownerReferences",
        "/metadata/managedFields",
        "/spec/strategy",
        "/spec/preferredHolder",
    ] {
        assert_eq!(got.pointer(p), l.pointer(p), "{p}");
    }
    assert!(got["spec"].get("futureField").is_none());
    // a PUT of the object as read keeps everything
    let mut upd = got.clone();
    upd["spec"]["renewTime"] = json!("2026-11-24T08:16:00.000000Z");
    let r = c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&upd));
    assert_eq!(r.code, 200);
    assert!(r.header("warning").is_none());
    let mut expect = upd.clone();
    expect["metadata"]["resourceVersion"] = r.json()["metadata"]["resourceVersion"].clone();
    assert_eq!(r.json(), expect);
    // fieldValidation=Strict turns unknown fields into 400
    let mut l = lease("strict", "a");
    l["spec"]["futureField"] = json!(1);
    let b = serde_json::to_vec(&l).unwrap();
    c.send(
        "POST",
        &format!("{LEASES}?fieldValidation=Strict"),
        Some(TOKEN),
        Some(&b),
        &[],
    )
    .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.code, 400);
    assert_eq!(
        r.json()["message"],
        "strict decoding error: unknown field \"spec.futureField\""
    );
}

#[test]
fn noop_update_keeps_resource_version() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let l = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "a")))
        .json();
    let r = c.request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&l));
    assert_eq!(r.code, 200);
    assert_eq!(rv(&r.json()), rv(&l));
    assert_eq!(srv.resource_version(), rv(&l));
}

#[test]
fn one_global_resource_version_across_kinds() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let a = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("a", "x")))
        .json();
    let e = c
        .request(
            "POST",
            ENDPOINTS,
            Some(TOKEN),
            Some(&json!({"metadata":{"name":"svc"}})),
        )
        .json();
    let b = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("b", "x")))
        .json();
    let n = |v: &Value| rv(v).parse::<u64>().unwrap();
    assert_eq!(n(&e), n(&a) + 1);
    assert_eq!(n(&b), n(&e) + 1);
    let list = c.request("GET", SLICES, Some(TOKEN), None).json();
    assert_eq!(
        list["metadata"]["resourceVersion"],
        rv(&b),
        "list rv is the global rv"
    );
    let put = srv.put_object(
        "endpointslices",
        NS,
        json!({"metadata":{"name":"s"},"addressType":"IPv4"}),
    );
    assert_eq!(n(&put), n(&b) + 1);
    assert_eq!(put["kind"], "EndpointSlice");
}

#[test]
fn lists_and_selectors() {
    let srv = server();
    let mut c = Client::connect(&srv);
    for (name, labels) in [
        ("a", json!({"app":"web","tier":"fe"})),
        ("b", json!({"app":"web"})),
        ("c", json!({"app":"db"})),
    ] {
        let mut l = lease(name, "x");
        l["metadata"]["labels"] = labels;
        assert_eq!(c.request("POST", LEASES, Some(TOKEN), Some(&l)).code, 201);
    }
    srv.put_object("leases", "other-ns", lease("z", "x"));
    let names = |c: &mut Client, q: &str| -> Vec<String> {
        let r = c.request("GET", &format!("{LEASES}?{q}"), Some(TOKEN), None);
        assert_eq!(r.code, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert_eq!(j["kind"], "LeaseList");
        assert_eq!(j["apiVersion"], "coordination.k8s.io/v1");
        j["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert!(i.get("kind").is_none(), "typed list items carry no kind");
                i["metadata"]["name"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(names(&mut c, ""), ["a", "b", "c"]);
    assert_eq!(names(&mut c, "labelSelector=app%3Dweb"), ["a", "b"]);
    assert_eq!(names(&mut c, "labelSelector=app%3D%3Dweb"), ["a", "b"]);
    assert_eq!(names(&mut c, "labelSelector=app!%3Dweb"), ["c"]);
    assert_eq!(names(&mut c, "labelSelector=tier"), ["a"]);
    assert_eq!(names(&mut c, "labelSelector=app%3Dweb,!tier"), ["b"]);
    assert_eq!(names(&mut c, "labelSelector=tier!%3Dfe"), ["b", "c"]);
    assert_eq!(names(&mut c, "labelSelector=app+in+(db,x)"), ["c"]);
    assert_eq!(names(&mut c, "fieldSelector=metadata.name%3Db"), ["b"]);
    assert_eq!(
        c.request(
            "GET",
            &format!("{LEASES}?labelSelector=a%3Db%3Dc"),
            Some(TOKEN),
            None
        )
        .code,
        400
    );
    assert_eq!(
        c.request(
            "GET",
            &format!("{LEASES}?fieldSelector=spec.holderIdentity%3Dx"),
            Some(TOKEN),
            None
        )
        .code,
        400
    );
    assert_eq!(srv.list_objects("leases", NS).len(), 3);
}

#[test]
fn delete_returns_success_status() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let l = c
        .request("POST", LEASES, Some(TOKEN), Some(&lease("my-lock", "a")))
        .json();
    // preconditions in DeleteOptions are honoured
    let r = c.request(
        "DELETE",
        &format!("{LEASES}/my-lock"),
        Some(TOKEN),
        Some(&json!({"preconditions":{"resourceVersion":"1"}})),
    );
    assert_eq!(r.code, 409);
    let r = c.request("DELETE", &format!("{LEASES}/my-lock"), Some(TOKEN), None);
    assert_eq!(r.code, 200);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
            "details":{"name":"my-lock","group":"coordination.k8s.io","kind":"leases","uid":l["metadata"]["uid"]}})
    );
    assert_eq!(
        c.request("DELETE", &format!("{LEASES}/my-lock"), Some(TOKEN), None)
            .code,
        404
    );
    assert_eq!(
        c.request("GET", &format!("{LEASES}/my-lock"), Some(TOKEN), None)
            .code,
        404
    );
}

#[test]
fn endpoints_responses_carry_the_deprecation_warning() {
    let srv = server();
    let mut c = Client::connect(&srv);
    let w = "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";
    assert_eq!(
        c.request("GET", ENDPOINTS, Some(TOKEN), None)
            .header("warning"),
        Some(w)
    );
    assert_eq!(
        c.request("GET", &format!("{ENDPOINTS}/missing"), Some(TOKEN), None)
            .header("warning"),
        Some(w)
    );
    assert_eq!(
        c.request(
            "POST",
            ENDPOINTS,
            Some(TOKEN),
            Some(&json!({"metadata":{"name":"svc"}}))
        )
        .header("warning"),
        Some(w)
    );
    assert!(c
        .request("GET", LEASES, Some(TOKEN), None)
        .header("warning")
        .is_none());
    assert!(c
        .request("GET", SLICES, Some(TOKEN), None)
        .header("warning")
        .is_none());
}

#[test]
fn unknown_paths_and_methods() {
    let srv = server();
    let mut c = Client::connect(&srv);
    for p in [
        "/",
        "/api/v1/namespaces/default/pods",
        "/apis/coordination.k8s.io/v1/leases",
        &format!("{LEASES}/a/status"),
    ] {
        let r = c.request("GET", p, Some(TOKEN), None);
        assert_eq!(status_of(&r).0, 404, "{p}");
        assert_eq!(status_of(&r).1, "NotFound");
    }
    assert_eq!(
        c.request(
            "POST",
            &format!("{LEASES}/a"),
            Some(TOKEN),
            Some(&lease("a", "x"))
        )
        .code,
        405
    );
    assert_eq!(
        c.request(
            "PATCH",
            &format!("{LEASES}/a"),
            Some(TOKEN),
            Some(&json!({}))
        )
        .code,
        405
    );
}
