//! Processes as the tests see them: `/proc` inspection, signals by name, exit codes as a shell
//! reports them, bounded waits for a child, pipes nobody reads, and copying an executable
//! safely. Standard library only (no libc: the crate keeps its libc calls in `supervisor`).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::wait::poll;

/// The fields of `/proc/<pid>/stat` the tests care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The process id.
    pub pid: u32,
    /// R, S, D, Z, T, ...
    pub state: char,
    /// The parent's process id.
    pub ppid: u32,
    /// The process group id.
    pub pgrp: u32,
}

/// Parse `/proc/<pid>/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses: split at the
    // last ')'.
    let close = text.rfind(')')?;
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Whether `pid` is a live process (present in /proc and neither a zombie nor dead).
pub fn pid_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Every process whose parent is `ppid` (zombies included), from a scan of `/proc`.
pub fn children(ppid: u32) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<Stat> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|s| s.ppid == ppid)
        .collect();
    out.sort_by_key(|s| s.pid);
    out
}

/// The shell's view of an exit status: the code, or 128 + the terminating signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

/// Wait for `child` to exit within `timeout`; on timeout SIGKILL it and return `None`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let status = poll(timeout, || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Send a signal by name ("TERM", "USR1", ...) with kill(1). Panics if kill fails.
pub fn send_signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -s {name} {pid} failed");
}

/// A field of a `/proc/<pid>/status` text ("SigBlk" → "0000000000000000").
pub fn status_field<'a>(status_text: &'a str, name: &str) -> Option<&'a str> {
    status_text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// The write end of a pipe whose read end is already closed: every write to it fails (EPIPE).
pub fn widowed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer
}

/// Copies an executable with `cp`: a file this (multi-threaded) test process had open for
/// writing could leak into a child forked by another test at that moment, and exec'ing it
/// would then fail with "text file busy".
pub fn copy_executable(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp")
        .success();
    assert!(ok, "cp {} {}", from.display(), to.display());
}
