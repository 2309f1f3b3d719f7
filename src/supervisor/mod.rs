//! Process supervision: start CMD, forward signals to it, reap it (and any orphan we adopt),
//! and turn its exit status into an exit code. This module knows processes, not Kubernetes.
//! Its `sys` submodule is the only place in the crate that calls `libc`: it wraps each call in
//! a small safe function that says why the call is sound.
//!
//! Files: this one has the [`Supervisor`], its set-up, waiting and reaping, and step-down;
//! `spawn` starts CMD ([`Supervisor::spawn`], [`exec`], [`SpawnError`]); `signals` has the
//! signal mask and dispositions, forwarding, the [`Waker`] and [`signal_name`]; `leftovers`
//! kills CMD's whole process tree and what CMD left behind, and says whether anything of it
//! may still live; `tree` reads the process tree from `/proc`; `kill` pins and SIGKILLs the
//! processes of a scan; `sys` wraps the system calls.
//!
//!
//! # Approach (the tini model)
//!
//! [`Supervisor::install`] runs on the main thread before any other thread exists and *blocks*
//! every signal we handle. Threads started later inherit that mask, so no thread ever runs a
//! signal handler and every process-directed signal stays pending until the main thread
//! collects it synchronously with `sigtimedwait(2)` inside [`Supervisor::wait`]. There are no
//! asynchronous handlers, hence no async-signal-safety puzzles and no self-pipe.
//!
//! **Signals we collect and hand to the caller** (who normally [`forward`](Supervisor::forward)s
//! them to CMD): every catchable signal, including SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2,
//! SIGTERM, SIGALRM, SIGWINCH, SIGCONT, SIGTSTP, SIGURG, SIGIO, SIGPWR, SIGXCPU, SIGXFSZ,
//! SIGVTALRM, SIGPROF and the real-time signals, and also the fault signals SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE, SIGABRT, SIGTRAP and SIGSYS when a process *sent* them (`si_code` ≤ 0:
//! kill(2), sigqueue(3), tgkill(2)), as dumb-init does. Blocking those does not turn a crash of
//! ours into a hang: a real fault is *forced* on the faulting thread, and the kernel then
//! unblocks the signal and resets it to its default action, so the process still dies by it
//! (a unit test raises real faults with the mask installed); `abort()` unblocks SIGABRT itself.
//! A fault signal the kernel raised without forcing it (`si_code` > 0, e.g. an advisory SIGBUS
//! about a memory error) concerns us, not CMD: logged and ignored. Not collected:
//! - SIGPIPE: *ignored* (by [`init_process`] at start-up, and again at install), so a closed
//!   stderr or a reset connection is an `EPIPE` error, not our death; a SIGPIPE sent from
//!   outside is therefore ignored, not forwarded;
//! - SIGTTIN and SIGTTOU: *ignored* in this process, exactly like tini. They are job-control
//!   signals the terminal driver sends to a background process group touching the tty; in Group
//!   mode we hand the terminal to CMD's group, after which our own log writes to stderr could
//!   stop the whole supervisor (with `TOSTOP` set). Ignoring them means we are never stopped
//!   and a background tty read fails with `EIO` instead. They are not forwarded. CMD gets them
//!   back at their default action.
//! - SIGKILL and SIGSTOP, which cannot be caught; SIGCHLD, which we consume ourselves (below).
//!
//! **Process group and target** ([`SignalTarget`]): CMD always runs in its own process group
//! (`setpgid(0, 0)` in the child and in the parent), which takes over the terminal's
//! foreground when ours had it, as tini does: a Ctrl-C on a terminal then reaches CMD's group
//! directly, once, and not us (in our group it would reach CMD a second time through our
//! forwarding). By default (`Child`, like tini) a forwarded signal goes to CMD's pid only, and
//! CMD is expected to pass signals on to its own children (a proper server does). `Group`
//! (like dumb-init's default and `tini -g`) signals `-pgid`, which reaches shell pipelines and
//! helpers that CMD forgets to notify; on step-down the SIGKILL also goes to the whole group.
//!
//! **Reaping**: unless we are PID 1 (which inherits every orphan of its PID namespace anyway) we
//! become a child subreaper (`PR_SET_CHILD_SUBREAPER`), so descendants of CMD that lose their
//! parent are re-parented to us rather than to the host's init. Every [`Supervisor::wait`]
//! drains `waitpid(-1, WNOHANG)` until nothing is left, so adopted orphans never stay zombies;
//! only CMD's status is reported. SIGCHLD is reset to `SIG_DFL` at install: an inherited
//! `SIG_IGN` (or `SA_NOCLDWAIT`) would make the kernel auto-reap CMD and lose its status.
//! Nothing else in the process may spawn children (a `waitpid(-1)` would steal their status).
//!
//! **Leftovers**: on step-down ([`Supervisor::stop_child`]) the SIGKILL at the kill deadline
//! goes to CMD's whole process tree at once — CMD, its process group in `Group` mode, and
//! every descendant found in `/proc`, each pinned with a pidfd so a reused pid is never hit —
//! because a big CMD can take a second from SIGKILL to reaped, and its children must not
//! live on meanwhile. Once CMD is dead we kill whatever it left behind (re-parented to us)
//! until nothing is left, so nothing CMD started keeps running after we gave up the lease.
//! [`Supervisor::nothing_left`] says whether that is *confirmed* (never when we cannot look:
//! no `/proc` of our PID namespace, or neither PID 1 nor subreaper; [`Supervisor::install`]
//! warns once), and [`Supervisor::wait_until_nothing_left`] keeps killing, past any deadline,
//! until it is, so that we never exit while anything of CMD may live.
//!
//! **SIGCHLD doubles as the wake-up**: another thread (the elector, the status server) that
//! needs the main thread's attention calls [`Waker::wake`], which sets a flag and sends SIGCHLD
//! to our own pid. Because SIGCHLD is blocked everywhere it stays pending until `sigtimedwait`
//! returns it, so a wake can never be lost between "check the flag" and "go to sleep" (the
//! race a condition variable would need a lock for), and the main thread needs exactly one
//! blocking primitive. A SIGCHLD with nothing to reap costs one `waitpid` call. This also works
//! when we are PID 1 of a PID namespace: the kernel drops signals to such an init only when
//! their disposition is `SIG_DFL` *and* they are not blocked, and ours are blocked.
//!
//! **CMD's process state** (design invariant 6): every disposition `SIG_DFL`, an empty signal
//! mask, our stdin/stdout/stderr and environment unchanged, and `PR_SET_PDEATHSIG = SIGKILL` so
//! CMD cannot outlive an unexpected death of this process. Dispositions are reset with the raw
//! `rt_sigaction` syscall, because libc refuses to touch its reserved signals and glibc's
//! `posix_spawn` (used by Rust's `Command`, e.g. by a test harness or a Rust parent) hands them
//! down ignored. The parent-death signal fires when
//! the *thread* that forked exits, which is why CMD must be spawned from the main thread.
//!
//! Use from a single thread (the main one): [`Supervisor`] is deliberately `!Send`; [`Waker`]
//! is the only piece meant for other threads.

