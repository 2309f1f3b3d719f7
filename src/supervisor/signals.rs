//! Signals: the mask and dispositions [`Supervisor::install`] sets up, collecting signals with
//! `sigtimedwait`, forwarding them to CMD, the [`Waker`] other threads use to interrupt the main
//! thread, and signal names. See the parent module's docs for which signals are collected and
//! why.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::BootInstant;

use super::sys::{self, Pid, SigSet};
use super::{SignalTarget, Supervisor};

/// Signals we never block (see the module docs for why).
const NOT_BLOCKED: [i32; 5] = [
    sys::SIGPIPE,
    sys::SIGTTIN,
    sys::SIGTTOU,
    sys::SIGKILL,
    sys::SIGSTOP,
];

/// The signals the CPU raises for a fault of the running code. Blocked like the others, so that
/// one *sent* by another process is forwarded to CMD; a real fault still ends us, because the
/// kernel unblocks the signal and resets it to its default action when it forces it onto the
/// faulting thread.
const FAULTS: [i32; 7] = [
    sys::SIGSEGV,
    sys::SIGBUS,
    sys::SIGILL,
    sys::SIGFPE,
    sys::SIGABRT,
    sys::SIGTRAP,
    sys::SIGSYS,
];

/// Block every signal we handle in the calling (main) thread, ignore SIGPIPE, SIGTTIN and
/// SIGTTOU, and set SIGCHLD to `SIG_DFL`. Returns the set [`Supervisor::wait`] collects: the
/// blocked signals plus SIGCHLD.
pub(super) fn take_over() -> io::Result<SigSet> {
    let mut blocked = SigSet::full()?;
    for sig in NOT_BLOCKED {
        blocked.remove(sig);
    }
    sys::block(&blocked)?;

    // SIGCHLD must keep SIG_DFL (not SIG_IGN, not SA_NOCLDWAIT) or the kernel auto-reaps
    // CMD. SA_NOCLDSTOP: no SIGCHLD when CMD is merely stopped or continued.
    sys::reset_sigchld()?;
    // A broken pipe must be an error to handle, never a reason to die.
    sys::ignore_signal(sys::SIGPIPE)?;
    // Never be stopped by terminal job control (tini does the same).
    sys::ignore_signal(sys::SIGTTIN)?;
    sys::ignore_signal(sys::SIGTTOU)?;

    let mut waited = blocked;
    waited.add(sys::SIGCHLD);
    Ok(waited)
}

/// Wakes the main thread out of [`Supervisor::wait`]. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Waker {
    flag: Arc<AtomicBool>,
    pid: Pid,
}

impl Waker {
    /// A waker that raises `flag` and sends SIGCHLD to `pid` (our own).
    pub(super) fn new(flag: Arc<AtomicBool>, pid: Pid) -> Waker {
        Waker { flag, pid }
    }

    /// Make the main thread's current or next [`Supervisor::wait`] return
    /// [`Event::Nudge`](super::Event::Nudge) promptly. Never blocks; safe to call from any
    /// thread, any number of times.
    pub fn wake(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // SIGCHLD is blocked in every thread, so it stays pending until the main thread's
        // sigtimedwait collects it; its default action is "ignore" in any case.
        let _ = sys::kill(self.pid, sys::SIGCHLD);
    }
}

/// The longest single sleep while a deadline is set (see [`Supervisor::next_signal`]).
const WAIT_SLICE: Duration = Duration::from_secs(1);

