//! Fault injection with replicas of the real binary against the test API server, short
//! timings (lease 4 s, renew deadline 3 s, retry period 1 s) and service routing on (Service
//! `web`, pod IPs 10.0.0.N). Every CMD takes a shared `flock` and logs `start`/`stop` (see
//! [`Cluster::singleton_cmd`]); a CMD that finds another one running logs `OVERLAP`.
//!
//! This module is the rig, [`Chaos`]: pods that are restarted under the same identity when
//! they exit (a step-down exits with 75), like a container restart in the same pod, and whose
//! SIGKILL takes the container's whole process tree ([`container`]). A pod may share its
//! identity with another one (a twin, [`Chaos::add_pod_named`]): pods are told apart by their
//! name, which tags their CMD events. The cases are in [`scenarios`] (fixed), [`slow_dying`]
//! (fixed, the slow-dying CMD of the schedules), [`schedules`] (seeded random,
//! `scripts/chaos.sh`) and [`soak`] (resources over a long run, `scripts/soak-resources.sh`).
//!
//! Every case ends with the same two checks: no two CMDs ever ran at once, and after the
//! faults are gone exactly one CMD runs, on the pod holding the Lease, and the Service's
//! EndpointSlice/Endpoints advertise that pod's IP and nothing else ([`Chaos::finish`]).
//!
//! Time comparisons use the instants of the server's request log (and, for CMD events, the
//! wall clock of the same machine); timing bounds are generous so a loaded 2-core machine does
//! not fail them.

mod container;
mod kubelet;
mod rng;
mod scenarios;
mod schedules;
mod slow_dying;
mod soak;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::cluster::{Cluster, Replica, LEASE};
use crate::procs::exit_code;
use crate::routing::{self, SERVICE};
use crate::wait::wait_for;

/// Exit code of a replica that lost leadership (EX_TEMPFAIL).
const LOST_LEADERSHIP: i32 = 75;

/// What [`Cluster::singleton_cmd`] exits with when told to crash.
const CMD_CRASH: i32 = 3;

/// The lease duration of the client-go peers in a mixed election (ours keep the test's 4 s):
/// 2 s more than client-go's latest step-down with the test timings (see [`Chaos::start`]).
const PEER_LEASE_SECONDS: &str = "9";

/// One pod of the Deployment: a stable identity, name and IP, and the current container if
/// any.
struct Pod {
    /// Its election identity.
    identity: String,
    /// What tags its CMD events (`T_ID`), names its log, token and service-account directory:
    /// the identity, but for a twin sharing another pod's identity.
    name: String,
    ip: String,
    /// When the current (or last) container started, unix nanos (for CMD events).
    started: u128,
    replica: Option<Replica>,
    /// Exit codes of earlier containers, oldest first.
    exits: Vec<i32>,
    /// Scaled away: never restarted.
    retired: bool,
    /// The current (or last) container runs the client-go test peer, not our binary.
    peer: bool,
}

/// The leader of a settled cluster, where most cases start from.
struct Leader {
    /// Its identity.
    identity: String,
    /// Its pod's index.
    index: usize,
    /// Its bearer token.
    token: String,
    /// Its CMD's pid.
    cmd: u32,
}

/// A cluster of pods running [`Cluster::singleton_cmd`] with service routing.
struct Chaos {
    /// The pods (first: dropping them stops their replicas before the directory goes).
    pods: Vec<Pod>,
    c: Cluster,
    /// An instant and the wall-clock time at that instant, to place CMD events (wall clock)
    /// on the server's request-log time line (instants).
    epoch: (Instant, u128),
    /// Mixed elections (`scripts/chaos.sh --mixed`): the client-go test peer, which every
    /// other container of a pod runs instead of our binary ([`Chaos::start`]).
    peer: Option<PathBuf>,
}

