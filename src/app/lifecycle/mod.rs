//! The main thread's life in election mode, as a pure state machine.
//!
//! [`Lifecycle`] is handed everything the main thread sees (signals, CMD's exit, the elector's
//! [`Report`]s, the outcome of its own actions) together with the monotonic time and what the
//! shared snapshot says about our renewals ([`Facts`]), and answers with the [`Action`]s to
//! perform, in order. No I/O, no clocks, no channels: `app` waits for events, feeds them in
//! and performs the actions, so the unit tests drive it with made-up instants.
//!
//! Phases: campaigning → (starting CMD) → leading → (reaping CMD) → exiting, i.e. waiting for
//! the elector to release the lease or give up → done. An action whose outcome decides what
//! comes next ([`Action::Spawn`], [`Action::StepDown`], [`Action::KillLeftovers`]) is always the
//! last of its batch; its outcome comes back as the next input ([`Input::Spawned`],
//! [`Input::SpawnFailed`], [`Input::Reaped`]), fed before anything else.
//!
//! Safety net: besides the elector's own step-down, every wake-up ends with [`Input::Tick`],
//! which checks that the last successful renewal is younger than the renew deadline, so CMD is
//! stopped in time even if the elector thread were stuck or dead. The same check comes before
//! the start: CMD is started only while the last renewal is valid, and the start itself may
//! not hold up the main thread beyond that validity (a slow exec then counts as started).

use std::time::Duration;

use crate::clock::BootInstant;

use log::Level;

use super::exit;
use crate::config;

/// On the way out we wait for the elector to release the lease (or stop campaigning) for the
/// renew deadline (one request in flight) plus this (the release itself).
const RELEASE_BUDGET: Duration = Duration::from_secs(1);

/// The timings the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Leading is valid until the last successful renewal (send time) + this.
    pub renew_deadline: Duration,
    /// CMD must be reaped by the last successful renewal + this.
    pub lease_duration: Duration,
    /// How long CMD gets after the renew deadline before SIGKILL.
    pub grace_period: Duration,
    /// Kept between a SIGKILL and the moment the lease could expire for others: the kernel
    /// needs that long to finish a large process.
    pub kill_margin: Duration,
}

/// What the elector thread tells the main thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// We lead and the Service (if any) points at us: start CMD.
    Elected,
    /// Leadership is lost: stop CMD now.
    Lost(String),
    /// Leadership is lost and another process holds the Lease (a new leader, or a twin
    /// renewing under our identity), so its CMD may already run: SIGKILL ours at once.
    TakenOver(String),
    /// Give up: a failure retrying cannot fix. The lease is not held.
    Fatal(String),
    /// The elector is done (after Shutdown): the lease is released or was never ours.
    Finished,
}

/// What the shared snapshot says about our hold on the lease, read just before a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// When we sent the last successful acquire or renewal.
    pub last_renew: Option<BootInstant>,
    /// The elector still believes it leads.
    pub leading: bool,
}

/// A signal for us to act on, as the main thread received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The signal number.
    pub number: i32,
    /// Its name, for the logs.
    pub name: &'static str,
    /// A request to stop (SIGTERM and friends), not just something to pass on.
    pub stop: bool,
}

/// Everything the main thread feeds the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A signal arrived.
    Signal(Signal),
    /// CMD exited (and was reaped); `code` is its exit code or 128 + the killing signal.
    CmdExited {
        /// CMD's exit code.
        code: i32,
    },
    /// A report from the elector thread.
    Report(Report),
    /// The elector thread is gone without a word (it panicked).
    ElectorGone,
    /// The end of a wake-up, after every report was drained: check the deadlines.
    Tick,
    /// Outcome of [`Action::Spawn`]: CMD runs.
    Spawned,
    /// Outcome of [`Action::Spawn`]: CMD could not be started.
    SpawnFailed {
        /// The exit code for that failure (126, 127, ...).
        code: i32,
    },
    /// Outcome of [`Action::StepDown`] or [`Action::KillLeftovers`].
    Reaped {
        /// CMD and everything it left behind are confirmed gone.
        gone: bool,
    },
}

