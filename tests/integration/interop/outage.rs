//! An API outage longer than the renew deadline during a mixed election: the leader, of
//! either kind, stops its CMD while the API is still down, so nobody can have taken over yet;
//! once the API is back exactly one CMD runs again, and none ever overlapped.

use std::time::{Duration, Instant};

use test_apiserver::Fault;

use super::{peer, peer_or_skip, wait_started, CANCEL, GO_TOOL};
use crate::cluster::{Cluster, Replica, LEASE, RENEW_DEADLINE};
use crate::wait::{poll, wait_for};

fn outage_stops_the_leader(c: &Cluster, leader: &Replica) {
    wait_for("two renewals", Duration::from_secs(10), || {
        (c.lease_writes(&leader.token).len() >= 3).then_some(())
    });
    let outage = LEASE + Duration::from_secs(2);
    assert!(outage > RENEW_DEADLINE);
    let began = Instant::now();
    c.api.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let stopped = poll(outage, || c.running_cmds().is_empty().then_some(()));
    assert!(
        stopped.is_some(),
        "{}'s CMD still ran {outage:?} into the outage\n{}",
        leader.identity,
        c.dump()
    );
    // Nobody starts while the API is down.
    while began.elapsed() < outage {
        assert!(c.running_cmds().is_empty(), "{}", c.dump());
        std::thread::sleep(Duration::from_millis(50));
    }
    let starts_before = c.starts().len();
    c.api.clear_faults();
    wait_for("a leader after the outage", Duration::from_secs(15), || {
        (c.running_cmds().len() == 1 && c.starts().len() > starts_before).then_some(())
    });
    c.assert_no_overlap();
}

#[test]
fn an_api_outage_stops_a_client_go_leader_before_ours_can_take_over() {
    let Some(bin) = peer_or_skip("an_api_outage_stops_a_client_go_leader") else {
        return;
    };
    let c = Cluster::new("interop-outage-cg");
    let go = peer(&c, &bin, "go-0", GO_TOOL);
    wait_started(&c, "go-0", Duration::from_secs(10));
    let ours = c.replica("rs-1", None, &[]);
    ours.wait_log("new leader: go-0", Duration::from_secs(10));
    let _other = peer(&c, &bin, "go-2", CANCEL);
    outage_stops_the_leader(&c, &go);
}

#[test]
fn an_api_outage_stops_our_leader_before_client_go_can_take_over() {
    let Some(bin) = peer_or_skip("an_api_outage_stops_our_leader") else {
        return;
    };
    let c = Cluster::new("interop-outage-rs");
    let ours = c.first_leader("rs-0");
    let go = peer(&c, &bin, "go-1", GO_TOOL);
    go.wait_log("long live our new leader: 'rs-0'!", Duration::from_secs(10));
    let _other = c.replica("rs-2", None, &[]);
    outage_stops_the_leader(&c, &ours);
}
