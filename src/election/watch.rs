//! The watch on the Lease while we campaign: a short-lived watcher thread ([`Watcher`]) reads
//! the stream and feeds its events to the elector's inbox; the elector folds them in
//! ([`Elector::handle_watch_message`]), restarts the watch when it ends, falls back to polling
//! when RBAC forbids watching, and reads the Lease once when a watch has been quiet for too
//! long (a half-open connection never says anything again).
//!
//! A blocking read of the stream cannot be interrupted, and the elector must keep its
//! schedule: hence the separate thread. Each watch has a generation; messages of a superseded
//! one are ignored, and its thread ends by itself at its own deadline.

use std::io;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::elector::Elector;
use super::messages::Inbox;
use crate::kube::{self, Client, ListParams, WatchEvent};
use crate::lease::Lease;

/// How long one watch request may stay open before we re-open it (fewer requests per minute
/// with longer watches: an explicit `timeoutSeconds` is honoured as given, and without one
/// the apiserver picks 30 to 60 minutes). A follower's watch carries the holder's renewals
/// every retry period, so no proxy sees it idle.
const WATCH_SECONDS: u32 = 3600;

/// The elector's view of its watch.
#[derive(Debug, Default)]
pub(super) struct WatchState {
    /// RBAC (or the server) does not let us watch: poll instead.
    polling: bool,
    generation: u64,
    running: bool,
    /// Do not start a new watch before this (back-off after failures).
    not_before: Option<Instant>,
    /// The resourceVersion to resume from.
    pub(super) resume_from: Option<String>,
    started_at: Option<Instant>,
    /// When the running watch last brought an event (not a bookmark), or started.
    last_heard: Option<Instant>,
    /// When a watch last brought a changed Lease, and the gap before that one: the holder's
    /// renewal rhythm as we see it.
    last_change: Option<Instant>,
    change_gap: Option<Duration>,
}

impl WatchState {
    /// Stops listening to the running watch (if any): its events are ignored from now on,
    /// and its thread ends by itself when the server closes it or its deadline passes.
    pub(super) fn forget_running(&mut self) {
        self.generation += 1;
        self.running = false;
    }
}

/// One watch request on the Lease, run on its own thread.
struct Watcher {
    client: Arc<Client>,
    inbox: Sender<Inbox>,
    generation: u64,
    /// The leases collection of our namespace.
    collection: String,
    /// Selects our one Lease.
    params: ListParams,
    /// The resourceVersion to start from.
    resume_from: String,
}

impl Watcher {
    /// Starts the watcher thread (detached: it ends by itself).
    fn spawn(self) -> io::Result<()> {
        thread::Builder::new()
            .name("lease-watch".into())
            .stack_size(256 * 1024)
            .spawn(move || self.run())
            .map(drop)
    }

