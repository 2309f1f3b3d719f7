//! The pure election state machine: [`Core`] is handed every observation of the Lease together
//! with the monotonic time it was made and answers "what now?" ([`Step`]), and builds the
//! bodies of renewals and releases. No I/O and no clocks of its own, so unit tests drive it
//! with made-up instants and never sleep.
//!
//! It also remembers the renewTimes this process wrote ([`Core::will_write`],
//! [`Core::stored`]): a Lease naming our identity counts as ours only if its renewTime is one
//! of them. One naming us that this process did not write (a twin with our identity, a
//! replacement pod with the same name, our own previous run) is treated like anyone else's:
//! taken only once released or expired. Stricter than client-go, on purpose.

use std::time::{Duration, Instant, SystemTime};

use crate::config::Timings;
use crate::lease::{Lease, LeaseSpec};
use crate::timefmt;

/// Who we are and what we compete for.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lock_name: String,
    /// The holder identity we write into the Lease.
    pub identity: String,
    /// Lease duration, renew deadline and retry period.
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
    /// The vanished record was one this process wrote: our own lease, which we may create
    /// again at once.
    pub vanished_ours: bool,
}

/// What a candidate should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// We have not read the Lease yet (or must read it again).
    Read,
    /// The Lease does not exist: create it with us as holder.
    Create(Lease),
    /// Write this body (conditional on the resourceVersion it carries): the lease is free,
    /// expired, or already ours (its stored record is one this process wrote).
    Take(Lease),
    /// Someone else holds a live lease (maybe under our identity, if this process did not
    /// write it); it expires at this instant unless it changes.
    WaitUntil(Instant),
}

/// How the holder changed with a fresh view of the Lease ([`Core::observe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderChange {
    /// The same holder as in the previous view (or still nobody).
    Unchanged,
    /// Nobody holds the lease now: it became free or vanished (or, on the first view, nobody
    /// held it).
    Freed,
    /// The lease names this holder now (or, on the first view, named it).
    Taken(String),
}

/// How many renewTimes [`Core`] remembers as written by us. Forgetting an old one is safe: a
/// record we wrote but no longer recognize is only waited out like a foreign one.
const WRITTEN_CAP: usize = 16;

/// How long a candidate waits after a failed request: the jittered retry period, or what the
/// server's `Retry-After` asks for if that is longer, but never more than one lease duration
/// (a holder's lease can expire within that; a 600 s `Retry-After` must not park us).
pub fn backoff(
    jittered: Duration,
    retry_after: Option<Duration>,
    lease_duration: Duration,
) -> Duration {
    match retry_after {
        None => jittered,
        Some(asked) => asked.min(lease_duration).max(jittered),
    }
}

/// The pure election state machine. Time is always an argument.
#[derive(Debug, Clone)]
pub struct Core {
    settings: Settings,
    observed: Option<Observed>,
    /// What we saw may be out of date: read again before acting on it.
    stale: bool,
    /// renewTimes this process wrote: the last stored one and any sent since (whose answers
    /// may have been lost), oldest first, at most [`WRITTEN_CAP`]. A stored record naming us
    /// with a renewTime outside this list was written by somebody else under our identity.
    written: Vec<String>,
}

impl Core {
    /// A candidate that has not seen the Lease yet.
    pub fn new(settings: Settings) -> Core {
        Core {
            settings,
            observed: None,
            stale: false,
            written: Vec::new(),
        }
    }

