//! The elector: campaign for the Lease, renew it while leading, release it on the way out.
//!
//! Two layers:
//! - [`Core`] is the pure state machine. It is handed every observation of the Lease together
//!   with the monotonic time it was made and answers "what now?". No I/O, no clocks of its own,
//!   so unit tests drive it with made-up instants and never sleep.
//! - [`Elector`] runs it on the elector thread against the API server: one GET to start, then
//!   a watch on the one Lease (or polling when RBAC forbids watching), conditional writes only.
//!
//! Expiry of somebody else's lease is judged on our monotonic clock from the moment we saw its
//! election record change, plus the record's `leaseDurationSeconds` — never from its
//! `renewTime` (clocks between nodes skew). Our own validity is measured from the moment we
//! *sent* the last successful renewal, which is no later than the moment the server stored it
//! and so no later than anyone else's observation of it.
//!
//! Knows Kubernetes (through [`crate::kube`]) but nothing of processes.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use crate::config::Timings;
use crate::kube::{self, Client, ListParams, WatchEvent};
use crate::lease::{Lease, LeaseSpec};
use crate::timefmt;

/// How long one watch request may stay open before we re-open it (fewer requests per minute
/// with longer watches; the apiserver allows up to 30 minutes).
const WATCH_SECONDS: u32 = 240;

/// Who we are and what we compete for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    pub lock_name: String,
    pub identity: String,
    pub timings: Timings,
}

/// The Lease as we last saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `None`: the Lease does not exist.
    pub lease: Option<Lease>,
    /// When we first saw the current election record (monotonic).
    pub record_since: Instant,
    /// The Lease vanished while someone held it: that holder and its duration. Its CMD may
    /// still run, so nobody else creates the Lease before `record_since + duration`.
    pub vanished_holder: Option<(String, Duration)>,
}

/// What a candidate should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// We have not read the Lease yet (or must read it again).
    Read,
    /// The Lease does not exist: create it with us as holder.
    Create(Lease),
    /// Write this body (conditional on the resourceVersion it carries): the lease is free,
    /// expired, or already ours.
    Take(Lease),
    /// Someone else holds a live lease; it expires at this instant unless it changes.
    WaitUntil(Instant),
}

/// The pure election state machine. Time is always an argument.
#[derive(Debug, Clone)]
pub struct Core {
    settings: Settings,
    observed: Option<Observed>,
    /// What we saw may be out of date: read again before acting on it.
    stale: bool,
}