/// A message for the elector thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// CMD is being stopped while we lead: stop advertising this pod, keep renewing.
    Stopping,
    /// Stop campaigning or leading; release the lease if we hold it.
    Shutdown,
    /// Stop without releasing: something of CMD may still run, the lease must expire.
    Abandon,
}

/// What the main thread should do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Log this line at this level.
    Log(Level, String),
    /// Send this to the elector (it may have ended already: then there is nothing to tell).
    Tell(Message),
    /// Start CMD; answer with [`Input::Spawned`] or [`Input::SpawnFailed`]. The start may
    /// not hold up the main thread beyond `deadline` (until when our last renewal is valid):
    /// an exec still pending then counts as started, and the deadline checks take over.
    Spawn {
        /// Until when our last renewal is valid.
        deadline: BootInstant,
    },
    /// Forward this signal to CMD.
    Forward(i32),
    /// CMD has exited: SIGTERM what it left behind, SIGKILL it after a short grace but no
    /// later than `kill_at`, and reap it by `reap_by`; answer with [`Input::Reaped`].
    KillLeftovers {
        /// The latest SIGKILL: the kill margin before the lease could expire for others.
        kill_at: BootInstant,
        /// When everything must be reaped: nobody else can hold the lease before then.
        reap_by: BootInstant,
    },
    /// SIGTERM CMD, SIGKILL it at `kill_at`, reap it and its leftovers by `reap_by`; answer
    /// with [`Input::Reaped`].
    StepDown {
        /// When SIGTERM turns into SIGKILL.
        kill_at: BootInstant,
        /// When everything must be reaped: nobody else can hold the lease before then.
        reap_by: BootInstant,
    },
    /// Exit the process with this code.
    Exit(i32),
}

/// Where the main thread is in the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The elector campaigns; CMD has not been started.
    Campaigning,
    /// [`Action::Spawn`] is being performed.
    Starting,
    /// CMD runs while we lead.
    Leading,
    /// CMD is being stopped or its leftovers killed ([`Action::StepDown`],
    /// [`Action::KillLeftovers`]); then exit with `code`.
    Reaping {
        /// The exit code afterwards.
        code: i32,
        /// What follows once it is reaped.
        then: AfterReap,
    },
    /// Waiting for the elector to finish (release) before exiting with `code`.
    Exiting {
        /// The exit code.
        code: i32,
        /// Exit anyway at this instant.
        until: BootInstant,
    },
    /// [`Action::Exit`] was given.
    Done {
        /// The exit code.
        code: i32,
    },
}

/// What follows [`Phase::Reaping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterReap {
    /// Tell the elector to release the lease (or abandon it if CMD is not confirmed gone) and
    /// wait for it.
    Leave,
    /// Exit at once: the elector has ended or failed.
    Exit,
}

/// The main thread's state machine. Time and facts are always arguments.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    settings: Settings,
    phase: Phase,
}

impl Lifecycle {
    /// A machine at the start: campaigning.
    pub fn new(settings: Settings) -> Lifecycle {
        Lifecycle {
            settings,
            phase: Phase::Campaigning,
        }
    }

