//! Process supervision: start CMD, forward signals to it, reap it (and any orphan we adopt),
//! and turn its exit status into an exit code. This module knows processes, not Kubernetes,
//! and it is the only place in the crate that calls `libc` (every `unsafe` block says why it is
//! sound).
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
//! SIGVTALRM, SIGPROF and the real-time signals — except:
//! - the synchronous fault signals SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS:
//!   the kernel raises them for *our* faults; blocking them would turn a crash into a hang, so
//!   they keep their default action (a `kill -SEGV` from outside kills us, as with tini);
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
//! **Child vs group** ([`SignalTarget`]): by default (`Child`, like tini) a signal goes to
//! CMD's pid only; CMD stays in our process group and is expected to pass signals on to its
//! own children (a proper server does). `Group` (like dumb-init's default and `tini -g`) starts
//! CMD in its own process group (`setpgid(0, 0)` in the child, and gives it the terminal if we
//! had it) and signals `-pgid`, which reaches shell pipelines and helpers that CMD forgets to
//! notify; on step-down the SIGKILL also goes to the whole group.
//!
//! **Reaping**: unless we are PID 1 (which inherits every orphan of its PID namespace anyway) we
//! become a child subreaper (`PR_SET_CHILD_SUBREAPER`), so descendants of CMD that lose their
//! parent are re-parented to us rather than to the host's init. Every [`Supervisor::wait`]
//! drains `waitpid(-1, WNOHANG)` until nothing is left, so adopted orphans never stay zombies;
//! only CMD's status is reported. SIGCHLD is reset to `SIG_DFL` at install: an inherited
//! `SIG_IGN` (or `SA_NOCLDWAIT`) would make the kernel auto-reap CMD and lose its status.
//! Nothing else in the process may spawn children (a `waitpid(-1)` would steal their status).
//!
//! **Leftovers**: on step-down ([`Supervisor::stop_child`]), once CMD is dead we also SIGKILL
//! what it left behind — its process group in `Group` mode, and in both modes every child we
//! adopted — so nothing CMD started keeps running after we gave up the lease, even when we are
//! a subreaper and not PID 1 (whose exit makes the kernel kill the whole namespace anyway).
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

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where forwarded signals go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalTarget {
    /// CMD's pid only (like tini). CMD stays in our process group.
    #[default]
    Child,
    /// CMD's process group: CMD runs in a new group (like dumb-init, `tini -g`).
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

    fn from_wait_status(status: libc::c_int) -> Option<ChildExit> {
        if libc::WIFEXITED(status) {
            Some(ChildExit::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ChildExit::Signaled(libc::WTERMSIG(status)))
        } else {
            None // stopped / continued: not an exit (we never ask for those, but be safe)
        }
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

/// CMD could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// `argv[0]` was not found (not in PATH, or the path does not exist). Exit code 127.
    NotFound(String),
    /// `argv[0]` exists but cannot be executed (permissions, a directory, bad format). Exit 126.
    NotExecutable(String),
    /// Anything else: (`argv[0]`, cause). Exit code 126.
    Other(String, io::Error),
}

impl SpawnError {
    /// The shell's convention: 127 for "command not found", 126 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound(_) => 127,
            SpawnError::NotExecutable(_) | SpawnError::Other(..) => 126,
        }
    }

    fn classify(argv0: &std::ffi::OsStr, err: io::Error) -> SpawnError {
        let name = argv0.to_string_lossy().into_owned();
        match err.raw_os_error() {
            Some(libc::ENOENT) => SpawnError::NotFound(name),
            Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR) | Some(libc::EPERM) => {
                SpawnError::NotExecutable(name)
            }
            _ => SpawnError::Other(name, err),
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound(cmd) if cmd.contains('/') => {
                write!(f, "cannot run CMD {cmd:?}: no such file")
            }
            SpawnError::NotFound(cmd) => {
                write!(f, "cannot run CMD {cmd:?}: not found in PATH")
            }
            SpawnError::NotExecutable(cmd) => {
                write!(
                    f,
                    "cannot run CMD {cmd:?}: not executable (permission denied or not a program)"
                )
            }
            SpawnError::Other(cmd, err) => write!(f, "cannot run CMD {cmd:?}: {err}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Other(_, err) => Some(err),
            _ => None,
        }
    }
}

