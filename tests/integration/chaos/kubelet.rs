//! The schedules' stand-in for the kubelet: it records how containers end (failing on an
//! exit code a replica may not end with), restarts exited pods after a short back-off unless
//! they were deleted, sends one SIGTERM per container, and SIGKILLs ([`Chaos::kill`]: the whole
//! process tree) a container still running 8 s after its SIGTERM — legitimate only when its CMD
//! ignores SIGTERM (`stubborn` or `slow-dying`); otherwise a replica not exiting is a hang.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::{Chaos, CMD_CRASH, LOST_LEADERSHIP};

/// Exit codes a replica may legitimately end with under the random schedule: CMD stopped by
/// SIGTERM (0), CMD crashed (3), lost leadership (75), SIGTERM while campaigning (143),
/// SIGKILLed by the schedule (137).
const ALLOWED_EXITS: [i32; 5] = [0, CMD_CRASH, LOST_LEADERSHIP, 143, 137];

/// The same for the client-go test peer of a mixed election: CMD exited 0, or SIGTERM with a
/// release (0); CMD failed or the Lease was lost (1); SIGTERM like the Go tool (2); SIGTERM
/// before the peer set up its handling, which kills it as it does the Go tool (143); SIGKILLed
/// by the schedule (137).
const PEER_ALLOWED_EXITS: [i32; 5] = [0, 1, 2, 143, 137];

/// Per-pod bookkeeping of the kubelet, by pod index.
#[derive(Default)]
pub struct Kubelet {
    /// When SIGTERM was sent.
    pub terminating: HashMap<usize, Instant>,
    /// When an exited pod gets its container back.
    pub restart_at: HashMap<usize, Instant>,
}

/// SIGTERMs pod `i`'s container, unless it is terminating already (the kubelet sends one
/// SIGTERM per container); true when sent.
pub fn sigterm(ch: &Chaos, kubelet: &mut Kubelet, i: usize) -> bool {
    let Some(r) = ch.pods[i].replica.as_ref() else {
        return false;
    };
    if kubelet.terminating.contains_key(&i) {
        return false;
    }
    kubelet.terminating.insert(i, Instant::now());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &r.pid().to_string()])
        .status();
    true
}

/// Whether pod `i`'s current container runs (or ran) a CMD that ignores SIGTERM: since the
/// container started, its CMD logged `ignored` (a `stubborn` CMD told to stop) or `slow`
/// (it turned slow-dying).
fn ignores_sigterm(ch: &Chaos, i: usize) -> bool {
    let pod = &ch.pods[i];
    ch.c.cmd_events().iter().any(|e| {
        e.identity == pod.name
            && e.nanos >= pod.started
            && (e.kind == "ignored" || e.kind == "slow")
    })
}

/// The kubelet: records exit codes (failing on unexpected ones), restarts exited pods (unless
/// deleted) after a short back-off, SIGKILLs pods that ignore SIGTERM after a grace period
/// (only legitimate when CMD ignores SIGTERM; otherwise a replica not exiting is a hang).
pub fn housekeeping(
    ch: &mut Chaos,
    k: &mut Kubelet,
    actions: &mut Vec<String>,
    rng: &mut Rng,
) -> Result<(), String> {
    let now = Instant::now();
    for i in 0..ch.pods.len() {
        if ch.pods[i].replica.is_some() {
            if !ch.alive(i) {
                let code = *ch.pods[i].exits.last().unwrap_or(&-1);
                let name = ch.pods[i].name.clone();
                actions.push(format!("        {name} exited with {code}"));
                let allowed: &[i32] = if ch.pods[i].peer {
                    &PEER_ALLOWED_EXITS
                } else {
                    &ALLOWED_EXITS
                };
                if !allowed.contains(&code) {
                    return Err(format!("{name} exited with unexpected code {code}"));
                }
                k.terminating.remove(&i);
                if !ch.pods[i].retired {
                    k.restart_at.insert(i, now + rng.ms(0, 1000));
                }
            } else if let Some(since) = k.terminating.get(&i) {
                if now.duration_since(*since) > Duration::from_secs(8) {
                    let name = ch.pods[i].name.clone();
                    if !ignores_sigterm(ch, i) {
                        return Err(format!("{name} did not exit within 8 s of SIGTERM"));
                    }
                    actions.push(format!("        kubelet: SIGKILL {name} after the grace"));
                    ch.kill(i);
                }
            }
        } else if !ch.pods[i].retired && k.restart_at.get(&i).is_none_or(|t| now >= *t) {
            k.restart_at.remove(&i);
            ch.start(i);
            actions.push(format!("        restart {}", ch.pods[i].name));
        }
    }
    Ok(())
}
