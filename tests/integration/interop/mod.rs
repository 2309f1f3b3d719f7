//! Mixed elections: replicas of our binary and of the client-go test peer
//! (`tests/interop/client-go-peer`, built by scripts/build-client-go-peer.sh: client-go's own
//! `leaderelection` with a `LeaseLock`, as in the Go tool) contending for one Lease on the
//! test API server, with the flock overlap detector of [`crate::cluster`].
//!
//! The peer reads the same environment as our binary, so [`Cluster::replica_of`] starts it
//! like any replica. `PEER_SHUTDOWN` picks how SIGTERM ends it: [`GO_TOOL`] (the Go tool in a
//! pod: CMD killed, no release, exit 2) or [`CANCEL`] (a well-behaved client-go user: CMD
//! stopped, then the context cancelled, so `ReleaseOnCancel` releases the Lease, exit 0).
//! Without the peer (no Go toolchain) these tests are skipped with a message, unless `CI` is
//! set, where that is a failure.

mod crash;
mod handover;
mod outage;
mod upgrade;

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{Cluster, Replica};
use crate::wait::{poll, wait_for};

/// `PEER_SHUTDOWN` of the Go tool: SIGTERM ends it without releasing the Lease.
pub const GO_TOOL: &str = "go-tool";
/// `PEER_SHUTDOWN` of a well-behaved client-go user: SIGTERM stops CMD, then releases.
pub const CANCEL: &str = "cancel";

/// client-go polls every retry period times a jitter of up to 1.2 more
/// (`wait.JitterUntil(…, 1.2)`): the longest a client-go follower may take to notice a change.
pub const CLIENT_GO_POLL: Duration = Duration::from_millis(2200);

/// The peer binary (`$CARGO_TARGET_DIR` or `target/`, `client-go-peer`), or why it is missing.
pub fn peer_binary() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("client-go-peer");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing (scripts/build-client-go-peer.sh; needs Go)",
            bin.display()
        ))
    }
}

/// The peer binary; `None` after a printed skip, or a panic when `CI` is set.
pub fn peer_or_skip(test: &str) -> Option<PathBuf> {
    match peer_binary() {
        Ok(bin) => Some(bin),
        Err(reason) if std::env::var_os("CI").is_some() => panic!("{test}: {reason}"),
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}; install Go and run scripts/test.sh");
            None
        }
    }
}

/// Starts a client-go peer named `identity` with shutdown behaviour `mode`.
pub fn peer(c: &Cluster, bin: &std::path::Path, identity: &str, mode: &str) -> Replica {
    c.replica_of(bin, identity, identity, &[("PEER_SHUTDOWN", mode)])
}

/// Waits until `identity`'s CMD has started; panics with [`Cluster::dump`] after `timeout`.
pub fn wait_started(c: &Cluster, identity: &str, timeout: Duration) {
    let started = poll(timeout, || {
        c.starts().iter().any(|s| s == identity).then_some(())
    });
    assert!(
        started.is_some(),
        "timed out after {timeout:?} waiting for {identity} to lead\n{}",
        c.dump()
    );
}

/// Waits until `r` has asked the API server about the Lease at least once (it takes part in
/// the election).
pub fn wait_contending(c: &Cluster, r: &Replica) {
    wait_for(
        &format!("{} to read the lease", r.identity),
        Duration::from_secs(10),
        || {
            c.api
                .requests()
                .iter()
                .any(|q| q.resource == "leases" && q.token.as_deref() == Some(r.token.as_str()))
                .then_some(())
        },
    );
}

/// `leaseTransitions` of the Lease.
pub fn transitions(c: &Cluster) -> i64 {
    c.lease()
        .and_then(|l| l.pointer("/spec/leaseTransitions")?.as_i64())
        .unwrap_or(0)
}