    /// The watcher thread's body: forward every event to the elector, then say how the watch
    /// ended (unless the elector is gone).
    fn run(self) {
        let deadline = Instant::now() + Duration::from_secs(u64::from(WATCH_SECONDS) + 10);
        let error = match self.client.watch::<Lease>(
            &self.collection,
            &self.params,
            &self.resume_from,
            WATCH_SECONDS,
            deadline,
        ) {
            Err(e) => Some(e),
            Ok(stream) => {
                let mut error = None;
                for event in stream {
                    match event {
                        Ok(event) => {
                            let watched = Inbox::Watched {
                                generation: self.generation,
                                event: Box::new(event),
                            };
                            if self.inbox.send(watched).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                error
            }
        };
        // The elector may be gone already; nothing to do then.
        let _ = self.inbox.send(Inbox::WatchEnded {
            generation: self.generation,
            error,
        });
    }
}

impl Elector {
    /// Starts a watch on the Lease unless one runs. Returns false when we poll instead (RBAC
    /// does not allow watching, or the watch is backing off).
    pub(super) fn ensure_watch(&mut self) -> bool {
        if self.watch.polling {
            return false;
        }
        if self.watch.running {
            return true;
        }
        if self.watch.not_before.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let Some(rv) = self.watch.resume_from.clone() else {
            return false;
        };
        self.watch.generation += 1;
        self.watch.running = true;
        self.watch.started_at = Some(Instant::now());
        self.watch.last_heard = self.watch.started_at;
        let watcher = Watcher {
            client: Arc::clone(&self.client),
            inbox: self.inbox_tx.clone(),
            generation: self.watch.generation,
            collection: kube::leases_path(&self.settings().namespace),
            params: ListParams {
                field_selector: Some(format!("metadata.name={}", self.settings().lock_name)),
                label_selector: None,
            },
            resume_from: rv,
        };
        if let Err(e) = watcher.spawn() {
            warn!("cannot start a thread to watch the lease ({e}); polling instead");
            self.watch.running = false;
            self.watch.polling = true;
            return false;
        }
        true
    }

    /// When a watch that has said nothing becomes suspect: after twice the holder's renewal
    /// rhythm as we saw it, and at least a third of the lease duration. A live holder renews
    /// in that rhythm, so a healthy watch of a held lease is never this quiet for long; a quiet
    /// one may be a half-open connection (the API server or the path to it went away without
    /// a FIN) that will never deliver the renewals we would need to see. Past the expiry the
    /// check is moot: the take that follows fails if the lease lives, and its re-read checks
    /// the watch ([`Self::read_checking_watch`]).
    pub(super) fn silent_watch_check_at(&self) -> Instant {
        let duration = self
            .core
            .observed_duration()
            .unwrap_or(self.timings().lease_duration);
        let rhythm = self.watch.change_gap.unwrap_or_default() * 2;
        let heard = self.watch.last_heard.unwrap_or_else(Instant::now);
        heard + (duration / 3).max(rhythm).max(Duration::from_secs(1))
    }

    /// The watch has been quiet (see [`Self::silent_watch_check_at`]): read the Lease once.
    /// Unchanged: the holder is just silent, and the expiry clock runs on.
    pub(super) fn check_silent_watch(&mut self) {
        if let Err(e) = self.read_checking_watch() {
            debug!("cannot check on the quiet lease watch: {e}");
        }
        self.watch.last_heard = Some(Instant::now());
    }

    /// Reads the Lease. If a watch runs but never brought what the read shows, the watch is
    /// dead: start a new one (the old thread ends at its own deadline; its events are
    /// ignored). Without this, a dead watch lets us mistake a live lease for an expired one,
    /// fail to take it, and stay blind until the watch times out.
    pub(super) fn read_checking_watch(&mut self) -> Result<(), kube::Error> {
        let seen = self
            .core
            .lease()
            .and_then(Lease::resource_version)
            .map(String::from);
        self.read()?;
        let now = self.core.lease().and_then(Lease::resource_version);
        if self.watch.running && now != seen.as_deref() {
            info!("the lease changed but its watch said nothing: watching it anew");
            self.watch.forget_running();
        }
        Ok(())
    }

    /// Folds a message from a watcher in: an event of the current watch, or its end.
    pub(super) fn handle_watch_message(&mut self, msg: Inbox) {
        match msg {
            // Control messages are taken by `pause` and `campaign` before they get here.
            Inbox::Shutdown | Inbox::Abandon | Inbox::Stopping => {}
            Inbox::Watched { generation, event } => {
                if generation != self.watch.generation {
                    return;
                }
                let at = Instant::now();
                match *event {
                    WatchEvent::Added(l) | WatchEvent::Modified(l) => {
                        self.watch.last_heard = Some(at);
                        if let Some(before) = self.watch.last_change.replace(at) {
                            self.watch.change_gap = Some(at.saturating_duration_since(before));
                        }
                        self.observe(Some(l), at)
                    }
                    WatchEvent::Deleted(l) => {
                        self.watch.last_heard = Some(at);
                        if let Some(rv) = l.resource_version() {
                            self.watch.resume_from = Some(rv.to_string());
                        }
                        self.observe(None, at)
                    }
                    // A bookmark only says where to resume: it is no change of the Lease
                    // (the expiry clock runs on) and no sign that the watch delivers them
                    // (the quiet-watch check runs on too).
                    WatchEvent::Bookmark { resource_version } => {
                        self.watch.resume_from = Some(resource_version)
                    }
                }
            }
            Inbox::WatchEnded { generation, error } => {
                if generation != self.watch.generation {
                    return;
                }
                self.watch.running = false;
                let short = self
                    .watch
                    .started_at
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
                match error {
                    None if !short => {}
                    None => self.watch.not_before = Some(Instant::now() + self.jittered_retry()),
                    Some(kube::Error::Gone(m)) => {
                        debug!("watch expired ({m}); reading the lease again");
                        self.watch.resume_from = None;
                        self.core.invalidate();
                    }
                    Some(kube::Error::Forbidden(m)) => {
                        warn!("not allowed to watch leases ({m}); polling every {} instead (grant the \"watch\" verb on leases for faster fail-over)", crate::config::show(self.timings().retry_period));
                        self.watch.polling = true;
                    }
                    Some(kube::Error::Timeout) if !short => {}
                    Some(e) => {
                        debug!("lease watch ended: {e}");
                        let d = self.backoff_for(&e);
                        self.watch.not_before = Some(Instant::now() + d);
                        // We may have missed changes: look again before trusting the cache.
                        self.core.invalidate();
                    }
                }
            }
        }
    }
}
