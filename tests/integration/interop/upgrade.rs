//! A rolling upgrade from the Go tool and back, as a Deployment does it (kubelet stand-in:
//! start the new replica, let it take part, then SIGTERM an old one): three client-go peers
//! that behave like the Go tool replaced one at a time by ours, then ours replaced by
//! client-go peers again.

use std::time::Duration;

use super::{peer, peer_or_skip, transitions, wait_contending, GO_TOOL};
use crate::cluster::{Cluster, Replica};
use crate::procs::exit_code;
use crate::wait::poll;

/// Waits until exactly one CMD runs, by one of `among`, and the Lease names it; returns it.
fn one_leader(c: &Cluster, among: &[&Replica]) -> String {
    let leader = poll(Duration::from_secs(20), || {
        let running = c.running_cmds();
        let [(id, _)] = running.as_slice() else {
            return None;
        };
        (among.iter().any(|r| &r.identity == id) && c.holder().as_deref() == Some(id.as_str()))
            .then(|| id.clone())
    });
    leader.unwrap_or_else(|| panic!("no single leader among the new replicas\n{}", c.dump()))
}

/// Every acquisition was by a new holder, so both kinds must have counted each one.
fn assert_transitions(c: &Cluster) {
    let starts = c.starts().len() as i64;
    assert_eq!(transitions(c), starts - 1, "{}", c.dump());
}

/// Replaces each of `old` by a replica from `start_new`, one at a time, each step once a
/// leader runs again (as a Deployment waits for its pods to be ready).
fn roll(
    c: &Cluster,
    old: Vec<Replica>,
    mut start_new: impl FnMut(usize) -> Replica,
    old_exits: &[i32],
) -> Vec<Replica> {
    let mut new: Vec<Replica> = Vec::new();
    let mut old: Vec<Option<Replica>> = old.into_iter().map(Some).collect();
    for i in 0..old.len() {
        let n = start_new(i);
        wait_contending(c, &n);
        new.push(n);
        let mut o = old[i].take().expect("old replica");
        o.signal("TERM");
        let code = exit_code(o.wait_exit(Duration::from_secs(15)));
        assert!(
            old_exits.contains(&code),
            "{} exited {code}\n{}",
            o.identity,
            c.dump()
        );
        let alive: Vec<&Replica> = new.iter().chain(old.iter().flatten()).collect();
        one_leader(c, &alive);
        c.assert_no_overlap();
    }
    new
}

#[test]
fn a_rolling_upgrade_from_the_go_tool_and_back_never_runs_two_cmds() {
    let Some(bin) = peer_or_skip("a_rolling_upgrade_from_the_go_tool_and_back") else {
        return;
    };
    let c = Cluster::new("interop-upgrade");
    let old: Vec<_> = (0..3)
        .map(|i| peer(&c, &bin, &format!("go-{i}"), GO_TOOL))
        .collect();
    one_leader(&c, &old.iter().collect::<Vec<_>>());

    // Upgrade: the Go tool exits 2 on SIGTERM without releasing (its CMD dies with it).
    let ours = roll(&c, old, |i| c.replica(&format!("rs-{i}"), None, &[]), &[2]);
    let leader = one_leader(&c, &ours.iter().collect::<Vec<_>>());
    assert_transitions(&c);

    // Rollback: ours releases on SIGTERM and exits 0 (CMD's code), or 143 if it never led.
    let back = roll(
        &c,
        ours,
        |i| peer(&c, &bin, &format!("go-back-{i}"), GO_TOOL),
        &[0, 143],
    );
    let last = one_leader(&c, &back.iter().collect::<Vec<_>>());
    assert!(last.starts_with("go-back-") && leader.starts_with("rs-"));
    assert_transitions(&c);
    c.assert_no_overlap();
}
