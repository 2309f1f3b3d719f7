//! A signal (SIGTERM, SIGKILL) to processes found by a `/proc` scan, without ever hitting a
//! process that merely reused one of their pids.
//!
//! A scan is a snapshot; by the time we signal, a process in it may have died, been reaped by
//! its parent and had its pid handed to an unrelated process. So each process is first
//! *pinned*: `pidfd_open` gives a descriptor for the process itself, then its `/proc/<pid>/stat`
//! is read again and must show the same parent and start time as in the scan, and that parent
//! must be the root of the tree or a process pinned just before it and still there (a live or
//! zombie process keeps its pid, so the parent pid read still named it). A signal through the
//! descriptor reaches that process or, once it has been reaped, nobody. Pinning everything
//! first and then signalling makes the kill of a whole tree one quick burst.
//!
//! Without pidfds (Linux < 5.3, or refused by a seccomp filter) our own unreaped children are
//! still safe to signal by pid (their pid cannot be reused before we reap them); any other
//! process is re-checked against the scan right before `kill(2)`, which leaves a window of
//! microseconds in which its pid would have to be freed and reused by a process with the same
//! parent pid and the same start tick.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use super::sys::{self, Pid};
use super::tree::{self, ProcStat};

/// How a process is held between the check and the signal.
enum Pin {
    /// A pidfd for the process the scan saw.
    Fd(OwnedFd),
    /// No pidfd available: signalled by pid after a last check.
    Pid,
}

/// Send `sig` to every process of `tree` (descendants of `root` from one scan, every parent before
/// its children, as `tree::descendants` returns them). `root` must stay alive meanwhile (it is
/// us, or an unreaped child of ours). Returns the processes that were signalled; the others
/// had ended, changed parent, or could not be pinned: a later scan finds them again.
pub(super) fn kill_all(root: Pid, tree: &[ProcStat], sig: i32) -> Vec<ProcStat> {
    let me = sys::getpid();
    let mut pinned: Vec<(ProcStat, Pin)> = Vec::with_capacity(tree.len());
    let mut index: HashMap<Pid, usize> = HashMap::with_capacity(tree.len());
    for &stat in tree {
        let pin = match sys::pidfd_open(stat.pid) {
            Ok(fd) => Pin::Fd(fd),
            // Gone already (reaped): nothing to kill.
            Err(e) if e.raw_os_error() == Some(sys::ESRCH) => continue,
            Err(_) => Pin::Pid,
        };
        // Still the process the scan saw (same parent, same start)? If it was re-parented
        // (its parent died), the next scan places it under its new parent.
        if tree::read_stat(stat.pid) != Some(stat) {
            continue;
        }
        let parent_holds = stat.ppid == root
            || index
                .get(&stat.ppid)
                .and_then(|&i| pinned.get(i))
                .is_some_and(|(_, pin)| still_there(pin));
        if parent_holds {
            index.insert(stat.pid, pinned.len());
            pinned.push((stat, pin));
        }
    }
    let mut killed = Vec::with_capacity(pinned.len());
    for (stat, pin) in &pinned {
        let sent = match pin {
            Pin::Fd(fd) => sys::pidfd_send_signal(fd.as_fd(), sig).is_ok(),
            Pin::Pid => {
                let safe = if stat.ppid == me {
                    sys::is_unreaped_child(stat.pid)
                } else {
                    tree::read_stat(stat.pid) == Some(*stat)
                };
                safe && sys::kill(stat.pid, sig).is_ok()
            }
        };
        if sent {
            killed.push(*stat);
        }
    }
    killed
}

/// The pinned process has not been reaped yet (it may be a zombie), so it still holds its pid.
fn still_there(pin: &Pin) -> bool {
    match pin {
        Pin::Fd(fd) => sys::pidfd_send_signal(fd.as_fd(), 0).is_ok(),
        // Re-checked against the scan just now; nothing better is available.
        Pin::Pid => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn kills_a_whole_tree_that_ignores_sigterm_and_nothing_else() {
        // root (sh, our child) ── sh ── sleep, and root ── sleep; SIGTERM ignored throughout.
        // The tree is rooted at `sh`, not at this test process, so the children of tests
        // running in parallel are out of reach.
        let mut root = Command::new("sh")
            .args(["-c", "trap '' TERM; (sleep 300 & wait) & sleep 300 & wait"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let root_pid = root.id() as Pid;
        let me = sys::getpid();
        let tree = poll("the tree to grow", || {
            let procs = tree::scan(me)?;
            let tree = tree::descendants(root_pid, &procs);
            (tree.len() == 3).then_some(tree)
        });
        let bystander = tree::read_stat(me).expect("our own stat");
        let killed = kill_all(root_pid, &tree, sys::SIGKILL);
        assert_eq!(killed.len(), 3, "{killed:?} of {tree:?}");
        // All three die (the two sleeps are re-parented when the subshell dies; they are
        // zombies at worst), and then the root's `wait` returns.
        poll("the tree to die", || {
            let alive: Vec<_> = tree
                .iter()
                .filter(|s| {
                    std::fs::read_to_string(format!("/proc/{}/stat", s.pid))
                        .is_ok_and(|t| tree::parse_stat(&t) == Some(**s) && !t.contains(") Z "))
                })
                .collect();
            alive.is_empty().then_some(())
        });
        let status = poll("the root to exit", || root.try_wait().ok().flatten());
        assert_eq!(
            status.code(),
            Some(0),
            "only the tree was killed, not its root"
        );
        assert_eq!(tree::read_stat(me), Some(bystander));
    }

    #[test]
    fn a_stale_scan_kills_nobody() {
        // A process that is gone, and one whose parent or start time no longer match.
        let mut child = Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as Pid;
        let me = sys::getpid();
        let real = tree::read_stat(pid).expect("stat of our child");
        let wrong_start = ProcStat {
            start: real.start + 1,
            ..real
        };
        let wrong_parent = ProcStat {
            ppid: real.ppid + 1,
            ..real
        };
        assert!(kill_all(me, &[wrong_start], sys::SIGKILL).is_empty());
        assert!(kill_all(wrong_parent.ppid, &[wrong_parent], sys::SIGKILL).is_empty());
        assert_eq!(child.try_wait().ok().flatten(), None, "still running");
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(
            kill_all(me, &[real], sys::SIGKILL).is_empty(),
            "reaped: nothing to kill"
        );
    }
}
