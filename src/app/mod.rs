//! Wiring: passthrough or election, and the exit-code policy.
//!
//! The only module that knows both Kubernetes and processes. In election mode the main thread
//! owns signals and CMD (through [`Supervisor`]), the elector thread owns every Lease request
//! (through [`Elector`]) and service routing (see `elector_thread`), and the optional status
//! thread reads the shared [`Snapshot`]. The elector reports to the main thread over a channel
//! and nudges it awake with [`Waker`](supervisor::Waker); the main thread talks back through
//! the elector's [`Inbox`].
//!
//! The main thread's decisions are the pure state machine in `lifecycle`; the loop here only
//! waits for events, feeds them in and performs the actions it gets back.

use std::ffi::OsString;
use std::io::Write;
use std::iter;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::clock::BootInstant;
use crate::config::{self, Config, SignalTarget};
use crate::election::{self, Elector, Inbox, Snapshot};
use crate::events::{self, Recorder};
use crate::kube::{self, Client, InClusterConfig};
use crate::logsink::{self, LogQueue};
use crate::service::Router;
use crate::status::StatusServer;
use crate::supervisor::{self, Event, Supervisor};
use lifecycle::{Action, Facts, Input, Lifecycle, Message, Report, Signal};

mod elector_thread;
pub mod exit;
mod lifecycle;
mod logging;

/// How long the exit waits for queued log lines to reach stderr.
const LOG_FLUSH_BUDGET: Duration = Duration::from_secs(1);
/// How long the exit waits for the last Kubernetes Event ("stopped leading") to be posted.
/// The Lease is already released by then: this delays only the exit, never a hand-over.
const EVENTS_FLUSH_BUDGET: Duration = Duration::from_millis(500);

const USAGE: &str = "\
usage: k8s-await-election CMD [ARGS...]

Runs CMD only while this replica holds a Kubernetes Lease (when K8S_AWAIT_ELECTION_ENABLED is
non-empty); otherwise replaces itself with CMD. Configuration comes from K8S_AWAIT_ELECTION_*
environment variables; see the README for the full list and the exit codes.

  --help       print this help (only as the sole argument)
  --version    print the version (only as the sole argument)
";

/// The whole program: arguments (without argv\[0\]) and an environment lookup in, exit code out.
pub fn main(args: Vec<OsString>, env_os: &dyn Fn(&str) -> Option<OsString>) -> i32 {
    supervisor::init_process();
    // Text values only: one that is not UTF-8 reads as unset here. In election mode every
    // variable we read is checked first, so only ENABLED can be such a value below.
    let env = |k: &str| env_os(k).and_then(|v| v.into_string().ok());
    if args.len() == 1 {
        match args[0].to_str() {
            Some("--help" | "-h") => return print_out(USAGE),
            Some("--version" | "-V") => {
                return print_out(&format!(
                    "k8s-await-election {}\n",
                    env!("CARGO_PKG_VERSION")
                ))
            }
            _ => {}
        }
    }
    if args.is_empty() {
        // Not eprint!, which panics when stderr is closed: the exit code must stay 64.
        let _ = write!(
            std::io::stderr(),
            "k8s-await-election: no command given\n\n{USAGE}"
        );
        return exit::USAGE;
    }
    if env_os(config::ENABLED).is_some_and(|v| !v.is_empty()) {
        if let Err(e) = config::check_utf8(variables_read(), env_os) {
            logging::init(&env, None, None);
            error!("configuration error: {e}");
            return exit::CONFIG;
        }
    }
    // ENABLED enables election with any non-empty value, text or not.
    let config_env = |k: &str| {
        env_os(k).map(|v| match v.into_string() {
            Ok(text) => text,
            Err(raw) => raw.to_string_lossy().into_owned(),
        })
    };
    let config = match config::from_env(args, &config_env) {
        Ok(c) => c,
        Err(e) => {
            logging::init(&env, None, None);
            error!("configuration error: {e}");
            return exit::CONFIG;
        }
    };
    run(config, &env)
}

