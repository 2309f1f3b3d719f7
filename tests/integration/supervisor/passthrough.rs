//! Passthrough mode (election disabled): the binary execs CMD in place, leaving the process
//! state it inherited alone (as a plain `execve` would), and spawn failures keep their exit
//! codes.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::EXIT;
use crate::procs::{exit_code, status_field, wait_timeout, widowed_pipe};
use crate::tempdir::TempDir;
use crate::BIN;

/// Runs `argv` in passthrough mode, stdout into `stdout` in `dir`; returns the pid it started
/// and the exit code.
fn passthrough(dir: &Path, argv: &[String], stdout: &str) -> (u32, i32) {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove("K8S_AWAIT_ELECTION_ENABLED")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join(stdout)).expect("stdout file"))
        .stderr(fs::File::create(dir.join("passthrough.err")).expect("stderr file"));
    let mut child = cmd.spawn().expect("start the binary");
    let pid = child.id();
    let status = wait_timeout(&mut child, EXIT).expect("passthrough exits");
    (pid, exit_code(status))
}

#[test]
fn passthrough_execs_cmd_in_place() {
    let dir = TempDir::new("supervisor-passthrough");

    // Same PID: no fork.
    let (pid, code) = passthrough(
        &dir,
        &[BIN.into(), "sh".into(), "-c".into(), "echo $$".into()],
        "pid.out",
    );
    assert_eq!(code, 0);
    let printed = fs::read_to_string(dir.join("pid.out")).unwrap_or_default();
    assert_eq!(
        printed.trim(),
        pid.to_string(),
        "CMD runs as the binary's own process"
    );

    // Not found → 127.
    let (_, code) = passthrough(
        &dir,
        &[BIN.into(), "k8s-await-election-test-no-such-command".into()],
        "nf.out",
    );
    assert_eq!(code, 127);

    // ... also when the error line cannot be written (stderr a pipe nobody reads): 127, not
    // death by SIGPIPE.
    let mut child = Command::new(BIN)
        .arg("k8s-await-election-test-no-such-command")
        .env_remove("K8S_AWAIT_ELECTION_ENABLED")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(widowed_pipe())
        .spawn()
        .expect("start the binary");
    let status = wait_timeout(&mut child, EXIT).expect("passthrough exits");
    assert_eq!(exit_code(status), 127);

    // Exists but is not executable → 126.
    let plain = dir.join("not-executable.sh");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").expect("write script"); // mode 0644
    let (_, code) = passthrough(
        &dir,
        &[BIN.into(), plain.to_string_lossy().into_owned()],
        "ne.out",
    );
    assert_eq!(code, 126);
}

/// `argv` started with SIGINT ignored and SIGTERM blocked (as a parent shell or runtime might
/// hand them down); returns the `SigIgn` and `SigBlk` lines of the `/proc/self/status` that
/// `argv` prints.
#[allow(unsafe_code)]
fn inherited_signal_state(dir: &Path, argv: &[&str], out: &str) -> (String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .env_remove("K8S_AWAIT_ELECTION_ENABLED")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join(out)).expect("stdout file"))
        .stderr(fs::File::create(dir.join("passthrough.err")).expect("stderr file"));
    // SAFETY: runs in the forked child before exec; signal(2) and sigprocmask(2) are
    // async-signal-safe and get valid arguments (a local sigset_t).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start");
    let status = wait_timeout(&mut child, EXIT).expect("exits");
    assert_eq!(exit_code(status), 0, "{argv:?}");
    let text = fs::read_to_string(dir.join(out)).unwrap_or_default();
    let field = |name| status_field(&text, name).unwrap_or_default().to_string();
    (field("SigIgn"), field("SigBlk"))
}

#[test]
fn passthrough_leaves_the_inherited_signal_state_alone() {
    let dir = TempDir::new("supervisor-passthrough-state");
    let status = ["cat", "/proc/self/status"];
    let plain = inherited_signal_state(&dir, &status, "plain.out");
    let mut through_us = vec![BIN];
    through_us.extend(status);
    let ours = inherited_signal_state(&dir, &through_us, "ours.out");
    let bits = |hex: &str| u64::from_str_radix(hex, 16).unwrap_or(0);
    // What a plain execve gives: SIGINT (2) ignored, SIGTERM (15) blocked.
    assert_ne!(bits(&plain.0) & (1 << (2 - 1)), 0, "{plain:?}");
    assert_ne!(bits(&plain.1) & (1 << (15 - 1)), 0, "{plain:?}");
    assert_eq!(
        ours, plain,
        "CMD's (SigIgn, SigBlk) through the binary, and after a plain execve"
    );
}
