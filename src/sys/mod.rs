//! The system calls of the crate: every `libc` call and every `unsafe` block lives here, each
//! behind a small safe function whose `// SAFETY:` comment says why it is sound. The rest of
//! the crate (the supervisor, the status server, and `clock` for the boot-time clock) speaks in terms of these
//! functions, the [`Pid`] type and the signal and errno numbers re-exported below; it knows
//! nothing of `libc`'s structs. A leaf: it knows nothing of the modules that use it.
//!
//! [`fork_exec`] runs CMD's set-up between fork and exec: only async-signal-safe raw syscalls
//! there. [`exec_in_place`] is the passthrough exec, which leaves the signal state alone.
//!
//! By concept: [`signals`] (masks, dispositions, waiting for and sending signals), [`process`]
//! (this process, its children, pidfds, our standard descriptors), [`net`] (polling sockets,
//! the descriptor limit), [`exec`] (fork and exec of CMD, the clean state a started
//! program gets) and [`files`] (opening a file without blocking on a FIFO). Everything
//! is re-exported here: callers
//! name `sys::<item>`. This file keeps what they share ([`Pid`], the numbers, `cvt`) and the
//! boot-time clock.

mod exec;
mod files;
mod net;
mod process;
mod signals;

use std::io;
use std::time::Duration;

pub(super) use exec::{
    exec_in_place, fork_exec, reap_child, ExecImage, ExecOutcome, ExecReport, DEFAULT_PATH,
};
pub(super) use files::open_nonblocking;
pub(super) use net::{
    is_out_of_resources, nofile_soft_limit, poll, set_defer_accept, set_listen_backlog, PollFd,
};
#[cfg(test)]
pub(super) use process::wait_status_of_forked;
pub(super) use process::{
    access_executable, become_child_subreaper, close, exit_code_of, fd_is_closed, getpid,
    has_children, is_unreaped_child, on_main_thread, open_dev_null, pidfd_open, pidfd_send_signal,
    reap_one, term_signal_of,
};
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) use signals::faults;
pub(super) use signals::{
    block, ignore_signal, ignore_signal_was_ignored, kill, reset_sigchld, sigrtmax, sigrtmin,
    sigtimedwait, SigSet,
};

/// A process id (or, negated, a process group id), as the kernel takes it.
pub(super) type Pid = libc::pid_t;

/// Signal numbers the supervisor names.
pub(super) use libc::{
    SIGABRT, SIGALRM, SIGBUS, SIGCHLD, SIGCONT, SIGFPE, SIGHUP, SIGILL, SIGINT, SIGIO, SIGKILL,
    SIGPIPE, SIGPROF, SIGPWR, SIGQUIT, SIGSEGV, SIGSTOP, SIGSYS, SIGTERM, SIGTRAP, SIGTSTP,
    SIGTTIN, SIGTTOU, SIGURG, SIGUSR1, SIGUSR2, SIGVTALRM, SIGWINCH, SIGXCPU, SIGXFSZ,
};

/// `errno` values the supervisor tells apart.
pub(super) use libc::{EACCES, EISDIR, ENOENT, ENOEXEC, ENOTDIR, EPERM, ESRCH};

#[cfg(test)]
pub(super) use libc::E2BIG;

/// A system call's return value: `Err(errno)` for -1, the value otherwise.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
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
