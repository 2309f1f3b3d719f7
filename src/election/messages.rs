//! What passes between the elector thread and the rest: the [`Inbox`] it reads (from the main
//! thread and from its watcher), how a [`Campaign`] and a [`Term`] end, and the
//! [`LeaderHooks`] the leader calls besides renewing.

use std::time::Instant;

use crate::kube::{self, WatchEvent};
use crate::lease::Lease;

/// Messages to the elector thread.
#[derive(Debug)]
pub enum Inbox {
    /// Stop campaigning or leading; release the lease if we hold it.
    Shutdown,
    /// Stop, but do not release: CMD (or something it started) may still run, so the lease
    /// must expire on its own before anybody else takes it.
    Abandon,
    /// CMD is being stopped while we still lead: stop advertising ourselves
    /// ([`LeaderHooks::stopping`]) but keep renewing until CMD is gone.
    Stopping,
    /// The watcher saw an event on the Lease.
    Watched {
        /// Which watch saw it (events of a superseded watch are ignored).
        generation: u64,
        /// The event.
        event: Box<WatchEvent<Lease>>,
    },
    /// A watch ended.
    WatchEnded {
        /// Which watch ended.
        generation: u64,
        /// Why, if it failed; `None` when the stream simply ended.
        error: Option<kube::Error>,
    },
}

/// How a campaign ended.
#[derive(Debug)]
pub enum Campaign {
    /// We hold the lease now.
    Elected,
    /// Asked to shut down (or abandon) before we were elected.
    Shutdown,
    /// A failure that retrying will not fix (RBAC forbids us to read or write the Lease).
    Fatal(kube::Error),
}

/// How a term as leader ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Term {
    /// Asked to shut down (or abandon) while leading.
    Shutdown,
    /// Leadership was lost, for this reason.
    Lost(String),
}

/// What the leader does besides renewing; `app` plugs service routing in here.
pub trait LeaderHooks {
    /// Called after each successful renewal, with the deadline for any extra requests.
    fn renewed(&mut self, _deadline: Instant) {}
    /// Called once when CMD is being stopped while we still lead.
    fn stopping(&mut self, _deadline: Instant) {}
}

/// No extra work.
impl LeaderHooks for () {}
