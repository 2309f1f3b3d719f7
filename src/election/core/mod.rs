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

    /// The record's own duration; a missing or non-positive one counts as our configured
    /// duration (the conservative choice: never take a lease earlier than we would expect).
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
        let own = lease("me", "2026-11-24T08:00:00.000000Z", "8");
        c.stored(&own);
        c.observe(Some(own), t0);
        let Step::Take(body) = c.candidate_step(t0, wall()) else {
            panic!("expected take")
        };
        assert_eq!(
            body.spec.lease_transitions,
            Some(4),
            "our own record: no transition"
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
        let own = lease("me", "2026-11-24T08:00:00.000000Z", "2");
        c.stored(&own);
        c.observe(Some(own), t0);
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
            HolderChange::Taken("a".into())
        );
        assert_eq!(
            c.observe(Some(lease("a", "2026-11-24T08:00:01.000000Z", "2")), t0),
            HolderChange::Unchanged
        );
        assert_eq!(c.observe(None, t0), HolderChange::Freed);
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
        let own = lease("me", "2026-11-24T08:00:00.000000Z", "1");
        c.stored(&own);
        c.observe(Some(own), t0);
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

    /// What a candidate does with the record of a table case.
    #[derive(Debug, PartialEq)]
    enum Expect {
        /// Wait until this many seconds after the record was first seen.
        WaitUntil(u64),
        /// Take it as a new term: transitions bumped, acquireTime now.
        TakeAsNewTerm,
        /// Take it as the same term: transitions and acquireTime kept.
        TakeAsSameTerm,
        /// Create the Lease.
        Create,
    }

    /// One case of the identity table: a record (10 s duration, 4 transitions) naming
    /// `holder`, whether this process wrote it, whether it then vanished, and what a
    /// candidate does `at` seconds after first seeing it.
    struct Case {
        name: &'static str,
        holder: &'static str,
        we_wrote: bool,
        vanished: bool,
        at: u64,
        expect: Expect,
    }

    const IDENTITY_CASES: &[Case] = &[
        Case {
            name: "a lease naming us that we did not write is not taken while fresh",
            holder: "me",
            we_wrote: false,
            vanished: false,
            at: 0,
            expect: Expect::WaitUntil(10),
        },
        Case {
            name: "a lease naming us that we did not write is still not taken just before expiry",
            holder: "me",
            we_wrote: false,
            vanished: false,
            at: 9,
            expect: Expect::WaitUntil(10),
        },
        Case {
            name: "a lease naming us that we did not write is taken once it expires by our clock, as a new term",
            holder: "me",
            we_wrote: false,
            vanished: false,
            at: 10,
            expect: Expect::TakeAsNewTerm,
        },
        Case {
            name: "a released lease (empty holder) is taken at once",
            holder: "",
            we_wrote: false,
            vanished: false,
            at: 0,
            expect: Expect::TakeAsNewTerm,
        },
        Case {
            name: "a record we wrote (a take whose answer was lost) is ours at once",
            holder: "me",
            we_wrote: true,
            vanished: false,
            at: 0,
            expect: Expect::TakeAsSameTerm,
        },
        Case {
            name: "a foreign lease is not taken while fresh",
            holder: "other",
            we_wrote: false,
            vanished: false,
            at: 0,
            expect: Expect::WaitUntil(10),
        },
        Case {
            name: "a foreign lease is taken once it expires, as a new term",
            holder: "other",
            we_wrote: false,
            vanished: false,
            at: 10,
            expect: Expect::TakeAsNewTerm,
        },
        Case {
            name: "a lease naming us that we did not write and that vanished is not re-created while it would live",
            holder: "me",
            we_wrote: false,
            vanished: true,
            at: 0,
            expect: Expect::WaitUntil(10),
        },
        Case {
            name: "our own lease that vanished is re-created at once",
            holder: "me",
            we_wrote: true,
            vanished: true,
            at: 0,
            expect: Expect::Create,
        },
    ];

    #[test]
    fn a_lease_naming_us_is_ours_only_if_this_process_wrote_it() {
        let mut failed = Vec::new();
        for case in IDENTITY_CASES {
            let mut c = Core::new(settings());
            let t0 = Instant::now();
            let record = lease(case.holder, "2026-11-24T08:00:00.000000Z", "7");
            if case.we_wrote {
                c.will_write(&record);
            }
            c.observe(Some(record), t0);
            if case.vanished {
                c.observe(None, t0);
            }
            let got = match c.candidate_step(t0 + Duration::from_secs(case.at), wall()) {
                Step::WaitUntil(t) => Ok(Expect::WaitUntil(t.duration_since(t0).as_secs())),
                Step::Create(_) => Ok(Expect::Create),
                Step::Take(body) if body.spec.holder() != Some("me") => {
                    Err(format!("takes for {:?}", body.spec.holder()))
                }
                Step::Take(body) if body.resource_version() != Some("7") => {
                    Err("an unconditional write".to_string())
                }
                Step::Take(body) => {
                    match (
                        body.spec.lease_transitions,
                        body.spec.acquire_time.as_deref(),
                    ) {
                        (Some(5), Some("2026-11-25T08:15:30.000000Z")) => Ok(Expect::TakeAsNewTerm),
                        (Some(4), Some("2026-11-24T08:00:00.000000Z")) => {
                            Ok(Expect::TakeAsSameTerm)
                        }
                        other => Err(format!("takes with the history {other:?}")),
                    }
                }
                Step::Read => Err("reads again".to_string()),
            };
            if got.as_ref() != Ok(&case.expect) {
                failed.push(format!(
                    "{}: expected {:?}, got {got:?}",
                    case.name, case.expect
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn only_a_record_this_process_wrote_is_renewed_or_released() {
        let t0 = Instant::now();
        let twin = lease("me", "2026-11-24T08:00:00.000000Z", "1");
        let mut c = Core::new(settings());
        c.observe(Some(twin.clone()), t0);
        assert!(c.names_us());
        assert!(!c.we_hold(), "a twin's record is not ours");
        assert!(
            c.renewal(wall()).is_none(),
            "a twin's record is not renewed"
        );
        assert!(
            c.release(wall()).is_none(),
            "a twin's record is not released"
        );

        // Our renewals are recognized: the stored one, and any sent since whose answer was
        // lost; an earlier send is forgotten once a later write is stored.
        let mut c = Core::new(settings());
        c.stored(&twin);
        c.observe(Some(twin.clone()), t0);
        assert!(c.we_hold());
        let sent = c.renewal(wall()).expect("ours");
        c.will_write(&sent);
        let mut answer_lost = sent.clone();
        answer_lost.metadata.resource_version = Some("2".into());
        c.observe(Some(answer_lost.clone()), t0);
        assert!(c.we_hold(), "a renewal whose answer was lost is still ours");
        assert!(c.release(wall()).is_some());
        let mut later = answer_lost.clone();
        later.spec.renew_time = Some("2026-11-25T08:15:31.000000Z".into());
        later.metadata.resource_version = Some("3".into());
        c.will_write(&later);
        c.stored(&later);
        c.observe(Some(answer_lost), t0);
        assert!(
            !c.we_hold(),
            "an earlier send is forgotten once a later one is stored"
        );

        // Only the last few sends are remembered: forgetting errs on the safe side.
        let mut c = Core::new(settings());
        let first = lease("me", "2026-11-24T08:00:00.000000Z", "1");
        c.will_write(&first);
        for i in 0..WRITTEN_CAP {
            c.will_write(&lease(
                "me",
                &format!("2026-11-24T08:01:{i:02}.000000Z"),
                "1",
            ));
        }
        c.observe(Some(first), t0);
        assert!(!c.we_hold());
    }
}