/// Every environment variable election mode reads: ours, the in-cluster ones and the log
/// filter.
fn variables_read() -> impl Iterator<Item = &'static str> {
    config::VARIABLES
        .iter()
        .map(|v| v.name)
        .chain(kube::ENV_VARIABLES.iter().copied())
        .chain([logging::FILTER_ENV])
}

fn print_out(text: &str) -> i32 {
    let mut out = std::io::stdout();
    // A closed stdout is no reason to fail --help.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    exit::OK
}

/// Runs a validated configuration. Passthrough does nothing before `execve` (not even set up
/// logging): it is on the start-up path of every container that uses us with election off.
pub fn run(config: Config, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    match config.election {
        None => {
            let e = supervisor::exec(&config.command);
            logging::init(env, None, None);
            error!("{e}");
            e.exit_code()
        }
        Some(election) => {
            let (writer, mut log_queue) = logsink::queue(std::io::stderr());
            log_queue.set_drop_note(logging::drop_note(logging::format_from_env(env)));
            let context = logging::Context {
                lease: format!("{}/{}", election.lock_namespace, election.lock_name),
                identity: election.identity.clone(),
            };
            logging::init(env, Some(writer), Some(context));
            let code = run_election(config.command, election, env, &mut log_queue);
            // The last lines (why we exit) matter; a blocked stderr may not hold us up long.
            log_queue.flush(Instant::now() + LOG_FLUSH_BUDGET);
            code
        }
    }
}

fn run_election(
    command: Vec<OsString>,
    cfg: config::Election,
    env: &dyn Fn(&str) -> Option<String>,
    log_queue: &mut LogQueue,
) -> i32 {
    // A CMD that cannot be started is found out before any request (like tini): not after
    // winning the election, with a Lease to release.
    if let Err(e) = supervisor::check_command(&command) {
        error!("{e}");
        return e.exit_code();
    }
    // Signals next: every thread started later inherits the blocked mask.
    let target = match cfg.signal_target {
        SignalTarget::Child => supervisor::SignalTarget::Child,
        SignalTarget::Group => supervisor::SignalTarget::Group,
    };
    let mut sup = match Supervisor::install(target) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot set up signal handling: {e}");
            return exit::OS;
        }
    };
    // Now that signals are blocked (the thread inherits the mask).
    if let Err(e) = log_queue.start_writer() {
        let _ = writeln!(
            std::io::stderr(),
            "k8s-await-election: cannot start the log writer thread: {e}"
        );
        return exit::INTERNAL;
    }
    let client = match InClusterConfig::from_env(env).and_then(Client::new) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            error!("cannot use the Kubernetes API: {e}");
            return exit::API;
        }
    };
    let timings = cfg.timings;
    let snapshot = Snapshot::new(election::Status {
        name: cfg.name.clone(),
        identity: cfg.identity.clone(),
        lock: format!("{}/{}", cfg.lock_namespace, cfg.lock_name),
        ..election::Status::default()
    });
    let _status = match cfg.status_endpoint {
        None => None,
        Some(ep) => match StatusServer::start(ep, Arc::clone(&snapshot), timings.lease_duration) {
            Ok(s) => {
                info!("status endpoint listening on {}", s.local_addr());
                Some(s)
            }
            Err(e) => {
                error!(
                    "{}: cannot listen on {}: {e}",
                    config::STATUS_ENDPOINT,
                    env(config::STATUS_ENDPOINT).unwrap_or_default()
                );
                return exit::OS;
            }
        },
    };

    let (inbox_tx, inbox_rx) = mpsc::channel();
    let (report_tx, reports) = mpsc::channel();
    let elector = Elector::new(
        Arc::clone(&client),
        election::Settings {
            namespace: cfg.lock_namespace.clone(),
            lock_name: cfg.lock_name.clone(),
            identity: cfg.identity.clone(),
            timings,
        },
        Arc::clone(&snapshot),
        inbox_rx,
        inbox_tx.clone(),
    );
    let router = cfg
        .service
        .clone()
        .map(|s| Router::new(Arc::clone(&client), s));
    let recorder = if cfg.events {
        let regarding = events::Regarding {
            namespace: cfg.lock_namespace.clone(),
            name: cfg.lock_name.clone(),
            identity: cfg.identity.clone(),
        };
        match Recorder::start(Arc::clone(&client), regarding) {
            Ok(r) => r,
            Err(e) => {
                error!("cannot start the events thread: {e}");
                return exit::INTERNAL;
            }
        }
    } else {
        Recorder::off()
    };
    let waker = sup.waker();
    let for_elector = recorder.clone();
    let spawned = thread::Builder::new()
        .name("elector".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            elector_thread::run(elector, router, report_tx, waker, timings, for_elector)
        });
    if let Err(e) = spawned {
        error!("cannot start the elector thread: {e}");
        return exit::INTERNAL;
    }

    let code = supervise(&mut sup, &command, &cfg, &snapshot, &inbox_tx, &reports);
    // Never exit while anything CMD started may still run (outside our PID namespace, or
    // forever when we are not PID 1): the Lease was not released then, and must not be
    // taken over while it runs.
    sup.wait_until_nothing_left();
    recorder.flush(Instant::now() + EVENTS_FLUSH_BUDGET);
    code
}

