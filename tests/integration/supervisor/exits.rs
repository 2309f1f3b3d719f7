//! Exit codes (CMD's, 127 and 126 for spawn failures), reaping of adopted orphans, and a
//! step-down that kills CMD and whatever it left behind.

use std::time::Duration;

use test_apiserver::Fault;

use super::{mode_tag, pid1_available, Mode, Rig, START};
use crate::cluster::NS;
use crate::procs::{self, children, send_signal};
use crate::wait::{poll, wait_for};

fn exit_codes(mode: Mode) {
    let rig = Rig::new(&format!("exit-codes-{}", mode_tag(mode)));
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("kill -9 $$", 137),
        ("kill -SEGV $$", 139),
    ] {
        let code = rig.run(mode, &["sh", "-c", script]);
        assert_eq!(
            code,
            want,
            "CMD `sh -c '{script}'` ({mode:?}): stderr:\n{}",
            rig.stderr()
        );
        let log = rig.stderr();
        assert!(
            log.contains("started CMD (pid "),
            "no start log line:\n{log}"
        );
    }
}

#[test]
fn exit_codes_as_subreaper() {
    exit_codes(Mode::Subreaper);
}

#[test]
fn exit_codes_as_pid1() {
    if pid1_available("exit_codes_as_pid1") {
        exit_codes(Mode::Pid1);
    }
}

#[test]
fn cmd_not_found_is_127_and_not_executable_is_126() {
    let rig = Rig::new("spawn-errors");
    let missing = "k8s-await-election-test-no-such-command";
    assert_eq!(
        rig.run(Mode::Subreaper, &[missing]),
        127,
        "stderr:\n{}",
        rig.stderr()
    );
    assert!(
        rig.stderr().contains(missing),
        "error names the command:\n{}",
        rig.stderr()
    );

    let plain = rig.script("not-executable.sh", "#!/bin/sh\nexit 0\n"); // mode 0644
    assert_eq!(
        rig.run(Mode::Subreaper, &[&plain]),
        126,
        "stderr:\n{}",
        rig.stderr()
    );
    assert!(
        rig.stderr().contains("not-executable.sh"),
        "stderr:\n{}",
        rig.stderr()
    );

    let directory = rig.dir.to_string_lossy().into_owned();
    assert_eq!(
        rig.run(Mode::Subreaper, &[&directory]),
        126,
        "stderr:\n{}",
        rig.stderr()
    );

    // Found out before the election: the API server saw no request at all, and the error is
    // one line.
    assert_eq!(
        rig.server.requests().len(),
        0,
        "requests: {:?}",
        rig.server.requests()
    );
    assert_eq!(rig.stderr().lines().count(), 1, "stderr:\n{}", rig.stderr());
    assert!(
        rig.server.get_object("leases", NS, &rig.lock()).is_none(),
        "no Lease was created"
    );
}

/// CMD orphans two `sleep 3` (their parent subshells exit at once), then becomes `sleep 120`.
const ORPHAN_SCRIPT: &str = "(sleep 3 &); (sleep 3 &); exec sleep 120";

fn orphans_reaped(mode: Mode) {
    let rig = Rig::new(&format!("orphans-{}", mode_tag(mode)));
    let run = rig.spawn(mode, &["sh", "-c", ORPHAN_SCRIPT]);
    let sup = run.supervisor_pid();
    // 1. The orphans are adopted by the binary (subreaper / PID 1): CMD plus two sleeps.
    wait_for("the orphans to be re-parented to the binary", START, || {
        (children(sup).len() >= 3).then_some(())
    });
    // 2. When they exit they are reaped: only CMD is left, and no zombie of ours remains.
    let left = poll(Duration::from_secs(15), || {
        let kids = children(sup);
        (kids.len() == 1 && kids.iter().all(|k| k.state != 'Z')).then_some(kids)
    });
    assert!(
        left.is_some(),
        "orphans not reaped: children of the binary {:?}; {}",
        children(sup),
        run.context()
    );
    // 3. And the binary itself is fine: SIGTERM is forwarded to `sleep 120`, exit 128 + 15.
    send_signal(sup, "TERM");
    let context = run.context();
    assert_eq!(run.wait_exit(), 143, "{context}");
    assert!(rig.stderr().contains("reaped orphan"), "{}", rig.stderr());
}

#[test]
fn orphans_are_reaped_as_subreaper() {
    orphans_reaped(Mode::Subreaper);
}

#[test]
fn orphans_are_reaped_as_pid1() {
    if pid1_available("orphans_are_reaped_as_pid1") {
        orphans_reaped(Mode::Pid1);
    }
}

/// CMD leaves a background `sleep` behind (its pid in `$1`) and is itself `sleep 300`.
const LEFTOVER_SCRIPT: &str = r#"sleep 300 &
echo $! > "$1"
exec sleep 300
"#;

