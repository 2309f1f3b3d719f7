//! The status HTTP endpoint (`K8S_AWAIT_ELECTION_STATUS_ENDPOINT`) and the Prometheus metrics.
//!
//! Owns the listening socket, its thread, a tiny hand-written HTTP/1.x server on `std::net`,
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
//! - One thread serves every connection: a `poll(2)` loop over non-blocking sockets, each
//!   connection a small state machine (`conn`) with a deadline per step. Threads and memory
//!   do not grow with the number of clients.
//! - A request head is at most [`MAX_HEAD`] bytes (else `431`) and must arrive within
//!   [`HEAD_TIMEOUT`] of the connection (else the connection is closed); garbage gets `400`;
//!   nothing panics on input. Every response carries `Connection: close`.
//! - Request bodies are never read as such: the request is answered as soon as its head is
//!   complete, then up to 64 KiB of body are read and discarded for at most 250 ms (so the
//!   close does not reset the answer), and the connection is closed.
//! - At most [`MAX_CONNECTIONS`] connections are open (half the soft `RLIMIT_NOFILE` if that
//!   is less); a new connection beyond that closes the oldest open one, so idle, slow or
//!   flooding clients cannot lock a liveness probe out.
//! - `:PORT` binds `[::]:PORT` (dual-stack with the usual `net.ipv6.bindv6only=0`) and falls
//!   back to `0.0.0.0:PORT` where IPv6 is unavailable.
//!
//! # Layout
//! - `server`: the socket, the poll loop, the connection cap (all the waiting);
//! - `conn`: one connection's steps (head, answer, drain) and their deadlines;
//! - `http`: request head parsing and response bytes;
//! - `views`: routing a request to its answer, `/status`, `/metrics`, expiry.

mod conn;
mod http;
mod server;
mod views;

// The one place the status endpoint names the shared leadership types and the system calls.
use crate::leadership::{Snapshot, Status};
use crate::sys;

pub use conn::HEAD_TIMEOUT;
pub use http::{parse_head, Parse, Request, Response, MAX_HEAD};
pub use server::{connection_cap, StatusServer, MAX_CONNECTIONS};
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
