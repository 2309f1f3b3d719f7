//! Wiring: passthrough or election, and the exit-code policy.
//!
//! The only module that knows both Kubernetes and processes. In election mode the main thread
//! owns signals and CMD (through [`Supervisor`]), the elector thread owns every Lease request
//! (through [`Elector`]) and service routing, and the optional status thread reads the shared
//! [`Snapshot`]. The elector reports to the main thread over a channel and nudges it awake
//! with [`Waker`]; the main thread talks back through the elector's [`Inbox`].
//!
//! Safety net: besides the elector's own step-down, the main thread checks on every wake-up
//! that the last successful renewal is younger than the renew deadline, so CMD is stopped in
//! time even if the elector thread were stuck or dead.

use std::ffi::OsString;
use std::io::Write;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::config::{self, Config, SignalTarget};
use crate::election::{self, Campaign, Elector, Inbox, LeaderHooks, Snapshot, Term};
use crate::kube::{self, Client, InClusterConfig};
use crate::logsink::{self, LogQueue, QueueWriter};
use crate::service::Router;
use crate::status::StatusServer;
use crate::supervisor::{self, Event, Supervisor, Waker};
use crate::timefmt;

/// Exit codes besides CMD's own (which we pass through, or 128+N when signal N killed it).
pub mod exit {
    /// `--help`, `--version`.
    pub const OK: i32 = 0;
    /// No CMD given (EX_USAGE).
    pub const USAGE: i32 = 64;
    /// The Kubernetes API cannot be used: in-cluster configuration missing or unreadable, bad
    /// CA bundle, or RBAC forbids the Lease/Service requests (EX_UNAVAILABLE).
    pub const API: i32 = 69;
    /// Internal error, e.g. a thread could not be started (EX_SOFTWARE).
    pub const INTERNAL: i32 = 70;
    /// Operating-system error: cannot set up signal handling or bind the status endpoint
    /// (EX_OSERR).
    pub const OS: i32 = 71;
    /// We lost leadership while CMD ran; CMD was stopped (EX_TEMPFAIL: restart to rejoin).
    pub const LOST_LEADERSHIP: i32 = 75;
    /// A configuration variable has a bad value (EX_CONFIG).
    pub const CONFIG: i32 = 78;
    /// CMD exists but cannot be executed.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// CMD was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// How long the exit waits for queued log lines to reach stderr.
const LOG_FLUSH_BUDGET: Duration = Duration::from_secs(1);

const USAGE: &str = "\
usage: k8s-await-election CMD [ARGS...]

Runs CMD only while this replica holds a Kubernetes Lease (when K8S_AWAIT_ELECTION_ENABLED is
non-empty); otherwise replaces itself with CMD. Configuration comes from K8S_AWAIT_ELECTION_*
environment variables; see the README for the full list and the exit codes.

