//! BOOKMARKs on the follower's watch: the product asks for them (`allowWatchBookmarks=true`,
//! to resume later watches from a recent resourceVersion), but a bookmark is no change of the
//! Lease: it neither restarts the expiry clock nor counts as a sign that the watch delivers
//! the holder's renewals.

use std::time::{Duration, Instant};

use test_apiserver::Fault;

use crate::cluster::Cluster;
use crate::wait::wait_for;

/// A follower's watch loses every event while its bookmarks keep coming (every 300 ms, far
/// more often than the quiet-watch check): the follower must still notice that the watch
/// brings no renewals, look again, and never try to take the live lease. When the holder
/// then really stops renewing, the bookmarks must not keep its lease alive either.
#[test]
fn bookmarks_neither_mask_a_watch_that_lost_its_events_nor_keep_a_lease_alive() {
    let c = Cluster::new("bookmarks");
    c.api.set_bookmark_interval(Duration::from_millis(300));
    let _a = c.first_leader("a");
    let b = c.replica("b", None, &[]);
    let by_b = |verb: &str| {
        c.api
            .requests()
            .iter()
            .filter(|r| r.token.as_deref() == Some("token-b") && r.verb == verb && r.code == 200)
            .count()
    };
    wait_for("b to watch the lease", Duration::from_secs(10), || {
        (by_b("watch") == 1).then_some(())
    });
    assert!(
        c.api.requests().iter().any(|r| r.verb == "watch"
            && r.token.as_deref() == Some("token-b")
            && r.query.contains("allowWatchBookmarks=true")),
        "b asks for bookmarks"
    );
    c.api.drop_watch_events();
    let dropped = Instant::now();
    let log_before = b.log_text().len();
    wait_for("b to watch anew", Duration::from_secs(10), || {
        (by_b("watch") > 1).then_some(())
    });
    super::assert_b_leaves_a_live_lease_alone(&c, dropped);
    let log = b.log_text();
    assert!(
        log[log_before..].contains("its watch said nothing"),
        "b noticed the lost events:\n{log}"
    );

    // a is cut off and stops renewing; b's watch still gets a bookmark every 300 ms.
    c.api.set_token_fault("token-a", Fault::Reset);
    wait_for("b to take over", Duration::from_secs(20), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    assert_eq!(c.holder().as_deref(), Some("b"));
    c.assert_no_overlap();
}
