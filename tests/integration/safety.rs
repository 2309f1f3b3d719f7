//! "Never two CMDs" when processes misbehave (issue #17), with the real binary against the test
//! API server and short timings (lease 4 s, renew deadline 3 s, retry period 1 s):
//!
//! - a CMD that ignores SIGTERM and takes longer from SIGKILL to reaped than the kill margin
//!   (it maps a lot of memory) must not leave its own child running: the SIGKILL at the kill
//!   deadline goes to CMD's whole process tree at once;
//! - a leader that cannot see what CMD leaves behind (PID 1 of a new PID namespace whose
//!   `/proc` still shows the parent's namespace) must not release the Lease on exit: nothing it
//!   started can be confirmed dead, so the Lease is left to expire;
//! - a leader that finds the Lease held by someone else (an assumption already broke, another
//!   CMD may run) SIGKILLs its CMD at once: no SIGTERM, no grace period.
//!
//! Needs python3 (for a memory hog) and root with `unshare` (for the PID namespace); each test
//! prints a skip reason without them, and fails instead under `CI` / `REQUIRE_STATIC`.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use test_apiserver::Fault;

use crate::cluster::{election_env, Cluster, LEASE, LOCK, NS};
use crate::prereqs::{pid_namespace_support, require};
use crate::procs;
use crate::wait::wait_for;
use crate::BIN;

/// Exit code of a replica that lost leadership (EX_TEMPFAIL).
const LOST_LEADERSHIP: i32 = 75;

/// CMD of the leader in [`a_slow_dying_cmd_takes_its_whole_tree_with_it`]: it takes the
/// shared singleton lock like every test CMD, leaves the lock to a child that ignores SIGTERM
/// (`sleep 4242`, a grandchild of the binary), and becomes a python3 memory hog that ignores
/// SIGTERM too. The hog maps one 1 GiB memfd 16 times, touching every page: 16 GiB of
/// mappings for 1 GiB of memory, whose teardown takes from SIGKILL to reaped about twice the
/// 250 ms kill margin of these timings (~0.5 s here).
const HOG_CMD: &str = r#"
exec 9>>"$T_DIR/singleton.lock"
if ! flock -n 9; then echo "OVERLAP $T_ID $(date +%s%N)" >> "$T_DIR/events.log"; exit 99; fi
echo "start $T_ID $(date +%s%N)" >> "$T_DIR/events.log"
trap '' TERM
sleep 4242 &
echo $! > "$T_DIR/grandchild.pid"
exec python3 -c '
import mmap, os, time
size = 1 << 30
fd = os.memfd_create("hog")
os.ftruncate(fd, size)
maps = [mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE) for _ in range(16)]
open(os.environ["T_DIR"] + "/hog.ready", "w").close()
while True:
    time.sleep(1)
' 9>&-
"#;

/// True when `pid` is the hog's `sleep 4242` and still running (not a zombie).
fn grandchild_alive(pid: u32) -> bool {
    procs::pid_alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x004242\x00")
}

