//! Seeded random fault schedules (`scripts/chaos.sh`): three pods, a few seconds of random
//! faults and disruptions (chosen by a seeded [`super::rng::Rng`]) with a kubelet stand-in
//! ([`super::kubelet`]) restarting what exits, then the steady state must return.
//! `random_schedule` (ignored) runs them, driven by `CHAOS_SEED`, `CHAOS_RUNS`,
//! `CHAOS_SECONDS` and `CHAOS_JOBS`.
//!
//! What a schedule picks from, each step (then it sleeps 0.1-1.2 s):
//! - API faults for 0.3-6 s, for everyone or for one pod's token (a partition): 5xx, 429 with
//!   or without Retry-After, connection resets, hung requests, latency, refused connections;
//! - token rotation, SIGKILL (the container's whole process tree, [`super::container`]),
//!   SIGTERM (SIGKILL by the kubelet after an 8 s grace, allowed only if CMD ignores SIGTERM);
//! - CMD crashes (`crash`), CMDs ignoring SIGTERM (`stubborn`, toggled);
//! - slow-dying CMDs (`slow-dying`, toggled; see [`Cluster::singleton_cmd`]): a CMD that
//!   ignores SIGTERM, leaves the overlap lock to a grandchild that ignores SIGTERM too, and
//!   takes tens to hundreds of ms from SIGKILL to reaped (python3 memory hog);
//! - a twin (toggled): a fourth pod with the identity of one of the three (of the Lease
//!   holder's, two times in three), named `<identity>-twin` (its CMD events are tagged so), with
//!   its own token and IP; it is restarted like any pod until the schedule deletes it again,
//!   with SIGTERM or SIGKILL. Faults aimed at "a pod" may hit it too;
//! - dropped, compacted-and-dropped, and silenced (half-open) watches.
//!
//! With `CHAOS_MIXED` (`scripts/chaos.sh --mixed`) the containers alternate between our binary
//! and the client-go test peer (see [`Chaos::start`]), so every fault also hits mixed
//! elections; a peer leading needs no Service routing in the steady state. Two things are left
//! out of mixed runs because client-go itself cannot be safe against them: twins (client-go
//! takes a Lease naming its identity), and a peer lease shorter than client-go's latest
//! step-down (peers advertise a 9 s lease, see [`Chaos::start`]).
//!
//! Faults aim at the pod holding the Lease two times in three. At the end ("calm") faults stop,
//! the kubelet finishes what it started, and [`Chaos::steady`] must hold within 30 s (a twin
//! still running counts as a pod like the others: the leader may be the twin).
//!
//! [`Cluster::singleton_cmd`]: crate::cluster::Cluster::singleton_cmd

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_apiserver::Fault;

use super::kubelet::{housekeeping, sigterm, Kubelet};
use super::rng::Rng;
use super::{env_u64, unix_nanos, Chaos};

/// One of the API faults of the test server, with random parameters.
fn random_fault(rng: &mut Rng) -> Fault {
    match rng.below(6) {
        0 => Fault::Status {
            code: rng.pick(&[500, 503, 504]),
            retry_after: None,
        },
        1 => Fault::Status {
            code: 429,
            retry_after: rng.pick(&[None, Some(1), Some(2), Some(3)]),
        },
        2 => Fault::Reset,
        3 => Fault::Hang,
        4 => Fault::Latency(rng.ms(100, 1500)),
        _ => Fault::RefuseConnections,
    }
}

/// What one random run found.
struct RunReport {
    overlaps: usize,
    failure: Option<String>,
    actions: usize,
    leaders: usize,
}