impl Core {
    pub fn new(settings: Settings) -> Core {
        Core {
            settings,
            observed: None,
            stale: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn observed(&self) -> Option<&Observed> {
        self.observed.as_ref()
    }

    /// The lease body we last saw, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.observed.as_ref().and_then(|o| o.lease.as_ref())
    }

    /// Current holder as we last saw it.
    pub fn holder(&self) -> Option<&str> {
        self.lease().and_then(|l| l.spec.holder())
    }

    /// What we saw may be out of date: the next step is a fresh read. The old view is kept
    /// so an unchanged record does not restart the expiry clock.
    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    /// Records a fresh view of the Lease (`None`: it does not exist), seen at `now`. The expiry
    /// clock restarts only when the election record changed. Returns the new holder if the
    /// holder changed (`Some(None)` when the lease became free or vanished).
    pub fn observe(&mut self, lease: Option<Lease>, now: Instant) -> Option<Option<String>> {
        let (same_record, old_holder) = match &self.observed {
            Some(old) => {
                let same = match (&old.lease, &lease) {
                    (Some(a), Some(b)) => a.spec.record() == b.spec.record(),
                    (None, None) => true,
                    _ => false,
                };
                (
                    same,
                    Some(
                        old.lease
                            .as_ref()
                            .and_then(|l| l.spec.holder().map(String::from)),
                    ),
                )
            }
            None => (false, None),
        };
        let new_holder = lease
            .as_ref()
            .and_then(|l| l.spec.holder().map(String::from));
        let record_since = match &self.observed {
            Some(old) if same_record => old.record_since,
            _ => now,
        };
        let vanished_holder = match (&self.observed, &lease) {
            (_, Some(_)) | (None, None) => None,
            (Some(old), None) => match &old.lease {
                Some(l) => l
                    .spec
                    .holder()
                    .map(|h| (h.to_string(), self.record_duration(&l.spec))),
                None => old.vanished_holder.clone(),
            },
        };
        self.stale = false;
        self.observed = Some(Observed {
            vanished_holder,
            lease,
            record_since,
        });
        match old_holder {
            Some(old) if old == new_holder => None,
            _ => Some(new_holder),
        }
    }

    /// When the observed lease expires in our eyes (`None` if there is none or it is free).
    pub fn expires_at(&self) -> Option<Instant> {
        let o = self.observed.as_ref()?;
        let Some(lease) = o.lease.as_ref() else {
            return o.vanished_holder.as_ref().map(|(_, d)| o.record_since + *d);
        };
        lease.spec.holder()?;
        Some(o.record_since + self.record_duration(&lease.spec))
    }

    /// The duration of the lease we last saw held (also of one that vanished under its
    /// holder), if any.
    pub fn observed_duration(&self) -> Option<Duration> {
        let o = self.observed.as_ref()?;
        match &o.lease {
            Some(lease) => Some(self.record_duration(&lease.spec)),
            None => o.vanished_holder.as_ref().map(|(_, d)| *d),
        }
    }

    /// The record's own duration; a missing or non-positive one counts as our configured
    /// duration (the conservative choice: never take a lease earlier than we would expect).
    fn record_duration(&self, spec: &LeaseSpec) -> Duration {
        match spec.lease_duration_seconds {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            _ => self.settings.timings.lease_duration,
        }
    }

    /// True if the lease we last saw names us as holder.
    pub fn we_hold(&self) -> bool {
        self.holder() == Some(self.settings.identity.as_str())
    }

    /// What a candidate does at `now` (`wall` is written into the record).
    pub fn candidate_step(&self, now: Instant, wall: SystemTime) -> Step {
        let Some(observed) = self.observed.as_ref().filter(|_| !self.stale) else {
            return Step::Read;
        };
        let stamp = timefmt::micro_time(wall);
        let duration = self.lease_duration_seconds();
        let Some(current) = &observed.lease else {
            if let Some((holder, d)) = &observed.vanished_holder {
                let until = observed.record_since + *d;
                if *holder != self.settings.identity && now < until {
                    // Deleted under a live holder: its CMD may still run until its lease
                    // would have expired.
                    return Step::WaitUntil(until);
                }
            }
            let spec = LeaseSpec {
                holder_identity: Some(self.settings.identity.clone()),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(stamp.clone()),
                renew_time: Some(stamp),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            return Step::Create(Lease::new(
                &self.settings.namespace,
                &self.settings.lock_name,
                spec,
            ));
        };
        let mut body = current.clone();
        match current.spec.holder() {
            Some(h) if h == self.settings.identity => {
                // Ours already (e.g. we restarted with the same identity): keep acquireTime and
                // leaseTransitions, as client-go does.
                body.spec.lease_duration_seconds = Some(duration);
                body.spec.renew_time = Some(stamp);
                Step::Take(body)
            }
            Some(_) => {
                let expiry = observed.record_since + self.record_duration(&current.spec);
                if now < expiry {
                    Step::WaitUntil(expiry)
                } else {
                    Step::Take(self.acquired(body, stamp))
                }
            }
            None => Step::Take(self.acquired(body, stamp)),
        }
    }

    fn acquired(&self, mut body: Lease, stamp: String) -> Lease {
        let transitions = body.spec.lease_transitions.unwrap_or(0);
        body.spec.holder_identity = Some(self.settings.identity.clone());
        body.spec.lease_duration_seconds = Some(self.lease_duration_seconds());
        body.spec.acquire_time = Some(stamp.clone());
        body.spec.renew_time = Some(stamp);
        body.spec.lease_transitions = Some(transitions.saturating_add(1));
        body
    }

    fn lease_duration_seconds(&self) -> i32 {
        // Whole seconds on the wire; round a sub-second configuration up so others never
        // expect the lease to expire before we step down.
        let d = self.settings.timings.lease_duration;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// The body of a renewal: the lease we hold with `renewTime` moved. `None` if the lease we
    /// last saw is not ours.
    pub fn renewal(&self, wall: SystemTime) -> Option<Lease> {
        if !self.we_hold() {
            return None;
        }
        let mut body = self.lease()?.clone();
        body.spec.renew_time = Some(timefmt::micro_time(wall));
        body.spec.lease_duration_seconds = Some(self.lease_duration_seconds());
        Some(body)
    }

    /// The body that gives the lease up: empty holder, duration 1 s, both times now,
    /// transitions kept. `None` if the lease we last saw is not ours.
    pub fn release(&self, wall: SystemTime) -> Option<Lease> {
        if !self.we_hold() {
            return None;
        }
        let mut body = self.lease()?.clone();
        let stamp = timefmt::micro_time(wall);
        body.spec.holder_identity = Some(String::new());
        body.spec.lease_duration_seconds = Some(1);
        body.spec.acquire_time = Some(stamp.clone());
        body.spec.renew_time = Some(stamp);
        Some(body)
    }
}

/// What the status endpoint and the main thread may read about the election.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub name: String,
    pub identity: String,
    pub lock: String,
    /// Current holder as last observed.
    pub holder: Option<String>,
    pub leading: bool,
    /// When we sent the last successful acquire or renewal (monotonic and wall clock).
    pub last_renew: Option<Instant>,
    pub last_renew_wall: Option<SystemTime>,
    /// When the observed lease (ours or not) expires in our eyes, on the wall clock.
    pub expires_wall: Option<SystemTime>,
    pub renewals: u64,
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

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.lock())
    }
}

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
    Watched {
        generation: u64,
        event: Box<WatchEvent<Lease>>,
    },
    WatchEnded {
        generation: u64,
        error: Option<kube::Error>,
    },
}