#[test]
fn step_down_kills_cmd_and_what_it_left_behind() {
    // Subreaper mode: as PID 1 the kernel would kill leftovers when we exit anyway.
    let rig = Rig::new("leftovers");
    let script = rig.script("leftover.sh", LEFTOVER_SCRIPT);
    let pid_file = rig.path("leftover.pid").to_string_lossy().into_owned();
    let run = rig.spawn(Mode::Subreaper, &["sh", &script, &pid_file]);
    let leftover: u32 = wait_for("CMD to start its background sleep", START, || {
        rig.read("leftover.pid").trim().parse().ok()
    });
    // Make every renewal fail: the replica must step down (exit 75, EX_TEMPFAIL).
    rig.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let code = run.wait_exit();
    let alive = procs::stat(leftover).filter(|s| s.state != 'Z');
    if alive.is_some() {
        send_signal(leftover, "KILL"); // don't leak it past the test
    }
    assert_eq!(code, 75, "stderr:\n{}", rig.stderr());
    if std::env::var_os("SUPERVISOR_TEST_SHOW_LOG").is_some() {
        eprintln!("{}", rig.stderr());
    }
    assert!(
        alive.is_none(),
        "the background process of CMD survived the step-down: {alive:?}; stderr:\n{}",
        rig.stderr()
    );
}

/// CMD leaves two helpers behind and exits 4: one cleans up on SIGTERM (writes `$1.cleaned`),
/// the other ignores SIGTERM. Their pids go to `$1.polite` and `$1.stubborn`.
const POLITE_AND_STUBBORN: &str = r#"log=$1
sh -c 'trap "echo cleaned > \"$0.cleaned\"; exit 0" TERM; echo $$ > "$0.polite.tmp"; mv "$0.polite.tmp" "$0.polite"; while :; do sleep 0.05; done' "$log" &
sh -c 'trap "" TERM; echo $$ > "$0.stubborn.tmp"; mv "$0.stubborn.tmp" "$0.stubborn"; while :; do sleep 0.05; done' "$log" &
while [ ! -e "$log.polite" ] || [ ! -e "$log.stubborn" ]; do sleep 0.05; done
exit 4
"#;

/// dumb-init's courtesy: what CMD leaves behind gets SIGTERM first, so it can clean up; what
/// ignores SIGTERM still gets SIGKILL, before the Lease is released.
#[test]
fn leftovers_get_sigterm_then_sigkill_before_the_release() {
    let rig = Rig::new("leftovers-term");
    let script = rig.script("leftovers.sh", POLITE_AND_STUBBORN);
    let log = rig.path("helper").to_string_lossy().into_owned();
    let run = rig.spawn(Mode::Subreaper, &["sh", &script, &log]);
    let code = run.wait_exit();
    let stubborn: u32 = rig.read("helper.stubborn").trim().parse().unwrap_or(0);
    let alive = procs::stat(stubborn).filter(|s| s.state != 'Z');
    if alive.is_some() {
        send_signal(stubborn, "KILL"); // don't leak it past the test
    }
    let stderr = rig.stderr();
    assert_eq!(code, 4, "CMD's own code; stderr:\n{stderr}");
    assert_eq!(
        rig.read("helper.cleaned").trim(),
        "cleaned",
        "the helper that traps SIGTERM got to clean up; stderr:\n{stderr}"
    );
    assert!(
        stubborn > 0 && alive.is_none(),
        "the helper that ignores SIGTERM (pid {stubborn}) was killed: {alive:?}; stderr:\n{stderr}"
    );
    rig.assert_lease_released();
    // In that order: SIGTERM, SIGKILL to the stubborn one, then the release.
    let at = |needle: &str| {
        stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not logged; stderr:\n{stderr}"))
    };
    let term = at("sent SIGTERM to what CMD left behind");
    let kill = at("sent SIGKILL to CMD's process tree");
    let release = at("released the lease");
    assert!(term < kill && kill < release, "stderr:\n{stderr}");
}

/// CMD leaves a helper behind that cleans up on SIGTERM (writes `$1.cleaned`; its pid in
/// `$1.polite`), and is itself `sleep 300`.
const POLITE_LEFTOVER: &str = r#"log=$1
sh -c 'trap "echo cleaned > \"$0.cleaned\"; exit 0" TERM; echo $$ > "$0.polite.tmp"; mv "$0.polite.tmp" "$0.polite"; while :; do sleep 0.05; done' "$log" &
exec sleep 300
"#;

/// On a step-down too, what CMD leaves behind gets SIGTERM before SIGKILL (within the kill
/// deadline): the helper cleans up.
#[test]
fn step_down_gives_leftovers_a_sigterm_first() {
    let rig = Rig::new("leftovers-stepdown-term");
    let script = rig.script("leftover.sh", POLITE_LEFTOVER);
    let log = rig.path("helper").to_string_lossy().into_owned();
    let run = rig.spawn(Mode::Subreaper, &["sh", &script, &log]);
    let helper: u32 = wait_for("CMD to start its helper", START, || {
        rig.read("helper.polite").trim().parse().ok()
    });
    rig.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let code = run.wait_exit();
    let alive = procs::stat(helper).filter(|s| s.state != 'Z');
    if alive.is_some() {
        send_signal(helper, "KILL");
    }
    let stderr = rig.stderr();
    assert_eq!(code, 75, "stderr:\n{stderr}");
    assert!(alive.is_none(), "{alive:?}; stderr:\n{stderr}");
    assert_eq!(
        rig.read("helper.cleaned").trim(),
        "cleaned",
        "the helper got SIGTERM and cleaned up; stderr:\n{stderr}"
    );
}
