//! Watch streams: any bytes read as the body of a Lease watch, line by line exactly as the
//! client reads a live stream, never panic; events come in order with at most one error, and
//! it ends the stream; an error is a decoding failure or the HTTP error an ERROR event carries,
//! never a transport failure; every decoded Lease serializes and parses back with the same
//! fields we interpret and the same unknown members (their values may differ in the last bit
//! of a huge number: serde_json's text → f64 is not always correctly rounded, see
//! `lease_json`).
#![no_main]

use k8s_await_election::kube::{watch_events_of, Error, WatchEvent};
use k8s_await_election::lease::Lease;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let events = watch_events_of::<Lease>(data);
    let lines = data.split(|b| *b == b'\n').count();
    assert!(events.len() <= lines, "{} events from {lines} lines", events.len());
    if let Some((last, before)) = events.split_last() {
        assert!(before.iter().all(Result::is_ok), "an error before the end");
        if let Err(e) = last {
            assert!(
                !matches!(e, Error::Timeout | Error::Transport(_) | Error::Tls(_) | Error::Config(_)),
                "{e:?}"
            );
            let _ = e.to_string();
        }
    }
    for event in events.into_iter().flatten() {
        let lease = match event {
            WatchEvent::Added(l) | WatchEvent::Modified(l) | WatchEvent::Deleted(l) => l,
            WatchEvent::Bookmark { .. } => continue,
        };
        let text = serde_json::to_vec(&lease).expect("a decoded Lease serializes");
        let back: Lease = serde_json::from_slice(&text).expect("and parses back");
        assert_eq!(back.api_version, lease.api_version);
        assert_eq!(back.kind, lease.kind);
        assert_eq!(back.metadata.name, lease.metadata.name);
        assert_eq!(back.metadata.namespace, lease.metadata.namespace);
        assert_eq!(back.metadata.resource_version, lease.metadata.resource_version);
        assert_eq!(back.spec.record(), lease.spec.record());
        assert!(back.rest.keys().eq(lease.rest.keys()));
        assert!(back.spec.rest.keys().eq(lease.spec.rest.keys()));
        assert!(back.metadata.rest.keys().eq(lease.metadata.rest.keys()));
    }
});