mod kill;
mod leftovers;
mod signals;
mod spawn;
// The crate's one place for system calls (`crate::sys`) is named here once for the submodules.
use crate::sys;
mod tree;

use crate::clock::BootInstant;
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use leftovers::LEFTOVER_GRACE;
pub use signals::{is_stop_signal, signal_name, Waker};
pub use spawn::{check_command, exec, SpawnError};

use sys::{Pid, SigSet};

/// Where forwarded signals go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalTarget {
    /// CMD's pid only (like tini). CMD still runs in its own process group.
    #[default]
    Child,
    /// CMD's process group, the one it was started in (like dumb-init, `tini -g`).
    Group,
}

/// How CMD ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    /// `exit(n)`: the exit code.
    Code(i32),
    /// Terminated by this signal.
    Signaled(i32),
}

impl ChildExit {
    /// The conventional shell exit code: the code itself, or 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            ChildExit::Code(code) => code,
            ChildExit::Signaled(sig) => 128 + sig,
        }
    }

    fn from_wait_status(status: i32) -> Option<ChildExit> {
        // Neither for stopped / continued: not an exit (we never ask for those, but be safe).
        sys::exit_code_of(status)
            .map(ChildExit::Code)
            .or_else(|| sys::term_signal_of(status).map(ChildExit::Signaled))
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChildExit::Code(code) => write!(f, "exited with code {code}"),
            ChildExit::Signaled(sig) => write!(f, "killed by {}", signal_name(sig)),
        }
    }
}

