//! Signal forwarding: every forwarded signal reaches CMD, and in group mode the whole process
//! group.

use std::fs;
use std::time::Duration;

use super::{lines, mode_tag, pid1_available, Mode, Rig, Running, START};
use crate::cluster::NS;
use crate::procs::{self, children, send_signal};
use crate::wait::{poll, wait_for};

const FORWARDED: [&str; 8] = [
    "HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "CONT",
];

/// CMD: trap every signal of FORWARDED and log it; exit 7 once `$1.quit` exists.
const TRAP_SCRIPT: &str = r#"log=$1
for s in HUP INT QUIT USR1 USR2 TERM WINCH CONT; do trap "echo $s >> '$log'" "$s"; done
echo ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
exit 7
"#;

/// Starts `sh <script> <rig>/signals.log` under the supervisor and waits until the script
/// logged `ready` (its traps are set); returns the run and the log path it was given.
fn start_trapping<'a>(rig: &'a Rig, mode: Mode, script: &str) -> (Running<'a>, String) {
    let log_arg = rig.path("signals.log").to_string_lossy().into_owned();
    let run = rig.spawn(mode, &["sh", script, &log_arg]);
    wait_for("CMD to start and set its traps", START, || {
        (rig.read("signals.log").lines().next() == Some("ready")).then_some(())
    });
    (run, log_arg)
}

/// Sends each of `signals` to the supervisor `sup`, one at a time, and waits until CMD's trap
/// logged it (after the `ready` line) before sending the next.
fn send_each_and_see_it_forwarded(rig: &Rig, run: &Running<'_>, sup: u32, signals: &[&str]) {
    let mut want = vec!["ready"];
    for &sig in signals {
        send_signal(sup, sig);
        want.push(sig);
        let seen = poll(Duration::from_secs(10), || {
            let text = rig.read("signals.log");
            (lines(&text) == want).then_some(())
        });
        assert!(
            seen.is_some(),
            "SIG{sig} sent to the supervisor did not reach CMD: log {:?}, want {want:?}; {}",
            rig.read("signals.log"),
            run.context()
        );
    }
}

