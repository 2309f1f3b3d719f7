//! Signals: signal sets and the thread's mask ([`SigSet`], [`block`]), dispositions
//! ([`ignore_signal`], [`reset_sigchld`]), waiting for a blocked signal ([`sigtimedwait`]) and
//! sending one by pid ([`kill`]); the real-time range ([`sigrtmin`], [`sigrtmax`]).

use std::io;
use std::time::Duration;

use super::{cvt, Pid};

/// The lowest real-time signal number (`SIGRTMIN`, which the C library may reserve some above
/// the kernel's).
pub(crate) fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The highest real-time signal number (`SIGRTMAX`).
pub(crate) fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// `kill(2)`: send `sig` to `pid` (a process group when negative).
pub(crate) fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions. Which process `pid` names is the
    // caller's concern (see the callers: they only signal pids they have not reaped).
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub(crate) fn empty() -> SigSet {
        // SAFETY: sigset_t is a plain bit array; all-zero is a valid (empty) value, and
        // sigemptyset makes it canonically empty.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            SigSet(set)
        }
    }

    /// Every signal.
    pub(crate) fn full() -> io::Result<SigSet> {
        let mut set = SigSet::empty();
        // SAFETY: `set.0` is a valid, initialised sigset_t we own; sigfillset only writes
        // inside it.
        cvt(unsafe { libc::sigfillset(&mut set.0) })?;
        Ok(set)
    }

    /// Take `sig` out of the set (a no-op for an invalid signal number).
    pub(crate) fn remove(&mut self, sig: i32) {
        // SAFETY: `self.0` is a valid sigset_t we own; sigdelset only writes inside it and can
        // fail only for an invalid signal number.
        unsafe { libc::sigdelset(&mut self.0, sig) };
    }

    /// Put `sig` into the set (a no-op for an invalid signal number).
    pub(crate) fn add(&mut self, sig: i32) {
        // SAFETY: `self.0` is a valid sigset_t we own; sigaddset only writes inside it and can
        // fail only for an invalid signal number.
        unsafe { libc::sigaddset(&mut self.0, sig) };
    }
}

/// Add `set` to the calling thread's signal mask (`pthread_sigmask(SIG_BLOCK)`); threads
/// started later inherit it.
pub(crate) fn block(set: &SigSet) -> io::Result<()> {
    // SAFETY: both pointers refer to valid sigset_t values; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Set `sig`'s disposition; returns the previous handler.
fn set_disposition(
    sig: libc::c_int,
    handler: libc::sighandler_t,
    flags: libc::c_int,
) -> io::Result<libc::sighandler_t> {
    // SAFETY: an all-zero sigaction is a valid value; we fill in the handler (SIG_DFL or
    // SIG_IGN only, never a function), flags and an empty mask, and pass valid pointers
    // (`old` is written by the kernel).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        cvt(libc::sigaction(sig, &action, &mut old))?;
        Ok(old.sa_sigaction)
    }
}

/// Set `sig`'s disposition to `SIG_IGN`.
pub(crate) fn ignore_signal(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN, 0).map(drop)
}

/// Set `sig`'s disposition to `SIG_IGN`; true when it was ignored already.
pub(crate) fn ignore_signal_was_ignored(sig: i32) -> io::Result<bool> {
    set_disposition(sig, libc::SIG_IGN, 0).map(|old| old == libc::SIG_IGN)
}

/// Set `sig`'s disposition to `SIG_DFL`.
pub(crate) fn default_signal(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_DFL, 0).map(drop)
}

/// Set SIGCHLD's disposition to `SIG_DFL` with `SA_NOCLDSTOP` (no SIGCHLD when a child is
/// merely stopped or continued), and without `SA_NOCLDWAIT`: the kernel must not auto-reap.
pub(crate) fn reset_sigchld() -> io::Result<()> {
    set_disposition(libc::SIGCHLD, libc::SIG_DFL, libc::SA_NOCLDSTOP).map(drop)
}

fn timespec(d: Duration) -> libc::timespec {
    // Cap at a day: a longer wait just loops; avoids time_t overflow on 32-bit targets.
    let d = d.min(Duration::from_secs(86_400));
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    }
}

/// One signal taken by [`sigtimedwait`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    /// The signal number.
    pub(crate) sig: i32,
    /// The sender's pid (0 when the kernel raised it).
    pub(crate) sender: Pid,
    /// `si_code`: ≤ 0 when a process sent it (`SI_USER` from kill(2), `SI_QUEUE`, `SI_TKILL`,
    /// …), > 0 when the kernel raised it (a fault, a child's state change, …).
    pub(crate) code: i32,
}

impl Received {
    /// A process sent it (kill(2), sigqueue(3), tgkill(2)), not the kernel.
    pub(crate) fn sent_by_a_process(&self) -> bool {
        self.code <= 0
    }
}

/// `sigtimedwait(2)`: take one pending signal of `set` (blocked in this thread), waiting at
/// most `timeout` (`None`: forever; at most a day per call). `Ok(Some(received))`; `Ok(None)`
/// on timeout; `Err` otherwise (`Interrupted` after a stop/continue of this process).
pub(crate) fn sigtimedwait(
    set: &SigSet,
    timeout: Option<Duration>,
) -> io::Result<Option<Received>> {
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
        return Ok(Some(Received {
            sig,
            sender,
            code: info.si_code,
        }));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EAGAIN) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Real faults, raised by the CPU in the calling thread (not sent by anybody), for the tests
/// that check that a fault still ends the process whatever its signal mask.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) mod faults {
    /// SIGILL: `ud2`, the instruction defined to be invalid.
    pub(crate) fn illegal_instruction() {
        // SAFETY: `ud2` traps at once; no memory or register of ours is touched.
        unsafe { std::arch::asm!("ud2") };
    }

    /// SIGTRAP: `int3`, a breakpoint.
    pub(crate) fn breakpoint() {
        // SAFETY: `int3` traps at once; nothing of ours is touched (without a debugger the
        // default action of SIGTRAP ends the process).
        unsafe { std::arch::asm!("int3") };
    }

    /// SIGSEGV: a load from address 0, which is never mapped.
    pub(crate) fn null_load() {
        // SAFETY: the load faults before it completes; the register it would write is
        // declared as clobbered output, no Rust value is read or written.
        unsafe {
            std::arch::asm!(
                "mov {tmp}, qword ptr [{addr}]",
                addr = in(reg) 0usize,
                tmp = out(reg) _,
            )
        };
    }

    /// SIGFPE: an integer division by zero.
    pub(crate) fn divide_by_zero() {
        // SAFETY: `div` by a zero register traps before it writes eax/edx, which are declared
        // as clobbered anyway.
        unsafe {
            std::arch::asm!(
                "div {d:e}",
                d = in(reg) 0u32,
                inout("eax") 1u32 => _,
                inout("edx") 0u32 => _,
            )
        };
    }

    /// SIGABRT: the C library's `abort()`, which a Rust `panic = "abort"` ends in.
    pub(crate) fn abort() {
        // SAFETY: abort(3) has no preconditions; it does not return.
        unsafe { libc::abort() };
    }
}