/// What [`Supervisor::wait`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A signal for us to act on (normally: forward it to CMD). Never SIGCHLD.
    Signal(i32),
    /// CMD exited and has been reaped; reported exactly once.
    ChildExited(ChildExit),
    /// [`Waker::wake`] was called (one or more times) since the last `Nudge`. Callers must check
    /// their channels after *every* return of `wait`, not only after a `Nudge`.
    Nudge,
    /// The deadline passed with nothing else to report.
    Timeout,
}

/// The running CMD, known to be unreaped while this exists.
#[derive(Debug)]
struct Running {
    pid: Pid,
    /// Its exec was still under way when `spawn` returned.
    exec: Option<spawn::PendingExec>,
}

/// Owns the signal mask, CMD and the reaping of every child. See the module docs.
pub struct Supervisor {
    target: SignalTarget,
    /// Signals collected by sigtimedwait: the blocked set plus SIGCHLD.
    waited: SigSet,
    child: Option<Running>,
    /// CMD was reaped but its exit not yet reported.
    exited: Option<ChildExit>,
    nudge: Arc<AtomicBool>,
    pid: Pid,
    /// Group mode: the process group of the last CMD, until its stragglers were killed.
    last_pgid: Option<Pid>,
    /// What CMD leaves behind can be found: we are PID 1 or a child subreaper, and `/proc`
    /// shows our PID namespace (checked at install). Otherwise nothing is confirmed dead.
    leftovers_visible: bool,
    /// The latest deadline given to `stop_child` / `kill_leftovers`.
    hard_deadline: Option<BootInstant>,
    /// The one ERROR about something of CMD outliving that deadline was logged.
    overdue_logged: bool,
    /// Processes (pid, start time) already sent SIGKILL by `kill_tree`, to name each once.
    killed: HashSet<(Pid, u64)>,
    /// `!Send`/`!Sync`: signals are collected by the thread that blocked them at install.
    _main_thread_only: PhantomData<*const ()>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("target", &self.target)
            .field("child", &self.child)
            .field("exited", &self.exited)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Must be called on the main thread before any other thread exists: blocks every signal we
    /// handle (all catchable ones except SIGPIPE, SIGTTIN, SIGTTOU; the fault signals too, see
    /// the module docs), so threads spawned later inherit the mask and only
    /// the main thread takes them, via `sigtimedwait`. Ignores SIGPIPE, SIGTTIN and SIGTTOU,
    /// sets SIGCHLD to `SIG_DFL`, and, unless we are PID 1, becomes a child subreaper.
    ///
    /// Logs one WARN when what CMD leaves behind could not be found (no `/proc` of our PID
    /// namespace, or neither PID 1 nor a subreaper): it can then never be confirmed dead, so
    /// [`nothing_left`](Self::nothing_left) stays false and the Lease is not released on exit.
    ///
    /// Fails (`InvalidInput`) when called from a thread other than the main one.
    pub fn install(target: SignalTarget) -> io::Result<Supervisor> {
        let pid = sys::getpid();
        if !sys::on_main_thread() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Supervisor::install must run on the main thread",
            ));
        }

        let waited = signals::take_over()?;

        // Not fatal when we cannot keep track of CMD's processes: CMD still runs; only the
        // Lease cannot be released on exit.
        let mut blind = Vec::new();
        if pid == 1 {
            log::debug!("running as PID 1: orphans of the PID namespace are ours to reap");
        } else if let Err(err) = sys::become_child_subreaper() {
            blind.push(format!(
                "cannot become a child subreaper ({err}), so orphans of CMD escape us"
            ));
        } else {
            log::debug!("registered as child subreaper");
        }
        if !tree::proc_is_ours(pid) {
            blind.push("/proc is not mounted for our PID namespace".to_string());
        }
        if !blind.is_empty() {
            log::warn!(
                "cannot keep track of the processes CMD starts ({}): they can never be confirmed dead, so the Lease will not be released on exit and the other replicas will wait for it to expire",
                blind.join("; ")
            );
        }

        Ok(Supervisor {
            target,
            waited,
            child: None,
            exited: None,
            nudge: Arc::new(AtomicBool::new(false)),
            pid,
            last_pgid: None,
            leftovers_visible: blind.is_empty(),
            hard_deadline: None,
            overdue_logged: false,
            killed: HashSet::new(),
            _main_thread_only: PhantomData,
        })
    }

    /// A handle other threads use to interrupt [`wait`](Self::wait).
    pub fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.nudge), self.pid)
    }

    /// Where forwarded signals go.
    pub fn target(&self) -> SignalTarget {
        self.target
    }

    /// CMD's pid while it runs (until it has been reaped).
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid as u32)
    }

    /// Block until something happens: a signal arrived ([`Event::Signal`], never SIGCHLD), CMD
    /// exited ([`Event::ChildExited`], reported once), a [`Waker::wake`] ([`Event::Nudge`]), or
    /// `deadline` passed ([`Event::Timeout`]; `None` = no deadline). Every call reaps every
    /// exited child it can; SIGCHLD for an orphan is consumed here and does not return.
    /// A signal that is already pending is reported even if `deadline` has passed.
    pub fn wait(&mut self, deadline: Option<BootInstant>) -> Event {
        self.wait_inner(deadline, true)
    }

    fn wait_inner(&mut self, deadline: Option<BootInstant>, take_nudge: bool) -> Event {
        loop {
            self.reap();
            if let Some(exit) = self.exited.take() {
                return Event::ChildExited(exit);
            }
            if take_nudge && self.nudge.swap(false, Ordering::SeqCst) {
                return Event::Nudge;
            }
            match self.next_signal(deadline) {
                Some(sys::SIGCHLD) => continue, // reap at the top of the loop
                Some(sig) => return Event::Signal(sig),
                None => {
                    // A last reap so an exit racing with the deadline is not reported late.
                    self.reap();
                    if let Some(exit) = self.exited.take() {
                        return Event::ChildExited(exit);
                    }
                    return Event::Timeout;
                }
            }
        }
    }

    /// Reap every exited child without blocking; record CMD's status if it was among them.
    fn reap(&mut self) {
        while let Some((pid, status)) = sys::reap_one() {
            let Some(exit) = ChildExit::from_wait_status(status) else {
                continue;
            };
            if self.child.as_ref().is_some_and(|c| c.pid == pid) {
                if let Some(exec) = self.child.take().and_then(|c| c.exec) {
                    exec.after_exit();
                }
                match exit {
                    ChildExit::Code(code) => {
                        log::info!(exitCode = code; "CMD exited with code {code}");
                    }
                    ChildExit::Signaled(sig) => {
                        let code = 128 + sig;
                        log::info!(exitCode = code; "CMD killed by {}", signal_name(sig));
                    }
                }
                self.exited = Some(exit);
            } else {
                log::debug!("reaped orphan pid {pid} ({exit})");
            }
        }
    }

    /// Step-down helper: SIGTERM CMD (or its group), wait until `kill_at`, then SIGKILL CMD's
    /// whole process tree at once (CMD, every descendant found in `/proc`, the group too in
    /// `Group` mode) and wait until CMD is reaped or `hard_deadline` passes. Signals
    /// arriving meanwhile are ignored (logged at debug); a pending [`Waker::wake`] is kept for the
    /// next [`wait`](Self::wait). Returns CMD's exit, or `None` if no CMD was running or it could
    /// not be reaped by `hard_deadline` (a process stuck in uninterruptible sleep, or one whose
    /// memory takes that long to free, about 75 ms per GiB; CMD then stays known and a later
    /// `wait` still reports it).
    ///
    /// Once CMD is gone, whatever it left behind is ended too (until `hard_deadline`): in
    /// `Group` mode its process group, and in both modes every descendant, SIGTERM first and
    /// SIGKILL no later than `kill_at` (see [`kill_leftovers`](Self::kill_leftovers)), so
    /// nothing CMD started outlives a step-down.
    /// Whatever is still there at `hard_deadline` is for
    /// [`wait_until_nothing_left`](Self::wait_until_nothing_left).
    pub fn stop_child(
        &mut self,
        kill_at: BootInstant,
        hard_deadline: BootInstant,
    ) -> Option<ChildExit> {
        self.note_deadline(hard_deadline);
        self.reap();
        let exit = match self.exited.take() {
            Some(exit) => Some(exit),
            None => {
                let pid = self.child.as_ref()?.pid;
                log::info!("stopping CMD (pid {pid}): sending SIGTERM");
                if let Err(err) = self.signal_child(pid, sys::SIGTERM) {
                    log::warn!("cannot send SIGTERM to CMD: {err}");
                }
                match self.wait_exit_until(kill_at) {
                    Some(exit) => Some(exit),
                    None => {
                        log::warn!(
                            "CMD (pid {pid}) did not exit in time: sending SIGKILL to it and every process it started"
                        );
                        self.kill_tree();
                        self.wait_exit_until(hard_deadline)
                    }
                }
            }
        };
        match exit {
            Some(_) => self.kill_leftovers(kill_at, hard_deadline),
            None => self.overdue("CMD was not reaped after SIGKILL by the step-down deadline"),
        }
        exit
    }

    fn wait_exit_until(&mut self, deadline: BootInstant) -> Option<ChildExit> {
        loop {
            match self.wait_inner(Some(deadline), false) {
                Event::ChildExited(exit) => return Some(exit),
                Event::Timeout => return None,
                Event::Signal(sig) => {
                    log::debug!("ignoring {} while stopping CMD", signal_name(sig))
                }
                Event::Nudge => {}
            }
        }
    }
}

