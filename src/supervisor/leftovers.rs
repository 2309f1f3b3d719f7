//! Nothing CMD started may outlive our hold on the Lease. This file has the SIGKILL to CMD's
//! whole process tree at the kill deadline, the ending of what CMD left behind once it is
//! gone (SIGTERM, a short grace, SIGKILL), and the two questions the caller asks before
//! releasing and before exiting: [`Supervisor::nothing_left`] and
//! [`Supervisor::wait_until_nothing_left`].
//!
//! Everything CMD starts stays in our process tree: while its parent lives a process is a
//! descendant of CMD, and once its parent dies it is re-parented to us (we are PID 1 or a
//! child subreaper). So CMD reaped, no child of ours left (`waitid` says ECHILD) and no
//! descendant in `/proc` means that nothing CMD started still lives. Processes are found by
//! scanning `/proc` and killed pinned (see `kill`), so no unrelated process can be hit.
//!
//! When we cannot look — `/proc` missing or of another PID namespace, or neither PID 1 nor a
//! subreaper, so that CMD's orphans escape to another reaper — nothing is ever *confirmed*
//! dead: [`Supervisor::nothing_left`] stays false, so the Lease is left to expire.
//! [`Supervisor::install`] says so once. As PID 1 without a usable `/proc`, `kill(-1)` still
//! reaches every process of our PID namespace.

use std::collections::HashSet;
use std::time::Duration;

use crate::clock::BootInstant;

use super::signals::signal_name;
use super::sys::{self, Pid};
use super::tree::{self, ProcStat};
use super::{kill, Supervisor};

/// How long what CMD left behind gets between SIGTERM and SIGKILL (less when the kill deadline
/// comes first). Short: these are helpers CMD did not stop itself, and the Lease is held for
/// them meanwhile (dumb-init leaves them running; tini leaves them to the kernel).
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

/// How often to look again while waiting for killed processes to be gone.
const TICK: Duration = Duration::from_millis(50);
/// Scan-and-kill rounds at most per kill: each round catches the processes forked just
/// before their parent got its SIGKILL, so a few are enough.
const MAX_ROUNDS: usize = 16;
/// Ticks in a row in which we have a child that `/proc` does not show, before
/// [`Supervisor::wait_until_nothing_left`] gives up looking.
const BLIND_TICKS: u32 = 20;

/// What a look at our process tree found.
enum Look {
    /// No descendant in `/proc` and no child at all.
    Gone,
    /// These descendants (parents before children).
    Left(Vec<ProcStat>),
    /// No descendant in `/proc`, yet we have a child: one adopted after the scan, or `/proc`
    /// hides processes from us (`hidepid`).
    Unseen,
    /// `/proc` is missing, of another PID namespace, or unreadable.
    Blind,
}

impl Supervisor {
    /// True only when CMD has been reaped and nothing it started can still be running: we
    /// have no child left and `/proc` shows no descendant of ours. Always false when we cannot
    /// look (see the module docs; [`install`](Self::install) warned about it): then the Lease
    /// must not be released, others wait for it to expire.
    pub fn nothing_left(&mut self) -> bool {
        self.reap();
        self.child.is_none() && self.leftovers_visible && matches!(self.look(), Look::Gone)
    }