    /// Who we are and what we compete for.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The Lease as we last saw it (`None`: not read yet).
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
    /// clock restarts only when the election record changed. Says whether (and to whom) the
    /// holder changed.
    pub fn observe(&mut self, lease: Option<Lease>, now: Instant) -> HolderChange {
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
        let (vanished_holder, vanished_ours) = match (&self.observed, &lease) {
            (_, Some(_)) | (None, None) => (None, false),
            (Some(old), None) => match &old.lease {
                Some(l) => (
                    l.spec
                        .holder()
                        .map(|h| (h.to_string(), self.record_duration(&l.spec))),
                    self.wrote(&l.spec),
                ),
                None => (old.vanished_holder.clone(), old.vanished_ours),
            },
        };
        self.stale = false;
        self.observed = Some(Observed {
            vanished_holder,
            vanished_ours,
            lease,
            record_since,
        });
        match (old_holder, new_holder) {
            (Some(old), new) if old == new => HolderChange::Unchanged,
            (_, Some(new)) => HolderChange::Taken(new),
            (_, None) => HolderChange::Freed,
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

    /// The held lease we last saw carries a `leaseDurationSeconds` that is not a positive
    /// int32 (read as ≤ 0, see [`LeaseSpec::lease_duration_seconds`]): that value, for a
    /// warning. Its holder is then waited for as long as our own lease duration.
    pub fn invalid_duration(&self) -> Option<i32> {
        let spec = &self.lease()?.spec;
        spec.holder()?;
        spec.lease_duration_seconds.filter(|s| *s <= 0)
    }

    /// The record's own duration; a missing or invalid one (≤ 0, or not an int32) counts as
    /// our configured duration: the conservative choice, never taking a lease earlier than we
    /// would expect. (client-go reads a missing one as 0 and, like any value ≤ 0, as expired
    /// at once; one outside the int32 range fails its read. The API server refuses to store
    /// a value ≤ 0.)
    fn record_duration(&self, spec: &LeaseSpec) -> Duration {
        match spec.lease_duration_seconds {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            _ => self.settings.timings.lease_duration,
        }
    }

    /// True if the lease we last saw names our identity as holder (whoever wrote it).
    pub fn names_us(&self) -> bool {
        self.holder() == Some(self.settings.identity.as_str())
    }

    /// True if the lease we last saw is ours: it names us and this process wrote its record.
    pub fn we_hold(&self) -> bool {
        self.names_us() && self.lease().is_some_and(|l| self.wrote(&l.spec))
    }

    /// True if `spec` names us and carries a renewTime this process wrote.
    fn wrote(&self, spec: &LeaseSpec) -> bool {
        spec.holder() == Some(self.settings.identity.as_str())
            && spec
                .renew_time
                .as_ref()
                .is_some_and(|t| self.written.contains(t))
    }

    /// We are about to send `body` (a take, create or renewal): remember its renewTime as
    /// ours, since the write may be stored even if its answer is lost.
    pub fn will_write(&mut self, body: &Lease) {
        if let Some(t) = &body.spec.renew_time {
            if self.written.len() >= WRITTEN_CAP {
                self.written.remove(0);
            }
            self.written.push(t.clone());
        }
    }

    /// A write of ours was stored and came back as `lease`: any other send still unanswered
    /// was conditional on an older resourceVersion and can no longer be stored, so only this
    /// renewTime is ours from now on. (Fold `lease` in with [`Core::observe`].)
    pub fn stored(&mut self, lease: &Lease) {
        self.written.clear();
        self.written.extend(lease.spec.renew_time.clone());
    }

    /// What a candidate does at `now` (`wall` is written into the record).
    pub fn candidate_step(&self, now: Instant, wall: SystemTime) -> Step {
        let Some(observed) = self.observed.as_ref().filter(|_| !self.stale) else {
            return Step::Read;
        };
        let stamp = timefmt::micro_time(wall);
        let duration = self.lease_duration_seconds();
        let Some(current) = &observed.lease else {
            if let Some((_, d)) = &observed.vanished_holder {
                let until = observed.record_since + *d;
                if !observed.vanished_ours && now < until {
                    // Deleted under a live holder (anyone but this process): its CMD may
                    // still run until its lease would have expired.
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
        if self.wrote(&current.spec) {
            // Ours already (a take whose answer was lost): the same term goes on, so keep
            // acquireTime and leaseTransitions.
            body.spec.lease_duration_seconds = Some(duration);
            body.spec.renew_time = Some(stamp);
            return Step::Take(body);
        }
        match current.spec.holder() {
            // Anyone else, including a record naming our identity that this process did not
            // write (a twin, a replacement pod with our name, our own previous run): wait
            // until it expires by our clock. Taking it over is a new term (`acquired`), unlike
            // client-go, which takes a lease naming itself at once and keeps its history.
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
    /// last saw is not ours ([`Core::we_hold`]).
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
    /// transitions kept. `None` if the lease we last saw is not ours ([`Core::we_hold`]): a
    /// record naming us that this process did not write belongs to a twin, whose CMD may run.
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

#[cfg(test)]
mod tests;
