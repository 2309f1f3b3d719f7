//! The elector thread: campaign, route the Service, lead, release; and its reports to the
//! main thread.
//!
//! Glue between [`Elector`] (the Lease), [`Router`] (the Service) and the main thread's
//! [`Lifecycle`](super::lifecycle::Lifecycle), which it feeds [`Report`]s and nudges awake
//! with a [`Waker`].

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::lifecycle::Report;
use crate::config;
use crate::election::{Campaign, Elector, LeaderHooks, Term};
use crate::events::{Recorder, Transition};
use crate::kube;
use crate::service::Router;
use crate::supervisor::Waker;

/// The elector thread: campaign, route the Service, lead, then release.
pub(super) fn run(
    mut elector: Elector,
    mut router: Option<Router>,
    reports: Sender<Report>,
    waker: Waker,
    timings: config::Timings,
    events: Recorder,
) {
    // However this thread ends (even by a panic), wake the main thread so it notices.
    struct WakeOnExit(Waker);
    impl Drop for WakeOnExit {
        fn drop(&mut self) {
            self.0.wake();
        }
    }
    let _wake_on_exit = WakeOnExit(waker.clone());
    let report = |r: Report| {
        // The main thread only goes away by exiting the process.
        let _ = reports.send(r);
        waker.wake();
    };
    let release_deadline = || Instant::now() + timings.retry_period.max(Duration::from_secs(1));
    match elector.campaign() {
        Campaign::Elected => {}
        Campaign::Shutdown => return report(Report::Finished),
        Campaign::Fatal(e) => return report(Report::Fatal(fatal_message(&e))),
    }
    // Events go through a queue to their own thread: recording never waits.
    events.record(Transition::BecameLeader, elector.lease_uid());
    let mut hooks = Routing {
        router: router.as_mut(),
        pending: false,
    };
    if let Some(r) = hooks.router.as_deref_mut() {
        let deadline = elector
            .step_down_at()
            .unwrap_or_else(Instant::now)
            .min(Instant::now() + timings.retry_period.max(Duration::from_secs(1)));
        match r.point_here(deadline) {
            Ok(()) => info!("service now points at this pod"),
            Err(e @ kube::Error::Forbidden(_)) => {
                elector.release(release_deadline());
                events.record(Transition::StoppedLeading, elector.lease_uid());
                return report(Report::Fatal(format!("cannot route the service: {e}")));
            }
            Err(kube::Error::NamespaceNotFound { namespace, message }) => {
                // Before CMD starts: give the lease back and say which variable is wrong.
                elector.release(release_deadline());
                return report(Report::Fatal(missing_namespace(
                    config::SERVICE_NAMESPACE,
                    &namespace,
                    &message,
                )));
            }
            Err(e) => {
                warn!(
                    "cannot point the service at this pod yet ({e}); retrying after each renewal"
                );
                hooks.pending = true;
            }
        }
    }
    report(Report::Elected);
    let term = elector.lead(&mut hooks);
    let lost = matches!(term, Term::Lost(_));
    if let Term::Lost(lost) = term {
        // First tell the main thread to stop CMD, then stop advertising this pod.
        report(if lost.someone_else_holds() {
            Report::TakenOver(lost.to_string())
        } else {
            Report::Lost(lost.to_string())
        });
        events.record(Transition::Lost(lost.to_string()), elector.lease_uid());
    }
    if let Some(r) = hooks.router.as_deref_mut() {
        r.withdraw(release_deadline());
    }
    if lost {
        // Wait until CMD is gone, then give up what is left of the lease (if allowed).
        elector.wait_for_shutdown();
    }
    elector.release(release_deadline());
    events.record(Transition::StoppedLeading, elector.lease_uid());
    report(Report::Finished);
}

/// Service routing as the leader's side job.
struct Routing<'a> {
    router: Option<&'a mut Router>,
    /// The first attempt failed; try again after each renewal.
    pending: bool,
}

impl LeaderHooks for Routing<'_> {
    fn renewed(&mut self, deadline: Instant) {
        if !self.pending {
            return;
        }
        if let Some(r) = self.router.as_deref_mut() {
            match r.point_here(deadline) {
                Ok(()) => {
                    info!("service now points at this pod");
                    self.pending = false;
                }
                Err(e) => debug!("service routing still failing: {e}"),
            }
        }
    }

    fn stopping(&mut self, deadline: Instant) {
        if let Some(r) = self.router.as_deref_mut() {
            r.withdraw(deadline);
        }
        self.pending = false;
    }
}

fn fatal_message(e: &kube::Error) -> String {
    match e {
        kube::Error::NamespaceNotFound { namespace, message } => {
            missing_namespace(config::LOCK_NAMESPACE, namespace, message)
        }
        kube::Error::Forbidden(_) => format!(
            "cannot take part in the election: {e} (grant get, create and update on leases.coordination.k8s.io to this pod's service account; see examples/rbac.yaml)"
        ),
        _ => format!("cannot take part in the election: {e}"),
    }
}

/// The one line for a namespace that does not exist, naming the variable that chose it.
fn missing_namespace(variable: &str, namespace: &str, message: &str) -> String {
    format!(
        "{variable}={namespace:?}: the namespace {namespace:?} does not exist (the API server answered: {message}); create it or set {variable} to an existing namespace"
    )
}
