//! A SIGKILLed leader of either kind: the other kind takes over no earlier than the lease
//! duration after the dead leader's last successful renewal, and soon after it.

use std::time::Duration;

use super::{peer, peer_or_skip, wait_started, CLIENT_GO_POLL, GO_TOOL};
use crate::cluster::{Cluster, Replica, LEASE};

/// SIGKILLs `leader` once `follower` takes part, and checks when `follower` takes over:
/// not before `LEASE` after the last renewal, and within `LEASE + late`.
fn killed_leader_replaced(c: &Cluster, leader: &Replica, follower: &Replica, late: Duration) {
    // Two renewals seen by the follower, so the kill lands mid-term.
    crate::wait::wait_for("two renewals", Duration::from_secs(10), || {
        (c.lease_writes(&leader.token).len() >= 3).then_some(())
    });
    leader.signal("KILL");
    wait_started(c, &follower.identity, LEASE + late + Duration::from_secs(5));
    let last_renewal = *c.lease_writes(&leader.token).last().expect("renewals");
    let taken = c.lease_writes(&follower.token)[0];
    let after = taken.duration_since(last_renewal);
    assert!(
        after >= LEASE && after <= LEASE + late,
        "{} took over {after:?} after {}'s last renewal (lease {LEASE:?})\n{}",
        follower.identity,
        leader.identity,
        c.dump()
    );
    c.assert_no_overlap();
    assert_eq!(c.holder().as_deref(), Some(follower.identity.as_str()));
}

#[test]
fn a_sigkilled_client_go_leader_is_replaced_by_ours_after_its_lease() {
    let Some(bin) = peer_or_skip("a_sigkilled_client_go_leader_is_replaced_by_ours") else {
        return;
    };
    let c = Cluster::new("interop-kill-cg");
    let go = peer(&c, &bin, "go-0", GO_TOOL);
    wait_started(&c, "go-0", Duration::from_secs(10));
    let ours = c.replica("rs-1", None, &[]);
    ours.wait_log("new leader: go-0", Duration::from_secs(10));
    killed_leader_replaced(&c, &go, &ours, Duration::from_secs(1));
}

#[test]
fn a_sigkilled_leader_of_ours_is_replaced_by_client_go_after_its_lease() {
    let Some(bin) = peer_or_skip("a_sigkilled_leader_of_ours_is_replaced_by_client_go") else {
        return;
    };
    let c = Cluster::new("interop-kill-rs");
    let ours = c.first_leader("rs-0");
    let go = peer(&c, &bin, "go-1", GO_TOOL);
    go.wait_log("long live our new leader: 'rs-0'!", Duration::from_secs(10));
    // client-go notices the last renewal up to one poll late and expiry up to one poll late.
    killed_leader_replaced(&c, &ours, &go, 2 * CLIENT_GO_POLL);
}