    /// After CMD has exited: end what it left behind and reap it, until nothing is left or
    /// `reap_by` passes. First SIGTERM, as dumb-init does, so that helpers can clean up: in
    /// `Group` mode to CMD's process group, and in both modes to every descendant of ours — we
    /// start nothing but CMD, so these are CMD's descendants, most of them adopted by us as
    /// PID 1 / subreaper. Then, once they are gone or at `min(now + LEFTOVER_GRACE, kill_at)`,
    /// SIGKILL to all of them at once, repeated for whatever appears meanwhile (no SIGTERM
    /// when `kill_at` has passed). `stop_child` does this itself; call it before exiting when
    /// CMD ended on its own. Does nothing while CMD runs.
    ///
    /// Without a `/proc` of our PID namespace, only PID 1 can still do something
    /// (`kill(-1, SIGKILL)`: every process of the namespace but us), with no grace.
    pub fn kill_leftovers(&mut self, kill_at: BootInstant, reap_by: BootInstant) {
        self.note_deadline(reap_by);
        if self.child.is_some() {
            return; // CMD still runs: nothing is a leftover yet
        }
        let pgid = self.last_pgid.take();
        let term_until = kill_at.min(BootInstant::now() + LEFTOVER_GRACE);
        if BootInstant::now() < term_until && self.term_leftovers(pgid, term_until) {
            return;
        }
        let deadline = reap_by;
        if let Some(pgid) = pgid {
            // ESRCH (group empty) is expected. The pgid was CMD's pid, reaped moments ago (at
            // most the grace before); it can only be reused once no process holds it as pid
            // or pgid *and* the pid space has wrapped around.
            if sys::kill(-pgid, sys::SIGKILL).is_ok() {
                log::info!("killed what was left of CMD's process group {pgid}");
            }
        }
        loop {
            self.reap();
            match self.look() {
                Look::Gone => return,
                Look::Left(_) => self.kill_tree(),
                // Adopted after the scan, most likely: look again after a pause.
                Look::Unseen => {}
                Look::Blind => {
                    self.kill_blind();
                    return;
                }
            }
            if BootInstant::now() >= deadline {
                self.reap();
                match self.look() {
                    Look::Left(left) => {
                        let pids: Vec<Pid> = left.iter().map(|s| s.pid).collect();
                        self.overdue(&format!(
                            "processes left behind by CMD are still there: {pids:?}"
                        ));
                    }
                    Look::Unseen => self.overdue(
                        "a process left behind by CMD is still there, but /proc does not show it",
                    ),
                    Look::Gone | Look::Blind => {}
                }
                return;
            }
            self.pause(deadline);
        }
    }

    /// Before exiting: SIGKILL CMD if it still runs and everything it started, and reap them,
    /// for as long as it takes — past any deadline: exiting would let them run on unsupervised
    /// (re-parented outside our PID namespace, or for good when we are not PID 1). Logs one
    /// ERROR once the latest deadline given to [`stop_child`](Self::stop_child) or
    /// [`kill_leftovers`](Self::kill_leftovers) has passed (at once if there was none).
    ///
    /// Returns [`nothing_left`](Self::nothing_left): true when all is confirmed gone. When we
    /// cannot look it returns false as soon as CMD itself is reaped, since nothing more can be
    /// done. Signals arriving meanwhile are ignored; a pending [`Waker::wake`] is kept.
    ///
    /// [`Waker::wake`]: super::Waker::wake
    pub fn wait_until_nothing_left(&mut self) -> bool {
        let overdue_at = self.hard_deadline.unwrap_or_else(BootInstant::now);
        let mut blind_ticks = 0;
        loop {
            self.reap();
            if self.child.is_none() {
                if !self.leftovers_visible {
                    log::debug!("CMD is reaped; what it left behind cannot be confirmed dead");
                    return false;
                }
                match self.look() {
                    Look::Gone => return true,
                    Look::Left(_) => blind_ticks = 0,
                    Look::Unseen | Look::Blind => {
                        blind_ticks += 1;
                        if blind_ticks >= BLIND_TICKS {
                            log::error!(
                                "cannot see what CMD left behind any more; exiting without confirming it is dead"
                            );
                            return false;
                        }
                    }
                }
            }
            let what = if self.child.is_some() {
                "CMD"
            } else {
                "processes left behind by CMD"
            };
            self.kill_tree();
            if BootInstant::now() >= overdue_at {
                self.overdue(&format!(
                    "{what} still alive past the deadline: killing until they are gone"
                ));
            }
            self.pause(BootInstant::now() + TICK);
        }
    }

    /// The SIGTERM of [`kill_leftovers`](Self::kill_leftovers): to CMD's former process group
    /// (`pgid`) and every descendant, then wait until they are gone (true) or `until` passes
    /// (false). False at once when we cannot look.
    fn term_leftovers(&mut self, pgid: Option<Pid>, until: BootInstant) -> bool {
        // A member of CMD's group outside our tree (orphans escaped us when we could not
        // become a subreaper) counts too: signal 0 finds out whether the group is empty.
        let group_gone = || pgid.is_none_or(|g| sys::kill(-g, 0).is_err());
        self.reap();
        let left = match self.look() {
            Look::Gone if group_gone() => return true,
            Look::Left(left) => left,
            Look::Gone | Look::Unseen => Vec::new(),
            Look::Blind => return false,
        };
        if let Some(pgid) = pgid {
            let _ = sys::kill(-pgid, sys::SIGTERM);
        }
        let hit = kill::kill_all(self.pid, &left, sys::SIGTERM);
        if !hit.is_empty() {
            let pids: Vec<Pid> = hit.iter().map(|s| s.pid).collect();
            log::info!(
                "sent SIGTERM to what CMD left behind: pids {pids:?}; SIGKILL in {} ms at most",
                until
                    .saturating_duration_since(BootInstant::now())
                    .as_millis()
            );
        }
        loop {
            self.reap();
            if matches!(self.look(), Look::Gone) && group_gone() {
                log::info!("what CMD left behind exited after SIGTERM");
                return true;
            }
            if BootInstant::now() >= until {
                return false;
            }
            self.pause(until);
        }
    }