#[test]
fn a_slow_dying_cmd_takes_its_whole_tree_with_it() {
    const TEST: &str = "a_slow_dying_cmd_takes_its_whole_tree_with_it";
    let python = Command::new("python3")
        .args(["-c", "import mmap, os; os.memfd_create; mmap.MAP_POPULATE"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let python = if python.is_ok_and(|s| s.success()) {
        Ok(())
    } else {
        Err("needs python3 >= 3.10 (os.memfd_create, mmap.MAP_POPULATE)".to_string())
    };
    if require(TEST, python).is_none() {
        return;
    }
    let c = Cluster::new("tree-kill");
    let hog = vec!["sh".to_string(), "-c".to_string(), HOG_CMD.to_string()];
    let mut a = c.replica("a", Some(hog), &[]);
    let ready = c.dir.join("hog.ready");
    wait_for(
        "the leader's hog to be ready",
        Duration::from_secs(30),
        || ready.exists().then_some(()),
    );
    let grandchild: u32 = std::fs::read_to_string(c.dir.join("grandchild.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("the grandchild's pid");
    assert!(grandchild_alive(grandchild), "{}", c.dump());
    let b = c.replica("b", None, &[]);
    b.wait_log("new leader: a", Duration::from_secs(10));

    // Cut the leader off: it steps down at T + 3 s, CMD ignores SIGTERM, SIGKILL at
    // T + 3.75 s, and the hog is not reaped before T + 4 s.
    c.api.set_token_fault(
        &a.token,
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let status = a.wait_exit(Duration::from_secs(30));
    let survived = grandchild_alive(grandchild);
    if survived {
        procs::send_signal(grandchild, "KILL"); // don't leak it past the test
    }
    assert_eq!(
        procs::exit_code(status),
        LOST_LEADERSHIP,
        "{}",
        a.log_text()
    );
    assert!(
        !survived,
        "CMD's child (pid {grandchild}) outlived the step-down\n{}",
        c.dump()
    );
    // The follower takes over once the lease expired, and its CMD gets the lock.
    wait_for("b's CMD to start", Duration::from_secs(30), || {
        c.starts().iter().any(|id| id == "b").then_some(())
    });
    c.assert_no_overlap();
    assert_eq!(c.starts(), ["a", "b"], "{}", c.dump());
}

#[test]
fn without_a_proc_of_its_own_a_leader_never_releases() {
    const TEST: &str = "without_a_proc_of_its_own_a_leader_never_releases";
    if require(TEST, pid_namespace_support()).is_none() {
        return;
    }
    let c = Cluster::new("blind");
    let identity = "blind-0";
    let token = "token-blind";
    c.api
        .add_token(token, &format!("system:serviceaccount:{NS}:{identity}"));
    let sa = c.dir.join("sa");
    c.api
        .write_service_account_dir(&sa, token, NS)
        .expect("write the service-account directory");
    let stderr_path = c.dir.join("stderr.log");
    // PID 1 of a new PID namespace, but /proc still shows the test's namespace.
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child", BIN, "sh", "-c", "exit 0"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("RUST_LOG", "info")
        .env("K8S_AWAIT_ELECTION_NAME", "test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
    election_env(&mut cmd, c.api.port(), &sa, LOCK, identity);
    let mut child = cmd.spawn().expect("spawn unshare");
    let status = procs::wait_timeout(&mut child, Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("the binary did not exit\n{stderr}"));
    assert_eq!(procs::exit_code(status), 0, "CMD's exit code\n{stderr}");
    assert!(stderr.contains("CMD exited with code 0"), "{stderr}");
    assert_eq!(
        c.holder().as_deref(),
        Some(identity),
        "the Lease must be left to expire, not released\n{stderr}"
    );
    let why = "the Lease will not be released on exit";
    assert_eq!(
        stderr.matches(why).count(),
        1,
        "one line must say why\n{stderr}"
    );
    assert!(
        stderr.contains("/proc is not mounted for our PID namespace"),
        "{stderr}"
    );
}

#[test]
fn a_lease_taken_by_someone_else_means_sigkill_at_once() {
    let c = Cluster::new("taken");
    let mut a = c.first_leader("a");
    // CMD would ignore a SIGTERM (and log it): only a SIGKILL ends it.
    std::fs::write(c.dir.join("stubborn"), "").expect("stubborn switch");
    // Another elector writes the Lease over ours (as a client-go elector that judged our lease
    // expired would): a's next renewal conflicts, the re-read shows the new holder.
    let mut l = c.lease().expect("lease exists");
    l["spec"]["holderIdentity"] = json!("intruder");
    l["spec"]["renewTime"] = json!(test_apiserver::micro_time_now());
    c.api.put_object("leases", NS, l);
    let status = a.wait_exit(3 * LEASE);
    assert_eq!(procs::exit_code(status), LOST_LEADERSHIP, "{}", c.dump());
    let log = a.log_text();
    assert!(
        log.contains("another CMD may already run, sending SIGKILL now"),
        "{log}"
    );
    let events = c.cmd_events();
    assert!(
        !events.iter().any(|e| e.kind == "ignored"),
        "CMD got a SIGTERM first (and a grace period)\n{}",
        c.dump()
    );
    assert_eq!(c.holder().as_deref(), Some("intruder"), "{}", c.dump());
}
