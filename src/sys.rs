//! The system calls of the crate: every `libc` call and every `unsafe` block lives here, each
//! behind a small safe function whose `// SAFETY:` comment says why it is sound. The rest of
//! the crate (the supervisor, and `clock` for the boot-time clock) speaks in terms of these
//! functions, the [`Pid`] type and the signal and errno numbers re-exported below; it knows
//! nothing of `libc`'s structs. A leaf: it knows nothing of the modules that use it.
//!
//! [`on_exec_restore_clean_state`] installs the code that runs between fork and exec: only
//! async-signal-safe raw syscalls there.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// A process id (or, negated, a process group id), as the kernel takes it.
pub(super) type Pid = libc::pid_t;

/// Signal numbers the supervisor names.
pub(super) use libc::{
    SIGABRT, SIGALRM, SIGBUS, SIGCHLD, SIGCONT, SIGFPE, SIGHUP, SIGILL, SIGINT, SIGIO, SIGKILL,
    SIGPIPE, SIGPROF, SIGPWR, SIGQUIT, SIGSEGV, SIGSTOP, SIGSYS, SIGTERM, SIGTRAP, SIGTSTP,
    SIGTTIN, SIGTTOU, SIGURG, SIGUSR1, SIGUSR2, SIGVTALRM, SIGWINCH, SIGXCPU, SIGXFSZ,
};

/// `errno` values the supervisor tells apart.
pub(super) use libc::{EACCES, EISDIR, ENOENT, ENOEXEC, EPERM, ESRCH};

#[cfg(test)]
pub(super) use libc::E2BIG;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The lowest real-time signal number (`SIGRTMIN`, which the C library may reserve some above
/// the kernel's).
pub(super) fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The highest real-time signal number (`SIGRTMAX`).
pub(super) fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Our pid (`getpid(2)`).
pub(super) fn getpid() -> Pid {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// True when the calling thread is the process's main thread (its thread id is the pid).
pub(super) fn on_main_thread() -> bool {
    // SAFETY: getpid/gettid take no arguments and cannot fail.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    libc::c_long::from(pid) == tid
}

/// `kill(2)`: send `sig` to `pid` (a process group when negative).
pub(super) fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions. Which process `pid` names is the
    // caller's concern (see the callers: they only signal pids they have not reaped).
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are re-parented to us, not to init.
pub(super) fn become_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub(super) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub(super) fn empty() -> SigSet {
        // SAFETY: sigset_t is a plain bit array; all-zero is a valid (empty) value, and
        // sigemptyset makes it canonically empty.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            SigSet(set)
        }
    }

    /// Every signal.
    pub(super) fn full() -> io::Result<SigSet> {
        let mut set = SigSet::empty();
        // SAFETY: `set.0` is a valid, initialised sigset_t we own; sigfillset only writes
        // inside it.
        cvt(unsafe { libc::sigfillset(&mut set.0) })?;
        Ok(set)
    }

    /// Take `sig` out of the set (a no-op for an invalid signal number).
    pub(super) fn remove(&mut self, sig: i32) {
        // SAFETY: `self.0` is a valid sigset_t we own; sigdelset only writes inside it and can
        // fail only for an invalid signal number.
        unsafe { libc::sigdelset(&mut self.0, sig) };
    }

    /// Put `sig` into the set (a no-op for an invalid signal number).
    pub(super) fn add(&mut self, sig: i32) {
        // SAFETY: `self.0` is a valid sigset_t we own; sigaddset only writes inside it and can
        // fail only for an invalid signal number.
        unsafe { libc::sigaddset(&mut self.0, sig) };
    }
}

/// Add `set` to the calling thread's signal mask (`pthread_sigmask(SIG_BLOCK)`); threads
/// started later inherit it.
pub(super) fn block(set: &SigSet) -> io::Result<()> {
    // SAFETY: both pointers refer to valid sigset_t values; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
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

/// Set `sig`'s disposition to `SIG_IGN`.
pub(super) fn ignore_signal(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN, 0)
}

/// Set SIGCHLD's disposition to `SIG_DFL` with `SA_NOCLDSTOP` (no SIGCHLD when a child is
/// merely stopped or continued), and without `SA_NOCLDWAIT`: the kernel must not auto-reap.
pub(super) fn reset_sigchld() -> io::Result<()> {
    set_disposition(libc::SIGCHLD, libc::SIG_DFL, libc::SA_NOCLDSTOP)
}

fn timespec(d: Duration) -> libc::timespec {
    // Cap at a day: a longer wait just loops; avoids time_t overflow on 32-bit targets.
    let d = d.min(Duration::from_secs(86_400));
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    }
}