/// How a campaign ended.
#[derive(Debug)]
pub enum Campaign {
    Elected,
    Shutdown,
    /// A failure that retrying will not fix (RBAC forbids us to read or write the Lease).
    Fatal(kube::Error),
}

/// How a term as leader ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Term {
    Shutdown,
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

/// Drives [`Core`] against the API server on the elector thread.
pub struct Elector {
    client: Arc<Client>,
    core: Core,
    snapshot: Arc<Snapshot>,
    inbox: Receiver<Inbox>,
    inbox_tx: Sender<Inbox>,
    jitter: Jitter,
    watch: WatchState,
    /// Send time of the last successful acquire/renew while leading.
    renewed_at: Option<Instant>,
    /// An [`Inbox::Stopping`] arrived and the hook has not run yet.
    stopping: bool,
    /// Never release: [`Inbox::Abandon`] arrived, or another process renews under our name.
    keep_lease: bool,
    /// renewTime values we wrote during this term (the last confirmed one and any sent since,
    /// whose answers may have been lost): a stored renewTime outside this list was written by
    /// somebody else under our identity.
    written: Vec<String>,
}

#[derive(Debug, Default)]
struct WatchState {
    /// RBAC (or the server) does not let us watch: poll instead.
    polling: bool,
    generation: u64,
    running: bool,
    /// Do not start a new watch before this (back-off after failures).
    not_before: Option<Instant>,
    /// The resourceVersion to resume from.
    resume_from: Option<String>,
    started_at: Option<Instant>,
    /// When the running watch last told us anything (an event or a bookmark), or started.
    last_heard: Option<Instant>,
    /// When a watch last brought a changed Lease, and the gap before that one: the holder's
    /// renewal rhythm as we see it.
    last_change: Option<Instant>,
    change_gap: Option<Duration>,
}