/// What Rust's runtime start-up would do and the binary skips (it starts at the C `main`),
/// first thing in the process:
/// - file descriptors 0, 1 and 2 open: a closed one is opened on `/dev/null`. Otherwise the
///   first file or socket we open would take its number, and log lines meant for stderr
///   would go into, say, the API connection. Best effort: without `/dev/null` it stays closed.
/// - SIGPIPE ignored, so a closed stdout or stderr is an `EPIPE` error, not our death. Whether
///   it was ignored already is remembered: the passthrough [`exec`] hands it back as it was;
///   in election mode CMD gets every disposition at its default.
pub fn init_process() {
    for fd in 0..3 {
        if sys::fd_is_closed(fd) {
            // open(2) returns the lowest free descriptor, which is `fd`: the ones below it are
            // open (we went in order).
            let got = sys::open_dev_null();
            if got > fd {
                // Cannot happen (see above); never leak a descriptor into CMD.
                sys::close(got);
            }
        }
    }
    if let Ok(was_ignored) = sys::ignore_signal_was_ignored(sys::SIGPIPE) {
        SIGPIPE_WAS_IGNORED.store(was_ignored, Ordering::Relaxed);
    }
}

/// SIGPIPE was ignored when the process started (set by [`init_process`], read by [`exec`]).
static SIGPIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);