impl Supervisor {
    /// The next signal, waiting until `deadline` at most; `None` once it has passed.
    ///
    /// `deadline` is on the boot-time clock, while `sigtimedwait` sleeps on the monotonic
    /// one, which stops while the node is suspended: each sleep is cut to [`WAIT_SLICE`], so a
    /// deadline that passed during a suspend is seen within that long of the resume.
    pub(super) fn next_signal(&self, deadline: Option<BootInstant>) -> Option<i32> {
        loop {
            let timeout = deadline.map(|d| d.remaining().min(WAIT_SLICE));
            match sys::sigtimedwait(&self.waited, timeout) {
                Ok(Some(got)) => {
                    let sig = got.sig;
                    if sig == sys::SIGCHLD {
                        return Some(sig);
                    }
                    if FAULTS.contains(&sig) && !got.sent_by_a_process() {
                        // The kernel raised it for us but did not force it (a real fault would
                        // have ended us): e.g. an advisory SIGBUS about a memory error. It is
                        // about this process, not CMD's business.
                        log::warn!(
                            "ignoring {} raised by the kernel (si_code {})",
                            signal_name(sig),
                            got.code
                        );
                        continue;
                    }
                    log::debug!("received {} from pid {}", signal_name(sig), got.sender);
                    return Some(sig);
                }
                Ok(None) if deadline.is_some_and(|d| BootInstant::now() < d) => continue,
                Ok(None) => return None,
                // E.g. after a stop/continue of this process.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // EINVAL (bad timeout) cannot happen; don't spin if it somehow does.
                    log::error!("sigtimedwait failed: {err}");
                    std::thread::sleep(Duration::from_millis(100));
                    if deadline.is_some_and(|d| BootInstant::now() >= d) {
                        return None;
                    }
                }
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

    /// Send `sig` to CMD, `pid` (known unreaped), or to its process group in `Group` mode.
    pub(super) fn signal_child(&self, pid: Pid, sig: i32) -> io::Result<()> {
        let target = match self.target {
            SignalTarget::Child => pid,
            // CMD is its group's leader (setpgid(0, 0)), so pgid == pid; while CMD is unreaped
            // the group id cannot be reused.
            SignalTarget::Group => -pid,
        };
        match sys::kill(target, sig) {
            // CMD left the group we made for it (setpgid to another group): signal CMD itself.
            Err(e) if target < 0 && e.raw_os_error() == Some(sys::ESRCH) => sys::kill(pid, sig),
            other => other,
        }
    }
}

/// True for the signals that ask us to stop: SIGTERM, SIGINT and SIGQUIT.
pub fn is_stop_signal(sig: i32) -> bool {
    sig == sys::SIGTERM || sig == sys::SIGINT || sig == sys::SIGQUIT
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
        sys::SIGHUP => "SIGHUP",
        sys::SIGINT => "SIGINT",
        sys::SIGQUIT => "SIGQUIT",
        sys::SIGILL => "SIGILL",
        sys::SIGTRAP => "SIGTRAP",
        sys::SIGABRT => "SIGABRT",
        sys::SIGBUS => "SIGBUS",
        sys::SIGFPE => "SIGFPE",
        sys::SIGKILL => "SIGKILL",
        sys::SIGUSR1 => "SIGUSR1",
        sys::SIGSEGV => "SIGSEGV",
        sys::SIGUSR2 => "SIGUSR2",
        sys::SIGPIPE => "SIGPIPE",
        sys::SIGALRM => "SIGALRM",
        sys::SIGTERM => "SIGTERM",
        sys::SIGCHLD => "SIGCHLD",
        sys::SIGCONT => "SIGCONT",
        sys::SIGSTOP => "SIGSTOP",
        sys::SIGTSTP => "SIGTSTP",
        sys::SIGTTIN => "SIGTTIN",
        sys::SIGTTOU => "SIGTTOU",
        sys::SIGURG => "SIGURG",
        sys::SIGXCPU => "SIGXCPU",
        sys::SIGXFSZ => "SIGXFSZ",
        sys::SIGVTALRM => "SIGVTALRM",
        sys::SIGPROF => "SIGPROF",
        sys::SIGWINCH => "SIGWINCH",
        sys::SIGIO => "SIGIO",
        sys::SIGPWR => "SIGPWR",
        sys::SIGSYS => "SIGSYS",
        _ => {
            let rt = sig - sys::sigrtmin();
            if sig <= sys::sigrtmax() && rt >= 0 {
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
    fn signal_names() {
        assert_eq!(signal_name(sys::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(sys::SIGWINCH), "SIGWINCH");
        assert_eq!(signal_name(sys::sigrtmin()), "SIGRTMIN");
        assert_eq!(signal_name(sys::sigrtmin() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "unknown signal");
        assert_eq!(signal_name(sys::sigrtmax() + 1), "unknown signal");
    }

    /// With our mask installed (fault signals blocked, so that ones sent from outside can be
    /// forwarded), a real fault of our own code still ends the process by that signal: the
    /// kernel unblocks a forced fault signal and applies its default action.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_real_fault_still_ends_the_process_with_the_mask_installed() {
        use sys::faults;
        let cases: [(fn(), i32); 5] = [
            (faults::illegal_instruction, sys::SIGILL),
            (faults::breakpoint, sys::SIGTRAP),
            (faults::null_load, sys::SIGSEGV),
            (faults::divide_by_zero, sys::SIGFPE),
            (faults::abort, sys::SIGABRT),
        ];
        for (fault, sig) in cases {
            let status = sys::wait_status_of_forked(&|| {
                // Only raw syscalls: take_over is sigfillset/sigdelset/sigprocmask/sigaction.
                if take_over().is_ok() {
                    fault();
                }
            });
            assert_eq!(
                sys::term_signal_of(status),
                Some(sig),
                "{}: wait status {status:#x}",
                signal_name(sig)
            );
        }
    }
}
