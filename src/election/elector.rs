//! The [`Elector`]: runs [`Core`] on the elector thread against the API server. It campaigns
//! (one GET to start, then a watch on the one Lease, or polling when RBAC forbids watching;
//! conditional writes only), leads (one conditional PUT of the cached lease every renew
//! interval, `cadence.rs`) and releases the lease on the way out.

use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use super::cadence::renew_interval;
use super::core::{backoff, Core, HolderChange, Settings, Step};
use super::jitter::Jitter;
use super::messages::{Campaign, Inbox, LeaderHooks, LostCause, Term};
use super::renew::{RenewError, Renewal};
use super::watch::WatchState;
use crate::clock::BootInstant;
use crate::config::Timings;
use crate::kube::{self, Client};
use crate::leadership::Snapshot;
use crate::lease::Lease;

/// Drives [`Core`] against the API server on the elector thread. Its fields are shared with
/// the sibling files that extend it (`watch.rs`, `renew.rs`).
pub struct Elector {
    pub(super) client: Arc<Client>,
    pub(super) core: Core,
    pub(super) snapshot: Arc<Snapshot>,
    inbox: Receiver<Inbox>,
    pub(super) inbox_tx: Sender<Inbox>,
    jitter: Jitter,
    pub(super) watch: WatchState,
    /// Send time of the last successful acquire/renew while leading.
    pub(super) renewed_at: Option<Instant>,
    /// When the last write was sent, on the boot clock (our own validity is measured on it).
    pub(super) sent_boot: Option<BootInstant>,
    /// An [`Inbox::Stopping`] arrived and the hook has not run yet.
    stopping: bool,
    /// Never release: [`Inbox::Abandon`] arrived, or another process renews under our name.
    pub(super) keep_lease: bool,
    /// We warned about an invalid `leaseDurationSeconds` and have seen no valid one since.
    warned_bad_duration: bool,
}

impl Elector {
    /// An elector for `settings` that reports to `snapshot` and reads `inbox` (`inbox_tx` is
    /// its sending side, for the watcher threads).
    pub fn new(
        client: Arc<Client>,
        settings: Settings,
        snapshot: Arc<Snapshot>,
        inbox: Receiver<Inbox>,
        inbox_tx: Sender<Inbox>,
    ) -> Elector {
        Elector {
            client,
            core: Core::new(settings),
            snapshot,
            inbox,
            inbox_tx,
            jitter: Jitter::seeded(),
            watch: WatchState::default(),
            renewed_at: None,
            sent_boot: None,
            stopping: false,
            keep_lease: false,
            warned_bad_duration: false,
        }
    }

    /// Who we are and what we compete for.
    pub(super) fn settings(&self) -> &Settings {
        self.core.settings()
    }

    /// Lease duration, renew deadline and retry period.
    pub(super) fn timings(&self) -> Timings {
        self.core.settings().timings
    }

    /// The API path of our Lease.
    pub(super) fn lease_path(&self) -> String {
        kube::lease_path(&self.settings().namespace, &self.settings().lock_name)
    }

    /// Deadline for one request while campaigning or releasing.
    fn request_deadline(&self) -> Instant {
        Instant::now() + (self.timings().renew_deadline / 2).max(Duration::from_millis(500))
    }

    /// `retryPeriod × (1 + U[0, 1.2))`, client-go's jittered wait.
    pub(super) fn jittered_retry(&mut self) -> Duration {
        self.jitter.retry_wait(self.timings().retry_period)
    }

