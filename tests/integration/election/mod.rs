//! Lease election with real replicas of the binary against the test API server, short timings
//! (lease 4 s, renew deadline 3 s, retry period 1 s).

mod bad_duration;
mod bookmarks;
mod lifecycle;
mod retry_after;
mod takeover;
mod twin;
mod watching;

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::wait::wait_for;

/// Waits while replica `a` renews for three lease durations after `since` (a view of the
/// lease from before `since` would have expired after one), then asserts that replica `b`
/// wrote nothing meanwhile: it never tried to take the live lease.
fn assert_b_leaves_a_live_lease_alone(c: &Cluster, since: Instant) {
    wait_for(
        "a to renew for three lease durations",
        Duration::from_secs(30),
        || {
            let renewals = c
                .lease_writes("token-a")
                .into_iter()
                .filter(|t| *t > since)
                .count();
            (renewals >= 12).then_some(())
        },
    );
    let writes_by_b: Vec<String> = c
        .api
        .requests()
        .iter()
        .filter(|r| r.token.as_deref() == Some("token-b"))
        .filter(|r| r.verb != "get" && r.verb != "watch")
        .map(|r| format!("{} {} -> {}", r.verb, r.path, r.code))
        .collect();
    assert!(
        writes_by_b.is_empty(),
        "b tried to take a live lease: {writes_by_b:?}\n{}",
        c.dump()
    );
}