/// The main thread's loop: wait for an event (or the machine's deadline), feed it and then
/// every queued report to the [`Lifecycle`], end with a [`Input::Tick`]; perform the actions.
fn supervise(
    sup: &mut Supervisor,
    command: &[OsString],
    cfg: &config::Election,
    snapshot: &Snapshot,
    inbox: &Sender<Inbox>,
    reports: &Receiver<Report>,
) -> i32 {
    let mut main = MainThread {
        life: Lifecycle::new(lifecycle::Settings {
            renew_deadline: cfg.timings.renew_deadline,
            lease_duration: cfg.timings.lease_duration,
            grace_period: cfg.grace_period,
            kill_margin: cfg.kill_margin,
        }),
        sup,
        command,
        snapshot,
        inbox,
    };
    loop {
        let event = main.sup.wait(main.life.deadline(&facts(snapshot)));
        let inputs = event_input(event).into_iter().chain(drain(reports));
        for input in inputs.chain([Input::Tick]) {
            if let Some(code) = main.feed(input) {
                return code;
            }
        }
    }
}

/// What the main thread sees of a wake-up (`Nudge`, `Timeout`: nothing but the tick).
fn event_input(event: Event) -> Option<Input> {
    match event {
        Event::Signal(sig) => Some(Input::Signal(Signal {
            number: sig,
            name: supervisor::signal_name(sig),
            stop: supervisor::is_stop_signal(sig),
        })),
        Event::ChildExited(status) => Some(Input::CmdExited {
            code: status.exit_code(),
        }),
        Event::Nudge | Event::Timeout => None,
    }
}

/// The queued reports, each received only once the previous one was handled; then
/// [`Input::ElectorGone`] if the elector thread is gone.
fn drain(reports: &Receiver<Report>) -> impl Iterator<Item = Input> + '_ {
    let mut open = true;
    iter::from_fn(move || {
        if !open {
            return None;
        }
        match reports.try_recv() {
            Ok(r) => Some(Input::Report(r)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                open = false;
                Some(Input::ElectorGone)
            }
        }
    })
}

/// Our hold on the lease as the shared snapshot has it now.
fn facts(snapshot: &Snapshot) -> Facts {
    let s = snapshot.get();
    Facts {
        // Our own validity is measured on the boot-time clock (see `clock`).
        last_renew: s.last_renew_boot,
        leading: s.leading,
    }
}

/// The main thread's state machine and what it acts on.
struct MainThread<'a> {
    life: Lifecycle,
    sup: &'a mut Supervisor,
    command: &'a [OsString],
    snapshot: &'a Snapshot,
    inbox: &'a Sender<Inbox>,
}

