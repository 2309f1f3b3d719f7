//! Watch streams: start points, live events, selectors, 410 after compaction, timeouts,
//! bookmarks, concurrency, and ending streams.
use crate::client::*;
use serde_json::json;
use std::time::{Duration, Instant};
use test_apiserver::ApiServer;

fn watch_url(q: &str) -> String {
    format!("{LEASES}?watch=1&{q}")
}

#[test]
fn watch_from_rv_streams_modified_then_deleted() {
    let srv = server();
    let created = srv.put_object("leases", NS, lease("my-lock", "a"));
    let mut w = Client::connect(&srv);
    let (code, headers) = w.watch(
        &watch_url(&format!(
            "fieldSelector=metadata.name%3Dmy-lock&resourceVersion={}&timeoutSeconds=30",
            rv(&created)
        )),
        TOKEN,
    );
    assert_eq!(code, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/json"));
    // an unrelated object must not show up
    srv.put_object("leases", NS, lease("other", "a"));
    let mut c = Client::connect(&srv);
    let mut upd = created.clone();
    upd["spec"]["holderIdentity"] = json!("b");
    let updated = c
        .request("PUT", &format!("{LEASES}/my-lock"), Some(TOKEN), Some(&upd))
        .json();
    assert_eq!(
        c.request("DELETE", &format!("{LEASES}/my-lock"), Some(TOKEN), None)
            .code,
        200
    );

    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"], updated);
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["kind"], "Lease");
    assert_eq!(ev["object"]["spec"]["holderIdentity"], "b", "last state");
    let del_rv: u64 = rv(&ev["object"]).parse().unwrap();
    assert!(
        del_rv > rv(&updated).parse::<u64>().unwrap(),
        "deletion has its own rv"
    );
    assert_eq!(srv.resource_version(), del_rv.to_string());
}

#[test]
fn watch_without_rv_starts_with_synthetic_added_events() {
    let srv = server();
    srv.put_object("leases", NS, lease("a", "x"));
    srv.put_object("leases", NS, lease("b", "x"));
    srv.put_object("endpoints", NS, json!({"metadata":{"name":"svc"}}));
    for q in ["", "resourceVersion=0"] {
        let mut w = Client::connect(&srv);
        assert_eq!(w.watch(&watch_url(q), TOKEN).0, 200);
        let a = w.next_event().unwrap().unwrap();
        let b = w.next_event().unwrap().unwrap();
        assert_eq!(
            (a["type"].as_str(), a["object"]["metadata"]["name"].as_str()),
            (Some("ADDED"), Some("a"))
        );
        assert_eq!(
            (b["type"].as_str(), b["object"]["metadata"]["name"].as_str()),
            (Some("ADDED"), Some("b"))
        );
        srv.put_object("leases", NS, lease("c", "x"));
        let c = w.next_event().unwrap().unwrap();
        assert_eq!(c["type"], "ADDED");
        assert_eq!(c["object"]["metadata"]["name"], "c");
        srv.delete_object("leases", NS, "c");
        assert_eq!(w.next_event().unwrap().unwrap()["type"], "DELETED");
    }
    // `watch=true` works too
    let mut w = Client::connect(&srv);
    assert_eq!(w.watch(&format!("{ENDPOINTS}?watch=true"), TOKEN).0, 200);
    assert_eq!(
        w.next_event().unwrap().unwrap()["object"]["metadata"]["name"],
        "svc"
    );
}

#[test]
fn label_selector_transitions_become_added_and_deleted() {
    let srv = server();
    let mut l = lease("a", "x");
    l["metadata"]["labels"] = json!({"app": "web"});
    let first = srv.put_object("leases", NS, l.clone());
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url(&format!(
            "labelSelector=app%3Dweb&resourceVersion={}",
            rv(&first)
        )),
        TOKEN,
    );
    l["metadata"]["labels"] = json!({"app": "db"});
    let moved = srv.put_object("leases", NS, l.clone());
    l["metadata"]["labels"] = json!({"app": "web"});
    srv.put_object("leases", NS, l);
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(rv(&ev["object"]), rv(&moved));
    assert_eq!(w.next_event().unwrap().unwrap()["type"], "ADDED");
}

