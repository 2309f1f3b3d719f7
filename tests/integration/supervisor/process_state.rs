//! CMD's process state (no blocked, ignored or caught signals; the right parent), stdio and
//! environment pass-through, and a stderr that is closed, missing or blocked.

use std::io::Write;
use std::process::Stdio;

use test_apiserver::Fault;

use super::{lines, mode_tag, pid1_available, with_ignored_signals, Mode, Rig, START};
use crate::procs::{status_field, widowed_pipe};
use crate::wait::wait_for;

fn clean_process_state(mode: Mode) {
    let rig = Rig::new(&format!("clean-{}", mode_tag(mode)));
    let argv = with_ignored_signals(&rig.argv(mode, &["cat", "/proc/self/status"]));
    let run = rig.start(mode, rig.command(&argv));
    let top = run.child.id();
    let code = run.wait_exit();
    assert_eq!(code, 0, "stderr:\n{}", rig.stderr());
    let status = rig.stdout();
    for field in ["SigBlk", "SigIgn", "SigCgt"] {
        assert_eq!(
            status_field(&status, field),
            Some("0000000000000000"),
            "{field} of CMD ({mode:?}):\n{status}"
        );
    }
    let ppid = status_field(&status, "PPid").and_then(|p| p.parse::<u32>().ok());
    match mode {
        // CMD's parent is PID 1 of its namespace: the binary.
        Mode::Pid1 => assert_eq!(ppid, Some(1), "{status}"),
        // `sh` exec'd the binary, so the pid we started is the binary, CMD's parent.
        Mode::Subreaper => assert_eq!(ppid, Some(top), "{status}"),
    }
}

#[test]
fn cmd_gets_a_clean_process_state_as_subreaper() {
    clean_process_state(Mode::Subreaper);
}

#[test]
fn cmd_gets_a_clean_process_state_as_pid1() {
    if pid1_available("cmd_gets_a_clean_process_state_as_pid1") {
        clean_process_state(Mode::Pid1);
    }
}

#[test]
fn stdin_stdout_stderr_and_environment_reach_cmd() {
    let rig = Rig::new("stdio");
    let argv = rig.argv(
        Mode::Subreaper,
        &[
            "sh",
            "-c",
            r#"read x; echo "got:$x"; echo "env:$SUPERVISOR_TEST_VALUE"; echo to-stderr >&2"#,
        ],
    );
    let mut cmd = rig.command(&argv);
    cmd.stdin(Stdio::piped());
    cmd.env("SUPERVISOR_TEST_VALUE", "a b=c 'd'");
    let mut run = rig.start(Mode::Subreaper, cmd);
    let mut stdin = run.child.stdin.take().expect("stdin pipe");
    stdin.write_all(b"hello\n").expect("write stdin");
    drop(stdin);
    let code = run.wait_exit();
    assert_eq!(code, 0, "stderr:\n{}", rig.stderr());
    let out = rig.stdout();
    assert!(lines(&out).contains(&"got:hello"), "stdout: {out:?}");
    assert!(lines(&out).contains(&"env:a b=c 'd'"), "stdout: {out:?}");
    assert!(
        lines(&rig.stderr()).contains(&"to-stderr"),
        "stderr: {}",
        rig.stderr()
    );
}

/// Our stderr is a pipe nobody reads any more (a log shipper that died): every log line then
/// fails with EPIPE. That must not kill the supervisor by SIGPIPE (exit 141, lease kept until
/// it expires); it carries on, CMD's code comes out and the Lease is released.
#[test]
fn a_closed_stderr_does_not_kill_the_supervisor() {
    let rig = Rig::new("epipe");
    let argv = rig.argv(Mode::Subreaper, &["sh", "-c", "exit 7"]);
    let mut cmd = rig.command(&argv);
    cmd.stderr(widowed_pipe());
    let run = rig.start(Mode::Subreaper, cmd);
    assert_eq!(run.wait_exit(), 7, "CMD's exit code, not death by SIGPIPE");
    rig.assert_lease_released();
}

/// Started with descriptor 2 not open at all (`2>&-`): the first socket we open must not
/// become "stderr", or log lines would go into the API connection and break it. We open
/// /dev/null there first; the election works, CMD's code comes out, the Lease is released.
#[test]
fn a_closed_stderr_descriptor_does_not_swallow_the_api_connection() {
    let rig = Rig::new("fd2-closed");
    let mut argv: Vec<String> = ["sh", "-c", "exec \"$@\" 2>&-", "sh"]
        .map(String::from)
        .to_vec();
    argv.extend(rig.argv(Mode::Subreaper, &["sh", "-c", "exit 7"]));
    let mut cmd = rig.command(&argv);
    // Plenty of log lines while requests are in flight (every request is logged).
    cmd.env("RUST_LOG", "debug");
    let run = rig.start(Mode::Subreaper, cmd);
    assert_eq!(run.wait_exit(), 7, "CMD ran and its exit code came out");
    rig.assert_lease_released();
}

/// Fills the pipe behind `writer` until a write would block: from then on, with nobody
/// reading, every write to it blocks. (Tests may use `libc` directly, with SAFETY comments;
/// the product keeps its system calls in `src/sys.rs`.)
#[allow(unsafe_code)]
fn fill_pipe(writer: &std::io::PipeWriter) {
    use std::os::fd::AsRawFd;
    let fd = writer.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; only O_NONBLOCK changes, and it is
    // restored below (the binary must get a blocking pipe).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL");
    // SAFETY: as above.
    let set = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(set, 0, "F_SETFL");
    let chunk = [b'x'; 4096];
    loop {
        match (&*writer).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }, 0);
}

/// Our stderr is a full pipe that nobody reads (a stalled log shipper): every write(2) to it
/// blocks. Logging must hold up neither the election nor the step-down: CMD still starts, and
/// when renewals fail CMD is stopped and we exit with 75 (EX_TEMPFAIL) as usual.
#[test]
fn a_blocked_stderr_holds_up_neither_the_election_nor_the_step_down() {
    let rig = Rig::new("blocked-stderr");
    let started = rig.path("started");
    let stopped = rig.path("stopped");
    let script = format!(
        "trap 'touch {}; exit 0' TERM; touch {}; while :; do sleep 0.05; done",
        stopped.display(),
        started.display()
    );
    let argv = rig.argv(Mode::Subreaper, &["sh", "-c", &script]);
    let mut cmd = rig.command(&argv);
    let (reader, writer) = std::io::pipe().expect("pipe");
    fill_pipe(&writer);
    cmd.stderr(writer);
    let run = rig.start(Mode::Subreaper, cmd);
    wait_for("CMD to start despite the blocked stderr", START, || {
        started.exists().then_some(())
    });
    rig.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    assert_eq!(run.wait_exit(), 75, "stepped down after failed renewals");
    assert!(stopped.exists(), "CMD got SIGTERM when we stepped down");
    drop(reader);
}
