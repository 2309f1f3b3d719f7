//! The transitions of [`Lifecycle`], as a table of named cases, and a few whole lives.

use super::*;

const SIGHUP: Signal = Signal {
    number: 1,
    name: "SIGHUP",
    stop: false,
};
const SIGTERM: Signal = Signal {
    number: 15,
    name: "SIGTERM",
    stop: true,
};

fn settings() -> Settings {
    Settings {
        renew_deadline: Duration::from_secs(10),
        lease_duration: Duration::from_secs(15),
        grace_period: Duration::from_secs(2),
        kill_margin: Duration::from_secs(1),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn info(line: &str) -> Action {
    Action::Log(Level::Info, line.into())
}
fn debug(line: &str) -> Action {
    Action::Log(Level::Debug, line.into())
}
fn warn(line: &str) -> Action {
    Action::Log(Level::Warn, line.into())
}
fn error(line: &str) -> Action {
    Action::Log(Level::Error, line.into())
}

const NOT_CONFIRMED: &str =
    "CMD or a process it started could not be confirmed dead; keeping the lease until it expires";

/// One transition: from `phase` with `facts`, `input` at `t0 + at` gives `actions` and
/// `next`.
struct Case {
    name: &'static str,
    phase: Phase,
    facts: Facts,
    at: Duration,
    input: Input,
    actions: Vec<Action>,
    next: Phase,
}

#[test]
fn transitions() {
    let t0 = BootInstant::now();
    // The last renewal in these cases was sent at t0; the elector still leads.
    let renewed = Facts {
        last_renew: Some(t0),
        leading: true,
    };
    let noticed = Facts {
        last_renew: Some(t0),
        leading: false,
    };
    let none = Facts::default();
    let exiting = Phase::Exiting {
        code: 3,
        until: t0 + secs(11),
    };
    let reaping = |code, then| Phase::Reaping { code, then };
    let done = |code| Phase::Done { code };
    let step_down = |line: &str| {
        vec![
            info(line),
            Action::StepDown {
                kill_at: t0 + secs(12),
                reap_by: t0 + secs(15),
            },
        ]
    };
    let cases = vec![
        // Signals.
        Case {
            name: "stop signal before leading leaves the election with 128+N",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Signal(SIGTERM),
            actions: vec![
                info("received SIGTERM before becoming leader: leaving the election"),
                Action::Tell(Message::Shutdown),
            ],
            next: Phase::Exiting {
                code: 143,
                until: t0 + secs(2),
            },
        },
        Case {
            name: "other signal before leading is ignored",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Signal(SIGHUP),
            actions: vec![debug("ignoring SIGHUP (CMD is not running)")],
            next: Phase::Campaigning,
        },
        Case {
            name: "stop signal while leading: Stopping to the elector, then forward",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(1),
            input: Input::Signal(SIGTERM),
            actions: vec![Action::Tell(Message::Stopping), Action::Forward(15)],
            next: Phase::Leading,
        },
        Case {
            name: "other signal while leading is forwarded only",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(1),
            input: Input::Signal(SIGHUP),
            actions: vec![Action::Forward(1)],
            next: Phase::Leading,
        },
        Case {
            name: "signal while exiting is ignored",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::Signal(SIGTERM),
            actions: vec![debug("ignoring SIGTERM (CMD is not running)")],
            next: exiting,
        },
        // Starting CMD.
        Case {
            name: "elected: spawn CMD, the start bounded by the renewal's validity",
            phase: Phase::Campaigning,
            facts: renewed,
            at: secs(0),
            input: Input::Report(Report::Elected),
            actions: vec![Action::Spawn {
                deadline: t0 + secs(10),
            }],
            next: Phase::Starting,
        },
        Case {
            name: "elected, renewal still valid (just): spawn CMD",
            phase: Phase::Campaigning,
            facts: renewed,
            at: Duration::from_millis(9_999),
            input: Input::Report(Report::Elected),
            actions: vec![Action::Spawn {
                deadline: t0 + secs(10),
            }],
            next: Phase::Starting,
        },
        Case {
            name: "elected, renewal no longer valid: no CMD, leave like a lost leadership",
            phase: Phase::Campaigning,
            facts: renewed,
            at: secs(10),
            input: Input::Report(Report::Elected),
            actions: vec![
                warn("not starting CMD (the last successful renewal is older than 10s): leaving like a lost leadership"),
                Action::Tell(Message::Shutdown),
            ],
            next: Phase::Exiting {
                code: exit::LOST_LEADERSHIP,
                until: t0 + secs(21),
            },
        },
        Case {
            name: "elected without any renewal recorded: no CMD, leave like a lost leadership",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Elected),
            actions: vec![
                warn("not starting CMD (no successful renewal recorded): leaving like a lost leadership"),
                Action::Tell(Message::Shutdown),
            ],
            next: Phase::Exiting {
                code: exit::LOST_LEADERSHIP,
                until: t0 + secs(12),
            },
        },
        Case {
            name: "spawned: leading",
            phase: Phase::Starting,
            facts: renewed,
            at: secs(0),
            input: Input::Spawned,
            actions: vec![],
            next: Phase::Leading,
        },
        Case {
            name: "spawn failure releases the lease and exits with its code",
            phase: Phase::Starting,
            facts: renewed,
            at: secs(1),
            input: Input::SpawnFailed { code: 127 },
            actions: vec![Action::Tell(Message::Shutdown)],
            next: Phase::Exiting {
                code: 127,
                until: t0 + secs(12),
            },
        },
        // CMD exits.
        Case {
            name: "CMD exits while leading: leftovers are SIGKILLed by the kill margin before the lease could expire, reaped before it could",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(1),
            input: Input::CmdExited { code: 3 },
            actions: vec![Action::KillLeftovers {
                kill_at: t0 + secs(14),
                reap_by: t0 + secs(15),
            }],
            next: reaping(3, AfterReap::Leave),
        },
        Case {
            name: "CMD exits when the lease is about to expire: leftovers get no time beyond now",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(14) + Duration::from_millis(500),
            input: Input::CmdExited { code: 3 },
            actions: vec![Action::KillLeftovers {
                kill_at: t0 + secs(14) + Duration::from_millis(500),
                reap_by: t0 + secs(15),
            }],
            next: reaping(3, AfterReap::Leave),
        },
        Case {
            name: "CMD and leftovers gone: release",
            phase: reaping(3, AfterReap::Leave),
            facts: renewed,
            at: secs(2),
            input: Input::Reaped { gone: true },
            actions: vec![Action::Tell(Message::Shutdown)],
            next: Phase::Exiting {
                code: 3,
                until: t0 + secs(13),
            },
        },
        Case {
            name: "CMD or leftovers not confirmed gone: abandon",
            phase: reaping(3, AfterReap::Leave),
            facts: renewed,
            at: secs(2),
            input: Input::Reaped { gone: false },
            actions: vec![error(NOT_CONFIRMED), Action::Tell(Message::Abandon)],
            next: Phase::Exiting {
                code: 3,
                until: t0 + secs(13),
            },
        },
        Case {
            name: "CMD exit while exiting changes nothing",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::CmdExited { code: 0 },
            actions: vec![],
            next: exiting,
        },
        // Losing leadership.
        Case {
            name: "lost leadership: step down by the last renewal's deadlines",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(4),
            input: Input::Report(Report::Lost("lease taken by b".into())),
            actions: step_down("stepping down (lease taken by b): CMD gets 8s to exit before SIGKILL"),
            next: reaping(exit::LOST_LEADERSHIP, AfterReap::Leave),
        },
        Case {
            name: "taken over by another holder: SIGKILL at once, no grace period",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(4),
            input: Input::Report(Report::TakenOver("the lease is held by b".into())),
            actions: vec![
                warn("stepping down (the lease is held by b): another CMD may already run, sending SIGKILL now"),
                Action::StepDown {
                    kill_at: t0 + secs(4),
                    reap_by: t0 + secs(15),
                },
            ],
            next: reaping(exit::LOST_LEADERSHIP, AfterReap::Leave),
        },
        Case {
            name: "lost leadership without any renewal recorded counts from now",
            phase: Phase::Leading,
            facts: none,
            at: secs(0),
            input: Input::Report(Report::Lost("x".into())),
            actions: step_down("stepping down (x): CMD gets 12s to exit before SIGKILL"),
            next: reaping(exit::LOST_LEADERSHIP, AfterReap::Leave),
        },
        Case {
            name: "renew deadline passed, elector unaware: warn and step down",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(10),
            input: Input::Tick,
            actions: [warn("lost leadership: no successful renewal for 10s")]
                .into_iter()
                .chain(step_down(
                    "stepping down (no successful renewal for 10s): CMD gets 2s to exit before SIGKILL",
                ))
                .collect(),
            next: reaping(exit::LOST_LEADERSHIP, AfterReap::Leave),
        },
        Case {
            name: "renew deadline passed, elector noticed: step down without the warning",
            phase: Phase::Leading,
            facts: noticed,
            at: secs(11),
            input: Input::Tick,
            actions: step_down(
                "stepping down (no successful renewal for 10s): CMD gets 1s to exit before SIGKILL",
            ),
            next: reaping(exit::LOST_LEADERSHIP, AfterReap::Leave),
        },
        Case {
            name: "renew deadline not yet passed",
            phase: Phase::Leading,
            facts: renewed,
            at: Duration::from_millis(9_999),
            input: Input::Tick,
            actions: vec![],
            next: Phase::Leading,
        },
        Case {
            name: "no renewal recorded: nothing to check",
            phase: Phase::Leading,
            facts: none,
            at: secs(100),
            input: Input::Tick,
            actions: vec![],
            next: Phase::Leading,
        },
        // Exiting.
        Case {
            name: "exit budget used up: exit anyway",
            phase: exiting,
            facts: none,
            at: secs(11),
            input: Input::Tick,
            actions: vec![
                warn("the lease was not released in time (if we held it); others take over when it expires"),
                Action::Exit(3),
            ],
            next: done(3),
        },
        Case {
            name: "exit budget not used up",
            phase: exiting,
            facts: none,
            at: secs(10),
            input: Input::Tick,
            actions: vec![],
            next: exiting,
        },
        Case {
            name: "finished while exiting: exit with the code",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Finished),
            actions: vec![Action::Exit(3)],
            next: done(3),
        },
        // The elector ends unexpectedly.
        Case {
            name: "finished while campaigning",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Finished),
            actions: vec![error("the elector stopped unexpectedly"), Action::Exit(70)],
            next: done(exit::INTERNAL),
        },
        Case {
            name: "finished while leading: step down, then exit",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(2),
            input: Input::Report(Report::Finished),
            actions: [error("the elector stopped unexpectedly")]
                .into_iter()
                .chain(step_down(
                    "stepping down (the elector stopped): CMD gets 10s to exit before SIGKILL",
                ))
                .collect(),
            next: reaping(exit::INTERNAL, AfterReap::Exit),
        },
        Case {
            name: "fatal while campaigning",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Fatal("forbidden".into())),
            actions: vec![error("forbidden"), Action::Exit(exit::API)],
            next: done(exit::API),
        },
        Case {
            name: "fatal while leading: step down, then exit",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(2),
            input: Input::Report(Report::Fatal("forbidden".into())),
            actions: [error("forbidden")]
                .into_iter()
                .chain(step_down(
                    "stepping down (the elector failed): CMD gets 10s to exit before SIGKILL",
                ))
                .collect(),
            next: reaping(exit::API, AfterReap::Exit),
        },
        Case {
            name: "fatal while exiting keeps the exit code",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Fatal("forbidden".into())),
            actions: vec![error("forbidden"), Action::Exit(3)],
            next: done(3),
        },
        Case {
            name: "reaped after the elector ended: exit",
            phase: reaping(exit::INTERNAL, AfterReap::Exit),
            facts: renewed,
            at: secs(3),
            input: Input::Reaped { gone: true },
            actions: vec![Action::Exit(exit::INTERNAL)],
            next: done(exit::INTERNAL),
        },
        Case {
            name: "reaped after the elector ended, not confirmed gone: exit",
            phase: reaping(exit::API, AfterReap::Exit),
            facts: renewed,
            at: secs(3),
            input: Input::Reaped { gone: false },
            actions: vec![error(NOT_CONFIRMED), Action::Exit(exit::API)],
            next: done(exit::API),
        },
        // The elector thread disconnected.
        Case {
            name: "elector gone while campaigning",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::ElectorGone,
            actions: vec![
                error("the elector thread ended unexpectedly"),
                Action::Exit(exit::INTERNAL),
            ],
            next: done(exit::INTERNAL),
        },
        Case {
            name: "elector gone while leading: the renewal check steps down later",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(1),
            input: Input::ElectorGone,
            actions: vec![],
            next: Phase::Leading,
        },
        Case {
            name: "elector gone while exiting: exit with the code",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::ElectorGone,
            actions: vec![Action::Exit(3)],
            next: done(3),
        },
        // Late reports.
        Case {
            name: "elected while leading is late",
            phase: Phase::Leading,
            facts: renewed,
            at: secs(1),
            input: Input::Report(Report::Elected),
            actions: vec![debug("ignoring late report Elected")],
            next: Phase::Leading,
        },
        Case {
            name: "lost while exiting is late",
            phase: exiting,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Lost("gone".into())),
            actions: vec![debug("ignoring late report Lost(\"gone\")")],
            next: exiting,
        },
        Case {
            name: "lost while campaigning is late",
            phase: Phase::Campaigning,
            facts: none,
            at: secs(1),
            input: Input::Report(Report::Lost("gone".into())),
            actions: vec![debug("ignoring late report Lost(\"gone\")")],
            next: Phase::Campaigning,
        },
    ];
    for case in cases {
        let mut m = Lifecycle {
            settings: settings(),
            phase: case.phase,
        };
        let actions = m.step(case.input, t0 + case.at, &case.facts);
        assert_eq!(actions, case.actions, "{}: actions", case.name);
        assert_eq!(m.phase, case.next, "{}: next phase", case.name);
        // An action with an outcome is last, and only it leads to a transient phase.
        let awaits = matches!(m.phase, Phase::Starting | Phase::Reaping { .. });
        let asks = actions.iter().position(|a| {
            matches!(
                a,
                Action::Spawn { .. } | Action::StepDown { .. } | Action::KillLeftovers { .. }
            )
        });
        let last = actions.len().checked_sub(1);
        assert_eq!(awaits, asks.is_some(), "{}: outcome awaited", case.name);
        assert!(asks.is_none() || asks == last, "{}: not last", case.name);
        let exits = actions.iter().any(|a| matches!(a, Action::Exit(_)));
        assert_eq!(
            exits,
            matches!(m.phase, Phase::Done { .. }),
            "{}: exit",
            case.name
        );
    }
}