/// The wall clock, nanoseconds since the epoch.
fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Chaos {
    /// `n` pods `r0`, `r1`, ... with IPs 10.0.0.1, 10.0.0.2, ..., all started.
    fn new(tag: &str, n: usize) -> Chaos {
        Chaos::new_mixed(tag, n, None)
    }

    /// [`Chaos::new`], with containers alternating between our binary and the client-go test
    /// `peer` if given.
    fn new_mixed(tag: &str, n: usize, peer: Option<PathBuf>) -> Chaos {
        let mut ch = Chaos {
            pods: Vec::new(),
            c: Cluster::new(tag),
            epoch: (Instant::now(), unix_nanos()),
            peer,
        };
        for i in 0..n {
            ch.add_pod(&format!("r{i}"), &format!("10.0.0.{}", i + 1));
        }
        ch
    }

    /// Adds and starts a pod named like its identity; returns its index.
    fn add_pod(&mut self, identity: &str, ip: &str) -> usize {
        self.add_pod_named(identity, identity, ip)
    }

    /// Adds and starts a pod with identity `identity` and name `name` (a twin when another
    /// pod has that identity); returns its index.
    fn add_pod_named(&mut self, identity: &str, name: &str, ip: &str) -> usize {
        self.pods.push(Pod {
            identity: identity.to_string(),
            name: name.to_string(),
            ip: ip.to_string(),
            started: 0,
            replica: None,
            exits: Vec::new(),
            retired: false,
            peer: false,
        });
        let i = self.pods.len() - 1;
        self.start(i);
        i
    }

    /// Starts a container for pod `i`. In a mixed election the kind cycles with the pod's
    /// index plus its number of earlier containers: ours, the peer behaving like the Go tool,
    /// ours, the peer releasing on SIGTERM (so neighbours differ, and each restart of a pod
    /// switches kind, like an upgrade or a rollback). Mixed elections have no twins (see
    /// `twin` in schedules.rs).
    fn start(&mut self, i: usize) {
        let pod = &self.pods[i];
        let node = format!("node-{}", pod.name);
        let mut env = routing::env(&pod.ip, &node).to_vec();
        let started = unix_nanos();
        let turn = i + pod.exits.len();
        let peer = self.peer.as_deref().filter(|_| turn % 2 == 1);
        let r = match peer {
            Some(peer) => {
                let mode = if turn % 4 == 1 { "go-tool" } else { "cancel" };
                env.push(("PEER_SHUTDOWN", mode));
                // client-go, like the Go tool, leaves behind what CMD started (it is neither
                // PID 1 nor a subreaper here, and releases before such leftovers are dead): a
                // slow-dying CMD's grandchild would outlive it and hold the overlap lock. That
                // is a known flaw ours fixes (README, "Signals and exit codes"), not something a
                // mixed election can be safe against, so a peer's CMD never turns slow-dying.
                env.push(("T_NO_LEFTOVERS", "1"));
                // client-go steps down as late as retry period + renew deadline after its last
                // renewal, and only after trying the release, which may take another renew
                // deadline (go-tool.md; leaderelection.go renew/release): 1 + 3 + 3 s with the
                // test timings, so a peer's lease must outlast 7 s to be safe at all. It
                // advertises its own leaseDurationSeconds, which every replica honours.
                env.push(("K8S_AWAIT_ELECTION_LEASE_DURATION", PEER_LEASE_SECONDS));
                self.c.replica_of(peer, &pod.identity, &pod.name, &env)
            }
            None => self.c.replica_named(&pod.identity, &pod.name, &env),
        };
        self.pods[i].peer = peer.is_some();
        self.pods[i].started = started;
        self.pods[i].replica = Some(r);
    }

    /// SIGKILLs pod `i`'s container, its whole process tree at once ([`container`]); the exit
    /// is recorded by the next [`Chaos::alive`].
    fn kill(&mut self, i: usize) {
        if let Some(r) = self.pods[i].replica.as_mut() {
            if !r.has_exited() {
                container::kill_tree(r.pid());
            }
        }
    }

    /// The index of the pod named `name` (the pods of [`Chaos::new`] are named like their
    /// identity).
    fn index(&self, name: &str) -> usize {
        self.pods
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    fn replica(&mut self, i: usize) -> &mut Replica {
        self.pods[i].replica.as_mut().expect("pod has a container")
    }

    fn token(&self, i: usize) -> String {
        self.pods[i]
            .replica
            .as_ref()
            .map(|r| r.token.clone())
            .expect("pod has a container")
    }

    /// Every replica still runs (none stepped down or crashed).
    fn assert_all_alive(&mut self) {
        for i in 0..self.pods.len() {
            assert!(
                self.alive(i),
                "{} exited\n{}",
                self.pods[i].identity,
                self.c.dump()
            );
        }
    }

    /// Whether pod `i` has a running container (recording the exit code of one that ended).
    fn alive(&mut self, i: usize) -> bool {
        let pod = &mut self.pods[i];
        let Some(r) = pod.replica.as_mut() else {
            return false;
        };
        if !r.has_exited() {
            return true;
        }
        let code = exit_code(r.wait_exit(Duration::from_secs(1)));
        pod.exits.push(code);
        pod.replica = None;
        false
    }

    /// Waits for pod `i`'s container to exit and returns its exit code.
    fn wait_exit(&mut self, i: usize, timeout: Duration) -> i32 {
        let code = exit_code(self.replica(i).wait_exit(timeout));
        self.pods[i].exits.push(code);
        self.pods[i].replica = None;
        code
    }

    /// Restarts every pod whose container exited, under the same identity.
    fn revive(&mut self) {
        for i in 0..self.pods.len() {
            if !self.pods[i].retired && !self.alive(i) {
                self.start(i);
            }
        }
    }

    /// The pid of `identity`'s running CMD.
    fn cmd_pid(&self, identity: &str) -> u32 {
        self.c
            .running_cmds()
            .into_iter()
            .find(|(id, _)| id == identity)
            .map(|(_, pid)| pid)
            .unwrap_or_else(|| panic!("no CMD of {identity} runs\n{}", self.c.dump()))
    }

    /// Unix nanos of an instant of this process (for comparing with CMD events).
    fn wall(&self, at: Instant) -> u128 {
        if at >= self.epoch.0 {
            self.epoch.1 + at.duration_since(self.epoch.0).as_nanos()
        } else {
            self.epoch.1 - self.epoch.0.duration_since(at).as_nanos()
        }
    }

    /// The steady state, or what is wrong with the current one: exactly one CMD runs, on a
    /// live pod whose identity the Lease names, and the Service advertises that pod only (our
    /// EndpointSlice `web` lists it as ready). Returns the leading pod's name (its identity
    /// unless it is a twin).
    fn steady(&mut self) -> Result<String, String> {
        let running = self.c.running_cmds();
        let [(leader, _)] = running.as_slice() else {
            return Err(format!("CMDs running: {running:?}"));
        };
        let i = self.index(leader);
        let holder = self.c.holder();
        if holder.as_deref() != Some(self.pods[i].identity.as_str()) {
            return Err(format!(
                "CMD runs on {leader} (identity {}), the Lease names {holder:?}",
                self.pods[i].identity
            ));
        }
        if !self.alive(i) {
            return Err(format!("{leader} exited but its CMD runs"));
        }
        if self.pods[i].peer {
            // The client-go peer does no service routing.
            return Ok(leader.clone());
        }
        let ip = self.pods[i].ip.clone();
        let advertised = routing::advertised(&self.c);
        if advertised != BTreeSet::from([ip.clone()]) {
            return Err(format!(
                "the Service advertises {advertised:?}, the leader is {leader} ({ip})"
            ));
        }
        let ready = routing::slice(&self.c)
            .as_ref()
            .and_then(|s| s.pointer("/endpoints/0/conditions/ready"))
            .and_then(Value::as_bool);
        if ready != Some(true) {
            return Err(format!(
                "EndpointSlice {SERVICE} does not list {ip} as ready"
            ));
        }
        Ok(leader.clone())
    }

    /// Restarts exited pods until the steady state holds; returns the leader. `Err` after
    /// `timeout` with what was wrong last.
    fn try_settle(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.revive();
            let state = self.steady();
            match state {
                Ok(leader) => return Ok(leader),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no steady state after {timeout:?}: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// [`Chaos::try_settle`] that panics with the whole story.
    fn settle(&mut self) -> String {
        match self.try_settle(Duration::from_secs(25)) {
            Ok(l) => l,
            Err(e) => panic!("{e}\n{}", self.c.dump()),
        }
    }

    /// Waits until every other running replica has seen `leader` (its watch is up).
    fn wait_followers(&mut self, leader: &str) {
        for i in 0..self.pods.len() {
            if self.pods[i].identity == leader || !self.alive(i) {
                continue;
            }
            let needle = if self.pods[i].peer {
                format!("new leader: '{leader}'")
            } else {
                format!("new leader: {leader}")
            };
            self.replica(i).wait_log(&needle, Duration::from_secs(15));
        }
    }

    /// Settles the cluster and waits until the followers have seen the leader; returns it.
    fn steady_leader(&mut self) -> Leader {
        let identity = self.settle();
        self.wait_followers(&identity);
        let index = self.index(&identity);
        Leader {
            token: self.token(index),
            cmd: self.cmd_pid(&identity),
            identity,
            index,
        }
    }

    /// The first successful Lease write made after `after` with a token other than `token`.
    fn takeover_after(&self, token: &str, after: Instant) -> Option<(Instant, String)> {
        self.c
            .all_lease_writes()
            .into_iter()
            .find(|(at, by)| *at > after && by != token)
    }

    /// Asserts the leader's step-down kept the safety invariant: its CMD is dead, and the next
    /// leader wrote the Lease no earlier than the old leader's last successful renewal + the
    /// lease duration (judged on the server's time line). Returns the last renewal instant.
    fn assert_replaced_after_expiry(&self, old_token: &str, old_cmd: u32) -> Instant {
        let last = *self
            .c
            .lease_writes(old_token)
            .last()
            .expect("the old leader renewed");
        let (taken, by) = wait_for("another replica to take the Lease", LEASE * 4, || {
            self.takeover_after(old_token, last)
        });
        let gap = taken.duration_since(last);
        assert!(
            gap >= LEASE,
            "{by} took the Lease {} ms after the old leader's last renewal, before the {} ms lease \
             could expire\n{}",
            gap.as_millis(),
            LEASE.as_millis(),
            self.c.dump()
        );
        assert!(
            !self.c.cmd_alive(old_cmd),
            "the old leader's CMD (pid {old_cmd}) still runs\n{}",
            self.c.dump()
        );
        last
    }

    /// Ends every fault: the API server answers normally again and new CMDs behave (no
    /// `crash`, `stubborn` or `slow-dying` file; a CMD that turned slow-dying stays so).
    fn calm(&self) {
        self.c.api.clear_faults();
        for file in ["crash", "stubborn", "slow-dying"] {
            let _ = std::fs::remove_file(self.c.dir.join(file));
        }
    }

    /// [`Chaos::calm`], then the final checks: the steady state and never two CMDs at once.
    /// The directory is removed when everything passed.
    fn finish(mut self) {
        self.calm();
        self.settle();
        self.c.assert_no_overlap();
        for i in 0..self.pods.len() {
            self.kill(i);
            if let Some(mut r) = self.pods[i].replica.take() {
                r.wait_exit(Duration::from_secs(5));
            }
        }
    }
}

impl Drop for Chaos {
    /// Kills every container with its whole tree (a replica's own drop kills the binary only).
    fn drop(&mut self) {
        for i in 0..self.pods.len() {
            self.kill(i);
        }
    }
}

/// The log of every container pod `identity` had.
fn log_of(ch: &Chaos, identity: &str) -> String {
    std::fs::read_to_string(ch.c.dir.join(format!("{identity}.log"))).unwrap_or_default()
}

/// A knob of the long runs from the environment (decimal or 0x hex), or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        Err(_) => default,
    }
}
