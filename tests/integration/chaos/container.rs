//! A container's SIGKILL as the kubelet (the container runtime) does it: every process of the
//! container dies at once (its cgroup is killed), not only PID 1. Our replicas run without
//! containers, so a replica's "container" is its process tree: the binary and every
//! descendant. SIGKILLing only the binary would leave what CMD started running: CMD itself
//! dies of its parent-death signal, but its children are re-parented to init and live on —
//! and a grandchild left by a `slow-dying` CMD holds the overlap lock.
//!
//! The tree is frozen first: SIGSTOP to every process a scan of `/proc` finds, scanning again
//! until a scan finds nothing new (a stopped process cannot fork, and a child forked before
//! its parent's SIGSTOP was queued is in the next scan), then SIGKILL to all of them.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};

use crate::procs;

/// Scan-and-stop rounds at most (each one catches what was forked just before the last
/// round's SIGSTOPs; two or three are normal).
const MAX_ROUNDS: usize = 20;

/// `root` and every process descending from it, from one scan of `/proc` (zombies included).
fn tree(root: u32) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
            if let Some(stat) = procs::stat(pid) {
                children.entry(stat.ppid).or_default().push(pid);
            }
        }
    }
    let mut found = BTreeSet::from([root]);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if found.insert(*child) {
                todo.push(*child);
            }
        }
    }
    found
}

/// Sends signal `name` to `pids` with one kill(1); pids that are gone by now are no error.
fn signal(pids: &BTreeSet<u32>, name: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-s", name])
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs `root` (a child of this process, not reaped yet, so its pid cannot be reused) and
/// every descendant of it at once, like the kubelet killing a container. The caller reaps
/// `root`; the descendants are reaped by whoever adopts them.
pub fn kill_tree(root: u32) {
    let mut stopped = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let new: BTreeSet<u32> = tree(root).difference(&stopped).copied().collect();
        if new.is_empty() {
            break;
        }
        signal(&new, "STOP");
        stopped.extend(new);
    }
    stopped.insert(root);
    signal(&stopped, "KILL");
}