#[test]
fn deadline_per_phase() {
    let t0 = BootInstant::now();
    let facts = Facts {
        last_renew: Some(t0),
        leading: true,
    };
    let at = |phase| Lifecycle {
        settings: settings(),
        phase,
    };
    assert_eq!(at(Phase::Campaigning).deadline(&facts), None);
    assert_eq!(at(Phase::Leading).deadline(&facts), Some(t0 + secs(10)));
    assert_eq!(at(Phase::Leading).deadline(&Facts::default()), None);
    let exiting = Phase::Exiting {
        code: 0,
        until: t0 + secs(3),
    };
    assert_eq!(at(exiting).deadline(&facts), Some(t0 + secs(3)));
}

/// Feeds inputs in order, each at `t0 + at`, and collects every action.
fn run(m: &mut Lifecycle, t0: BootInstant, facts: &Facts, inputs: &[(u64, Input)]) -> Vec<Action> {
    let mut all = Vec::new();
    for (at, input) in inputs {
        all.extend(m.step(input.clone(), t0 + secs(*at), facts));
    }
    all
}

#[test]
fn a_term_ended_by_sigterm_exits_with_cmds_code() {
    let t0 = BootInstant::now();
    let facts = Facts {
        last_renew: Some(t0),
        leading: true,
    };
    let mut m = Lifecycle::new(settings());
    let actions = run(
        &mut m,
        t0,
        &facts,
        &[
            (0, Input::Report(Report::Elected)),
            (0, Input::Spawned),
            (0, Input::Tick),
            (1, Input::Signal(SIGTERM)),
            (1, Input::Tick),
            (2, Input::CmdExited { code: 143 }),
            (2, Input::Reaped { gone: true }),
            (2, Input::Tick),
            (3, Input::Report(Report::Finished)),
        ],
    );
    assert_eq!(
        actions,
        vec![
            Action::Spawn {
                deadline: t0 + secs(10)
            },
            Action::Tell(Message::Stopping),
            Action::Forward(15),
            Action::KillLeftovers {
                kill_at: t0 + secs(14),
                reap_by: t0 + secs(15),
            },
            Action::Tell(Message::Shutdown),
            Action::Exit(143),
        ]
    );
    assert_eq!(m.phase, Phase::Done { code: 143 });
}

#[test]
fn a_dead_elector_is_noticed_by_the_renewal_check() {
    let t0 = BootInstant::now();
    let facts = Facts {
        last_renew: Some(t0),
        leading: true,
    };
    let mut m = Lifecycle {
        settings: settings(),
        phase: Phase::Leading,
    };
    let actions = run(
        &mut m,
        t0,
        &facts,
        &[
            (1, Input::ElectorGone),
            (1, Input::Tick),
            (10, Input::ElectorGone),
            (10, Input::Tick),
            (11, Input::Reaped { gone: true }),
            (11, Input::Tick),
            (22, Input::ElectorGone),
        ],
    );
    assert_eq!(
        actions,
        vec![
            warn("lost leadership: no successful renewal for 10s"),
            info(
                "stepping down (no successful renewal for 10s): CMD gets 2s to exit before SIGKILL"
            ),
            Action::StepDown {
                kill_at: t0 + secs(12),
                reap_by: t0 + secs(15),
            },
            Action::Tell(Message::Shutdown),
            Action::Exit(exit::LOST_LEADERSHIP),
        ]
    );
}
