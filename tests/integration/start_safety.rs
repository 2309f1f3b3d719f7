//! Starting CMD is safe against a slow exec (issue #17 item 6): while CMD's exec is still under
//! way the main thread keeps checking the renew deadline, so a lease lost meanwhile still gets
//! CMD killed in time.
//!
//! How the exec is made slow, without slow storage: the test traces the binary
//! (`PTRACE_SEIZE` with `PTRACE_O_TRACEFORK`), so the child it forks for CMD is traced from
//! birth and starts stopped. The test keeps that child stopped before its exec for as long as
//! it likes, which is what slow storage does to a real exec as far as the binary can tell (no
//! word on the exec's outcome). The binary itself is let go right at the fork. Tracing our own
//! child needs no privilege; ptrace must not be forbidden (seccomp), as in a default container.

use std::io;
use std::time::{Duration, Instant};

use test_apiserver::Fault;

use crate::cluster::{Cluster, Replica};

/// The cluster's renew deadline is 3 s and the grace period below 1 s: CMD is SIGKILLed about
/// 4 s after the last successful renewal. Generous for 2 busy cores.
const KILLED_WITHIN: Duration = Duration::from_secs(12);

/// ptrace and waitpid, as the test's tracer needs them. (Tests may use `libc` directly, with
/// SAFETY comments; the product keeps its system calls in `src/sys.rs`.)
#[allow(unsafe_code)]
mod trace {
    use std::io;
    use std::time::{Duration, Instant};

    pub type Pid = libc::pid_t;

    fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// Attach to `pid` (our child) without stopping it; its forks are traced too.
    pub fn seize_forks(pid: Pid) -> io::Result<()> {
        // SAFETY: PTRACE_SEIZE reads no memory of ours; the options word is passed by value.
        check(unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                libc::PTRACE_O_TRACEFORK as usize as *mut libc::c_void,
            )
        })
        .map(drop)
    }

    /// Resume the stopped tracee `pid`, delivering `sig` (0: none).
    pub fn resume(pid: Pid, sig: i32) -> io::Result<()> {
        // SAFETY: PTRACE_CONT reads no memory of ours; the signal is passed by value.
        check(unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                sig as usize as *mut libc::c_void,
            )
        })
        .map(drop)
    }

    /// Stop tracing the stopped tracee `pid`, which runs on.
    pub fn detach(pid: Pid) -> io::Result<()> {
        // SAFETY: PTRACE_DETACH reads no memory of ours.
        check(unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        })
        .map(drop)
    }

    /// The pid of the child whose fork `pid` is stopped at.
    pub fn forked_child(pid: Pid) -> io::Result<Pid> {
        let mut msg: libc::c_ulong = 0;
        // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long to `msg`, which is writable.
        check(unsafe {
            libc::ptrace(
                libc::PTRACE_GETEVENTMSG,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                &mut msg as *mut libc::c_ulong,
            )
        })?;
        Ok(msg as Pid)
    }

    /// The next state change of the tracee (or child) `pid`, waiting at most `timeout`.
    pub fn next_status(pid: Pid, timeout: Duration) -> io::Result<Option<i32>> {
        let until = Instant::now() + timeout;
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid writable int; WNOHANG makes the call non-blocking.
            let got = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
            if got == -1 {
                return Err(io::Error::last_os_error());
            }
            if got == pid {
                return Ok(Some(status));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The ptrace event of a stop status (0: a signal-delivery stop).
    pub fn event(status: i32) -> i32 {
        status >> 16
    }

    pub fn stopped(status: i32) -> bool {
        libc::WIFSTOPPED(status)
    }

    pub fn stop_signal(status: i32) -> i32 {
        libc::WSTOPSIG(status)
    }

    pub fn killed_by(status: i32) -> Option<i32> {
        libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
    }

    pub fn kill(pid: Pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is a process we trace.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The traced child the binary forked for CMD: on drop (a failed test) killed, and reaped as
/// its tracer, so the binary can reap it in turn.
struct HeldChild {
    pid: trace::Pid,
    gone: bool,
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        if !self.gone {
            trace::kill(self.pid);
            let _ = trace::next_status(self.pid, Duration::from_secs(5));
        }
    }
}

/// Let the traced binary `pid` run until it forks; returns the child's pid, the binary still
/// stopped at the fork.
fn run_until_fork(pid: trace::Pid, timeout: Duration) -> io::Result<trace::Pid> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Some(status) = trace::next_status(pid, left)? else {
            return Err(io::Error::other(format!("no fork within {timeout:?}")));
        };
        if !trace::stopped(status) {
            return Err(io::Error::other(format!(
                "the binary ended before forking CMD (wait status {status:#x})"
            )));
        }
        match trace::event(status) {
            libc::PTRACE_EVENT_FORK => return trace::forked_child(pid),
            // A signal on its way to the main thread: deliver it.
            0 => trace::resume(pid, trace::stop_signal(status))?,
            // Any other stop (a group stop): let it go.
            _ => trace::resume(pid, 0)?,
        }
    }
}