fn signals_forwarded(mode: Mode) {
    let rig = Rig::new(&format!("signals-{}", mode_tag(mode)));
    let script = rig.script("trap.sh", TRAP_SCRIPT);
    let (run, log_arg) = start_trapping(&rig, mode, &script);
    let sup = run.supervisor_pid();
    // CMD runs because we lead: the Lease names this replica.
    let lease = rig
        .server
        .get_object("leases", NS, &rig.lock())
        .expect("the Lease exists while CMD runs");
    assert_eq!(lease["spec"]["holderIdentity"], rig.identity(), "{lease}");
    send_each_and_see_it_forwarded(&rig, &run, sup, &FORWARDED);
    fs::write(format!("{log_arg}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 7, "{context}");
    // The forwarding itself is logged (at debug).
    let stderr = rig.stderr();
    for sig in FORWARDED {
        assert!(
            stderr.contains(&format!("forwarding SIG{sig} to CMD")),
            "{stderr}"
        );
    }
}

#[test]
fn signals_are_forwarded_as_subreaper() {
    signals_forwarded(Mode::Subreaper);
}

#[test]
fn signals_are_forwarded_as_pid1() {
    if pid1_available("signals_are_forwarded_as_pid1") {
        signals_forwarded(Mode::Pid1);
    }
}

/// CMD: a shell with a child shell; both log SIGUSR1. Exit 9 once `$1.quit` exists.
const GROUP_SCRIPT: &str = r#"log=$1
sh -c "trap 'echo child-USR1 >> \"$log\"' USR1
echo child-ready >> '$log'
while [ ! -e '$log.quit' ]; do sleep 0.05; done" &
trap "echo parent-USR1 >> '$log'" USR1
echo parent-ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
wait
exit 9
"#;

#[test]
fn group_mode_signals_the_whole_process_group() {
    let rig = Rig::new("group");
    let script = rig.script("group.sh", GROUP_SCRIPT);
    let log_arg = rig.path("group.log").to_string_lossy().into_owned();
    let argv = rig.argv(Mode::Subreaper, &["sh", &script, &log_arg]);
    let mut cmd = rig.command(&argv);
    cmd.env("K8S_AWAIT_ELECTION_SIGNAL_TARGET", "group");
    let run = rig.start(Mode::Subreaper, cmd);
    wait_for("both shells to set their traps", START, || {
        let text = rig.read("group.log");
        (text.contains("parent-ready") && text.contains("child-ready")).then_some(())
    });
    let sup = run.supervisor_pid();
    // CMD leads its own process group, apart from ours.
    let cmd_pid = children(sup)
        .first()
        .map(|s| s.pid)
        .expect("CMD is running");
    assert_eq!(
        procs::stat(cmd_pid).map(|s| s.pgrp),
        Some(cmd_pid),
        "CMD leads its own process group"
    );
    assert_ne!(procs::stat(sup).map(|s| s.pgrp), Some(cmd_pid));

    send_signal(sup, "USR1");
    let seen = poll(Duration::from_secs(10), || {
        let text = rig.read("group.log");
        (text.contains("parent-USR1") && text.contains("child-USR1")).then_some(())
    });
    assert!(
        seen.is_some(),
        "SIGUSR1 did not reach the whole group: log {:?}; {}",
        rig.read("group.log"),
        run.context()
    );
    fs::write(format!("{log_arg}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 9, "{context}");
}

/// The signals the CPU raises for a fault, here sent by another process with kill(2).
const FAULTS: [&str; 7] = ["ILL", "TRAP", "ABRT", "BUS", "FPE", "SEGV", "SYS"];

/// CMD: trap every signal of FAULTS and log it; exit 5 once `$1.quit` exists.
const FAULT_TRAP_SCRIPT: &str = r#"log=$1
for s in ILL TRAP ABRT BUS FPE SEGV SYS; do trap "echo $s >> '$log'" "$s"; done
echo ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
exit 5
"#;

/// dumb-init's behaviour: a fault signal *sent* to us (not raised by a fault of ours) is
/// forwarded to CMD like any other; we keep running and exit with CMD's code.
fn fault_signals_from_outside_forwarded(mode: Mode) {
    let rig = Rig::new(&format!("fault-signals-{}", mode_tag(mode)));
    let script = rig.script("trap.sh", FAULT_TRAP_SCRIPT);
    let (run, log_arg) = start_trapping(&rig, mode, &script);
    let sup = run.supervisor_pid();
    send_each_and_see_it_forwarded(&rig, &run, sup, &FAULTS);
    fs::write(format!("{log_arg}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 5, "{context}");
    rig.assert_lease_released();
}

#[test]
fn fault_signals_sent_from_outside_reach_cmd_as_subreaper() {
    fault_signals_from_outside_forwarded(Mode::Subreaper);
}

#[test]
fn fault_signals_sent_from_outside_reach_cmd_as_pid1() {
    if pid1_available("fault_signals_sent_from_outside_reach_cmd_as_pid1") {
        fault_signals_from_outside_forwarded(Mode::Pid1);
    }
}

/// A new pseudo-terminal: (master, path of the slave).
#[allow(unsafe_code)]
fn open_pty() -> (fs::File, String) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a descriptor we own; `name` is a writable buffer of the
    // given length, NUL-terminated by ptsname_r on success.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(fd, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        (fs::File::from_raw_fd(fd), path)
    }
}

/// CMD: log `ready`, then every SIGINT and SIGUSR1; exit 6 once `$1.quit` exists.
const TTY_SCRIPT: &str = r#"log=$1
trap "echo INT >> '$log'" INT
trap "echo USR1 >> '$log'" USR1
echo ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
exit 6
"#;

/// tini's terminal handling: CMD runs in its own process group, which gets the terminal's
/// foreground, so a Ctrl-C reaches CMD once (from the terminal) and not a second time through
/// our forwarding; we stay in the election and exit with CMD's code.
#[test]
#[allow(unsafe_code)]
fn ctrl_c_on_a_terminal_reaches_cmd_once() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let rig = Rig::new("tty-ctrl-c");
    let script = rig.script("tty.sh", TTY_SCRIPT);
    let log = rig.path("signals.log").to_string_lossy().into_owned();
    let (mut master, slave_path) = open_pty();
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .expect("open the pty's slave");
    let argv = rig.argv(Mode::Subreaper, &["sh", &script, &log]);
    let mut cmd = rig.command(&argv);
    cmd.stdin(slave);
    // SAFETY: runs in the forked child before exec: setsid and ioctl are async-signal-safe.
    // The binary becomes a session leader with the pty (its stdin) as controlling terminal,
    // in the terminal's foreground process group, as a shell would start it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = rig.start(Mode::Subreaper, cmd);
    wait_for("CMD to start and set its traps", START, || {
        (rig.read("signals.log").lines().next() == Some("ready")).then_some(())
    });
    master.write_all(b"\x03").expect("type Ctrl-C");
    let seen = poll(Duration::from_secs(10), || {
        (lines(&rig.read("signals.log")) == ["ready", "INT"]).then_some(())
    });
    assert!(
        seen.is_some(),
        "Ctrl-C reached CMD: {:?}; {}",
        rig.read("signals.log"),
        run.context()
    );
    // A SIGUSR1 through us: once CMD has it, a SIGINT that had reached us (a lower number,
    // sent earlier) would have been forwarded already.
    send_signal(run.supervisor_pid(), "USR1");
    let seen = poll(Duration::from_secs(10), || {
        lines(&rig.read("signals.log"))
            .contains(&"USR1")
            .then_some(())
    });
    assert!(seen.is_some(), "SIGUSR1 was forwarded: {}", run.context());
    fs::write(format!("{log}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 6, "{context}");
    assert_eq!(
        lines(&rig.read("signals.log")),
        ["ready", "INT", "USR1"],
        "{context}"
    );
    let stderr = rig.stderr();
    assert!(
        !stderr.contains("forwarding SIGINT"),
        "the Ctrl-C reached us too and was forwarded a second time:\n{stderr}"
    );
}