/// What became of an action.
enum Outcome {
    Done,
    /// Its outcome, to feed next.
    FollowUp(Input),
    Exit(i32),
}

impl MainThread<'_> {
    /// Feeds `input` and performs the actions, feeding each outcome at once. `Some(code)`:
    /// exit with it.
    fn feed(&mut self, input: Input) -> Option<i32> {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let seen = facts(self.snapshot);
            for action in self.life.step(input, BootInstant::now(), &seen) {
                match self.perform(action) {
                    Outcome::Done => {}
                    Outcome::FollowUp(outcome) => next = Some(outcome),
                    Outcome::Exit(code) => return Some(code),
                }
            }
        }
        None
    }

    fn perform(&mut self, action: Action) -> Outcome {
        match action {
            Action::Log(level, line) => log::log!(level, "{line}"),
            Action::Tell(message) => {
                // The elector may have ended already (after a fatal error); then there is
                // nothing to stop.
                let _ = self.inbox.send(match message {
                    Message::Stopping => Inbox::Stopping,
                    Message::Shutdown => Inbox::Shutdown,
                    Message::Abandon => Inbox::Abandon,
                });
            }
            Action::Spawn { deadline } => {
                return Outcome::FollowUp(match self.sup.spawn(self.command, Some(deadline)) {
                    Ok(pid) => {
                        log::debug!("CMD runs as pid {pid}");
                        Input::Spawned
                    }
                    Err(e) => {
                        error!("{e}");
                        Input::SpawnFailed {
                            code: e.exit_code(),
                        }
                    }
                })
            }
            Action::Forward(sig) => {
                if let Err(e) = self.sup.forward(sig) {
                    warn!(
                        "cannot forward {} to CMD: {e}",
                        supervisor::signal_name(sig)
                    );
                }
            }
            Action::KillLeftovers { kill_at, reap_by } => {
                self.sup.kill_leftovers(kill_at, reap_by);
                return Outcome::FollowUp(Input::Reaped {
                    gone: self.sup.nothing_left(),
                });
            }
            Action::StepDown { kill_at, reap_by } => {
                self.sup.stop_child(kill_at, reap_by);
                return Outcome::FollowUp(Input::Reaped {
                    gone: self.sup.nothing_left(),
                });
            }
            Action::Exit(code) => {
                log::debug!(exitCode = code; "exiting with code {code}");
                return Outcome::Exit(code);
            }
        }
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::leadership::Status;

    /// After a node suspend the monotonic stamp of the last renewal looks fresh while the
    /// boot-time one shows the real age: our validity must follow the boot-time clock.
    #[test]
    fn validity_is_judged_on_the_boot_clock_after_a_suspend() {
        let now = BootInstant::now();
        let slept = Duration::from_secs(20);
        let snapshot = Snapshot::new(Status {
            leading: true,
            last_renew: Some(Instant::now()),
            last_renew_boot: now.checked_sub(slept),
            ..Status::default()
        });
        let seen = facts(&snapshot);
        assert_eq!(seen.last_renew, now.checked_sub(slept));
        let mut life = Lifecycle::new(lifecycle::Settings {
            renew_deadline: Duration::from_secs(10),
            lease_duration: Duration::from_secs(15),
            grace_period: Duration::from_secs(3),
            kill_margin: Duration::from_secs(2),
        });
        let renewed = Input::Report(Report::Elected);
        let before = Facts {
            last_renew: Some(now),
            leading: true,
        };
        assert!(matches!(
            life.step(renewed, now, &before).as_slice(),
            [Action::Spawn { .. }]
        ));
        life.step(Input::Spawned, now, &before);
        let actions = life.step(Input::Tick, now, &seen);
        assert!(
            actions.iter().any(|a| matches!(a, Action::StepDown { .. })),
            "a renewal 20s old on the boot clock must make us step down: {actions:?}"
        );
    }
}