  --help       print this help (only as the sole argument)
  --version    print the version (only as the sole argument)
";

/// The whole program: arguments (without argv\[0\]) and an environment lookup in, exit code out.
pub fn main(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    supervisor::init_process();
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
    let config = match config::from_env(args, env) {
        Ok(c) => c,
        Err(e) => {
            init_logging(env, None);
            error!("configuration error: {e}");
            return exit::CONFIG;
        }
    };
    run(config, env)
}

fn print_out(text: &str) -> i32 {
    let mut out = std::io::stdout();
    // A closed stdout is no reason to fail --help.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    exit::OK
}

/// One line per event on stderr: `<time> <LEVEL> k8s-await-election: <message>`. `RUST_LOG`
/// overrides the default level `info`. With `queue`, lines go through it (election mode:
/// logging must never block, see [`logsink`]); otherwise they are written directly.
fn init_logging(env: &dyn Fn(&str) -> Option<String>, queue: Option<QueueWriter>) {
    let mut builder = env_logger::Builder::new();
    if let Some(q) = queue {
        builder.target(env_logger::Target::Pipe(Box::new(q)));
    }
    builder.filter_level(log::LevelFilter::Info);
    if let Some(spec) = env("RUST_LOG").filter(|s| !s.is_empty()) {
        builder.parse_filters(&spec);
    }
    // Some HTTP internals hex-dump raw requests (bearer token included) at trace level and
    // narrate every request at debug: keep them at warnings whatever RUST_LOG says, so the
    // token never reaches a log. (Release builds compile trace logging out entirely.)
    for target in kube::TOKEN_LEAKING_LOG_TARGETS {
        builder.filter_module(target, log::LevelFilter::Warn);
    }
    builder.format(|buf, record| {
        writeln!(
            buf,
            "{} {:<5} k8s-await-election: {}",
            timefmt::log_time(std::time::SystemTime::now()),
            record.level(),
            record.args()
        )
    });
    // Only fails if a logger is already set (tests calling main twice): keep that one.
    let _ = builder.try_init();
}

/// Runs a validated configuration. Passthrough does nothing before `execve` (not even set up
/// logging): it is on the start-up path of every container that uses us with election off.
pub fn run(config: Config, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    match config.election {
        None => {
            let e = supervisor::exec(&config.command);
            init_logging(env, None);
            error!("{e}");
            e.exit_code()
        }
        Some(election) => {
            let (writer, mut log_queue) = logsink::queue(std::io::stderr());
            init_logging(env, Some(writer));
            let code = run_election(config.command, election, env, &mut log_queue);
            // The last lines (why we exit) matter; a blocked stderr may not hold us up long.
            log_queue.flush(Instant::now() + LOG_FLUSH_BUDGET);
            code
        }
    }
}

/// What the elector thread tells the main thread.
#[derive(Debug)]
enum Report {
    /// We lead and the Service (if any) points at us: start CMD.
    Elected,
    /// Leadership is lost: stop CMD now.
    Lost(String),
    /// Give up: a failure retrying cannot fix. The lease is not held.
    Fatal(String),
    /// The elector is done (after Shutdown): the lease is released or was never ours.
    Finished,
}

/// Where the main thread is in the life of the process.
enum Phase {
    Campaigning,
    Leading,
    /// Waiting for the elector to finish (release) before exiting with `code`.
    Exiting {
        code: i32,
        until: Instant,
    },
}

fn run_election(
    command: Vec<OsString>,
    cfg: config::Election,
    env: &dyn Fn(&str) -> Option<String>,
    log_queue: &mut LogQueue,
) -> i32 {
    // Signals first: every thread started later inherits the blocked mask.
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
    let waker = sup.waker();
    let spawned = thread::Builder::new()
        .name("elector".into())
        .stack_size(512 * 1024)
        .spawn(move || elector_thread(elector, router, report_tx, waker, timings));
    if let Err(e) = spawned {
        error!("cannot start the elector thread: {e}");
        return exit::INTERNAL;
    }

    supervise(&mut sup, &command, &cfg, &snapshot, &inbox_tx, &reports)
}

/// The main thread's loop: signals, CMD, and reports from the elector.
fn supervise(
    sup: &mut Supervisor,
    command: &[OsString],
    cfg: &config::Election,
    snapshot: &Snapshot,
    inbox: &Sender<Inbox>,
    reports: &mpsc::Receiver<Report>,
) -> i32 {
    let timings = cfg.timings;
    // How long we wait for the elector to release the lease (or stop campaigning) on the way
    // out: one request in flight plus the release itself.
    let exit_budget = timings.renew_deadline + Duration::from_secs(1);
    // Leave: release the lease only if nothing of CMD can still be running; otherwise the
    // lease must expire on its own before anybody else may start CMD.
    let shutdown = |code: i32, release: bool| {
        // The elector may have ended already (after a fatal error); then there is nothing to stop.
        let _ = inbox.send(if release {
            Inbox::Shutdown
        } else {
            Inbox::Abandon
        });
        Phase::Exiting {
            code,
            until: Instant::now() + exit_budget,
        }
    };
    let mut phase = Phase::Campaigning;
    loop {
        let deadline = match &phase {
            Phase::Campaigning => None,
            Phase::Leading => renew_valid_until(snapshot, &timings),
            Phase::Exiting { until, .. } => Some(*until),
        };
        match sup.wait(deadline) {
            Event::Signal(sig) => match phase {
                Phase::Campaigning if is_stop_signal(sig) => {
                    info!(
                        "received {} before becoming leader: leaving the election",
                        supervisor::signal_name(sig)
                    );
                    phase = shutdown(128 + sig, true);
                }
                Phase::Leading => {
                    if is_stop_signal(sig) {
                        // Stop advertising a pod that is shutting down.
                        let _ = inbox.send(Inbox::Stopping);
                    }
                    if let Err(e) = sup.forward(sig) {
                        warn!(
                            "cannot forward {} to CMD: {e}",
                            supervisor::signal_name(sig)
                        );
                    }
                }
                _ => debug!(
                    "ignoring {} (CMD is not running)",
                    supervisor::signal_name(sig)
                ),
            },
            Event::ChildExited(status) => {
                if let Phase::Leading = phase {
                    // Nothing CMD started may outlive our hold on the lease.
                    sup.kill_leftovers(Instant::now() + Duration::from_secs(1));
                    phase = shutdown(status.exit_code(), cmd_gone(sup));
                }
            }
            Event::Nudge | Event::Timeout => {}
        }

        loop {
            let report = match reports.try_recv() {
                Ok(r) => r,
                Err(mpsc::TryRecvError::Empty) => break,
                // The elector thread is gone without a word (it panicked).
                Err(mpsc::TryRecvError::Disconnected) => match phase {
                    // The renewal-age check below steps down in time on its own.
                    Phase::Leading => break,
                    Phase::Exiting { code, .. } => return code,
                    Phase::Campaigning => {
                        error!("the elector thread ended unexpectedly");
                        return exit::INTERNAL;
                    }
                },
            };
            match (report, &phase) {
                (Report::Elected, Phase::Campaigning) => match sup.spawn(command) {
                    Ok(pid) => {
                        debug!("CMD runs as pid {pid}");
                        phase = Phase::Leading;
                    }
                    Err(e) => {
                        error!("{e}");
                        phase = shutdown(e.exit_code(), true);
                    }
                },
                (Report::Lost(reason), Phase::Leading) => {
                    let gone = step_down(sup, snapshot, cfg, &reason);
                    phase = shutdown(exit::LOST_LEADERSHIP, gone);
                }
                (Report::Fatal(msg), phase) => {
                    error!("{msg}");
                    return match phase {
                        Phase::Exiting { code, .. } => *code,
                        // Not reachable today (fatal errors end a campaign), but never leave
                        // CMD running without a lease behind us.
                        Phase::Leading => {
                            step_down(sup, snapshot, cfg, "the elector failed");
                            exit::API
                        }
                        Phase::Campaigning => exit::API,
                    };
                }
                (Report::Finished, Phase::Exiting { code, .. }) => return *code,
                (Report::Finished, phase) => {
                    error!("the elector stopped unexpectedly");
                    if let Phase::Leading = phase {
                        step_down(sup, snapshot, cfg, "the elector stopped");
                    }
                    return exit::INTERNAL;
                }
                (other, _) => debug!("ignoring late report {other:?}"),
            }
        }

        let now = Instant::now();
        match phase {
            Phase::Leading if renew_valid_until(snapshot, &timings).is_some_and(|t| now >= t) => {
                let reason = format!(
                    "no successful renewal for {}",
                    config::show(timings.renew_deadline)
                );
                if snapshot.get().leading {
                    // The elector has not noticed yet (it logs its own reason when it does).
                    warn!("lost leadership: {reason}");
                }
                let gone = step_down(sup, snapshot, cfg, &reason);
                phase = shutdown(exit::LOST_LEADERSHIP, gone);
            }
            Phase::Exiting { code, until } if now >= until => {
                warn!("the lease was not released in time; others take over when it expires");
                return code;
            }
            _ => {}
        }
    }
}

/// Leading is valid until the last successful renewal (send time) + renew deadline.
fn renew_valid_until(snapshot: &Snapshot, timings: &config::Timings) -> Option<Instant> {
    snapshot
        .get()
        .last_renew
        .map(|t| t + timings.renew_deadline)
}

/// SIGTERM CMD, SIGKILL it at `last renewal + renew deadline + grace`, and reap it before
/// `last renewal + lease duration`: nobody else can hold the lease before then. Returns
/// whether CMD and its leftovers are confirmed gone (see [`cmd_gone`]).
fn step_down(
    sup: &mut Supervisor,
    snapshot: &Snapshot,
    cfg: &config::Election,
    reason: &str,
) -> bool {
    let t = cfg.timings;
    let last = snapshot.get().last_renew.unwrap_or_else(Instant::now);
    let kill_at = last + t.renew_deadline + cfg.grace_period;
    let hard = last + t.lease_duration;
    info!(
        "stepping down ({reason}): CMD gets {} to exit before SIGKILL",
        config::show(kill_at.saturating_duration_since(Instant::now()))
    );
    sup.stop_child(kill_at, hard);
    cmd_gone(sup)
}

/// CMD and everything it left behind are gone, so the lease may be released. Otherwise it
/// must expire on its own (others wait the full lease duration).
fn cmd_gone(sup: &mut Supervisor) -> bool {
    let gone = sup.nothing_left();
    if !gone {
        error!("CMD or a process it started could not be confirmed dead; keeping the lease until it expires");
    }
    gone
}

fn is_stop_signal(sig: i32) -> bool {
    supervisor::is_stop_signal(sig)
}

/// The elector thread: campaign, route the Service, lead, then release.
fn elector_thread(
    mut elector: Elector,
    mut router: Option<Router>,
    reports: Sender<Report>,
    waker: Waker,
    timings: config::Timings,
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
                return report(Report::Fatal(format!("cannot route the service: {e}")));
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
    if let Term::Lost(reason) = term {
        // First tell the main thread to stop CMD, then stop advertising this pod.
        report(Report::Lost(reason.to_string()));
    }
    if let Some(r) = hooks.router.as_deref_mut() {
        r.withdraw(release_deadline());
    }
    if lost {
        // Wait until CMD is gone, then give up what is left of the lease (if allowed).
        elector.wait_for_shutdown();
    }
    elector.release(release_deadline());
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
        kube::Error::Forbidden(_) => format!(
            "cannot take part in the election: {e} (grant get, create and update on leases.coordination.k8s.io to this pod's service account; see examples/rbac.yaml)"
        ),
        _ => format!("cannot take part in the election: {e}"),
    }
}
