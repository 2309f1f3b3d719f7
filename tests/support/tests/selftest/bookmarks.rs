//! BOOKMARKs as the watch cache sends them: only with `allowWatchBookmarks=true`, every
//! bookmark interval, and one 2 s before `timeoutSeconds` ends the stream; and
//! `drop_watch_events` (events lost, bookmarks still flowing).
use crate::client::*;
use std::time::{Duration, Instant};

fn watch_url(q: &str) -> String {
    format!("{LEASES}?watch=true&{q}")
}

/// A BOOKMARK carries no object data: kind, apiVersion and the resourceVersion (the rest is
/// how Go encodes an empty typed object).
fn assert_bookmark(ev: &serde_json::Value, rv: &str) {
    assert_eq!(ev["type"], "BOOKMARK", "{ev}");
    let o = &ev["object"];
    assert_eq!(o["kind"], "Lease");
    assert_eq!(o["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(o["metadata"]["resourceVersion"], rv);
    assert!(o["metadata"].get("name").is_none(), "{o}");
    assert_eq!(o["spec"], serde_json::json!({}), "{o}");
}

#[test]
fn a_bookmark_comes_two_seconds_before_the_timeout_ends_the_stream() {
    let srv = server();
    srv.put_object("leases", NS, lease("a", "x"));
    let rv = srv.resource_version();
    let mut w = Client::connect(&srv);
    let (code, _) = w.watch(
        &watch_url(&format!(
            "allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=4"
        )),
        TOKEN,
    );
    assert_eq!(code, 200);
    let ev = w.next_event().unwrap().expect("a bookmark before the end");
    let bookmark_at = Instant::now();
    assert_bookmark(&ev, &rv);
    assert!(w.next_event().unwrap().is_none(), "then the clean end");
    let gap = bookmark_at.elapsed();
    assert!(
        gap >= Duration::from_secs(1),
        "the bookmark comes about 2 s before the end, not {gap:?}"
    );
}

#[test]
fn no_bookmark_before_the_end_of_a_watch_shorter_than_two_seconds() {
    let srv = server();
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url("allowWatchBookmarks=true&timeoutSeconds=1"),
        TOKEN,
    );
    assert!(w.next_event().unwrap().is_none());
}

#[test]
fn long_watches_get_periodic_bookmarks_with_the_current_resource_version() {
    let srv = server();
    srv.set_bookmark_interval(Duration::from_millis(200));
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url("allowWatchBookmarks=true&timeoutSeconds=60"),
        TOKEN,
    );
    assert_bookmark(&w.next_event().unwrap().unwrap(), &srv.resource_version());
    srv.put_object("leases", NS, lease("b", "x"));
    let ev = w.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "ADDED");
    let rv = srv.resource_version();
    assert_bookmark(&w.next_event().unwrap().unwrap(), &rv);
    assert_bookmark(&w.next_event().unwrap().unwrap(), &rv);
}

#[test]
fn dropped_watch_events_are_lost_but_bookmarks_go_on() {
    let srv = server();
    srv.set_bookmark_interval(Duration::from_millis(200));
    let mut w = Client::connect(&srv);
    w.watch(
        &watch_url(&format!(
            "allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion={}",
            srv.resource_version()
        )),
        TOKEN,
    );
    wait_for(5, "the watch", || {
        srv.requests()
            .iter()
            .any(|r| r.verb == "watch")
            .then_some(())
    });
    srv.drop_watch_events();
    srv.put_object("leases", NS, lease("lost", "x"));
    let rv = srv.resource_version();
    for _ in 0..3 {
        let ev = w.next_event().unwrap().unwrap();
        assert_eq!(ev["type"], "BOOKMARK", "no event gets through: {ev}");
    }
    // a new watch works normally
    let mut fresh = Client::connect(&srv);
    fresh.watch(&watch_url("timeoutSeconds=5"), TOKEN);
    let ev = fresh.next_event().unwrap().unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["resourceVersion"], rv);
}