/// True when this process is PID 1 (of its PID namespace).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(ChildExit::Code(0).exit_code(), 0);
        assert_eq!(ChildExit::Code(42).exit_code(), 42);
        assert_eq!(ChildExit::Signaled(sys::SIGKILL).exit_code(), 137);
        assert_eq!(ChildExit::Signaled(sys::SIGSEGV).exit_code(), 139);
        assert_eq!(
            ChildExit::Signaled(sys::SIGTERM).to_string(),
            "killed by SIGTERM"
        );
        assert_eq!(ChildExit::Code(3).to_string(), "exited with code 3");
    }

    #[test]
    fn wait_status_decoding() {
        // Encodings per wait(2): exit code in bits 8..15, terminating signal in bits 0..6.
        assert_eq!(
            ChildExit::from_wait_status(42 << 8),
            Some(ChildExit::Code(42))
        );
        assert_eq!(ChildExit::from_wait_status(9), Some(ChildExit::Signaled(9)));
        assert_eq!(
            ChildExit::from_wait_status(11 | 0x80),
            Some(ChildExit::Signaled(11))
        );
        assert_eq!(ChildExit::from_wait_status(0x137f), None); // stopped by SIGSTOP
    }

    #[test]
    fn install_refuses_other_threads() {
        // Test harness threads are never the main thread.
        let err = std::thread::spawn(|| Supervisor::install(SignalTarget::Child).err())
            .join()
            .ok()
            .flatten();
        assert!(matches!(err, Some(e) if e.kind() == io::ErrorKind::InvalidInput));
    }
}
