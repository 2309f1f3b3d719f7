//! What CMD left behind: the processes we adopted (as PID 1 or child subreaper) and, in `Group`
//! mode, CMD's process group. Found by scanning `/proc`, each confirmed to be our unreaped
//! child before it is killed, so no unrelated process can be hit.

use std::time::Instant;

use super::signals::signal_name;
use super::sys::{self, Pid};
use super::Supervisor;

impl Supervisor {
    /// True when CMD has been reaped and no process it left behind is known to remain (as
    /// far as `/proc` shows: without a `/proc` of our PID namespace, leftovers are invisible).
    pub fn nothing_left(&mut self) -> bool {
        self.reap();
        self.child.is_none() && own_children(self.pid).is_empty()
    }

    /// After CMD has exited: SIGKILL what it left behind and reap it, until nothing is left or
    /// `deadline` passes. In `Group` mode that is first CMD's process group; then, in both modes,
    /// every remaining child of ours — we start nothing but CMD, so these are CMD's descendants
    /// that we adopted as PID 1 / subreaper — repeated for the orphans each kill creates.
    /// `stop_child` does this itself; call it before exiting when CMD ended on its own and its
    /// leftovers must not outlive us (as PID 1 the kernel kills them when we exit anyway).
    ///
    /// Children are found by scanning `/proc` (skipped, with a debug line, if `/proc` is not
    /// mounted or belongs to another PID namespace) and each is confirmed to be our own child
    /// with `waitid(WNOWAIT)` before the kill. An unreaped child's pid cannot be reused, and
    /// only this thread reaps, so no unrelated process can be hit.
    pub fn kill_leftovers(&mut self, deadline: Instant) {
        if self.child.is_some() {
            return; // CMD still runs: nothing is a leftover yet
        }
        if let Some(pgid) = self.last_pgid.take() {
            // ESRCH (group empty) is expected. The pgid was CMD's pid, reaped moments ago; it
            // can only be reused once no process holds it as pid or pgid *and* the pid space
            // has wrapped around.
            if sys::kill(-pgid, sys::SIGKILL).is_ok() {
                log::info!("killed what was left of CMD's process group {pgid}");
            }
        }
        loop {
            self.reap();
            let leftovers = own_children(self.pid);
            if leftovers.is_empty() {
                return;
            }
            for &pid in &leftovers {
                log::info!("killing pid {pid}, left behind by CMD");
                // `pid` is our unreaped child (checked by own_children), so it names that
                // process and no other.
                let _ = sys::kill(pid, sys::SIGKILL);
            }
            // Wait for their SIGCHLD (others are ignored, a wake stays pending in the flag).
            loop {
                match self.next_signal(Some(deadline)) {
                    Some(sys::SIGCHLD) => break,
                    Some(sig) => {
                        log::debug!("ignoring {} while killing leftovers", signal_name(sig))
                    }
                    None => {
                        self.reap();
                        let left = own_children(self.pid);
                        if !left.is_empty() {
                            log::error!("processes left behind by CMD are still there: {left:?}");
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// Our children (any state), from `/proc`; empty if `/proc` is missing or not of our PID
/// namespace. Each pid is confirmed with `waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT)`, which
/// fails with ECHILD for anything that is not our child and consumes nothing.
fn own_children(me: Pid) -> Vec<Pid> {
    let proc_self_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<Pid>().ok()));
    if proc_self_pid != Some(me) {
        log::debug!("/proc is not mounted for our PID namespace: cannot look for leftovers");
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<Pid>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if parent_in_stat(&stat) == Some(me) && sys::is_unreaped_child(pid) {
            out.push(pid);
        }
    }
    out
}

/// The parent pid in the text of `/proc/<pid>/stat`.
fn parent_in_stat(stat: &str) -> Option<Pid> {
    // "pid (comm) state ppid ...": comm may contain anything, so split after the last ')'.
    stat.rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<Pid>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_from_stat_line() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0 -1"), Some(7));
        // comm may contain spaces and parentheses.
        assert_eq!(parent_in_stat("42 (a) S 9 (b) R 3 42 42"), Some(3));
        assert_eq!(parent_in_stat("42 (sh"), None);
    }
}
