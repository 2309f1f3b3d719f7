//! The status HTTP endpoint (`K8S_AWAIT_ELECTION_STATUS_ENDPOINT`) and the Prometheus metrics.
//!
//! Owns the listening socket, its threads, a tiny hand-written HTTP/1.x server on `std::net`,
//! and the three views of the election it serves. It only ever reads an
//! [`Snapshot`]; it never talks to Kubernetes or touches CMD.
//!
//! # Paths
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /status` | JSON view of the election: name, identity, lock, holder, leading, last renewal, lease expiry, counters |
//! | `GET`/`HEAD /metrics` | Prometheus text format 0.0.4 (`leader_election_master_status`, `leader_election_slowpath_total` as in client-go, and `k8s_await_election_*`) |
//! | anything else, any method | the Go tool's health check: `200 {"status": "ok"}`, or `500 {"status": "expired"}` while we lead and have not renewed for lease duration + 2 s |
//!
//! The health check is client-go's `HealthzAdaptor` with `Check(2s)`: unhealthy only when we
//! are leading and `now > last renew + lease duration + 2 s` (monotonic clock); followers are
//! always healthy. `/status` and `/metrics` with other methods answer 405.
//!
//! # Hardening
//! - A request head is at most [`MAX_HEAD`] bytes (else `431`) and must arrive within
//!   [`READ_TIMEOUT`] (else the connection is closed); garbage gets `400`; nothing panics on
//!   input. Every response carries `Connection: close`.
//! - One thread per connection (64 KiB stacks), at most [`SOFT_CAP`] of them. A connection
//!   beyond that evicts the oldest connection that is still sending its request (slow or idle
//!   clients cannot lock a liveness probe out); at [`HARD_CAP`] threads new connections are
//!   answered `503` and closed.
//! - `:PORT` binds `[::]:PORT` (dual-stack with the usual `net.ipv6.bindv6only=0`) and falls
//!   back to `0.0.0.0:PORT` where IPv6 is unavailable.
//!
//! # Layout
//! - `server`: the socket, its threads and the connection caps (all the I/O);
//! - `http`: request head parsing and response bytes;
//! - `views`: routing a request to its answer, `/status`, `/metrics`, expiry.

mod http;
mod server;
mod views;

// The one place the status endpoint names the shared leadership types.
use crate::leadership::{Snapshot, Status};

pub use http::{parse_head, Parse, Request, Response, MAX_HEAD};
pub use server::{StatusServer, HARD_CAP, READ_TIMEOUT, SOFT_CAP};
pub use views::{
    is_expired, metrics_text, respond, status_json, EXPIRY_TOLERANCE, METRICS_CONTENT_TYPE,
};

/// Requests and election statuses shared by the submodules' unit tests.
#[cfg(test)]
mod fixtures {
    use std::time::{Duration, Instant, UNIX_EPOCH};

    use super::{Request, Status};

    pub(super) fn req(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            has_body: false,
        }
    }

    pub(super) fn leader(last_renew: Instant) -> Status {
        Status {
            name: "my-election".into(),
            identity: "pod-0".into(),
            lock: "ns/my-lock".into(),
            holder: Some("pod-0".into()),
            leading: true,
            last_renew: Some(last_renew),
            last_renew_boot: None,
            last_renew_wall: Some(UNIX_EPOCH + Duration::from_micros(1_795_594_530_123_456)),
            expires_wall: Some(UNIX_EPOCH + Duration::from_secs(1_795_594_534)),
            renewals: 7,
            renew_failures: 2,
            transitions: 1,
            slowpath: 3,
        }
    }
}
