//! Resource soak (`scripts/soak-resources.sh`): a leader and a follower over a long run, their
//! memory, descriptors and threads sampled from `/proc`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{env_u64, Chaos, Leader};

/// One sample of a process: resident memory, its peak, open file descriptors, threads.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    rss_kb: u64,
    hwm_kb: u64,
    fds: usize,
    threads: u64,
}

fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Usage {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
        threads: field("Threads:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count(),
    })
}

/// A leader and a follower for `SOAK_SECONDS` (default 600) with the test timings (renewal
/// every second), every watch dropped every `SOAK_WATCH_RESTART` seconds (default 30), and
/// their memory and descriptors sampled every `SOAK_INTERVAL` seconds (default 10). Prints the
/// samples and a summary; fails if leadership changed or descriptors grew.
#[test]
#[ignore = "long: run through scripts/soak-resources.sh"]
fn resource_soak() {
    let seconds = env_u64("SOAK_SECONDS", 600);
    let interval = Duration::from_secs(env_u64("SOAK_INTERVAL", 10).max(1));
    let restart_every = Duration::from_secs(env_u64("SOAK_WATCH_RESTART", 30).max(1));
    let mut ch = Chaos::new("soak", 2);
    let Leader {
        identity: leader,
        index: li,
        token,
        ..
    } = ch.steady_leader();
    let fi = 1 - li;
    let follower = ch.pods[fi].identity.clone();
    let pids = [ch.replica(li).pid(), ch.replica(fi).pid()];
    let writes_before = ch.c.lease_writes(&token).len();
    println!("soak: {seconds} s, leader {leader} (pid {}), follower {follower} (pid {}), samples every {} s, watches dropped every {} s",
        pids[0], pids[1], interval.as_secs(), restart_every.as_secs());
    println!(
        "soak: {:>6} | {:>9} {:>9} {:>4} {:>3} | {:>9} {:>9} {:>4} {:>3}",
        "t (s)", "L rss kB", "L hwm kB", "fds", "thr", "F rss kB", "F hwm kB", "fds", "thr"
    );
    let start = Instant::now();
    let mut next_sample = start;
    let mut next_restart = start + restart_every;
    let mut samples: Vec<[Usage; 2]> = Vec::new();
    let mut restarts = 0;
    while start.elapsed() <= Duration::from_secs(seconds) {
        let now = Instant::now();
        if now >= next_restart {
            ch.c.api.end_watches();
            restarts += 1;
            next_restart += restart_every;
        }
        if now >= next_sample {
            let s = [
                usage(pids[0]).expect("leader alive"),
                usage(pids[1]).expect("follower alive"),
            ];
            println!(
                "soak: {:>6} | {:>9} {:>9} {:>4} {:>3} | {:>9} {:>9} {:>4} {:>3}",
                start.elapsed().as_secs(),
                s[0].rss_kb,
                s[0].hwm_kb,
                s[0].fds,
                s[0].threads,
                s[1].rss_kb,
                s[1].hwm_kb,
                s[1].fds,
                s[1].threads
            );
            samples.push(s);
            next_sample += interval;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let renewals = ch.c.lease_writes(&token).len() - writes_before;
    let follower_requests =
        ch.c.api
            .requests()
            .iter()
            .filter(|r| r.token.as_deref() == Some(ch.token(fi).as_str()))
            .count();
    println!("soak: {renewals} renewals by the leader, {restarts} watch restarts, {follower_requests} requests by the follower");
    for (k, who) in [(0, "leader"), (1, "follower")] {
        let col: Vec<Usage> = samples.iter().map(|s| s[k]).collect();
        let (first, last) = (col[0], col[col.len() - 1]);
        let min_rss = col.iter().map(|u| u.rss_kb).min().unwrap_or(0);
        let max_rss = col.iter().map(|u| u.rss_kb).max().unwrap_or(0);
        // Second half vs. first half: growth that continues shows up here.
        let half = col.len() / 2;
        let max_first = col[..half.max(1)]
            .iter()
            .map(|u| u.rss_kb)
            .max()
            .unwrap_or(0);
        let max_second = col[half..].iter().map(|u| u.rss_kb).max().unwrap_or(0);
        let fds: BTreeSet<usize> = col.iter().map(|u| u.fds).collect();
        let threads: BTreeSet<u64> = col.iter().map(|u| u.threads).collect();
        println!(
            "soak: {who}: VmRSS {} -> {} kB (min {min_rss}, max {max_rss}; max 1st half {max_first}, 2nd half {max_second}), VmHWM {} -> {} kB, fds {:?}, threads {:?}",
            first.rss_kb, last.rss_kb, first.hwm_kb, last.hwm_kb, fds, threads
        );
    }
    assert_eq!(
        ch.c.starts(),
        [leader.as_str()],
        "leadership changed\n{}",
        ch.c.dump()
    );
    let fds_last = samples[samples.len() - 1];
    let fds_first = samples[0];
    for k in 0..2 {
        assert!(
            fds_last[k].fds <= fds_first[k].fds + 2,
            "descriptors grew: {:?} -> {:?}",
            fds_first[k],
            fds_last[k]
        );
    }
    ch.finish();
}
