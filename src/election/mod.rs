//! The elector: campaign for the Lease, renew it while leading, release it on the way out.
//!
//! Two layers:
//! - [`Core`] (`core.rs`) is the pure state machine. It is handed every observation of the
//!   Lease together with the monotonic time it was made and answers "what now?". No I/O, no
//!   clocks of its own, so unit tests drive it with made-up instants and never sleep.
//! - [`Elector`] (`elector.rs`) runs it on the elector thread against the API server: one GET
//!   to start, then a watch on the one Lease (`watch.rs`; or polling when RBAC forbids
//!   watching), conditional writes only. It talks to the rest through the messages in
//!   `messages.rs` and reports to the shared [`Snapshot`] (`crate::leadership`); retries are
//!   spread out by `jitter.rs`, and `cadence.rs` says when the leader renews.
//!
//! Expiry of somebody else's lease is judged on our monotonic clock from the moment we saw its
//! election record change, plus the record's `leaseDurationSeconds` — never from its
//! `renewTime` (clocks between nodes skew). Our own validity is measured from the moment we
//! *sent* the last successful renewal, which is no later than the moment the server stored it
//! and so no later than anyone else's observation of it.
//!
//! A Lease naming our identity is ours only if this process wrote its record (its renewTime is
//! one we sent); one written by anybody else under our name (a twin, a replacement pod with
//! the same name, our own previous run) is waited out like a foreign holder's, and taking it
//! over starts a new term. Stricter than client-go, so that two processes sharing an identity
//! never run CMD at once.
//!
//! Knows Kubernetes (through [`crate::kube`]) but nothing of processes.

mod cadence;
mod core;
mod elector;
mod jitter;
mod messages;
mod renew;
mod watch;

pub use self::core::{Core, HolderChange, Observed, Settings, Step};
pub use self::elector::Elector;
pub use self::messages::{Campaign, Inbox, LeaderHooks, Lost, LostCause, Term};
pub use crate::leadership::{Snapshot, Status};
