//! Seeded random fault schedules (`scripts/chaos.sh`): three pods, a few seconds of random
//! faults and disruptions with a kubelet stand-in restarting what exits, then the steady state
//! must return. `random_schedule` (ignored) runs them, driven by `CHAOS_SEED`, `CHAOS_RUNS`,
//! `CHAOS_SECONDS` and `CHAOS_JOBS`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use test_apiserver::Fault;

use super::{env_u64, unix_nanos, Chaos, CMD_CRASH, LOST_LEADERSHIP};

/// splitmix64: small, seedable, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
}

/// Exit codes a replica may legitimately end with under the random schedule: CMD stopped by
/// SIGTERM (0), CMD crashed (3), lost leadership (75), SIGTERM while campaigning (143),
/// SIGKILLed by the schedule (137).
const ALLOWED_EXITS: [i32; 5] = [0, CMD_CRASH, LOST_LEADERSHIP, 143, 137];

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
fn random_run(seed: u64, seconds: u64) -> RunReport {
    let mut ch = Chaos::new(&format!("random-{seed:x}"), 3);
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

/// Per-pod bookkeeping of the schedule's "kubelet".
#[derive(Default)]
struct Kubelet {
    /// When SIGTERM was sent, and whether CMD was told to ignore it at some point since.
    terminating: HashMap<usize, (Instant, bool)>,
    /// When an exited pod gets its container back.
    restart_at: HashMap<usize, Instant>,
    token_serial: u64,
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
    let mut global_until: Option<Instant> = None;
    let mut token_faults: HashMap<String, Instant> = HashMap::new();
    let mut stubborn = false;
    let stubborn_path = ch.c.dir.join("stubborn");
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        housekeeping(ch, &mut kubelet, stubborn, actions, &mut rng)?;
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
        let holder = ch.c.holder().map(|h| ch.index(&h));
        let live: Vec<usize> = (0..ch.pods.len())
            .filter(|i| ch.pods[*i].replica.is_some())
            .collect();
        let target = |rng: &mut Rng| -> Option<usize> {
            if rng.below(3) > 0 {
                if let Some(h) = holder.filter(|h| live.contains(h)) {
                    return Some(h);
                }
            }
            (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
        };
        match rng.below(100) {
            0..=17 => {
                let f = random_fault(&mut rng);
                let d = rng.ms(300, 6000);
                note(actions, format!("global {f:?} for {} ms", d.as_millis()));
                ch.c.api.set_fault(f);
                global_until = Some(Instant::now() + d);
            }
            18..=37 => {
                if let Some(i) = target(&mut rng) {
                    let f = random_fault(&mut rng);
                    let d = rng.ms(300, 6000);
                    let token = ch.token(i);
                    note(
                        actions,
                        format!(
                            "partition {} ({token}) with {f:?} for {} ms",
                            ch.pods[i].identity,
                            d.as_millis()
                        ),
                    );
                    ch.c.api.set_token_fault(&token, f);
                    token_faults.insert(token, Instant::now() + d);
                }
            }
            38..=45 => {
                if let Some(i) = target(&mut rng) {
                    kubelet.token_serial += 1;
                    let new = format!("rotated-{}-{}", ch.pods[i].identity, kubelet.token_serial);
                    note(
                        actions,
                        format!("rotate the token of {}", ch.pods[i].identity),
                    );
                    let c = &ch.c;
                    if let Some(r) = ch.pods[i].replica.as_mut() {
                        c.rotate_token(r, &new);
                    }
                }
            }
            46..=53 => {
                if let Some(i) = target(&mut rng) {
                    note(actions, format!("SIGKILL {}", ch.pods[i].identity));
                    if let Some(r) = ch.pods[i].replica.as_mut() {
                        let _ = r.child.kill();
                    }
                }
            }
            54..=61 => {
                note(actions, "CMD crash".into());
                let _ = std::fs::write(ch.c.dir.join("crash"), "");
            }
            62..=71 => {
                if let Some(i) = target(&mut rng) {
                    if let std::collections::hash_map::Entry::Vacant(e) =
                        kubelet.terminating.entry(i)
                    {
                        note(actions, format!("SIGTERM {}", ch.pods[i].identity));
                        e.insert((Instant::now(), stubborn));
                        if let Some(r) = ch.pods[i].replica.as_ref() {
                            let _ = std::process::Command::new("kill")
                                .args(["-TERM", &r.pid().to_string()])
                                .status();
                        }
                    }
                }
            }
            72..=77 => {
                stubborn = !stubborn;
                note(actions, format!("stubborn CMD: {stubborn}"));
                if stubborn {
                    let _ = std::fs::write(&stubborn_path, "");
                    for v in kubelet.terminating.values_mut() {
                        v.1 = true;
                    }
                } else {
                    let _ = std::fs::remove_file(&stubborn_path);
                }
            }
            78..=83 => {
                note(actions, "end watches".into());
                ch.c.api.end_watches();
            }
            84..=87 => {
                note(actions, "compact + end watches".into());
                ch.c.api.compact();
                ch.c.api.end_watches();
            }
            88..=91 => {
                note(actions, "silence watches (half-open)".into());
                ch.c.api.silence_watches();
            }
            _ => {}
        }
        std::thread::sleep(rng.ms(100, 1200));
    }
    // Calm: faults gone, CMD behaves, the kubelet finishes what it started.
    note(actions, "calm".into());
    ch.calm();
    let calm = Instant::now();
    loop {
        housekeeping(ch, &mut kubelet, true, actions, &mut rng)?;
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

/// The kubelet: records exit codes (failing on unexpected ones), restarts exited pods after
/// a short back-off, SIGKILLs pods that ignore SIGTERM after a grace period (only legitimate
/// when CMD was told to ignore SIGTERM; otherwise a replica not exiting is a hang).
fn housekeeping(
    ch: &mut Chaos,
    k: &mut Kubelet,
    stubborn: bool,
    actions: &mut Vec<String>,
    rng: &mut Rng,
) -> Result<(), String> {
    let now = Instant::now();
    for i in 0..ch.pods.len() {
        if ch.pods[i].replica.is_some() {
            if !ch.alive(i) {
                let code = *ch.pods[i].exits.last().unwrap_or(&-1);
                let id = ch.pods[i].identity.clone();
                actions.push(format!("        {id} exited with {code}"));
                if !ALLOWED_EXITS.contains(&code) {
                    return Err(format!("{id} exited with unexpected code {code}"));
                }
                k.terminating.remove(&i);
                k.restart_at.insert(i, now + rng.ms(0, 1000));
            } else if let Some((since, excused)) = k.terminating.get_mut(&i) {
                *excused |= stubborn;
                if now.duration_since(*since) > Duration::from_secs(8) {
                    let id = ch.pods[i].identity.clone();
                    if !*excused {
                        return Err(format!("{id} did not exit within 8 s of SIGTERM"));
                    }
                    actions.push(format!("        kubelet: SIGKILL {id} after the grace"));
                    if let Some(r) = ch.pods[i].replica.as_mut() {
                        let _ = r.child.kill();
                    }
                }
            }
        } else if k.restart_at.get(&i).is_none_or(|t| now >= *t) {
            k.restart_at.remove(&i);
            ch.start(i);
            actions.push(format!("        restart {}", ch.pods[i].identity));
        }
    }
    Ok(())
}

/// Seeded random fault schedules: `CHAOS_RUNS` runs (default 3) of `CHAOS_SECONDS` seconds of
/// faults each (default 10), run `i` with seed `CHAOS_SEED + i` (default: from the clock),
/// `CHAOS_JOBS` runs at a time (default 2); `CHAOS_VERBOSE` prints every schedule to stderr.
/// Prints one line per run and a summary
/// `N runs, N overlaps, N failures`; fails if any run failed.
#[test]
#[ignore = "long: run through scripts/chaos.sh"]
fn random_schedule() {
    let base = env_u64("CHAOS_SEED", unix_nanos() as u64 & 0xFFFF_FFFF);
    let runs = env_u64("CHAOS_RUNS", 3) as usize;
    let seconds = env_u64("CHAOS_SECONDS", 10);
    let jobs = env_u64("CHAOS_JOBS", 2).max(1) as usize;
    println!(
        "chaos: {runs} runs of {seconds} s, {jobs} at a time, seeds {base:#x}..{:#x}",
        base.wrapping_add(runs as u64)
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
                let report = random_run(seed, seconds);
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
