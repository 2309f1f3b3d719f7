//! A Lease whose `leaseDurationSeconds` is not a positive int32 (a client that is not
//! kube-apiserver-validated wrote it, or a hostile server sends it) is still readable: its
//! holder is waited for as long as our own lease duration, and one WARN says so.

use std::time::Duration;

use serde_json::json;

use crate::cluster::{Cluster, LEASE, LOCK, NS};
use crate::wait::wait_for;

#[test]
fn a_lease_duration_outside_int32_falls_back_to_ours_with_one_warning() {
    let c = Cluster::new("bad-duration");
    c.api.put_object(
        "leases",
        NS,
        json!({"metadata": {"name": LOCK},
               "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 4_294_967_296_u64,
                        "renewTime": test_apiserver::micro_time_now(),
                        "acquireTime": test_apiserver::micro_time_now()}}),
    );
    assert_eq!(
        c.lease().expect("lease")["spec"]["leaseDurationSeconds"],
        json!(4_294_967_296_u64)
    );
    let mut a = c.replica("a", None, &[]);
    // Our lease duration (4 s) after we first saw the silent holder, then a take.
    wait_for("a to take the lease over", LEASE * 4, || {
        (c.starts() == ["a"]).then_some(())
    });
    let log = a.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("leaseDurationSeconds"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(
        !log.contains("cannot read the lease"),
        "the Lease must stay readable: {log}"
    );
    a.signal("TERM");
    a.wait_exit(Duration::from_secs(10));
}
