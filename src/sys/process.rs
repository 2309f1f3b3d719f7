//! This process and its children: who we are ([`getpid`], [`on_main_thread`]), adopting
//! orphans ([`become_child_subreaper`]), reaping and reading wait statuses ([`reap_one`],
//! [`exit_code_of`], [`term_signal_of`]), asking about children without reaping
//! ([`is_unreaped_child`], [`has_children`]), pinning a process by pidfd ([`pidfd_open`],
//! [`pidfd_send_signal`]), and our own standard descriptors ([`fd_is_closed`],
//! [`open_dev_null`], [`close`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, Pid};

/// Our pid (`getpid(2)`).
pub(crate) fn getpid() -> Pid {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// True when the calling thread is the process's main thread (its thread id is the pid).
pub(crate) fn on_main_thread() -> bool {
    // SAFETY: getpid/gettid take no arguments and cannot fail.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    libc::c_long::from(pid) == tid
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are re-parented to us, not to init.
pub(crate) fn become_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `waitpid(-1, WNOHANG)`: reap one exited child, if any: its pid and raw wait status. `None`
/// when children remain but none exited, or there are no children at all.
pub(crate) fn reap_one() -> Option<(Pid, i32)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid writable int; WNOHANG makes this non-blocking.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    // 0: children remain but none exited; -1/ECHILD: no children at all.
    // (EINTR is impossible with WNOHANG.)
    (pid > 0).then_some((pid, status))
}

/// The exit code in a wait status, if the child exited normally.
pub(crate) fn exit_code_of(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

/// The terminating signal in a wait status, if a signal killed the child.
pub(crate) fn term_signal_of(status: i32) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

/// True when `pid` is our child (exited or not) and not reaped yet:
/// `waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT)`, which fails with ECHILD for anything that is
/// not our child and consumes nothing.
pub(crate) fn is_unreaped_child(pid: Pid) -> bool {
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
pub(crate) fn has_children() -> bool {
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
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
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
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
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
pub(crate) fn fd_is_closed(fd: i32) -> bool {
    // SAFETY: F_GETFD only asks whether `fd` is open; it touches nothing.
    (unsafe { libc::fcntl(fd, libc::F_GETFD) }) == -1
        && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
}

/// Open `/dev/null` read-write on the lowest free descriptor; returns it (-1 on failure).
pub(crate) fn open_dev_null() -> i32 {
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) }
}

/// Close `fd`, a descriptor the caller owns and nothing else uses.
pub(crate) fn close(fd: i32) {
    // SAFETY: the caller owns `fd`; closing it affects no memory.
    unsafe { libc::close(fd) };
}

/// `access(path, X_OK)`: may we execute `path` (permissions, a `noexec` mount)? `EACCES` if not.
pub(crate) fn access_executable(path: &std::ffi::OsStr) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command"))?;
    // SAFETY: a valid NUL-terminated path that outlives the call; access only reads it.
    cvt(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(drop)
}

/// Test helper: run `child` in a forked child of this process and return its raw wait status
/// (`_exit(0)` if `child` returns). `child` must only make async-signal-safe calls: other test
/// threads may hold locks at the fork.
#[cfg(test)]
pub(crate) fn wait_status_of_forked(child: &dyn Fn()) -> i32 {
    // SAFETY: fork has no memory-safety preconditions; the child runs only `child`, which the
    // caller promises is async-signal-safe, then _exit (no destructors, no atexit handlers).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        child();
        // SAFETY: _exit is async-signal-safe and ends the child.
        unsafe { libc::_exit(0) };
    }
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid writable int; `pid` is our unreaped child.
    let got = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(got, pid, "waitpid: {}", io::Error::last_os_error());
    status
}