#[test]
fn compacted_rv_gets_410_error_event() {
    let srv = server();
    let first = srv.put_object("leases", NS, lease("a", "x"));
    srv.put_object("leases", NS, lease("a", "y"));
    srv.compact();
    let current = srv.resource_version();
    let mut w = Client::connect(&srv);
    let (code, _) = w.watch(
        &watch_url(&format!("resourceVersion={}", rv(&first))),
        TOKEN,
    );
    assert_eq!(code, 200);
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(
        ev,
        json!({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":format!("too old resource version: {} ({current})", rv(&first)),"reason":"Expired","code":410}})
    );
    assert!(
        w.next_event().unwrap().is_none(),
        "stream ends after the error"
    );
    // the connection stays usable, and watching from the current rv works
    let (code, _) = w.watch(
        &watch_url(&format!("resourceVersion={current}&timeoutSeconds=5")),
        TOKEN,
    );
    assert_eq!(code, 200);
    srv.put_object("leases", NS, lease("a", "z"));
    assert_eq!(w.next_event().unwrap().unwrap()["type"], "MODIFIED");
}

#[test]
fn timeout_seconds_ends_the_stream() {
    let srv = server();
    let mut w = Client::connect(&srv);
    let start = Instant::now();
    w.watch(
        &watch_url(&format!(
            "resourceVersion={}&timeoutSeconds=1",
            srv.resource_version()
        )),
        TOKEN,
    );
    assert!(w.next_event().unwrap().is_none());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // keep-alive: the same connection serves the next request
    assert_eq!(w.request("GET", LEASES, Some(TOKEN), None).code, 200);
}

#[test]
fn watches_do_not_block_each_other_or_requests() {
    let srv = server();
    let mut watchers: Vec<Client> = (0..4)
        .map(|_| {
            let mut w = Client::connect(&srv);
            w.watch(
                &watch_url(&format!("resourceVersion={}", srv.resource_version())),
                TOKEN,
            );
            w
        })
        .collect();
    // requests are served while four watches are open, one of which is never read
    let mut c = Client::connect(&srv);
    for i in 0..20 {
        let r = c.request(
            "POST",
            LEASES,
            Some(TOKEN),
            Some(&lease(&format!("l{i}"), "x")),
        );
        assert_eq!(r.code, 201);
    }
    for w in watchers.iter_mut().skip(1) {
        for i in 0..20 {
            let ev = w.next_event().unwrap().unwrap();
            assert_eq!(ev["object"]["metadata"]["name"], format!("l{i}"));
        }
    }
}

#[test]
fn too_large_resource_version_is_504_after_a_wait() {
    let srv = server();
    let future: u64 = srv.resource_version().parse::<u64>().unwrap() + 1;
    // becomes valid within the wait: the stream starts normally
    let mut w = Client::connect(&srv);
    w.send(
        "GET",
        &watch_url(&format!("resourceVersion={future}")),
        Some(TOKEN),
        None,
        &[],
    )
    .unwrap();
    srv.put_object("leases", NS, lease("a", "x"));
    assert_eq!(w.read_head().unwrap().0, 200);
    let far = future + 1000;
    let r = call(
        &srv,
        "GET",
        &watch_url(&format!("resourceVersion={far}")),
        None,
    );
    assert_eq!(r.code, 504);
    assert_eq!(r.json()["reason"], "Timeout");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Too large resource version: {far}")));
}

#[test]
fn bookmarks_when_allowed() {
    let srv = server();
    srv.set_bookmark_interval(Duration::from_millis(200));
    srv.put_object("leases", NS, lease("a", "x"));
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url(&format!(
            "allowWatchBookmarks=true&resourceVersion={}",
            srv.resource_version()
        )),
        TOKEN,
    );
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "BOOKMARK");
    assert_eq!(ev["object"]["kind"], "Lease");
    assert_eq!(
        ev["object"]["metadata"]["resourceVersion"],
        srv.resource_version()
    );
    // without the flag there are none
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url(&format!(
            "resourceVersion={}&timeoutSeconds=1",
            srv.resource_version()
        )),
        TOKEN,
    );
    assert!(w.next_event().unwrap().is_none());
}

/// Waits until the server has logged `n` watch requests (the streams are registered).
fn wait_for_watches(srv: &ApiServer, n: usize) {
    wait_for(5, &format!("{n} watch(es) registered"), || {
        (srv.requests().iter().filter(|r| r.verb == "watch").count() == n).then_some(())
    });
}

#[test]
fn end_watches_drops_streams_and_finish_watches_ends_them() {
    let srv = server();
    let mut w = Client::connect(&srv);
    w.watch(&watch_url(""), TOKEN);
    wait_for_watches(&srv, 1);
    srv.end_watches();
    assert!(w.next_event().is_err(), "connection dropped mid-stream");

    let mut w = Client::connect(&srv);
    w.watch(&watch_url(""), TOKEN);
    wait_for_watches(&srv, 2);
    srv.finish_watches();
    assert!(w.next_event().unwrap().is_none(), "clean end of stream");
}

#[test]
fn silenced_watches_say_nothing_more_and_never_end_but_new_ones_work() {
    let srv = server();
    let mut w = Client::connect(&srv);
    w.set_timeout(Duration::from_millis(1500));
    // A one-second watch: a live stream would end cleanly after it.
    w.watch(&watch_url("timeoutSeconds=1"), TOKEN);
    wait_for_watches(&srv, 1);
    srv.silence_watches();
    srv.put_object("leases", NS, lease("quiet", "a"));
    let e = w
        .next_event()
        .expect_err("neither an event nor the end of the stream");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );

    let mut fresh = Client::connect(&srv);
    fresh.watch(&watch_url("timeoutSeconds=5"), TOKEN);
    let ev = fresh
        .next_event()
        .unwrap()
        .expect("the new watch starts with the object");
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "quiet");
}

#[test]
fn bad_watch_parameters_are_400() {
    let srv = server();
    assert_eq!(
        call(&srv, "GET", &watch_url("resourceVersion=abc"), None).code,
        400
    );
    assert_eq!(
        call(&srv, "GET", &watch_url("timeoutSeconds=soon"), None).code,
        400
    );
    assert_eq!(
        call(&srv, "GET", &format!("{LEASES}?watch=maybe"), None).code,
        400
    );
    assert_eq!(
        call(&srv, "GET", &watch_url("labelSelector=%3D%3D"), None).code,
        400
    );
}
