//! One renewal attempt of the leader ([`Elector::lead`] runs them on its schedule): a
//! conditional PUT of the cached lease with a new renewTime (a Conflict costs one GET, client-go's
//! slow path), or re-creating the Lease if it was deleted under us; and what came of it,
//! [`Renewal`] or [`RenewError`].

use std::time::{Instant, SystemTime};

use log::{debug, warn};

use super::core::Step;
use super::elector::Elector;
use super::messages::LostCause;
use crate::clock::BootInstant;
use crate::kube;
use crate::lease::Lease;

/// A renewal attempt that went through.
pub(super) enum Renewal {
    /// Stored; the request was sent at this instant.
    Stored(Instant),
    /// Nothing stored, but try again at once (metadata-only conflict, Lease deleted).
    RetryNow,
}

/// A renewal attempt that did not.
pub(super) enum RenewError {
    /// Leadership is gone, for this reason.
    Lost(LostCause),
    /// The request failed: try again at the next retry, until the step-down time.
    Request(kube::Error),
}

impl Elector {
    /// One renewal: PUT the cached lease with a new renewTime, conditional on its
    /// resourceVersion.
    pub(super) fn renew_once(&mut self, deadline: Instant) -> Result<Renewal, RenewError> {
        let Some(body) = self.core.renewal(SystemTime::now()) else {
            return Err(RenewError::Lost(LostCause::NotHeld {
                holder: self.core.holder().map(String::from),
            }));
        };
        let sent = Instant::now();
        self.sent_boot = Some(BootInstant::now());
        // A request whose answer is lost may still have been stored: remember what we sent.
        self.core.will_write(&body);
        match self
            .client
            .replace::<_, Lease>(&self.lease_path(), &body, deadline)
        {
            Ok(lease) => {
                self.confirmed(lease, sent);
                Ok(Renewal::Stored(sent))
            }
            Err(kube::Error::Conflict(_)) => {
                self.snapshot.update(|s| s.slowpath += 1);
                debug!("renewal conflicted; reading the lease");
                self.read_within(deadline).map_err(RenewError::Request)?;
                if self.core.lease().is_none() {
                    // Deleted (a PUT carrying the old uid is a Conflict upstream): the next
                    // attempt re-creates it.
                    return Ok(Renewal::RetryNow);
                }
                if self.core.we_hold() {
                    // Only metadata changed (labels, annotations): retry at once.
                    return Ok(Renewal::RetryNow);
                }
                match self.core.holder() {
                    Some(_) if self.core.names_us() => {
                        // Someone else renews under our name: two replicas share an identity
                        // and each would run CMD. Step down loudly, and leave the lease to
                        // the other one (releasing it would free it under a running CMD).
                        self.keep_lease = true;
                        Err(RenewError::Lost(LostCause::TwinRenewing {
                            identity: self.settings().identity.clone(),
                        }))
                    }
                    Some(h) => Err(RenewError::Lost(LostCause::TakenOver { by: h.to_string() })),
                    None => Err(RenewError::Lost(LostCause::Freed)),
                }
            }
            Err(kube::Error::NotFound(_)) => {
                self.observe(None, Instant::now());
                Ok(Renewal::RetryNow)
            }
            Err(e) => Err(RenewError::Request(e)),
        }
    }

    /// The Lease was deleted while we led: create it again as ours. If another replica was
    /// faster, it is theirs and we have lost.
    pub(super) fn recreate(&mut self, deadline: Instant) -> Result<Renewal, RenewError> {
        warn!("the lease was deleted while we held it; creating it again");
        let sent = Instant::now();
        self.sent_boot = Some(BootInstant::now());
        let Step::Create(body) = self.core.candidate_step(sent, SystemTime::now()) else {
            return Err(RenewError::Lost(LostCause::Vanished));
        };
        self.core.will_write(&body);
        let collection = kube::leases_path(&self.settings().namespace);
        match self.client.create::<_, Lease>(&collection, &body, deadline) {
            Ok(lease) => {
                self.confirmed(lease, sent);
                Ok(Renewal::Stored(sent))
            }
            Err(kube::Error::AlreadyExists(_)) => Err(RenewError::Lost(LostCause::Recreated)),
            Err(e) => Err(RenewError::Request(e)),
        }
    }

    /// A write of ours was stored: it is the lease now, and it counts as a renewal.
    fn confirmed(&mut self, lease: Lease, sent: Instant) {
        self.core.stored(&lease);
        self.observe(Some(lease), sent);
        self.renewed(sent);
    }

    /// Counts a stored renewal sent at `sent`: the new step-down time, and the snapshot.
    fn renewed(&mut self, sent: Instant) {
        self.renewed_at = Some(sent);
        let wall = SystemTime::now() - sent.elapsed();
        self.snapshot.update(|s| {
            s.last_renew = Some(sent);
            s.last_renew_boot = self.sent_boot;
            s.last_renew_wall = Some(wall);
            s.renewals += 1;
        });
    }
}