/// `sigtimedwait(2)`: take one pending signal of `set` (blocked in this thread), waiting at
/// most `timeout` (`None`: forever; at most a day per call). `Ok(Some((signal, sender pid)))`,
/// the sender being 0 when the kernel raised it; `Ok(None)` on timeout; `Err` otherwise
/// (`Interrupted` after a stop/continue of this process).
pub(super) fn sigtimedwait(
    set: &SigSet,
    timeout: Option<Duration>,
) -> io::Result<Option<(i32, Pid)>> {
    let timeout = timeout.map(timespec);
    let ts_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set.0` is a valid sigset_t, `info` is writable, and `ts_ptr` is either null
    // (wait forever) or points to `timeout`, which outlives the call.
    let sig = unsafe { libc::sigtimedwait(&set.0, &mut info, ts_ptr) };
    if sig > 0 {
        // SAFETY: si_pid reads a field of the union that is valid to read for signals sent by
        // kill/sigqueue (and is 0 otherwise).
        let sender = unsafe { info.si_pid() };
        return Ok(Some((sig, sender)));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EAGAIN) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// `waitpid(-1, WNOHANG)`: reap one exited child, if any: its pid and raw wait status. `None`
/// when children remain but none exited, or there are no children at all.
pub(super) fn reap_one() -> Option<(Pid, i32)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid writable int; WNOHANG makes this non-blocking.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    // 0: children remain but none exited; -1/ECHILD: no children at all.
    // (EINTR is impossible with WNOHANG.)
    (pid > 0).then_some((pid, status))
}

/// The exit code in a wait status, if the child exited normally.
pub(super) fn exit_code_of(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

/// The terminating signal in a wait status, if a signal killed the child.
pub(super) fn term_signal_of(status: i32) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

/// True when `pid` is our child (exited or not) and not reaped yet:
/// `waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT)`, which fails with ECHILD for anything that is
/// not our child and consumes nothing.
pub(super) fn is_unreaped_child(pid: Pid) -> bool {
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

/// True while we have any child at all, exited or not (`waitid(P_ALL, WEXITED|WNOHANG|
/// WNOWAIT)` succeeds); false only on ECHILD. Consumes nothing.
pub(super) fn has_children() -> bool {
    // SAFETY: an all-zero siginfo_t is valid; waitid writes into it. WNOWAIT leaves any
    // zombie in place, WNOHANG makes the call non-blocking.
    let rc = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // Any error but ECHILD (none is expected) counts as "children may exist".
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD)
}

/// `pidfd_open(2)`: a descriptor that refers to process `pid` itself, not to its number: a
/// signal sent through it can only reach that process (ESRCH once it is gone, even if the
/// number was reused). ENOSYS before Linux 5.3 (or where a seccomp filter refuses it).
pub(super) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (0) by value and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::c_long::from(pid), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd`, a new descriptor nothing else in the process
    // knows of, so the OwnedFd is its only owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`: send `sig` to the process `pidfd` refers to (signal 0: only check
/// that it still exists, zombie or not).
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a valid open descriptor, a signal number, a null siginfo (allowed: the kernel
    // fills in one as for kill(2)) and flags 0; no memory of ours is written.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            libc::c_long::from(pidfd.as_raw_fd()),
            libc::c_long::from(sig),
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_long,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True when file descriptor `fd` is closed (`fcntl(F_GETFD)` fails with EBADF).
pub(super) fn fd_is_closed(fd: i32) -> bool {
    // SAFETY: F_GETFD only asks whether `fd` is open; it touches nothing.
    (unsafe { libc::fcntl(fd, libc::F_GETFD) }) == -1
        && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
}

/// Open `/dev/null` read-write on the lowest free descriptor; returns it (-1 on failure).
pub(super) fn open_dev_null() -> i32 {
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) }
}

/// Close `fd`, a descriptor the caller owns and nothing else uses.
pub(super) fn close(fd: i32) {
    // SAFETY: the caller owns `fd`; closing it affects no memory.
    unsafe { libc::close(fd) };
}

/// Make `cmd` give the program it starts a clean process state right before exec: every
/// signal disposition `SIG_DFL`, an empty signal mask; with `group`, a new process group (that
/// takes over the terminal if ours had it); with `parent`, `PR_SET_PDEATHSIG = SIGKILL`
/// (and exec fails if `parent` is no longer our parent by then). `parent` must be our pid,
/// and the command spawned from the main thread; `None` for an exec without fork.
pub(super) fn on_exec_restore_clean_state(cmd: &mut Command, group: bool, parent: Option<Pid>) {
    let parent = parent.unwrap_or(0);
    let rtmax = libc::SIGRTMAX();
    // SAFETY: the closure runs in the forked child before exec (or, with `Command::exec`, in
    // this process right before execvp), where only async-signal-safe operations are allowed.
    // `child_setup` only makes raw syscalls through libc (tcgetpgrp, getpgrp, setpgid,
    // tcsetpgrp, getpid, prctl, getppid, rt_sigaction, sigemptyset, sigprocmask), captures only
    // Copy values, and neither allocates nor takes locks; `io::Error::last_os_error` /
    // `from_raw_os_error` do not allocate.
    unsafe {
        cmd.pre_exec(move || child_setup(group, parent, rtmax));
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

/// `CLOCK_BOOTTIME`: like the monotonic clock, but it keeps counting while the system is
/// suspended. `None` only if the kernel refuses the clock (older than 2.6.39).
pub(super) fn boot_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call; clock_gettime only
    // writes into it.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if ret != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}