    /// Folds a fresh view of the Lease into the core and the snapshot, logging a new leader.
    pub(super) fn observe(&mut self, lease: Option<Lease>, at: Instant) {
        if let Some(rv) = lease.as_ref().and_then(|l| l.resource_version()) {
            self.watch.resume_from = Some(rv.to_string());
        }
        match self.core.observe(lease, at) {
            HolderChange::Unchanged => {}
            HolderChange::Taken(h) if h == self.settings().identity => {
                if !self.core.we_hold() {
                    info!("the lease names our identity {h:?} but this process did not write it (a previous run, or another replica with the same identity): waiting until it is released or expires");
                }
            }
            HolderChange::Taken(h) => info!(holder = h.as_str(); "new leader: {h}"),
            HolderChange::Freed => info!("the lease {} is free", self.settings().lock_name),
        }
        match self.core.invalid_duration() {
            Some(bad) if !self.warned_bad_duration => {
                self.warned_bad_duration = true;
                warn!(
                    "the lease {} has leaseDurationSeconds {bad}, not a positive 32-bit number of seconds (values out of that range read as 0): waiting for its holder as long as our own lease duration, {}",
                    self.settings().lock_name,
                    crate::config::show(self.timings().lease_duration)
                );
            }
            Some(_) => {}
            None => self.warned_bad_duration = false,
        }
        let expires = self
            .core
            .expires_at()
            .map(|t| SystemTime::now() + t.saturating_duration_since(Instant::now()));
        let holder = self.core.holder().map(String::from);
        self.snapshot.update(|s| {
            s.holder = holder;
            s.expires_wall = expires;
        });
    }

    /// GETs the Lease and folds it in, within the deadline of one campaign request.
    pub(super) fn read(&mut self) -> Result<(), kube::Error> {
        self.read_within(self.request_deadline())
    }

    /// Waits up to `d` for a shutdown request; other messages (stale watch events) are
    /// folded in. Returns true if asked to shut down.
    fn pause(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Inbox::Shutdown) => return true,
                Ok(Inbox::Abandon) => {
                    self.keep_lease = true;
                    return true;
                }
                Ok(Inbox::Stopping) => {
                    self.stopping = true;
                    return false;
                }
                Ok(other) => self.handle_watch_message(other),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    /// Back-off after a failed request: jittered retry period, or the server's Retry-After
    /// up to one lease duration ([`backoff`]).
    pub(super) fn backoff_for(&mut self, e: &kube::Error) -> Duration {
        let j = self.jittered_retry();
        backoff(j, e.retry_after(), self.timings().lease_duration)
    }

    /// Campaign until elected, asked to shut down, or facing a failure retrying cannot fix.
    pub fn campaign(&mut self) -> Campaign {
        info!(
            "campaigning for lease {}/{} as {:?}",
            self.settings().namespace,
            self.settings().lock_name,
            self.settings().identity
        );
        loop {
            let now = Instant::now();
            match self.core.candidate_step(now, SystemTime::now()) {
                Step::Read => {
                    if let Err(e) = self.read_checking_watch() {
                        if let kube::Error::Forbidden(_) = e {
                            return Campaign::Fatal(e);
                        }
                        warn!("cannot read the lease: {e}");
                        let d = self.backoff_for(&e);
                        if self.pause(d) {
                            return Campaign::Shutdown;
                        }
                    }
                }
                Step::Create(body) | Step::Take(body) => {
                    if let ControlFlow::Break(end) = self.try_to_take(body) {
                        return end;
                    }
                }
                Step::WaitUntil(expiry) => {
                    if let ControlFlow::Break(end) = self.wait_for_holder(now, expiry) {
                        return end;
                    }
                }
            }
        }
    }

