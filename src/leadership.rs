//! The shared leadership status: what the elector thread reports about the election, and what
//! the main thread and the status endpoint read.
//!
//! A leaf: plain data behind one lock. It knows nothing of Kubernetes, the election or
//! processes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use crate::clock::BootInstant;

/// What the status endpoint and the main thread may read about the election.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Name of the election (status output and metric labels).
    pub name: String,
    /// The identity we campaign under.
    pub identity: String,
    /// The Lease we compete for (`namespace/name`).
    pub lock: String,
    /// Current holder as last observed.
    pub holder: Option<String>,
    /// True while we hold the lease and renew it.
    pub leading: bool,
    /// When we sent the last successful acquire or renewal (monotonic clock).
    pub last_renew: Option<Instant>,
    /// The same moment on the boot-time clock, which keeps counting while the node sleeps:
    /// the main thread measures our own validity from it.
    pub last_renew_boot: Option<BootInstant>,
    /// The same moment on the wall clock.
    pub last_renew_wall: Option<SystemTime>,
    /// When the observed lease (ours or not) expires in our eyes, on the wall clock.
    pub expires_wall: Option<SystemTime>,
    /// Successful renewals.
    pub renewals: u64,
    /// Renewals that failed (and were retried until the step-down time).
    pub renew_failures: u64,
    /// Times we became leader.
    pub transitions: u64,
    /// Renewals that needed a GET first (client-go's slow path).
    pub slowpath: u64,
}

/// The shared, lock-protected [`Status`]. Writers are the elector thread only.
#[derive(Debug, Default)]
pub struct Snapshot(Mutex<Status>);

impl Snapshot {
    /// A shared snapshot starting at `status`.
    pub fn new(status: Status) -> Arc<Snapshot> {
        Arc::new(Snapshot(Mutex::new(status)))
    }

    /// A copy of the current status.
    pub fn get(&self) -> Status {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the status in place, under the lock (the elector's side).
    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.lock())
    }
}
