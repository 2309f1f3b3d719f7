//! Watches: MODIFIED and DELETED events, bookmarks, 410 Gone from a compacted version, reads
//! bounded by the deadline, and a clean end versus a dropped connection.

use std::time::{Duration, Instant};

use k8s_await_election::kube::{self, Error, ListParams, WatchEvent, WatchStream};
use serde_json::{json, Value};

use super::*;

fn next_event(w: &mut WatchStream<Value>) -> WatchEvent<Value> {
    match w.next() {
        Some(Ok(ev)) => ev,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

#[test]
fn watch_sees_modified_and_deleted() {
    let s = setup("tok-watch");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("w", "a"), secs(5))
        .expect("create");
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("w"),
            &rv(&created),
            30,
            secs(10),
        )
        .expect("watch");
    let q = s
        .server
        .requests()
        .last()
        .map(|r| r.query.clone())
        .unwrap_or_default();
    for part in [
        "watch=1",
        "allowWatchBookmarks=true",
        "timeoutSeconds=30",
        "fieldSelector=metadata.name%3Dw",
    ] {
        assert!(q.contains(part), "{q}");
    }

    let mut changed = created.clone();
    changed["spec"]["holderIdentity"] = json!("b");
    let updated: Value = s
        .client
        .replace(&kube::lease_path(NS, "w"), &changed, secs(5))
        .expect("replace");
    match next_event(&mut w) {
        WatchEvent::Modified(obj) => {
            assert_eq!(obj["spec"]["holderIdentity"], "b");
            assert_eq!(rv(&obj), rv(&updated));
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // Another lease does not match the field selector.
    let _: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("other", "a"), secs(5))
        .expect("create other");
    s.client
        .delete(&kube::lease_path(NS, "w"), secs(5))
        .expect("delete");
    match next_event(&mut w) {
        WatchEvent::Deleted(obj) => assert_eq!(obj["metadata"]["name"], "w"),
        other => panic!("expected DELETED, got {other:?}"),
    }

    // The server ends the stream cleanly (timeoutSeconds reached): None, and stays None.
    s.server.finish_watches();
    assert!(w.next().is_none());
    assert!(w.next().is_none());
}

#[test]
fn watch_reports_bookmarks() {
    let s = setup("tok-bm");
    s.server.set_bookmark_interval(Duration::from_millis(100));
    let rv0 = s.server.resource_version();
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::default(),
            &rv0,
            30,
            secs(10),
        )
        .expect("watch");
    match next_event(&mut w) {
        WatchEvent::Bookmark { resource_version } => assert!(!resource_version.is_empty()),
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
}

#[test]
fn watch_from_compacted_version_is_gone() {
    let s = setup("tok-gone");
    let created: Value = s
        .client
        .create(&kube::leases_path(NS), &lease("g", "a"), secs(5))
        .expect("create");
    let mut changed = created.clone();
    changed["spec"]["holderIdentity"] = json!("b");
    let _: Value = s
        .client
        .replace(&kube::lease_path(NS, "g"), &changed, secs(5))
        .expect("replace");
    s.server.compact();
    let result = s.client.watch::<Value>(
        &kube::leases_path(NS),
        &ListParams::named("g"),
        &rv(&created),
        30,
        secs(10),
    );
    let mut w = match result {
        Ok(w) => w,
        // A server may also refuse with an HTTP 410; both mean "re-list".
        Err(e) => {
            assert!(matches!(e, Error::Gone(_)), "{e:?}");
            return;
        }
    };
    match w.next() {
        Some(Err(Error::Gone(msg))) => assert!(!msg.is_empty()),
        other => panic!("expected Gone, got {other:?}"),
    }
    assert!(w.next().is_none());
}

#[test]
fn watch_reads_are_bounded_by_the_deadline() {
    let s = setup("tok-wdl");
    let rv0 = s.server.resource_version();
    let start = Instant::now();
    let deadline = start + Duration::from_millis(600);
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("none"),
            &rv0,
            300,
            deadline,
        )
        .expect("watch");
    match w.next() {
        Some(Err(Error::Timeout)) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(late < Duration::from_millis(200), "{late:?} late");
    assert!(w.next().is_none());

    // A watch whose connection drops mid-stream is a transport error, not a clean end.
    let mut w = s
        .client
        .watch::<Value>(
            &kube::leases_path(NS),
            &ListParams::named("none"),
            &rv0,
            300,
            secs(10),
        )
        .expect("watch");
    s.server.end_watches();
    match w.next() {
        Some(Err(e)) => assert!(e.is_transient(), "{e:?}"),
        None => {} // acceptable: some servers' drops look like a clean close
        other => panic!("expected an error, got {other:?}"),
    }
}