/// Wakes the main thread out of [`Supervisor::wait`]. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Waker {
    flag: Arc<AtomicBool>,
    pid: libc::pid_t,
}

impl Waker {
    /// Make the main thread's current or next [`Supervisor::wait`] return [`Event::Nudge`]
    /// promptly. Never blocks; safe to call from any thread, any number of times.
    pub fn wake(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // SAFETY: kill(2) with our own pid and a valid signal number has no memory-safety
        // preconditions. SIGCHLD is blocked in every thread, so it stays pending until the main
        // thread's sigtimedwait collects it; its default action is "ignore" in any case.
        let _ = unsafe { libc::kill(self.pid, libc::SIGCHLD) };
    }
}

/// The running CMD, known to be unreaped while this exists.
#[derive(Debug)]
struct Running {
    pid: libc::pid_t,
}

/// Owns the signal mask, CMD and the reaping of every child. See the module docs.
pub struct Supervisor {
    target: SignalTarget,
    /// Signals collected by sigtimedwait: the blocked set plus SIGCHLD.
    waited: libc::sigset_t,
    child: Option<Running>,
    /// CMD was reaped but its exit not yet reported.
    exited: Option<ChildExit>,
    nudge: Arc<AtomicBool>,
    pid: libc::pid_t,
    /// Group mode: the process group of the last CMD, until its stragglers were killed.
    last_pgid: Option<libc::pid_t>,
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

/// Signals we never block (see the module docs for why).
const NOT_BLOCKED: [libc::c_int; 12] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGPIPE,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGKILL,
    libc::SIGSTOP,
];

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Supervisor {
    /// Must be called on the main thread before any other thread exists: blocks every signal we
    /// handle (all catchable ones except SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
    /// SIGSYS, SIGPIPE, SIGTTIN, SIGTTOU), so threads spawned later inherit the mask and only
    /// the main thread takes them, via `sigtimedwait`. Ignores SIGPIPE, SIGTTIN and SIGTTOU,
    /// sets SIGCHLD to `SIG_DFL`, and, unless we are PID 1, becomes a child subreaper.
    ///
    /// Fails (`InvalidInput`) when called from a thread other than the main one.
    pub fn install(target: SignalTarget) -> io::Result<Supervisor> {
        // SAFETY: getpid/gettid take no arguments and cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
        if libc::c_long::from(pid) != tid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Supervisor::install must run on the main thread",
            ));
        }

        let mut blocked = empty_sigset();
        // SAFETY: `blocked` is a valid, initialised sigset_t we own; sigfillset/sigdelset only
        // write inside it. sigdelset can fail only for an invalid signal number (none here).
        unsafe {
            cvt(libc::sigfillset(&mut blocked))?;
            for sig in NOT_BLOCKED {
                libc::sigdelset(&mut blocked, sig);
            }
        }
        // SAFETY: both pointers refer to valid sigset_t values; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }

        // SIGCHLD must keep SIG_DFL (not SIG_IGN, not SA_NOCLDWAIT) or the kernel auto-reaps
        // CMD. SA_NOCLDSTOP: no SIGCHLD when CMD is merely stopped or continued.
        set_disposition(libc::SIGCHLD, libc::SIG_DFL, libc::SA_NOCLDSTOP)?;
        // A broken pipe must be an error to handle, never a reason to die.
        set_disposition(libc::SIGPIPE, libc::SIG_IGN, 0)?;
        // Never be stopped by terminal job control (tini does the same).
        set_disposition(libc::SIGTTIN, libc::SIG_IGN, 0)?;
        set_disposition(libc::SIGTTOU, libc::SIG_IGN, 0)?;

        if pid == 1 {
            log::debug!("running as PID 1: orphans of the PID namespace are ours to reap");
        } else {
            // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
            let rc =
                unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
            if rc == -1 {
                // Not fatal: CMD still runs; only its orphans go to the real init instead of us.
                log::warn!(
                    "cannot become a child subreaper ({}); orphans of CMD will not be reaped by us",
                    io::Error::last_os_error()
                );
            } else {
                log::debug!("registered as child subreaper");
            }
        }

        let mut waited = blocked;
        // SAFETY: `waited` is a valid sigset_t we own; SIGCHLD is a valid signal number.
        unsafe { libc::sigaddset(&mut waited, libc::SIGCHLD) };

        Ok(Supervisor {
            target,
            waited,
            child: None,
            exited: None,
            nudge: Arc::new(AtomicBool::new(false)),
            pid,
            last_pgid: None,
            _main_thread_only: PhantomData,
        })
    }

    /// A handle other threads use to interrupt [`wait`](Self::wait).
    pub fn waker(&self) -> Waker {
        Waker {
            flag: Arc::clone(&self.nudge),
            pid: self.pid,
        }
    }

    /// Where forwarded signals go.
    pub fn target(&self) -> SignalTarget {
        self.target
    }

    /// CMD's pid while it runs (until it has been reaped).
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid as u32)
    }

    /// Start CMD (`argv[0]` looked up in PATH) with a clean process state: every signal
    /// disposition `SIG_DFL`, an empty signal mask, inherited stdio and environment,
    /// `PR_SET_PDEATHSIG = SIGKILL`, and in `Group` mode its own process group. Call from the
    /// main thread (the parent-death signal is tied to the forking thread). At most one CMD at a
    /// time: spawning while one runs, or before its exit was reported, is an error.
    pub fn spawn(&mut self, argv: &[OsString]) -> Result<u32, SpawnError> {
        let Some((program, args)) = argv.split_first() else {
            return Err(SpawnError::Other(
                String::new(),
                io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
            ));
        };
        if self.child.is_some() || self.exited.is_some() {
            return Err(SpawnError::Other(
                program.to_string_lossy().into_owned(),
                io::Error::other("a CMD is already running (or its exit was not collected)"),
            ));
        }

        let group = self.target == SignalTarget::Group;
        let parent = self.pid;
        let mut cmd = Command::new(program);
        cmd.args(args);
        let rtmax = libc::SIGRTMAX();
        // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
        // operations are allowed. `child_setup` only makes raw syscalls through libc (tcgetpgrp,
        // getpgrp, setpgid, tcsetpgrp, getpid, prctl, getppid, rt_sigaction, sigemptyset,
        // sigprocmask), captures only Copy values, and neither allocates nor takes locks;
        // `io::Error::last_os_error` / `from_raw_os_error` do not allocate.
        unsafe {
            cmd.pre_exec(move || child_setup(group, parent, rtmax));
        }
        let child = cmd.spawn().map_err(|e| SpawnError::classify(program, e))?;
        // Dropping `child` neither waits nor kills: we reap with waitpid(-1) ourselves.
        let pid = child.id();
        drop(child);
        self.child = Some(Running {
            pid: pid as libc::pid_t,
        });
        if group {
            self.last_pgid = Some(pid as libc::pid_t);
        }
        log::info!("started CMD (pid {pid})");
        Ok(pid)
    }

    /// Block until something happens: a signal arrived ([`Event::Signal`], never SIGCHLD), CMD
    /// exited ([`Event::ChildExited`], reported once), a [`Waker::wake`] ([`Event::Nudge`]), or
    /// `deadline` passed ([`Event::Timeout`]; `None` = no deadline). Every call reaps every
    /// exited child it can; SIGCHLD for an orphan is consumed here and does not return.
    /// A signal that is already pending is reported even if `deadline` has passed.
    pub fn wait(&mut self, deadline: Option<Instant>) -> Event {
        self.wait_inner(deadline, true)
    }

    fn wait_inner(&mut self, deadline: Option<Instant>, take_nudge: bool) -> Event {
        loop {
            self.reap();
            if let Some(exit) = self.exited.take() {
                return Event::ChildExited(exit);
            }
            if take_nudge && self.nudge.swap(false, Ordering::SeqCst) {
                return Event::Nudge;
            }
            match self.next_signal(deadline) {
                Some(libc::SIGCHLD) => continue, // reap at the top of the loop
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

    /// One sigtimedwait until `deadline`; `None` on timeout.
    fn next_signal(&self, deadline: Option<Instant>) -> Option<libc::c_int> {
        loop {
            let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
            let ts_ptr = timeout
                .as_ref()
                .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
            // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `self.waited` is a valid sigset_t, `info` is writable, and `ts_ptr` is
            // either null (wait forever) or points to `timeout`, which outlives the call.
            let sig = unsafe { libc::sigtimedwait(&self.waited, &mut info, ts_ptr) };
            if sig > 0 {
                if sig != libc::SIGCHLD {
                    // SAFETY: si_pid reads a field of the union that is valid to read for
                    // signals sent by kill/sigqueue (and is 0 otherwise); the value is only logged.
                    let sender = unsafe { info.si_pid() };
                    log::debug!("received {} from pid {sender}", signal_name(sig));
                }
                return Some(sig);
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return None,
                Some(libc::EINTR) => continue, // e.g. after a stop/continue of this process
                _ => {
                    // EINVAL (bad timeout) cannot happen; don't spin if it somehow does.
                    log::error!("sigtimedwait failed: {}", io::Error::last_os_error());
                    std::thread::sleep(Duration::from_millis(100));
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return None;
                    }
                }
            }
        }
    }

    /// Reap every exited child without blocking; record CMD's status if it was among them.
    fn reap(&mut self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: `status` is a valid writable int; WNOHANG makes this non-blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                // 0: children remain but none exited; -1/ECHILD: no children at all.
                // (EINTR is impossible with WNOHANG.)
                return;
            }
            let Some(exit) = ChildExit::from_wait_status(status) else {
                continue;
            };
            if self.child.as_ref().is_some_and(|c| c.pid == pid) {
                self.child = None;
                match exit {
                    ChildExit::Code(code) => log::info!("CMD exited with code {code}"),
                    ChildExit::Signaled(sig) => log::info!("CMD killed by {}", signal_name(sig)),
                }
                self.exited = Some(exit);
            } else {
                log::debug!("reaped orphan pid {pid} ({exit})");
            }
        }
    }

    /// Send `sig` to CMD (or to its process group in `Group` mode). `Ok` without doing anything
    /// when no CMD runs. Only signals a pid we have not reaped, so the pid cannot have been
    /// reused by another process.
    pub fn forward(&self, sig: i32) -> io::Result<()> {
        let Some(child) = &self.child else {
            log::debug!("not forwarding {}: no CMD running", signal_name(sig));
            return Ok(());
        };
        log::debug!("forwarding {} to CMD (pid {})", signal_name(sig), child.pid);
        self.signal_child(child.pid, sig)
    }

    fn signal_child(&self, pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
        let target = match self.target {
            SignalTarget::Child => pid,
            // CMD is its group's leader (setpgid(0, 0)), so pgid == pid; while CMD is unreaped
            // the group id cannot be reused.
            SignalTarget::Group => -pid,
        };
        // SAFETY: kill(2) has no memory-safety preconditions.
        match cvt(unsafe { libc::kill(target, sig) }) {
            // CMD left the group we made for it (setpgid to another group): signal CMD itself.
            Err(e) if target < 0 && e.raw_os_error() == Some(libc::ESRCH) => {
                // SAFETY: as above; `pid` is CMD, known unreaped.
                cvt(unsafe { libc::kill(pid, sig) }).map(drop)
            }
            other => other.map(drop),
        }
    }

    /// Step-down helper: SIGTERM CMD (or its group), wait until `kill_at`, then SIGKILL (the
    /// group too in `Group` mode) and wait until it is reaped or `hard_deadline` passes. Signals
    /// arriving meanwhile are ignored (logged at debug); a pending [`Waker::wake`] is kept for the
    /// next [`wait`](Self::wait). Returns CMD's exit, or `None` if no CMD was running or it could
    /// not be reaped by `hard_deadline` (only a process stuck in uninterruptible sleep does that;
    /// CMD then stays known and a later `wait` still reports it).
    ///
    /// Once CMD is gone, whatever it left behind is killed too (until `hard_deadline`): in
    /// `Group` mode its process group, and in both modes every child we adopted (see
    /// [`kill_leftovers`](Self::kill_leftovers)), so nothing CMD started outlives a step-down.
    pub fn stop_child(&mut self, kill_at: Instant, hard_deadline: Instant) -> Option<ChildExit> {
        self.reap();
        let exit = match self.exited.take() {
            Some(exit) => Some(exit),
            None => {
                let pid = self.child.as_ref()?.pid;
                log::info!("stopping CMD (pid {pid}): sending SIGTERM");
                if let Err(err) = self.signal_child(pid, libc::SIGTERM) {
                    log::warn!("cannot send SIGTERM to CMD: {err}");
                }
                match self.wait_exit_until(kill_at) {
                    Some(exit) => Some(exit),
                    None => {
                        log::warn!("CMD (pid {pid}) did not exit in time: sending SIGKILL");
                        if let Err(err) = self.signal_child(pid, libc::SIGKILL) {
                            log::warn!("cannot send SIGKILL to CMD: {err}");
                        }
                        self.wait_exit_until(hard_deadline)
                    }
                }
            }
        };
        match exit {
            Some(_) => self.kill_leftovers(hard_deadline),
            None => log::error!("CMD was not reaped after SIGKILL"),
        }
        exit
    }

    fn wait_exit_until(&mut self, deadline: Instant) -> Option<ChildExit> {
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

    /// True when CMD has been reaped and no process it left behind is known to remain (as
    /// far as `/proc` shows: without a `/proc` of our PID namespace, leftovers are invisible).
    pub fn nothing_left(&mut self) -> bool {
        self.reap();
        self.child.is_none() && own_children(self.pid).is_empty()
    }

    /// After CMD has exited: SIGKILL what it left behind and reap it, until nothing is left or
    /// `deadline` passes. In `Group` mode that is first CMD's process group; then, in both modes,
    /// every remaining child of ours — we start nothing but CMD, so these are CMD's descendants
    /// that we adopted as PID 1 / subreaper — repeated for the orphans each kill creates.
    /// `stop_child` does this itself; call it before exiting when CMD ended on its own and its
    /// leftovers must not outlive us (as PID 1 the kernel kills them when we exit anyway).
    ///
    /// Children are found by scanning `/proc` (skipped, with a debug line, if `/proc` is not
    /// mounted or belongs to another PID namespace) and each is confirmed to be our own child
    /// with `waitid(WNOWAIT)` before the kill. An unreaped child's pid cannot be reused, and
    /// only this thread reaps, so no unrelated process can be hit.
    pub fn kill_leftovers(&mut self, deadline: Instant) {
        if self.child.is_some() {
            return; // CMD still runs: nothing is a leftover yet
        }
        if let Some(pgid) = self.last_pgid.take() {
            // SAFETY: kill(2) has no memory-safety preconditions. ESRCH (group empty) is
            // expected. The pgid was CMD's pid, reaped moments ago; it can only be reused once
            // no process holds it as pid or pgid *and* the pid space has wrapped around.
            if unsafe { libc::kill(-pgid, libc::SIGKILL) } == 0 {
                log::info!("killed what was left of CMD's process group {pgid}");
            }
        }
        loop {
            self.reap();
            let leftovers = own_children(self.pid);
            if leftovers.is_empty() {
                return;
            }
            for &pid in &leftovers {
                log::info!("killing pid {pid}, left behind by CMD");
                // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our unreaped
                // child (checked by own_children), so it names that process and no other.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // Wait for their SIGCHLD (others are ignored, a wake stays pending in the flag).
            loop {
                match self.next_signal(Some(deadline)) {
                    Some(libc::SIGCHLD) => break,
                    Some(sig) => {
                        log::debug!("ignoring {} while killing leftovers", signal_name(sig))
                    }
                    None => {
                        self.reap();
                        let left = own_children(self.pid);
                        if !left.is_empty() {
                            log::error!("processes left behind by CMD are still there: {left:?}");
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// Our children (any state), from `/proc`; empty if `/proc` is missing or not of our PID
/// namespace. Each pid is confirmed with `waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT)`, which
/// fails with ECHILD for anything that is not our child and consumes nothing.
fn own_children(me: libc::pid_t) -> Vec<libc::pid_t> {
    let proc_self_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<libc::pid_t>().ok()));
    if proc_self_pid != Some(me) {
        log::debug!("/proc is not mounted for our PID namespace: cannot look for leftovers");
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may contain anything, so split after the last ')'.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<libc::pid_t>().ok());
        if ppid == Some(me) && is_own_child(pid) {
            out.push(pid);
        }
    }
    out
}

fn is_own_child(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid; waitid writes into it. WNOWAIT leaves a zombie
    // in place, WNOHANG makes the call non-blocking.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        ) == 0
    }
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit array; all-zero is a valid (empty) value, and
    // sigemptyset makes it canonically empty.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

fn set_disposition(
    sig: libc::c_int,
    handler: libc::sighandler_t,
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value; we fill in the handler (SIG_DFL or
    // SIG_IGN only, never a function), flags and an empty mask, and pass valid pointers.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        cvt(libc::sigaction(sig, &action, std::ptr::null_mut())).map(drop)
    }
}

fn timespec(d: Duration) -> libc::timespec {
    // Cap at a day: a longer wait just loops; avoids time_t overflow on 32-bit targets.
    let d = d.min(Duration::from_secs(86_400));
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    }
}

/// Runs in the forked child between fork and exec (or in this process right before a
/// passthrough exec): only async-signal-safe raw syscalls, no allocation, no locks.
fn child_setup(group: bool, parent: libc::pid_t, rtmax: libc::c_int) -> io::Result<()> {
    // SAFETY: all calls are async-signal-safe libc wrappers over syscalls, given valid
    // arguments (fd 0, our own pid/pgid, valid signal numbers, pointers to locals).
    unsafe {
        if group {
            // Is our parent's group in the foreground of a terminal on stdin? (-1/ENOTTY if
            // stdin is not a tty.) Ask before leaving that group.
            let had_terminal = libc::tcgetpgrp(0) == libc::getpgrp();
            cvt(libc::setpgid(0, 0))?;
            if had_terminal {
                // Hand the terminal to CMD's new group, as tini -g does, or an interactive CMD
                // would be stopped by SIGTTIN on its first read. SIGTTOU is still ignored here
                // (inherited), so this cannot stop us. Best effort.
                libc::tcsetpgrp(0, libc::getpid());
            }
        }
        if parent != 0 {
            // CMD must not outlive us. The parent-death signal fires when the forking *thread*
            // exits, so spawn from the main thread. If the parent already died before prctl,
            // we were re-parented: give up instead of running unsupervised.
            cvt(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ))?;
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        // Every disposition back to SIG_DFL: handlers are reset by exec anyway, but ignored
        // signals (ours: SIGPIPE, SIGTTIN, SIGTTOU; or inherited ones) survive exec. This uses
        // the raw rt_sigaction syscall because libc's sigaction() refuses the signals it
        // reserves (glibc: 32 and 33), and those do arrive ignored: glibc's posix_spawn, which
        // Rust's Command uses, leaves signal 32 at SIG_IGN in the processes it starts.
        // An all-zero kernel `struct sigaction` is SIG_DFL with no flags and an empty mask on
        // every architecture; 64 bytes is more than any of them reads.
        let dfl = [0u64; 8];
        let sigset_size = libc::c_long::from((rtmax + 1) / 8);
        for sig in 1..=rtmax {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(sig),
                    dfl.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    sigset_size,
                );
            }
        }
        // And an empty signal mask (std's Command inherits the parent's mask).
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        cvt(libc::sigprocmask(
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// Passthrough mode (no election): replace this process with CMD, `execvp` style (`argv[0]`
/// looked up in PATH); same PID, no fork. CMD gets the same clean signal state as in election
/// mode (dispositions `SIG_DFL`, empty mask). Returns only on failure.
pub fn exec(argv: &[OsString]) -> SpawnError {
    let Some((program, args)) = argv.split_first() else {
        return SpawnError::Other(
            String::new(),
            io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        );
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    let rtmax = libc::SIGRTMAX();
    // SAFETY: with exec() (no fork) the closure runs in this process right before execvp; it
    // only makes the raw libc calls of `child_setup` (no parent-death signal: parent = 0).
    unsafe {
        cmd.pre_exec(move || child_setup(false, 0, rtmax));
    }
    let err = cmd.exec();
    // Still here: exec failed after our dispositions were reset. Ignore SIGPIPE so reporting
    // the error cannot kill us on a closed pipe.
    let _ = set_disposition(libc::SIGPIPE, libc::SIG_IGN, 0);
    SpawnError::classify(program, err)
}

/// What Rust's runtime start-up would do and the binary skips (it starts at the C `main`),
/// first thing in the process:
/// - file descriptors 0, 1 and 2 open: a closed one is opened on `/dev/null`. Otherwise the
///   first file or socket we open would take its number, and log lines meant for stderr
///   would go into, say, the API connection. Best effort: without `/dev/null` it stays closed.
/// - SIGPIPE ignored, so a closed stdout or stderr is an `EPIPE` error, not our death (CMD
///   gets it back at its default action: every disposition is reset before exec).
pub fn init_process() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether `fd` is open; it touches nothing.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if closed {
            // SAFETY: a valid NUL-terminated path. open(2) returns the lowest free descriptor,
            // which is `fd`: the ones below it are open (we went in order).
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got > fd {
                // Cannot happen (see above); never leak a descriptor into CMD.
                // SAFETY: `got` is a descriptor we just opened and own.
                unsafe { libc::close(got) };
            }
        }
    }
    let _ = set_disposition(libc::SIGPIPE, libc::SIG_IGN, 0);
}

/// True when this process is PID 1 (of its PID namespace).
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

const RT_NAMES: [&str; 32] = [
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+16",
    "SIGRTMIN+17",
    "SIGRTMIN+18",
    "SIGRTMIN+19",
    "SIGRTMIN+20",
    "SIGRTMIN+21",
    "SIGRTMIN+22",
    "SIGRTMIN+23",
    "SIGRTMIN+24",
    "SIGRTMIN+25",
    "SIGRTMIN+26",
    "SIGRTMIN+27",
    "SIGRTMIN+28",
    "SIGRTMIN+29",
    "SIGRTMIN+30",
    "SIGRTMIN+31",
];

/// The conventional name of a signal number ("SIGTERM"); "SIGRTMIN+n" for real-time signals,
/// "unknown signal" otherwise.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => {
            let rt = sig - libc::SIGRTMIN();
            if sig <= libc::SIGRTMAX() && rt >= 0 {
                RT_NAMES
                    .get(rt as usize)
                    .copied()
                    .unwrap_or("unknown signal")
            } else {
                "unknown signal"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(ChildExit::Code(0).exit_code(), 0);
        assert_eq!(ChildExit::Code(42).exit_code(), 42);
        assert_eq!(ChildExit::Signaled(libc::SIGKILL).exit_code(), 137);
        assert_eq!(ChildExit::Signaled(libc::SIGSEGV).exit_code(), 139);
        assert_eq!(
            ChildExit::Signaled(libc::SIGTERM).to_string(),
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
    fn spawn_error_codes_and_messages() {
        let nf = SpawnError::classify("nope".as_ref(), io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(nf.exit_code(), 127);
        assert_eq!(nf.to_string(), "cannot run CMD \"nope\": not found in PATH");
        let ne = SpawnError::classify("/x".as_ref(), io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(ne, SpawnError::NotExecutable(_)));
        assert_eq!(ne.exit_code(), 126);
        let other = SpawnError::classify("x".as_ref(), io::Error::from_raw_os_error(libc::E2BIG));
        assert!(matches!(other, SpawnError::Other(..)));
        assert_eq!(other.exit_code(), 126);
        assert!(!other.to_string().contains('\n'));
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGWINCH), "SIGWINCH");
        assert_eq!(signal_name(libc::SIGRTMIN()), "SIGRTMIN");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "unknown signal");
        assert_eq!(signal_name(libc::SIGRTMAX() + 1), "unknown signal");
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