/// One run: three pods, `seconds` of random faults and disruptions, then a steady state must
/// return. Never panics (a panic of a helper becomes the failure).
fn random_run(seed: u64, seconds: u64, peer: Option<&Path>) -> RunReport {
    let mut ch = Chaos::new_mixed(&format!("random-{seed:x}"), 3, peer.map(Path::to_path_buf));
    let mut actions = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        schedule(&mut ch, seed, seconds, &mut actions)
    }));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
    };
    let overlaps =
        ch.c.cmd_events()
            .iter()
            .filter(|e| e.kind == "OVERLAP")
            .count();
    let leaders = ch.c.starts().len();
    if std::env::var_os("CHAOS_VERBOSE").is_some() {
        eprintln!(
            "chaos: seed={seed:#x} schedule:\n  {}",
            actions.join("\n  ")
        );
    }
    let failure = match (failure, overlaps) {
        (None, 0) => None,
        (f, _) => Some(format!(
            "{}{}\nschedule:\n  {}\n{}",
            f.unwrap_or_default(),
            if overlaps > 0 {
                format!(" ({overlaps} overlaps)")
            } else {
                String::new()
            },
            actions.join("\n  "),
            ch.c.dump()
        )),
    };
    if failure.is_some() {
        ch.c.dir.keep();
    }
    RunReport {
        overlaps,
        failure,
        actions: actions.len(),
        leaders,
    }
}

