//! A server's `Retry-After` parks a candidate for at most one lease duration: a 429 asking for
//! ten minutes does not keep it from taking a free Lease once the server answers again.

use std::time::Duration;

use test_apiserver::Fault;

use crate::cluster::{Cluster, LEASE};
use crate::wait::wait_for;

#[test]
fn a_ten_minute_retry_after_parks_a_candidate_for_one_lease_duration_at_most() {
    let c = Cluster::new("retry-after");
    c.api.set_fault(Fault::Status {
        code: 429,
        retry_after: Some(600),
    });
    let mut a = c.replica("a", None, &[]);
    a.wait_log("cannot read the lease", Duration::from_secs(10));
    c.api.clear_faults();
    // One lease duration (4 s) of back-off at most, then a read and a create; generous for
    // two busy cores, and far below the 600 s asked for.
    wait_for("a to lead after the 429", LEASE * 3, || {
        (c.starts() == ["a"]).then_some(())
    });
    a.signal("TERM");
    a.wait_exit(Duration::from_secs(10));
}