    /// SIGKILL CMD (its process group too in `Group` mode) and every process it started, all
    /// at once: scan `/proc`, pin and kill every descendant of ours, scan again until a scan
    /// finds nothing that was not killed yet (catching what was forked meanwhile).
    pub(super) fn kill_tree(&mut self) {
        if let Some(pid) = self.child.as_ref().map(|c| c.pid) {
            // The quickest signal first; in Group mode it also reaches the group.
            if let Err(err) = self.signal_child(pid, sys::SIGKILL) {
                log::warn!("cannot send SIGKILL to CMD: {err}");
            }
        }
        let mut killed: HashSet<(Pid, u64)> = HashSet::new();
        for _ in 0..MAX_ROUNDS {
            let Some(procs) = tree::scan(self.pid) else {
                self.kill_blind();
                return;
            };
            let left = tree::descendants(self.pid, &procs);
            if left.iter().all(|s| killed.contains(&(s.pid, s.start))) {
                return;
            }
            let hit = kill::kill_all(self.pid, &left, sys::SIGKILL);
            killed.extend(hit.iter().map(|s| (s.pid, s.start)));
            // Name each process once, however often it is signalled again.
            let fresh: Vec<Pid> = hit
                .iter()
                .filter(|s| self.killed.insert((s.pid, s.start)))
                .map(|s| s.pid)
                .collect();
            if !fresh.is_empty() {
                log::info!("sent SIGKILL to CMD's process tree: pids {fresh:?}");
            }
        }
    }

    /// What is left when we cannot look: as PID 1, `kill(-1)` reaches every process of our
    /// PID namespace but us (the kernel would kill them all when we exit anyway).
    fn kill_blind(&self) {
        if self.pid == 1 && sys::kill(-1, sys::SIGKILL).is_ok() {
            log::info!("cannot look for what CMD left behind: sent SIGKILL to every other process of our PID namespace");
        }
    }

    /// What is left of CMD, as far as we can tell.
    fn look(&self) -> Look {
        // The common case, without reading all of `/proc`: as PID 1 or subreaper, every living
        // descendant hangs below a child of ours (a dying process's children are re-parented
        // to us before it turns into our zombie), so no child at all means nothing is left.
        if self.leftovers_visible && !sys::has_children() {
            return Look::Gone;
        }
        let Some(procs) = tree::scan(self.pid) else {
            return Look::Blind;
        };
        let left = tree::descendants(self.pid, &procs);
        if !left.is_empty() {
            Look::Left(left)
        } else if sys::has_children() {
            Look::Unseen
        } else {
            Look::Gone
        }
    }

    /// Remember `deadline` for [`wait_until_nothing_left`](Self::wait_until_nothing_left).
    pub(super) fn note_deadline(&mut self, deadline: BootInstant) {
        self.hard_deadline = Some(deadline);
    }

    /// Log that something of CMD outlived the deadline: once.
    pub(super) fn overdue(&mut self, what: &str) {
        if !self.overdue_logged {
            self.overdue_logged = true;
            log::error!("{what}");
        }
    }

    /// Wait for the next SIGCHLD, at most until `until`; other signals are ignored (a wake
    /// stays pending in its flag).
    fn pause(&self, until: BootInstant) {
        let until = until.min(BootInstant::now() + TICK);
        loop {
            match self.next_signal(Some(until)) {
                Some(sys::SIGCHLD) | None => return,
                Some(sig) => log::debug!("ignoring {} while killing CMD's tree", signal_name(sig)),
            }
        }
    }
}
