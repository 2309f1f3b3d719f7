//! What passes between the elector thread and the rest: the [`Inbox`] it reads (from the main
//! thread and from its watcher), how a [`Campaign`] and a [`Term`] end (a lost term says why:
//! [`Lost`]), and the [`LeaderHooks`] the leader calls besides renewing.

use std::fmt;
use std::time::{Duration, Instant};

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
    Lost(Lost),
}

/// Why a term ended without being asked to. Its `Display` is the reason as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// What happened.
    pub cause: LostCause,
}

impl Lost {
    /// True when another process may already run its CMD: the lease was taken by another
    /// identity, re-created by another replica, or is renewed by a twin under our identity.
    /// Then our CMD must die at once (SIGKILL, no grace period): the "at most one CMD"
    /// promise is already broken, and every moment counts.
    pub fn someone_else_holds(&self) -> bool {
        match &self.cause {
            LostCause::TakenOver { .. } | LostCause::TwinRenewing { .. } => true,
            LostCause::Recreated => true,
            LostCause::NotHeld { holder } => holder.is_some(),
            LostCause::NotLeading
            | LostCause::RenewDeadline { .. }
            | LostCause::Freed
            | LostCause::Vanished => false,
        }
    }
}

impl From<LostCause> for Lost {
    fn from(cause: LostCause) -> Lost {
        Lost { cause }
    }
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cause.fmt(f)
    }
}

/// The ways a term is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostCause {
    /// Asked to lead without having been elected.
    NotLeading,
    /// No renewal was stored for the renew deadline.
    RenewDeadline {
        /// The renew deadline.
        deadline: Duration,
        /// Why the last attempt failed.
        last_error: String,
    },
    /// A fresh read shows another identity as holder.
    TakenOver {
        /// The holder now.
        by: String,
    },
    /// A fresh read shows the lease free (somebody else wrote an empty holder).
    Freed,
    /// A fresh read shows our identity as holder with a record this process did not write:
    /// another process renews under our name.
    TwinRenewing {
        /// Our (shared) identity.
        identity: String,
    },
    /// The cached lease is not ours to renew.
    NotHeld {
        /// Its holder (`None`: nobody); our own identity means a record we did not write.
        holder: Option<String>,
    },
    /// The Lease was deleted under us and cannot be created again yet.
    Vanished,
    /// The Lease was deleted under us and another replica created it first.
    Recreated,
}

/// A holder for reasons: quoted, or "nobody".
fn holder_text(holder: Option<&str>) -> String {
    holder.map_or_else(|| "nobody".to_string(), |h| format!("{h:?}"))
}

impl fmt::Display for LostCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostCause::NotLeading => f.write_str("not leading"),
            LostCause::RenewDeadline {
                deadline,
                last_error,
            } => write!(
                f,
                "no successful renewal for {} (last error: {last_error})",
                crate::config::show(*deadline)
            ),
            LostCause::TakenOver { by } => {
                write!(f, "the lease was taken by {}", holder_text(Some(by)))
            }
            LostCause::Freed => write!(f, "the lease was taken by {}", holder_text(None)),
            LostCause::TwinRenewing { identity } => write!(
                f,
                "another process renews the lease as {identity:?}; every replica needs a unique {}",
                crate::config::IDENTITY
            ),
            LostCause::NotHeld { holder } => {
                write!(f, "the lease is held by {}", holder_text(holder.as_deref()))
            }
            LostCause::Vanished => f.write_str("the lease vanished"),
            LostCause::Recreated => {
                f.write_str("the lease was deleted and re-created by another replica")
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_causes_keep_their_messages_and_say_whether_someone_else_holds() {
        let cases: Vec<(&str, LostCause, &str, bool)> = vec![
            ("not leading", LostCause::NotLeading, "not leading", false),
            (
                "renew deadline passed",
                LostCause::RenewDeadline {
                    deadline: Duration::from_secs(3),
                    last_error: "timed out".into(),
                },
                "no successful renewal for 3s (last error: timed out)",
                false,
            ),
            (
                "taken over by another identity",
                LostCause::TakenOver { by: "b".into() },
                r#"the lease was taken by "b""#,
                true,
            ),
            (
                "released by somebody else",
                LostCause::Freed,
                "the lease was taken by nobody",
                false,
            ),
            (
                "a twin renews under our identity",
                LostCause::TwinRenewing {
                    identity: "a".into(),
                },
                r#"another process renews the lease as "a"; every replica needs a unique K8S_AWAIT_ELECTION_IDENTITY"#,
                true,
            ),
            (
                "cached lease held by another identity",
                LostCause::NotHeld {
                    holder: Some("b".into()),
                },
                r#"the lease is held by "b""#,
                true,
            ),
            (
                "cached lease held by nobody",
                LostCause::NotHeld { holder: None },
                "the lease is held by nobody",
                false,
            ),
            (
                "deleted, not re-creatable yet",
                LostCause::Vanished,
                "the lease vanished",
                false,
            ),
            (
                "deleted and re-created by another replica",
                LostCause::Recreated,
                "the lease was deleted and re-created by another replica",
                true,
            ),
        ];
        for (name, cause, text, someone_else) in cases {
            let lost = Lost::from(cause);
            assert_eq!(lost.to_string(), text, "{name}");
            assert_eq!(lost.someone_else_holds(), someone_else, "{name}");
        }
    }
}
