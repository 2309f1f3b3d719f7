//! The slow-dying CMD of the random schedules as a fixed scenario: a CMD that ignores SIGTERM,
//! leaves the overlap lock to a grandchild that ignores SIGTERM too, and takes tens to hundreds
//! of milliseconds from SIGKILL to reaped (the `slow-dying` switch of
//! [`Cluster::singleton_cmd`]). Whether it loses the lease or exits by itself, nothing of it
//! may run once another CMD starts. Needs python3 >= 3.10 (skipped without it, failing under
//! `CI`).
//!
//! [`Cluster::singleton_cmd`]: crate::cluster::Cluster::singleton_cmd

use std::process::{Command, Stdio};
use std::time::Duration;

use test_apiserver::Fault;

use super::{log_of, Chaos, Leader, CMD_CRASH, LOST_LEADERSHIP};
use crate::cluster::LEASE;
use crate::prereqs::require;
use crate::procs;
use crate::wait::wait_for;

/// Whether python3 can run the hog.
fn python() -> Result<(), String> {
    let ok = Command::new("python3")
        .args(["-c", "import mmap, os; os.memfd_create; mmap.MAP_POPULATE"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(())
        .ok_or_else(|| "needs python3 >= 3.10 (os.memfd_create, mmap.MAP_POPULATE)".into())
}

/// Turns the running CMD `cmd` slow-dying and waits until its hog has mapped all its memory;
/// returns the pid of its grandchild (`sleep 4242`, holding the lock).
fn turn_slow_dying(ch: &Chaos, cmd: u32) -> u32 {
    std::fs::write(ch.c.dir.join("slow-dying"), "").expect("touch slow-dying");
    wait_for("the hog to map its memory", Duration::from_secs(30), || {
        let status = std::fs::read_to_string(format!("/proc/{cmd}/status")).ok()?;
        let rss_kib: u64 = procs::status_field(&status, "VmRSS")?
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        (rss_kib >= 4 << 20).then_some(())
    });
    procs::children(cmd)
        .into_iter()
        .find(|c| {
            std::fs::read(format!("/proc/{}/cmdline", c.pid))
                .is_ok_and(|l| l == b"sleep\x004242\x00")
        })
        .map(|c| c.pid)
        .unwrap_or_else(|| panic!("CMD {cmd} has no grandchild\n{}", ch.c.dump()))
}

/// The leader's slow-dying CMD loses the lease (killed with its tree at the kill deadline),
/// then the next leader's slow-dying CMD crashes (its grandchild is killed before the lease
/// is released): each time the next CMD gets the lock.
#[test]
fn a_slow_dying_cmd_with_a_grandchild_leaves_nothing_behind() {
    const TEST: &str = "a_slow_dying_cmd_with_a_grandchild_leaves_nothing_behind";
    if require(TEST, python()).is_none() {
        return;
    }
    let mut ch = Chaos::new("slow-dying", 3);
    let Leader {
        identity: first,
        index: fi,
        token,
        cmd,
    } = ch.steady_leader();
    let grandchild = turn_slow_dying(&ch, cmd);
    ch.c.api.set_token_fault(&token, Fault::Reset);
    assert_eq!(
        ch.wait_exit(fi, Duration::from_secs(15)),
        LOST_LEADERSHIP,
        "{}",
        ch.c.dump()
    );
    assert!(
        !procs::pid_alive(grandchild),
        "CMD's grandchild outlived the step-down\n{}",
        ch.c.dump()
    );
    assert!(
        log_of(&ch, &first).contains("did not exit in time: sending SIGKILL"),
        "{}",
        ch.c.dump()
    );
    ch.assert_replaced_after_expiry(&token, cmd);
    ch.c.api.set_token_fault(&token, Fault::None);

    // The next leader's CMD is slow-dying from its start; it crashes.
    let Leader {
        index: si,
        cmd: second_cmd,
        ..
    } = ch.steady_leader();
    let grandchild = turn_slow_dying(&ch, second_cmd);
    std::fs::write(ch.c.dir.join("crash"), "").expect("touch crash");
    assert_eq!(
        ch.wait_exit(si, Duration::from_secs(15)),
        CMD_CRASH,
        "{}",
        ch.c.dump()
    );
    assert!(
        !procs::pid_alive(grandchild),
        "CMD's grandchild outlived CMD's crash\n{}",
        ch.c.dump()
    );
    // Released: the next leader does not wait for expiry.
    let crashed =
        ch.c.cmd_events()
            .iter()
            .find(|e| e.kind == "crash")
            .map(|e| e.nanos)
            .expect("the crash event");
    let leader = ch.settle();
    let started =
        ch.c.cmd_events()
            .iter()
            .rev()
            .find(|e| e.kind == "start" && e.identity == leader)
            .map(|e| e.nanos)
            .unwrap_or(0);
    assert!(
        started.saturating_sub(crashed) < LEASE.as_nanos(),
        "the next CMD waited for expiry after the crash\n{}",
        ch.c.dump()
    );
    ch.finish();
}