    /// Writes `body` (a create, or a replace conditional on the resourceVersion it carries) to
    /// make us the holder. Breaks with the end of the campaign: elected, asked to shut down,
    /// or forbidden; continues after a lost race (read again) or a failure (after a back-off).
    fn try_to_take(&mut self, body: Lease) -> ControlFlow<Campaign> {
        // A shutdown that arrived while we read must not be followed by a write.
        if self.pause(Duration::ZERO) {
            return ControlFlow::Break(Campaign::Shutdown);
        }
        let sent = Instant::now();
        self.sent_boot = Some(BootInstant::now());
        // The answer may be lost while the write is stored: remember it as ours.
        self.core.will_write(&body);
        let creating = body.resource_version().is_none();
        let result = if creating {
            self.client.create::<_, Lease>(
                &kube::leases_path(&self.settings().namespace),
                &body,
                self.request_deadline(),
            )
        } else {
            self.client
                .replace::<_, Lease>(&self.lease_path(), &body, self.request_deadline())
        };
        match result {
            Ok(lease) => {
                self.core.stored(&lease);
                self.observe(Some(lease), sent);
                self.became_leader(sent);
                return ControlFlow::Break(Campaign::Elected);
            }
            Err(
                kube::Error::Conflict(_) | kube::Error::AlreadyExists(_) | kube::Error::NotFound(_),
            ) => {
                debug!("lost the race for the lease; reading it again");
                self.core.invalidate();
            }
            // No retry fixes either: a missing permission or a namespace that does not exist.
            Err(e @ (kube::Error::Forbidden(_) | kube::Error::NamespaceNotFound { .. })) => {
                return ControlFlow::Break(Campaign::Fatal(e))
            }
            Err(e) => {
                warn!("cannot acquire the lease: {e}");
                self.core.invalidate();
                let d = self.backoff_for(&e);
                if self.pause(d) {
                    return ControlFlow::Break(Campaign::Shutdown);
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Someone else holds a live lease that expires at `expiry`: watch it (or poll) until it
    /// changes, expires, or a quiet watch is due for a check. Breaks only when asked to shut
    /// down.
    fn wait_for_holder(&mut self, now: Instant, expiry: Instant) -> ControlFlow<Campaign> {
        let watching = self.ensure_watch();
        let wake = if watching {
            expiry.min(self.silent_watch_check_at())
        } else {
            let poll = now + self.jittered_retry();
            expiry.min(poll)
        };
        match self.inbox.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Inbox::Abandon) => {
                self.keep_lease = true;
                return ControlFlow::Break(Campaign::Shutdown);
            }
            Ok(Inbox::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                return ControlFlow::Break(Campaign::Shutdown)
            }
            Ok(msg) => self.handle_watch_message(msg),
            Err(RecvTimeoutError::Timeout) => {
                if wake < expiry && watching {
                    self.check_silent_watch();
                } else if wake < expiry {
                    // Polling: time for a fresh look.
                    self.core.invalidate();
                }
                // Otherwise the lease expired in our eyes: the next step takes it with the
                // body we cached (no GET first).
            }
        }
        ControlFlow::Continue(())
    }

    /// Our write made us the holder (sent at `sent`): start the term.
    fn became_leader(&mut self, sent: Instant) {
        self.renewed_at = Some(sent);
        // A running watch is of no use to the leader; its events are ignored from now on and
        // it ends by itself when the server closes it.
        self.watch.forget_running();
        info!("became leader");
        let wall = SystemTime::now() - sent.elapsed();
        self.snapshot.update(|s| {
            s.leading = true;
            s.last_renew = Some(sent);
            s.last_renew_boot = self.sent_boot;
            s.last_renew_wall = Some(wall);
            s.transitions += 1;
        });
    }

    /// When we must have stepped down: last successful renewal (send time) + renew deadline.
    pub fn step_down_at(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + self.timings().renew_deadline)
    }

    /// Renew until asked to shut down or leadership is lost. Renewals are one conditional PUT
    /// of the cached lease every renew interval (`cadence.rs`), retried every retry period
    /// after a failure; a Conflict costs one GET (the slow path).
    pub fn lead(&mut self, hooks: &mut dyn LeaderHooks) -> Term {
        let retry = self.timings().retry_period;
        let interval = renew_interval(&self.timings());
        let per_request = retry.max(self.timings().renew_deadline / 3);
        let mut next = self.renewed_at.map_or_else(Instant::now, |t| t + interval);
        let mut last_error = String::from("no renewal attempted");
        loop {
            if self.pause(next.saturating_duration_since(Instant::now())) {
                return Term::Shutdown;
            }
            let Some(step_down_at) = self.step_down_at() else {
                return self.lost(LostCause::NotLeading);
            };
            let now = Instant::now();
            if std::mem::take(&mut self.stopping) {
                hooks.stopping((now + per_request).min(step_down_at));
                continue;
            }
            if now >= step_down_at {
                return self.lost(LostCause::RenewDeadline {
                    deadline: self.timings().renew_deadline,
                    last_error,
                });
            }
            let deadline = step_down_at.min(now + per_request);
            let attempt = if self.core.lease().is_none() {
                self.recreate(deadline)
            } else {
                self.renew_once(deadline)
            };
            match attempt {
                Ok(Renewal::Stored(sent)) => {
                    next = sent + interval;
                    hooks.renewed(next.min(step_down_at));
                }
                Ok(Renewal::RetryNow) => next = Instant::now(),
                Err(RenewError::Lost(cause)) => return self.lost(cause),
                Err(RenewError::Request(e)) => {
                    warn!("renewal failed: {e}");
                    last_error = e.to_string();
                    self.snapshot.update(|s| s.renew_failures += 1);
                    next = (Instant::now() + retry).min(step_down_at);
                }
            }
        }
    }

    /// GETs the Lease and folds it in, dated by the *answer*: the record may have been written
    /// while the request was under way, and dating it by the question would make a renewal
    /// look older than it is (and the lease expire early in our eyes).
    pub(super) fn read_within(&mut self, deadline: Instant) -> Result<(), kube::Error> {
        let result = self.client.get::<Lease>(&self.lease_path(), deadline);
        let at = Instant::now();
        match result {
            Ok(l) => self.observe(Some(l), at),
            Err(kube::Error::NotFound(_)) => self.observe(None, at),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The `metadata.uid` of the Lease as we last saw it (for events about it).
    pub fn lease_uid(&self) -> Option<String> {
        let meta = &self.core.lease()?.metadata;
        meta.rest.get("uid")?.as_str().map(String::from)
    }

    /// The holder as we last saw it, for log lines and reasons.
    pub(super) fn holder_text(&self) -> String {
        self.core
            .holder()
            .map_or_else(|| "nobody".to_string(), |h| format!("{h:?}"))
    }

    /// Ends the term: leadership is gone, because of `cause`.
    fn lost(&mut self, cause: LostCause) -> Term {
        match &cause {
            LostCause::TakenOver { by } => {
                warn!(holder = by.as_str(); "lost leadership: {cause}");
            }
            _ => warn!("lost leadership: {cause}"),
        }
        self.renewed_at = None;
        self.snapshot.update(|s| s.leading = false);
        Term::Lost(cause.into())
    }

    /// Blocks until the main thread sends [`Inbox::Shutdown`] (after a lost term, while CMD
    /// is being stopped).
    pub fn wait_for_shutdown(&mut self) {
        loop {
            match self.inbox.recv() {
                Ok(Inbox::Shutdown) | Err(_) => return,
                Ok(Inbox::Abandon) => {
                    self.keep_lease = true;
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// Gives the lease up if it is still ours (it names us and this process wrote it): a
    /// conditional PUT of the cached lease (which only succeeds if nobody wrote it since our
    /// last renewal), and on Conflict one fresh read and one more try if it is still ours.
    /// Bounded by `deadline`.
    pub fn release(&mut self, deadline: Instant) {
        self.snapshot.update(|s| s.leading = false);
        self.renewed_at = None;
        if self.keep_lease {
            warn!("not releasing the lease: others take over when it expires");
            return;
        }
        for attempt in 0..2 {
            let Some(body) = self.core.release(SystemTime::now()) else {
                if self.core.names_us() {
                    // It names us, but we did not write it: a twin with our identity holds it.
                    warn!("not releasing: the lease was renewed under our name by another process");
                } else {
                    debug!("not releasing: the lease is held by {}", self.holder_text());
                }
                return;
            };
            let at = Instant::now();
            match self
                .client
                .replace::<_, Lease>(&self.lease_path(), &body, deadline)
            {
                Ok(lease) => {
                    self.observe(Some(lease), at);
                    info!("released the lease");
                    return;
                }
                Err(kube::Error::Conflict(_)) if attempt == 0 => {
                    if let Err(e) = self.read_within(deadline) {
                        warn!(
                            "could not release the lease ({e}); others take over when it expires"
                        );
                        return;
                    }
                }
                Err(e) => {
                    warn!("could not release the lease ({e}); others take over when it expires");
                    return;
                }
            }
        }
    }
}