    /// When the main thread must wake up at the latest (`None`: only for an event).
    pub fn deadline(&self, facts: &Facts) -> Option<BootInstant> {
        match self.phase {
            Phase::Leading => self.renew_valid_until(facts),
            Phase::Exiting { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Feeds one input seen at `now`; returns what to do, in order.
    pub fn step(&mut self, input: Input, now: BootInstant, facts: &Facts) -> Vec<Action> {
        let mut actions = Vec::new();
        self.phase = self.next(input, now, facts, &mut actions);
        actions
    }

    fn next(&self, input: Input, now: BootInstant, facts: &Facts, out: &mut Vec<Action>) -> Phase {
        use Phase::{Campaigning, Exiting, Leading, Reaping, Starting};
        let phase = self.phase;
        match (phase, input) {
            (Campaigning, Input::Signal(sig)) if sig.stop => {
                out.push(log(
                    Level::Info,
                    format!(
                        "received {} before becoming leader: leaving the election",
                        sig.name
                    ),
                ));
                // CMD never ran: waiting out a request in flight (up to half the renew
                // deadline against an API server that does not answer) would only serve to
                // release a lease won in the same instant, which then simply expires. Give
                // the elector the time of a release, as client-go's cancelled context would.
                out.push(Action::Tell(Message::Shutdown));
                Phase::Exiting {
                    code: 128 + sig.number,
                    until: now + RELEASE_BUDGET,
                }
            }
            (Leading, Input::Signal(sig)) => {
                if sig.stop {
                    // Stop advertising a pod that is shutting down.
                    out.push(Action::Tell(Message::Stopping));
                }
                out.push(Action::Forward(sig.number));
                Leading
            }
            (Campaigning | Exiting { .. }, Input::Signal(sig)) => {
                let line = format!("ignoring {} (CMD is not running)", sig.name);
                out.push(log(Level::Debug, line));
                phase
            }

            (Leading, Input::CmdExited { code }) => {
                // Nothing CMD started may outlive our hold on the lease: the leftovers are
                // SIGKILLed at the latest the kill margin before it could expire for others,
                // and reaped before it could.
                let reap_by = self.reap_by(now, facts).max(now);
                let kill_at = reap_by
                    .checked_sub(self.settings.kill_margin)
                    .map_or(now, |t| t.max(now));
                out.push(Action::KillLeftovers { kill_at, reap_by });
                Reaping {
                    code,
                    then: AfterReap::Leave,
                }
            }

            (Campaigning, Input::Report(Report::Elected)) => {
                // CMD may only start while our last renewal is still valid: the elector may
                // have been slow to report (service routing), or the main thread to listen.
                match self.renew_valid_until(facts) {
                    Some(deadline) if deadline > now => {
                        out.push(Action::Spawn { deadline });
                        Starting
                    }
                    valid_until => {
                        let why = match valid_until {
                            Some(_) => format!(
                                "the last successful renewal is older than {}",
                                config::show(self.settings.renew_deadline)
                            ),
                            None => "no successful renewal recorded".into(),
                        };
                        out.push(log(
                            Level::Warn,
                            format!("not starting CMD ({why}): leaving like a lost leadership"),
                        ));
                        self.leave(exit::LOST_LEADERSHIP, true, now, out)
                    }
                }
            }
            (Starting, Input::Spawned) => Leading,
            (Starting, Input::SpawnFailed { code }) => self.leave(code, true, now, out),
            (Leading, Input::Report(Report::Lost(reason))) => self.step_down(
                &reason,
                exit::LOST_LEADERSHIP,
                AfterReap::Leave,
                now,
                facts,
                out,
            ),
            (Leading, Input::Report(Report::TakenOver(reason))) => {
                // An assumption already broke (another CMD may run): no grace period.
                out.push(log(
                    Level::Warn,
                    format!("stepping down ({reason}): another CMD may already run, sending SIGKILL now"),
                ));
                out.push(Action::StepDown {
                    kill_at: now,
                    reap_by: self.reap_by(now, facts),
                });
                Phase::Reaping {
                    code: exit::LOST_LEADERSHIP,
                    then: AfterReap::Leave,
                }
            }
            (Campaigning | Leading | Exiting { .. }, Input::Report(Report::Fatal(msg))) => {
                out.push(log(Level::Error, msg));
                match phase {
                    Exiting { code, .. } => exit_with(code, out),
                    // Not reachable today (fatal errors end a campaign), but never leave CMD
                    // running without a lease behind us.
                    Leading => self.step_down(
                        "the elector failed",
                        exit::API,
                        AfterReap::Exit,
                        now,
                        facts,
                        out,
                    ),
                    _ => exit_with(exit::API, out),
                }
            }
            (Exiting { code, .. }, Input::Report(Report::Finished)) => exit_with(code, out),
            (Campaigning, Input::Report(Report::Finished)) => {
                out.push(log(Level::Error, "the elector stopped unexpectedly".into()));
                exit_with(exit::INTERNAL, out)
            }
            (Leading, Input::Report(Report::Finished)) => {
                out.push(log(Level::Error, "the elector stopped unexpectedly".into()));
                self.step_down(
                    "the elector stopped",
                    exit::INTERNAL,
                    AfterReap::Exit,
                    now,
                    facts,
                    out,
                )
            }
            (Campaigning | Leading | Exiting { .. }, Input::Report(other)) => {
                out.push(log(Level::Debug, format!("ignoring late report {other:?}")));
                phase
            }

            (Reaping { code, then }, Input::Reaped { gone }) => {
                if !gone {
                    out.push(log(Level::Error, "CMD or a process it started could not be confirmed dead; keeping the lease until it expires".into()));
                }
                match then {
                    // Release the lease only if nothing of CMD can still be running; otherwise
                    // it must expire on its own before anybody else may start CMD.
                    AfterReap::Leave => self.leave(code, gone, now, out),
                    AfterReap::Exit => exit_with(code, out),
                }
            }

            // While leading, the renewal-age check below steps down in time on its own.
            (Campaigning, Input::ElectorGone) => {
                out.push(log(
                    Level::Error,
                    "the elector thread ended unexpectedly".into(),
                ));
                exit_with(exit::INTERNAL, out)
            }
            (Exiting { code, .. }, Input::ElectorGone) => exit_with(code, out),

            (Leading, Input::Tick) if self.renew_valid_until(facts).is_some_and(|t| now >= t) => {
                let reason = format!(
                    "no successful renewal for {}",
                    config::show(self.settings.renew_deadline)
                );
                if facts.leading {
                    // The elector has not noticed yet (it logs its own reason when it does).
                    out.push(log(Level::Warn, format!("lost leadership: {reason}")));
                }
                self.step_down(
                    &reason,
                    exit::LOST_LEADERSHIP,
                    AfterReap::Leave,
                    now,
                    facts,
                    out,
                )
            }
            (Exiting { code, until }, Input::Tick) if now >= until => {
                out.push(log(
                    Level::Warn,
                    "the lease was not released in time (if we held it); others take over when it expires".into(),
                ));
                exit_with(code, out)
            }

            // Anything else changes nothing: CMD exiting when it was not started by us this
            // term, the elector ending while we lead (the tick steps down), a tick before a
            // deadline. In Starting and Reaping the driver feeds the outcome at once, and
            // after Done it feeds nothing.
            _ => phase,
        }
    }

    /// Leading is valid until the last successful renewal (send time) + renew deadline.
    fn renew_valid_until(&self, facts: &Facts) -> Option<BootInstant> {
        facts.last_renew.map(|t| t + self.settings.renew_deadline)
    }

    /// SIGTERM CMD, SIGKILL it at `last renewal + renew deadline + grace`, and reap it before
    /// `last renewal + lease duration`: nobody else can hold the lease before then.
    fn step_down(
        &self,
        reason: &str,
        code: i32,
        then: AfterReap,
        now: BootInstant,
        facts: &Facts,
        out: &mut Vec<Action>,
    ) -> Phase {
        let s = &self.settings;
        let last = facts.last_renew.unwrap_or(now);
        let kill_at = last + s.renew_deadline + s.grace_period;
        out.push(log(
            Level::Info,
            format!(
                "stepping down ({reason}): CMD gets {} to exit before SIGKILL",
                config::show(kill_at.saturating_duration_since(now))
            ),
        ));
        out.push(Action::StepDown {
            kill_at,
            reap_by: self.reap_by(now, facts),
        });
        Phase::Reaping { code, then }
    }

    /// Everything of CMD must be reaped by the last successful renewal + lease duration:
    /// nobody else can hold the lease before then.
    fn reap_by(&self, now: BootInstant, facts: &Facts) -> BootInstant {
        facts.last_renew.unwrap_or(now) + self.settings.lease_duration
    }

    /// Tell the elector to leave (releasing the lease only with `release`), then wait for it.
    fn leave(&self, code: i32, release: bool, now: BootInstant, out: &mut Vec<Action>) -> Phase {
        out.push(Action::Tell(if release {
            Message::Shutdown
        } else {
            Message::Abandon
        }));
        Phase::Exiting {
            code,
            until: now + self.settings.renew_deadline + RELEASE_BUDGET,
        }
    }
}

fn log(level: Level, line: String) -> Action {
    Action::Log(level, line)
}

fn exit_with(code: i32, out: &mut Vec<Action>) -> Phase {
    out.push(Action::Exit(code));
    Phase::Done { code }
}

#[cfg(test)]
mod tests;