fn schedule(
    ch: &mut Chaos,
    seed: u64,
    seconds: u64,
    actions: &mut Vec<String>,
) -> Result<(), String> {
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let note = |actions: &mut Vec<String>, what: String| {
        actions.push(format!("{:>6} ms {what}", t0.elapsed().as_millis()));
    };
    ch.try_settle(Duration::from_secs(20))?;
    let mut kubelet = Kubelet::default();
    let mut token_serial = 0u64;
    let mut global_until: Option<Instant> = None;
    let mut token_faults: HashMap<String, Instant> = HashMap::new();
    let mut stubborn = false;
    let mut slow_dying = false;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        housekeeping(ch, &mut kubelet, actions, &mut rng)?;
        let now = Instant::now();
        if global_until.is_some_and(|t| now >= t) {
            ch.c.api.set_fault(Fault::None);
            global_until = None;
            note(actions, "global fault cleared".into());
        }
        let expired: Vec<String> = token_faults
            .iter()
            .filter(|(_, t)| now >= **t)
            .map(|(k, _)| k.clone())
            .collect();
        for token in expired {
            ch.c.api.set_token_fault(&token, Fault::None);
            token_faults.remove(&token);
            note(actions, format!("fault on {token} cleared"));
        }
        let live: Vec<usize> = (0..ch.pods.len())
            .filter(|i| ch.pods[*i].replica.is_some())
            .collect();
        let holder = holder_pod(ch, &live);
        let target = |rng: &mut Rng| -> Option<usize> {
            if rng.below(3) > 0 {
                if let Some(h) = holder {
                    return Some(h);
                }
            }
            (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
        };
        match rng.below(100) {
            0..=15 => {
                let f = random_fault(&mut rng);
                let d = rng.ms(300, 6000);
                note(actions, format!("global {f:?} for {} ms", d.as_millis()));
                ch.c.api.set_fault(f);
                global_until = Some(Instant::now() + d);
            }
            16..=33 => {
                if let Some(i) = target(&mut rng) {
                    let f = random_fault(&mut rng);
                    let d = rng.ms(300, 6000);
                    let token = ch.token(i);
                    note(
                        actions,
                        format!(
                            "partition {} ({token}) with {f:?} for {} ms",
                            ch.pods[i].name,
                            d.as_millis()
                        ),
                    );
                    ch.c.api.set_token_fault(&token, f);
                    token_faults.insert(token, Instant::now() + d);
                }
            }
            34..=40 => {
                if let Some(i) = target(&mut rng) {
                    token_serial += 1;
                    let new = format!("rotated-{}-{}", ch.pods[i].name, token_serial);
                    note(actions, format!("rotate the token of {}", ch.pods[i].name));
                    let c = &ch.c;
                    if let Some(r) = ch.pods[i].replica.as_mut() {
                        c.rotate_token(r, &new);
                    }
                }
            }
            41..=48 => {
                if let Some(i) = target(&mut rng) {
                    note(actions, format!("SIGKILL {}", ch.pods[i].name));
                    ch.kill(i);
                }
            }
            49..=55 => {
                note(actions, "CMD crash".into());
                let _ = std::fs::write(ch.c.dir.join("crash"), "");
            }
            56..=65 => {
                if let Some(i) = target(&mut rng) {
                    if sigterm(ch, &mut kubelet, i) {
                        note(actions, format!("SIGTERM {}", ch.pods[i].name));
                    }
                }
            }
            66..=70 => {
                stubborn = !stubborn;
                note(actions, format!("stubborn CMD: {stubborn}"));
                switch(ch, "stubborn", stubborn);
            }
            71..=76 => {
                slow_dying = !slow_dying;
                note(actions, format!("slow-dying CMD: {slow_dying}"));
                switch(ch, "slow-dying", slow_dying);
            }
            77..=83 => {
                let what = twin(ch, &mut kubelet, holder, &mut rng);
                note(actions, what);
            }
            84..=88 => {
                note(actions, "end watches".into());
                ch.c.api.end_watches();
            }
            89..=91 => {
                note(actions, "compact + end watches".into());
                ch.c.api.compact();
                ch.c.api.end_watches();
            }
            92..=94 => {
                note(actions, "silence watches (half-open)".into());
                ch.c.api.silence_watches();
            }
            _ => {}
        }
        std::thread::sleep(rng.ms(100, 1200));
    }
    // Calm: faults gone, new CMDs behave, the kubelet finishes what it started.
    note(actions, "calm".into());
    ch.calm();
    let calm = Instant::now();
    loop {
        housekeeping(ch, &mut kubelet, actions, &mut rng)?;
        if kubelet.terminating.is_empty() {
            break;
        }
        if calm.elapsed() > Duration::from_secs(20) {
            return Err("terminating pods did not go away".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ch.try_settle(Duration::from_secs(30))?;
    Ok(())
}

/// Creates (`on`) or removes the file `name` that steers [`Cluster::singleton_cmd`].
///
/// [`Cluster::singleton_cmd`]: crate::cluster::Cluster::singleton_cmd
fn switch(ch: &Chaos, name: &str, on: bool) {
    let path = ch.c.dir.join(name);
    if on {
        let _ = std::fs::write(&path, "");
    } else {
        let _ = std::fs::remove_file(&path);
    }
}

/// The pod holding the Lease: among the live pods with the identity the Lease names, the one
/// whose token made the last successful Lease write (twins share an identity), else the first.
fn holder_pod(ch: &Chaos, live: &[usize]) -> Option<usize> {
    let holder = ch.c.holder()?;
    let last = ch.c.all_lease_writes().pop().map(|(_, token)| token);
    let candidates: Vec<usize> = live
        .iter()
        .copied()
        .filter(|i| ch.pods[*i].identity == holder)
        .collect();
    candidates
        .iter()
        .copied()
        .find(|i| ch.pods[*i].replica.as_ref().map(|r| &r.token) == last.as_ref())
        .or_else(|| candidates.first().copied())
}

/// Starts a twin when there is none: the pod `<identity>-twin` (added on first use, IP
/// 10.0.0.11-13) with the identity of the Lease holder (two times in three) or of one of the
/// three pods. Otherwise deletes the twin: it is no longer restarted, and its container gets
/// SIGTERM (the kubelet's grace applies) or SIGKILL. Returns what it did.
///
/// Not in a mixed election: client-go takes a Lease naming its identity at once, so a twin,
/// or the pod it twins once that restarts as a client-go peer, would run CMD next to the
/// other (README, "Migrating from the Go tool": a known flaw of the Go tool that ours fixes,
/// not something a mixed election can be safe against).
fn twin(ch: &mut Chaos, kubelet: &mut Kubelet, holder: Option<usize>, rng: &mut Rng) -> String {
    if ch.peer.is_some() {
        return "no twin in a mixed election".into();
    }
    let present = (0..ch.pods.len()).find(|i| {
        let p = &ch.pods[*i];
        p.name != p.identity && (!p.retired || p.replica.is_some())
    });
    let Some(i) = present else {
        let of = match holder.filter(|_| rng.below(3) > 0) {
            Some(h) => h,
            None => rng.below(3) as usize,
        };
        let identity = ch.pods[of].identity.clone();
        let name = format!("{identity}-twin");
        match ch.pods.iter().position(|p| p.name == name) {
            Some(t) => {
                ch.pods[t].retired = false;
                kubelet.restart_at.remove(&t);
                ch.start(t);
            }
            None => {
                let ip = format!("10.0.0.{}", 11 + ch.index(&identity));
                ch.add_pod_named(&identity, &name, &ip);
            }
        }
        return format!("start a twin of {identity} ({name})");
    };
    let name = ch.pods[i].name.clone();
    ch.pods[i].retired = true;
    kubelet.restart_at.remove(&i);
    if ch.pods[i].replica.is_none() {
        format!("delete twin {name} (between containers)")
    } else if rng.below(2) == 0 && sigterm(ch, kubelet, i) {
        format!("delete twin {name}: SIGTERM")
    } else {
        ch.kill(i);
        format!("delete twin {name}: SIGKILL")
    }
}

/// Seeded random fault schedules: `CHAOS_RUNS` runs (default 3) of `CHAOS_SECONDS` seconds of
/// faults each (default 10), run `i` with seed `CHAOS_SEED + i` (default: from the clock),
/// `CHAOS_JOBS` runs at a time (default 2); `CHAOS_VERBOSE` prints every schedule to stderr.
/// With `CHAOS_MIXED` set, mixed elections: every other container of a pod is the client-go
/// test peer ([`Chaos::start`]; scripts/build-client-go-peer.sh must have built it).
/// Prints one line per run and a summary
/// `N runs, N overlaps, N failures`; fails if any run failed. What a schedule does: see the
/// module docs. Needs python3 >= 3.10 (the slow-dying CMD's memory hog).
#[test]
#[ignore = "long: run through scripts/chaos.sh"]
fn random_schedule() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import mmap, os; os.memfd_create; mmap.MAP_POPULATE"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        python.is_ok_and(|s| s.success()),
        "the slow-dying CMD needs python3 >= 3.10 (os.memfd_create, mmap.MAP_POPULATE)"
    );
    let base = env_u64("CHAOS_SEED", unix_nanos() as u64 & 0xFFFF_FFFF);
    let runs = env_u64("CHAOS_RUNS", 3) as usize;
    let seconds = env_u64("CHAOS_SECONDS", 10);
    let jobs = env_u64("CHAOS_JOBS", 2).max(1) as usize;
    let peer = std::env::var_os("CHAOS_MIXED")
        .map(|_| crate::interop::peer_binary().unwrap_or_else(|e| panic!("CHAOS_MIXED: {e}")));
    println!(
        "chaos: {runs} runs of {seconds} s, {jobs} at a time, seeds {base:#x}..{:#x}{}",
        base.wrapping_add(runs as u64),
        if peer.is_some() {
            ", mixed with the client-go peer"
        } else {
            ""
        }
    );
    let next = AtomicUsize::new(0);
    let totals = Mutex::new((0usize, 0usize, Vec::<u64>::new()));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= runs {
                    return;
                }
                let seed = base.wrapping_add(i as u64);
                let t = Instant::now();
                let report = random_run(seed, seconds, peer.as_deref());
                let mut g = totals.lock().unwrap_or_else(|p| p.into_inner());
                g.0 += 1;
                g.1 += report.overlaps;
                match &report.failure {
                    None => println!(
                        "chaos: run {}/{runs} seed={seed:#x} ok ({} actions, {} CMD starts, {:.1} s)",
                        i + 1,
                        report.actions,
                        report.leaders,
                        t.elapsed().as_secs_f64()
                    ),
                    Some(f) => {
                        g.2.push(seed);
                        println!(
                            "chaos: run {}/{runs} seed={seed:#x} FAILED ({} overlaps): {}",
                            i + 1,
                            report.overlaps,
                            f.lines().next().unwrap_or_default()
                        );
                        eprintln!("chaos: seed={seed:#x} details:\n{f}");
                    }
                }
            });
        }
    });
    let (done, overlaps, failed) = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    println!(
        "chaos: {done} runs, {overlaps} overlaps, {} failures in {:.0} s{}",
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(
                "; failing seeds: {}",
                failed
                    .iter()
                    .map(|s| format!("{s:#x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    assert!(failed.is_empty(), "failing seeds: {failed:x?}");
}