/// A replica running `cmd` (with `env`), traced until it forks for CMD; the child held before
/// its exec, the binary let go. With `lose_lease`, every API request fails from the fork on.
fn start_held(
    cluster: &Cluster,
    cmd: &[&str],
    env: &[(&str, &str)],
    lose_lease: bool,
) -> (Replica, HeldChild) {
    // No lease until the binary is traced: its fork for CMD must come after that.
    cluster.api.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let cmd = cmd.iter().map(|s| s.to_string()).collect();
    let replica = cluster.replica("a", Some(cmd), env);
    let pid = replica.pid() as trace::Pid;
    trace::seize_forks(pid).expect("trace the binary (PTRACE_SEIZE)");
    cluster.api.clear_faults();

    let child = run_until_fork(pid, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("waiting for the fork of CMD: {e}\n{}", cluster.dump()));
    if lose_lease {
        cluster.api.set_fault(Fault::Reset);
    }
    let held = HeldChild {
        pid: child,
        gone: false,
    };
    trace::detach(pid).expect("let the binary go");
    // The child starts stopped (traced from birth), before its exec.
    let status = trace::next_status(child, Duration::from_secs(10))
        .expect("wait for the child")
        .expect("the forked child stops at its start");
    assert!(trace::stopped(status), "wait status {status:#x}");
    (replica, held)
}

/// CMD's exec hangs and the lease is lost meanwhile: the binary must not wait for the exec.
/// The renew deadline passes, it steps down and SIGKILLs CMD at the end of the grace period.
fn lease_lost_during_a_slow_exec(env: &[(&str, &str)]) {
    let cluster = Cluster::new("slow-exec");
    let cmd = ["sh", "-c", r#"echo ran >> "$T_DIR/cmd-ran"; exec sleep 60"#];
    let (mut replica, mut held) = start_held(&cluster, &cmd, env, true);
    let lost = Instant::now();

    let Some(status) = trace::next_status(held.pid, KILLED_WITHIN).expect("wait for the child")
    else {
        panic!(
            "CMD (pid {}), held before its exec, was not killed {KILLED_WITHIN:?} after the \
             lease was lost: the start blocks the main thread\n{}",
            held.pid,
            cluster.dump()
        );
    };
    held.gone = true;
    let took = lost.elapsed();
    assert_eq!(
        trace::killed_by(status),
        Some(libc::SIGKILL),
        "wait status {status:#x}\n{}",
        cluster.dump()
    );

    let exit = replica.wait_exit(Duration::from_secs(20));
    assert_eq!(exit.code(), Some(75), "lost leadership\n{}", cluster.dump());
    let log = replica.log_text();
    for line in [
        "is still being exec'd at the deadline",
        "started CMD (pid",
        "stepping down",
        "CMD killed by SIGKILL",
    ] {
        assert!(log.contains(line), "{line:?} in the log\n{log}");
    }
    assert!(
        !cluster.dir.join("cmd-ran").exists(),
        "CMD never got to run"
    );
    eprintln!("CMD killed {took:?} after the lease was lost");
}

#[test]
fn a_slow_exec_does_not_hold_up_the_step_down() {
    lease_lost_during_a_slow_exec(&[]);
}

#[test]
fn a_slow_exec_does_not_hold_up_the_step_down_in_group_mode() {
    lease_lost_during_a_slow_exec(&[("K8S_AWAIT_ELECTION_SIGNAL_TARGET", "group")]);
}

/// The start stops waiting for a slow exec that then fails: CMD's exit (127) says so, and the
/// reason is logged when it is reaped. (CMD exists at start, or it would be refused before the
/// election, and is removed while its exec is held.)
#[test]
fn an_exec_that_fails_after_the_deadline_is_reported_through_cmds_exit() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = Cluster::new("late-exec-failure");
    let dir = crate::tempdir::TempDir::new("late-exec-failure-cmd");
    let vanishing = dir.join("vanishing-cmd");
    std::fs::write(&vanishing, "#!/bin/sh\nexit 0\n").expect("write CMD");
    std::fs::set_permissions(&vanishing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let missing = vanishing.to_string_lossy().into_owned();
    let (mut replica, mut held) = start_held(&cluster, &[&missing], &[], false);
    std::fs::remove_file(&vanishing).expect("remove CMD before its exec");
    // The start gives up waiting at the renew deadline (3 s); CMD counts as started.
    replica.wait_log(
        "is still being exec'd at the deadline",
        Duration::from_secs(10),
    );
    // Now let the exec go ahead (and fail); the binary reaps the child.
    trace::detach(held.pid).expect("let the child go");
    held.gone = true;

    let exit = replica.wait_exit(Duration::from_secs(20));
    assert_eq!(
        exit.code(),
        Some(127),
        "CMD's exit code\n{}",
        cluster.dump()
    );
    let log = replica.log_text();
    for line in [
        &format!("cannot run CMD {missing:?}: no such file (the exec failed after the start stopped waiting)"),
        "CMD exited with code 127",
    ] {
        assert!(log.contains(line), "{line:?} in the log\n{log}");
    }
    assert!(
        cluster.holder().is_none(),
        "the lease is released\n{}",
        cluster.dump()
    );
}
