//! Passthrough mode (election disabled): the binary execs CMD in place, with a clean signal
//! state, and spawn failures keep their exit codes.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{with_ignored_signals, EXIT};
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
fn passthrough_execs_cmd_in_place_with_a_clean_state() {
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

    // Clean signal state, even though the binary inherited ignored signals.
    let argv = with_ignored_signals(&[BIN.into(), "cat".into(), "/proc/self/status".into()]);
    let (_, code) = passthrough(&dir, &argv, "status.out");
    assert_eq!(code, 0);
    let status = fs::read_to_string(dir.join("status.out")).unwrap_or_default();
    for field in ["SigBlk", "SigIgn"] {
        assert_eq!(
            status_field(&status, field),
            Some("0000000000000000"),
            "{field}:\n{status}"
        );
    }

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
}