impl Elector {
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
            stopping: false,
            keep_lease: false,
            written: Vec::new(),
        }
    }

    fn settings(&self) -> &Settings {
        self.core.settings()
    }

    fn timings(&self) -> Timings {
        self.core.settings().timings
    }

    fn lease_path(&self) -> String {
        kube::lease_path(&self.settings().namespace, &self.settings().lock_name)
    }

    /// Deadline for one request while campaigning or releasing.
    fn request_deadline(&self) -> Instant {
        Instant::now() + (self.timings().renew_deadline / 2).max(Duration::from_millis(500))
    }

    /// `retryPeriod × (1 + U[0, 1.2))`, client-go's jittered wait.
    fn jittered_retry(&mut self) -> Duration {
        let r = self.timings().retry_period;
        r + r.mul_f64(1.2 * self.jitter.unit())
    }

    /// Folds a fresh view of the Lease into the core and the snapshot, logging a new leader.
    fn observe(&mut self, lease: Option<Lease>, at: Instant) {
        if let Some(rv) = lease.as_ref().and_then(|l| l.resource_version()) {
            self.watch.resume_from = Some(rv.to_string());
        }
        if let Some(holder) = self.core.observe(lease, at) {
            match &holder {
                Some(h) if *h == self.settings().identity => {}
                Some(h) => info!("new leader: {h}"),
                None => info!("the lease {} is free", self.settings().lock_name),
            }
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

    fn read(&mut self) -> Result<(), kube::Error> {
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

    /// Back-off after a failed request: jittered retry period, or the server's Retry-After.
    fn backoff_for(&mut self, e: &kube::Error) -> Duration {
        let j = self.jittered_retry();
        e.retry_after().map_or(j, |ra| ra.max(j))
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
                    // A shutdown that arrived while we read must not be followed by a write.
                    if self.pause(Duration::ZERO) {
                        return Campaign::Shutdown;
                    }
                    let sent = Instant::now();
                    let creating = body.resource_version().is_none();
                    let result = if creating {
                        self.client.create::<_, Lease>(
                            &kube::leases_path(&self.settings().namespace),
                            &body,
                            self.request_deadline(),
                        )
                    } else {
                        self.client.replace::<_, Lease>(
                            &self.lease_path(),
                            &body,
                            self.request_deadline(),
                        )
                    };
                    match result {
                        Ok(lease) => {
                            self.observe(Some(lease), sent);
                            self.became_leader(sent);
                            return Campaign::Elected;
                        }
                        Err(
                            kube::Error::Conflict(_)
                            | kube::Error::AlreadyExists(_)
                            | kube::Error::NotFound(_),
                        ) => {
                            debug!("lost the race for the lease; reading it again");
                            self.core.invalidate();
                        }
                        Err(e @ kube::Error::Forbidden(_)) => return Campaign::Fatal(e),
                        Err(e) => {
                            warn!("cannot acquire the lease: {e}");
                            self.core.invalidate();
                            let d = self.backoff_for(&e);
                            if self.pause(d) {
                                return Campaign::Shutdown;
                            }
                        }
                    }
                }
                Step::WaitUntil(expiry) => {
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
                            return Campaign::Shutdown;
                        }
                        Ok(Inbox::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                            return Campaign::Shutdown
                        }
                        Ok(msg) => self.handle_watch_message(msg),
                        Err(RecvTimeoutError::Timeout) => {
                            if wake < expiry && watching {
                                self.check_silent_watch();
                            } else if wake < expiry {
                                // Polling: time for a fresh look.
                                self.core.invalidate();
                            }
                            // Otherwise the lease expired in our eyes: the next step takes
                            // it with the body we cached (no GET first).
                        }
                    }
                }
            }
        }
    }

    /// Starts a watch on the Lease unless one runs. Returns false when we poll instead (RBAC
    /// does not allow watching, or the watch is backing off).
    fn ensure_watch(&mut self) -> bool {
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
        let generation = self.watch.generation;
        let client = Arc::clone(&self.client);
        let tx = self.inbox_tx.clone();
        let collection = kube::leases_path(&self.settings().namespace);
        let params = ListParams {
            field_selector: Some(format!("metadata.name={}", self.settings().lock_name)),
            label_selector: None,
        };
        let spawned = thread::Builder::new()
            .name("lease-watch".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(u64::from(WATCH_SECONDS) + 10);
                let error =
                    match client.watch::<Lease>(&collection, &params, &rv, WATCH_SECONDS, deadline)
                    {
                        Err(e) => Some(e),
                        Ok(stream) => {
                            let mut error = None;
                            for event in stream {
                                match event {
                                    Ok(event) => {
                                        if tx
                                            .send(Inbox::Watched {
                                                generation,
                                                event: Box::new(event),
                                            })
                                            .is_err()
                                        {
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
                let _ = tx.send(Inbox::WatchEnded { generation, error });
            });
        if let Err(e) = spawned {
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
    fn silent_watch_check_at(&self) -> Instant {
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
    fn check_silent_watch(&mut self) {
        if let Err(e) = self.read_checking_watch() {
            debug!("cannot check on the quiet lease watch: {e}");
        }
        self.watch.last_heard = Some(Instant::now());
    }

    /// Reads the Lease. If a watch runs but never brought what the read shows, the watch is
    /// dead: start a new one (the old thread ends at its own deadline; its events are
    /// ignored). Without this, a dead watch lets us mistake a live lease for an expired one,
    /// fail to take it, and stay blind until the watch times out.
    fn read_checking_watch(&mut self) -> Result<(), kube::Error> {
        let seen = self
            .core
            .lease()
            .and_then(Lease::resource_version)
            .map(String::from);
        self.read()?;
        let now = self.core.lease().and_then(Lease::resource_version);
        if self.watch.running && now != seen.as_deref() {
            info!("the lease changed but its watch said nothing: watching it anew");
            self.watch.generation += 1;
            self.watch.running = false;
        }
        Ok(())
    }

    fn handle_watch_message(&mut self, msg: Inbox) {
        match msg {
            // Control messages are taken by `pause` and `campaign` before they get here.
            Inbox::Shutdown | Inbox::Abandon | Inbox::Stopping => {}
            Inbox::Watched { generation, event } => {
                if generation != self.watch.generation {
                    return;
                }
                let at = Instant::now();
                self.watch.last_heard = Some(at);
                match *event {
                    WatchEvent::Added(l) | WatchEvent::Modified(l) => {
                        if let Some(before) = self.watch.last_change.replace(at) {
                            self.watch.change_gap = Some(at.saturating_duration_since(before));
                        }
                        self.observe(Some(l), at)
                    }
                    WatchEvent::Deleted(l) => {
                        if let Some(rv) = l.resource_version() {
                            self.watch.resume_from = Some(rv.to_string());
                        }
                        self.observe(None, at)
                    }
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

    fn became_leader(&mut self, sent: Instant) {
        self.renewed_at = Some(sent);
        self.written = self
            .core
            .lease()
            .and_then(|l| l.spec.renew_time.clone())
            .into_iter()
            .collect();
        // A running watch is of no use to the leader; its events are ignored from now on and
        // it ends by itself when the server closes it.
        self.watch.generation += 1;
        self.watch.running = false;
        info!("became leader");
        let wall = SystemTime::now() - sent.elapsed();
        self.snapshot.update(|s| {
            s.leading = true;
            s.last_renew = Some(sent);
            s.last_renew_wall = Some(wall);
            s.transitions += 1;
        });
    }

    /// When we must have stepped down: last successful renewal (send time) + renew deadline.
    pub fn step_down_at(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + self.timings().renew_deadline)
    }

    /// Renew until asked to shut down or leadership is lost. Renewals are one conditional PUT
    /// of the cached lease every retry period; a Conflict costs one GET (the slow path).
    pub fn lead(&mut self, hooks: &mut dyn LeaderHooks) -> Term {
        let retry = self.timings().retry_period;
        let per_request = retry.max(self.timings().renew_deadline / 3);
        let mut next = self.renewed_at.map_or_else(Instant::now, |t| t + retry);
        let mut last_error = String::from("no renewal attempted");
        loop {
            if self.pause(next.saturating_duration_since(Instant::now())) {
                return Term::Shutdown;
            }
            let Some(step_down_at) = self.step_down_at() else {
                return self.lost("not leading".into());
            };
            let now = Instant::now();
            if std::mem::take(&mut self.stopping) {
                hooks.stopping((now + per_request).min(step_down_at));
                continue;
            }
            if now >= step_down_at {
                return self.lost(format!(
                    "no successful renewal for {} (last error: {last_error})",
                    crate::config::show(self.timings().renew_deadline)
                ));
            }
            let deadline = step_down_at.min(now + per_request);
            let attempt = if self.core.lease().is_none() {
                self.recreate(deadline)
            } else {
                self.renew_once(deadline)
            };
            match attempt {
                Ok(Renewed::At(sent)) => {
                    next = sent + retry;
                    hooks.renewed(next.min(step_down_at));
                }
                Ok(Renewed::Again) => next = Instant::now(),
                Err(Attempt::Lost(reason)) => return self.lost(reason),
                Err(Attempt::Failed(e)) => {
                    warn!("renewal failed: {e}");
                    last_error = e.to_string();
                    self.snapshot.update(|s| s.renew_failures += 1);
                    next = (Instant::now() + retry).min(step_down_at);
                }
            }
        }
    }

    /// One renewal: PUT the cached lease with a new renewTime, conditional on its
    /// resourceVersion.
    fn renew_once(&mut self, deadline: Instant) -> Result<Renewed, Attempt> {
        let Some(body) = self.core.renewal(SystemTime::now()) else {
            return Err(Attempt::Lost(format!(
                "the lease is held by {}",
                self.holder_text()
            )));
        };
        let sent = Instant::now();
        // A request whose answer is lost may still have been stored: remember what we sent.
        self.written.extend(body.spec.renew_time.clone());
        match self
            .client
            .replace::<_, Lease>(&self.lease_path(), &body, deadline)
        {
            Ok(lease) => {
                self.confirmed(lease, sent);
                Ok(Renewed::At(sent))
            }
            Err(kube::Error::Conflict(_)) => {
                self.snapshot.update(|s| s.slowpath += 1);
                debug!("renewal conflicted; reading the lease");
                self.read_within(deadline).map_err(Attempt::Failed)?;
                let stored = self.core.lease().and_then(|l| l.spec.renew_time.as_ref());
                match self.core.lease() {
                    // Deleted (a PUT carrying the old uid is a Conflict upstream): the next
                    // attempt re-creates it.
                    None => Ok(Renewed::Again),
                    Some(_) if self.core.we_hold() => {
                        if stored.is_some_and(|t| self.written.contains(t)) {
                            // Only metadata changed (labels, annotations): retry at once.
                            return Ok(Renewed::Again);
                        }
                        // Someone else renews under our name: two replicas share an identity
                        // and each would run CMD. Step down loudly, and leave the lease to
                        // the other one (releasing it would free it under a running CMD).
                        self.keep_lease = true;
                        Err(Attempt::Lost(format!(
                            "another process renews the lease as {:?}; every replica needs a unique {}",
                            self.settings().identity,
                            crate::config::IDENTITY
                        )))
                    }
                    Some(_) => Err(Attempt::Lost(format!(
                        "the lease was taken by {}",
                        self.holder_text()
                    ))),
                }
            }
            Err(kube::Error::NotFound(_)) => {
                self.observe(None, Instant::now());
                Ok(Renewed::Again)
            }
            Err(e) => Err(Attempt::Failed(e)),
        }
    }

    /// The Lease was deleted while we led: create it again as ours. If another replica was
    /// faster, it is theirs and we have lost.
    fn recreate(&mut self, deadline: Instant) -> Result<Renewed, Attempt> {
        warn!("the lease was deleted while we held it; creating it again");
        let sent = Instant::now();
        let Step::Create(body) = self.core.candidate_step(sent, SystemTime::now()) else {
            return Err(Attempt::Lost("the lease vanished".into()));
        };
        let collection = kube::leases_path(&self.settings().namespace);
        match self.client.create::<_, Lease>(&collection, &body, deadline) {
            Ok(lease) => {
                self.confirmed(lease, sent);
                Ok(Renewed::At(sent))
            }
            Err(kube::Error::AlreadyExists(_)) => Err(Attempt::Lost(
                "the lease was deleted and re-created by another replica".into(),
            )),
            Err(e) => Err(Attempt::Failed(e)),
        }
    }

    /// A write of ours was stored: it is the lease now, and it counts as a renewal.
    fn confirmed(&mut self, lease: Lease, sent: Instant) {
        self.written.clear();
        self.written.extend(lease.spec.renew_time.clone());
        self.observe(Some(lease), sent);
        self.renewed(sent);
    }

    /// GETs the Lease and folds it in, dated by the *answer*: the record may have been written
    /// while the request was under way, and dating it by the question would make a renewal
    /// look older than it is (and the lease expire early in our eyes).
    fn read_within(&mut self, deadline: Instant) -> Result<(), kube::Error> {
        let result = self.client.get::<Lease>(&self.lease_path(), deadline);
        let at = Instant::now();
        match result {
            Ok(l) => self.observe(Some(l), at),
            Err(kube::Error::NotFound(_)) => self.observe(None, at),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn holder_text(&self) -> String {
        self.core
            .holder()
            .map_or_else(|| "nobody".to_string(), |h| format!("{h:?}"))
    }

    fn renewed(&mut self, sent: Instant) {
        self.renewed_at = Some(sent);
        let wall = SystemTime::now() - sent.elapsed();
        self.snapshot.update(|s| {
            s.last_renew = Some(sent);
            s.last_renew_wall = Some(wall);
            s.renewals += 1;
        });
    }

    fn lost(&mut self, reason: String) -> Term {
        warn!("lost leadership: {reason}");
        self.renewed_at = None;
        self.snapshot.update(|s| s.leading = false);
        Term::Lost(reason)
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

    /// Gives the lease up if it is still ours: a conditional PUT of the cached lease (which
    /// only succeeds if nobody wrote it since our last renewal), and on Conflict one fresh read
    /// and one more try if it still names us. Bounded by `deadline`.
    pub fn release(&mut self, deadline: Instant) {
        self.snapshot.update(|s| s.leading = false);
        self.renewed_at = None;
        if self.keep_lease {
            warn!("not releasing the lease: others take over when it expires");
            return;
        }
        for attempt in 0..2 {
            let Some(body) = self.core.release(SystemTime::now()) else {
                debug!("not releasing: the lease is held by {}", self.holder_text());
                return;
            };
            let stored = self.core.lease().and_then(|l| l.spec.renew_time.as_ref());
            if attempt > 0 && !stored.is_some_and(|t| self.written.contains(t)) {
                // It names us, but we did not write it: a twin with our identity holds it.
                warn!("not releasing: the lease was renewed under our name by another process");
                return;
            }
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

/// A renewal attempt that went through.
enum Renewed {
    /// Stored; the request was sent at this instant.
    At(Instant),
    /// Nothing stored, but try again at once (metadata-only conflict, Lease deleted).
    Again,
}

/// A renewal attempt that did not.
enum Attempt {
    /// Leadership is gone.
    Lost(String),
    /// Try again at the next retry, until the step-down time.
    Failed(kube::Error),
}

/// A small xorshift generator for retry jitter (no cryptographic use).
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            namespace: "ns".into(),
            lock_name: "lock".into(),
            identity: "me".into(),
            timings: Timings {
                lease_duration: Duration::from_secs(4),
                renew_deadline: Duration::from_secs(3),
                retry_period: Duration::from_secs(1),
            },
        }
    }

    fn lease(holder: &str, renew: &str, rv: &str) -> Lease {
        let mut l = Lease::new(
            "ns",
            "lock",
            LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(10),
                acquire_time: Some("2026-11-24T08:00:00.000000Z".into()),
                renew_time: Some(renew.into()),
                lease_transitions: Some(4),
                ..LeaseSpec::default()
            },
        );
        l.metadata.resource_version = Some(rv.into());
        l.metadata
            .rest
            .insert("labels".into(), serde_json::json!({"keep": "me"}));
        l
    }

    fn wall() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_594_530)
    }

    #[test]
    fn first_step_is_a_read_then_create_when_missing() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        assert_eq!(c.candidate_step(t0, wall()), Step::Read);
        c.observe(None, t0);
        let Step::Create(body) = c.candidate_step(t0, wall()) else {
            panic!("expected create")
        };
        assert_eq!(body.spec.holder(), Some("me"));
        assert_eq!(body.spec.lease_transitions, Some(0));
        assert_eq!(body.spec.lease_duration_seconds, Some(4));
        assert_eq!(
            body.spec.renew_time.as_deref(),
            Some("2026-11-25T08:15:30.000000Z")
        );
        assert_eq!(body.resource_version(), None);
    }

    #[test]
    fn foreign_lease_expires_by_our_clock_from_the_last_change() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        // A renewTime far in the past does not matter: we judge by our own clock.
        c.observe(Some(lease("other", "2000-01-01T00:00:00.000000Z", "1")), t0);
        assert_eq!(
            c.candidate_step(t0, wall()),
            Step::WaitUntil(t0 + Duration::from_secs(10))
        );
        // The holder renews at t0+5: the clock restarts.
        let t5 = t0 + Duration::from_secs(5);
        c.observe(Some(lease("other", "2000-01-01T00:00:05.000000Z", "2")), t5);
        assert_eq!(
            c.candidate_step(t5, wall()),
            Step::WaitUntil(t5 + Duration::from_secs(10))
        );
        // A metadata-only change (new rv, same record) does not restart it.
        let t6 = t0 + Duration::from_secs(6);
        c.observe(Some(lease("other", "2000-01-01T00:00:05.000000Z", "3")), t6);
        assert_eq!(
            c.candidate_step(t6, wall()),
            Step::WaitUntil(t5 + Duration::from_secs(10))
        );
        // Just before expiry we wait, at expiry we take it, bumping transitions.
        let almost = t5 + Duration::from_millis(9_999);
        assert!(matches!(
            c.candidate_step(almost, wall()),
            Step::WaitUntil(_)
        ));
        let Step::Take(body) = c.candidate_step(t5 + Duration::from_secs(10), wall()) else {
            panic!("expected take")
        };
        assert_eq!(body.spec.holder(), Some("me"));
        assert_eq!(body.spec.lease_transitions, Some(5));
        assert_eq!(
            body.spec.acquire_time.as_deref(),
            Some("2026-11-25T08:15:30.000000Z")
        );
        assert_eq!(
            body.resource_version(),
            Some("3"),
            "the write is conditional"
        );
        assert_eq!(
            body.metadata.rest.get("labels"),
            Some(&serde_json::json!({"keep": "me"}))
        );
    }

    #[test]
    fn free_lease_is_taken_at_once_and_own_lease_keeps_its_history() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        c.observe(Some(lease("", "2026-11-24T08:00:00.000000Z", "7")), t0);
        let Step::Take(body) = c.candidate_step(t0, wall()) else {
            panic!("expected take")
        };
        assert_eq!(body.spec.lease_transitions, Some(5));

        let mut c = Core::new(settings());
        c.observe(Some(lease("me", "2026-11-24T08:00:00.000000Z", "8")), t0);
        let Step::Take(body) = c.candidate_step(t0, wall()) else {
            panic!("expected take")
        };
        assert_eq!(
            body.spec.lease_transitions,
            Some(4),
            "same identity: no transition"
        );
        assert_eq!(
            body.spec.acquire_time.as_deref(),
            Some("2026-11-24T08:00:00.000000Z")
        );
        assert_eq!(
            body.spec.renew_time.as_deref(),
            Some("2026-11-25T08:15:30.000000Z")
        );
    }

    #[test]
    fn missing_duration_counts_as_ours() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        let mut l = lease("other", "2026-11-24T08:00:00.000000Z", "1");
        l.spec.lease_duration_seconds = None;
        c.observe(Some(l), t0);
        assert_eq!(c.expires_at(), Some(t0 + Duration::from_secs(4)));
    }

    #[test]
    fn renewal_and_release_only_for_our_lease() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
        assert!(c.renewal(wall()).is_none());
        assert!(c.release(wall()).is_none());
        c.observe(Some(lease("me", "2026-11-24T08:00:00.000000Z", "2")), t0);
        let r = c.renewal(wall()).expect("ours");
        assert_eq!(
            r.spec.acquire_time.as_deref(),
            Some("2026-11-24T08:00:00.000000Z")
        );
        assert_eq!(r.resource_version(), Some("2"));
        let rel = c.release(wall()).expect("ours");
        assert_eq!(rel.spec.holder_identity.as_deref(), Some(""));
        assert_eq!(rel.spec.lease_duration_seconds, Some(1));
        assert_eq!(rel.spec.lease_transitions, Some(4));
        assert_eq!(rel.spec.acquire_time, rel.spec.renew_time);
    }

    #[test]
    fn observe_reports_holder_changes_once() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        assert_eq!(
            c.observe(Some(lease("a", "2026-11-24T08:00:00.000000Z", "1")), t0),
            Some(Some("a".into()))
        );
        assert_eq!(
            c.observe(Some(lease("a", "2026-11-24T08:00:01.000000Z", "2")), t0),
            None
        );
        assert_eq!(c.observe(None, t0), Some(None));
    }

    #[test]
    fn a_lease_deleted_under_a_live_holder_is_not_recreated_before_it_would_expire() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
        let t1 = t0 + Duration::from_secs(2);
        c.observe(None, t1);
        assert_eq!(
            c.candidate_step(t1, wall()),
            Step::WaitUntil(t1 + Duration::from_secs(10))
        );
        // Still gone on a later read: the wait does not restart.
        c.invalidate();
        assert_eq!(c.candidate_step(t1, wall()), Step::Read);
        c.observe(None, t1 + Duration::from_secs(3));
        assert_eq!(
            c.candidate_step(t1, wall()),
            Step::WaitUntil(t1 + Duration::from_secs(10))
        );
        assert!(matches!(
            c.candidate_step(t1 + Duration::from_secs(10), wall()),
            Step::Create(_)
        ));
        // Our own vanished lease may be re-created at once; a never-seen one too.
        let mut c = Core::new(settings());
        c.observe(Some(lease("me", "2026-11-24T08:00:00.000000Z", "1")), t0);
        c.observe(None, t1);
        assert!(matches!(c.candidate_step(t1, wall()), Step::Create(_)));
        let mut c = Core::new(settings());
        c.observe(None, t0);
        assert!(matches!(c.candidate_step(t0, wall()), Step::Create(_)));
    }

    #[test]
    fn a_fresh_read_of_an_unchanged_record_keeps_the_expiry_clock() {
        let mut c = Core::new(settings());
        let t0 = Instant::now();
        c.observe(Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")), t0);
        c.invalidate();
        assert_eq!(c.candidate_step(t0, wall()), Step::Read);
        c.observe(
            Some(lease("other", "2026-11-24T08:00:00.000000Z", "1")),
            t0 + Duration::from_secs(5),
        );
        assert_eq!(c.expires_at(), Some(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::seeded();
        for _ in 0..10_000 {
            let u = j.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
