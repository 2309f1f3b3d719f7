//! CMD's process tree as `/proc` shows it: the fields of `/proc/<pid>/stat` we need
//! ([`ProcStat`]), a scan of every process, and the descendants of a process, parents before
//! children. Parsing and the tree walk are pure; only [`scan`], [`read_stat`] and
//! [`proc_is_ours`] read `/proc`.
//!
//! A scan is a snapshot: processes come and go while it runs, and a pid seen in it may be
//! reused by an unrelated process afterwards. Whoever acts on it must pin the process first
//! (see `kill`).

use std::collections::{HashMap, HashSet, VecDeque};

use super::sys::Pid;

/// One process as `/proc/<pid>/stat` describes it: enough to place it in the tree and to
/// recognise it again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ProcStat {
    /// Its pid (in the PID namespace `/proc` belongs to).
    pub(super) pid: Pid,
    /// Its parent's pid (0 for a process whose parent is outside the namespace).
    pub(super) ppid: Pid,
    /// When it started, in clock ticks since boot (field 22, `starttime`). Together with the
    /// pid it tells a process apart from a later one that reused its pid.
    pub(super) start: u64,
}

/// Parse the text of `/proc/<pid>/stat`: "pid (comm) state ppid pgrp ... starttime ...".
/// `None` when it does not have that shape.
pub(super) fn parse_stat(text: &str) -> Option<ProcStat> {
    // comm may contain anything, spaces and parentheses included: split at the last ')'.
    let close = text.rfind(')')?;
    let pid = text.get(..close)?.split(" (").next()?.trim().parse().ok()?;
    let mut fields = text.get(close + 1..)?.split_whitespace();
    // After comm: field 3 (state) is index 0, field 4 (ppid) index 1, field 22 (starttime)
    // index 19.
    let ppid = fields.nth(1)?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some(ProcStat { pid, ppid, start })
}

/// `/proc/<pid>/stat` now; `None` when the process is gone (or `/proc` unreadable).
pub(super) fn read_stat(pid: Pid) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).filter(|s| s.pid == pid)
}

/// True when `/proc` is mounted and belongs to our PID namespace (`/proc/self` names `me`).
/// Without that we cannot find what CMD leaves behind: `/proc` is missing in an empty root,
/// and after `unshare --pid --fork` without `--mount-proc` it still shows the parent's
/// namespace, where our pids mean other processes.
pub(super) fn proc_is_ours(me: Pid) -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<Pid>().ok()))
        == Some(me)
}

/// Every process `/proc` lists now; `None` when we cannot look: `/proc` is not ours (see
/// [`proc_is_ours`]) or cannot be read to the end. A process that ends during the scan is
/// simply missing.
pub(super) fn scan(me: Pid) -> Option<Vec<ProcStat>> {
    if !proc_is_ours(me) {
        return None;
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()? {
        // An error part-way through means we did not see everything.
        let entry = entry.ok()?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<Pid>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_stat(pid) {
            out.push(stat);
        }
    }
    Some(out)
}

/// The descendants of `root` among `procs` (children, their children, ...), `root` itself
/// excluded, every parent before its children.
pub(super) fn descendants(root: Pid, procs: &[ProcStat]) -> Vec<ProcStat> {
    let mut children: HashMap<Pid, Vec<&ProcStat>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut seen: HashSet<Pid> = HashSet::from([root]);
    let mut queue = VecDeque::from([root]);
    let mut out = Vec::new();
    while let Some(parent) = queue.pop_front() {
        for &child in children.get(&parent).into_iter().flatten() {
            // A pid twice (a snapshot taken across a reuse) or a loop cannot hang us.
            if seen.insert(child.pid) {
                out.push(*child);
                queue.push_back(child.pid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line with the real field layout (52 fields).
    fn line(pid: Pid, comm: &str, ppid: Pid, start: u64) -> String {
        format!(
            "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 120 0 0 0 0 0 0 0 20 0 1 0 {start} \
             2420736 226 18446744073709551615 1 1 0 0 0 0 0 0 65536 0 0 0 17 1 0 0 0 0 0 0 0 0 0 \
             0 0 0 0"
        )
    }

    fn p(pid: Pid, ppid: Pid, start: u64) -> ProcStat {
        ProcStat { pid, ppid, start }
    }

    #[test]
    fn parses_pid_parent_and_start_time() {
        assert_eq!(
            parse_stat(&line(42, "sh", 7, 123456)),
            Some(p(42, 7, 123456))
        );
        // comm may contain spaces and parentheses, even ") S 1 ".
        assert_eq!(
            parse_stat(&line(42, "a) S 1 (b", 9, 5)),
            Some(p(42, 9, 5)),
            "split at the last ')'"
        );
        assert_eq!(parse_stat(&line(1, "", 0, 1)), Some(p(1, 0, 1)));
        // Real text read from /proc ends with a newline.
        assert_eq!(
            parse_stat(&format!("{}\n", line(3, "x", 2, 77))),
            Some(p(3, 2, 77))
        );
    }

    #[test]
    fn rejects_malformed_stat_text() {
        assert_eq!(parse_stat("42 (sh"), None);
        assert_eq!(parse_stat("42 (sh) S 7 42 42 0 -1"), None, "no starttime");
        assert_eq!(
            parse_stat("x (sh) S 7 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
            None
        );
        assert_eq!(
            parse_stat("42 (sh) S x 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"),
            None
        );
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn reads_our_own_stat() {
        let me = std::process::id() as Pid;
        let stat = read_stat(me).expect("/proc/self/stat");
        assert_eq!(stat.pid, me);
        assert!(stat.start > 0);
        assert!(proc_is_ours(me));
        assert!(!proc_is_ours(me + 1));
        let all = scan(me).expect("a scan of /proc");
        assert!(all.contains(&stat));
    }

    #[test]
    fn descendants_parents_first_and_nothing_else() {
        // 10 (us) ─┬─ 11 (CMD) ─┬─ 13 ── 16
        //          │            └─ 14
        //          └─ 12 (an adopted orphan) ── 15
        // 1 ── 20 ── 21: not ours. 30: a zombie's child, parent 0.
        let procs = [
            p(1, 0, 1),
            p(16, 13, 9),
            p(20, 1, 2),
            p(21, 20, 3),
            p(15, 12, 8),
            p(14, 11, 7),
            p(13, 11, 6),
            p(12, 10, 5),
            p(11, 10, 4),
            p(10, 1, 3),
            p(30, 0, 3),
        ];
        let got = descendants(10, &procs);
        let pids: HashSet<Pid> = got.iter().map(|s| s.pid).collect();
        assert_eq!(pids, HashSet::from([11, 12, 13, 14, 15, 16]));
        assert_eq!(got.len(), 6);
        let at = |pid: Pid| got.iter().position(|s| s.pid == pid);
        for s in &got {
            if s.ppid != 10 {
                assert!(at(s.ppid) < at(s.pid), "{} before {}", s.ppid, s.pid);
            }
        }
        assert!(descendants(99, &procs).is_empty());
        assert!(descendants(16, &procs).is_empty());
    }

    #[test]
    fn descendants_survive_loops_and_duplicates() {
        // Not possible in one instant, but a scan spans time: never loop or repeat.
        let procs = [p(2, 3, 1), p(3, 2, 1), p(4, 1, 1), p(4, 1, 2), p(5, 4, 1)];
        let got: Vec<Pid> = descendants(1, &procs).iter().map(|s| s.pid).collect();
        assert_eq!(got, [4, 5]);
        assert!(descendants(7, &[p(7, 7, 1)]).is_empty());
    }
}
