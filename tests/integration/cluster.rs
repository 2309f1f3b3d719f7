//! Test harness: the test Kubernetes API server plus replicas of the real binary, each with
//! its own bearer token and a CMD that records when it runs.
//!
//! The CMD ([`Cluster::singleton_cmd`]) takes an exclusive `flock` on a file shared by all
//! replicas before it logs `start`; a second copy running at the same time cannot get the lock
//! and logs `OVERLAP` instead. The kernel drops the lock the instant the holder dies, so this
//! checks "never two CMDs at once" exactly, without comparing timestamps.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use test_apiserver::ApiServer;

pub const BIN: &str = env!("CARGO_BIN_EXE_k8s-await-election");
pub const NS: &str = "default";
pub const LOCK: &str = "my-lock";

/// A unique empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "k8s-await-election-{tag}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Calls `f` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Cluster {
    pub api: ApiServer,
    pub dir: PathBuf,
    /// Timings as environment values (lease, renew, retry).
    pub timings: (String, String, String),
}

impl Cluster {
    /// A fresh API server and directory, with the short test timings 4/3/1 s.
    pub fn new(tag: &str) -> Cluster {
        Cluster {
            api: ApiServer::start(),
            dir: temp_dir(tag),
            timings: ("4".into(), "3".into(), "1".into()),
        }
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    /// The CMD every replica runs: take the shared lock or report an overlap, log start and
    /// stop, and run until signalled.
    pub fn singleton_cmd(&self) -> Vec<String> {
        let script = r#"
exec 9>>"$T_DIR/singleton.lock"
if ! flock -n 9; then echo "OVERLAP $T_ID $(date +%s%N)" >> "$T_DIR/events.log"; exit 99; fi
echo "start $T_ID $(date +%s%N)" >> "$T_DIR/events.log"
trap 'echo "stop $T_ID $(date +%s%N)" >> "$T_DIR/events.log"; exit 0' TERM INT
while :; do sleep 0.05 9>&-; done
"#;
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// Starts a replica named `identity` running `cmd` (None: [`Cluster::singleton_cmd`]).
    pub fn replica(
        &self,
        identity: &str,
        cmd: Option<Vec<String>>,
        env: &[(&str, &str)],
    ) -> Replica {
        let log = self.dir.join(format!("{identity}.log"));
        let stderr = std::fs::File::create(&log).expect("create log");
        let cmd = cmd.unwrap_or_else(|| self.singleton_cmd());
        self.spawn_replica(identity, cmd, env, log, stderr)
    }

    /// Starts the first replica, `identity` (default CMD and environment), and waits until it
    /// leads (its CMD runs).
    pub fn first_leader(&self, identity: &str) -> Replica {
        let r = self.replica(identity, None, &[]);
        wait_for(
            &format!("{identity} to lead"),
            Duration::from_secs(10),
            || (self.starts() == [identity]).then_some(()),
        );
        r
    }

    /// Starts the binary for `identity` (its own token and service-account directory) with the
    /// election environment, `env` on top, and stderr into `stderr` (the file at `log`).
    fn spawn_replica(
        &self,
        identity: &str,
        cmd: Vec<String>,
        env: &[(&str, &str)],
        log: PathBuf,
        stderr: std::fs::File,
    ) -> Replica {
        let token = format!("token-{identity}");
        self.api
            .add_token(&token, &format!("system:serviceaccount:{NS}:{identity}"));
        let sa = self.dir.join(format!("sa-{identity}"));
        self.api
            .write_service_account_dir(&sa, &token, NS)
            .expect("write service account dir");
        let mut c = Command::new(BIN);
        c.args(&cmd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RUST_LOG", "debug,ureq=info,ureq_proto=info,rustls=info")
            .env("T_DIR", &self.dir)
            .env("T_ID", identity)
            .env("K8S_AWAIT_ELECTION_ENABLED", "1")
            .env("K8S_AWAIT_ELECTION_NAME", "test")
            .env("K8S_AWAIT_ELECTION_LOCK_NAME", LOCK)
            .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", NS)
            .env("K8S_AWAIT_ELECTION_IDENTITY", identity)
            .env("K8S_AWAIT_ELECTION_LEASE_DURATION", &self.timings.0)
            .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", &self.timings.1)
            .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", &self.timings.2)
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", self.api.port().to_string())
            .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", &sa)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn replica");
        Replica {
            identity: identity.to_string(),
            token,
            log,
            child,
            status: None,
        }
    }

    /// Lines of the shared CMD event log: (kind, identity, unix nanos).
    pub fn events(&self) -> Vec<(String, String, u128)> {
        read_events(&self.events_path())
    }

    /// Identities whose CMD started, in order.
    pub fn starts(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(k, _, _)| k == "start")
            .map(|(_, id, _)| id)
            .collect()
    }

    pub fn assert_no_overlap(&self) {
        let overlaps: Vec<_> = self
            .events()
            .into_iter()
            .filter(|(k, _, _)| k == "OVERLAP")
            .collect();
        assert!(
            overlaps.is_empty(),
            "two CMDs ran at once: {overlaps:?}\n{}",
            self.dump()
        );
    }

    /// The Lease as stored by the API server.
    pub fn lease(&self) -> Option<serde_json::Value> {
        self.api.get_object("leases", NS, LOCK)
    }

    pub fn holder(&self) -> Option<String> {
        self.lease()?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .filter(|h| !h.is_empty())
            .map(String::from)
    }

    /// Everything useful for a failure message.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "lease: {}\nevents:\n{}",
            self.lease().map(|l| l.to_string()).unwrap_or_default(),
            std::fs::read_to_string(self.events_path()).unwrap_or_default()
        );
        if let Ok(dir) = std::fs::read_dir(&self.dir) {
            let mut logs: Vec<_> = dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log") && !p.ends_with("events.log"))
                .collect();
            logs.sort();
            for p in logs {
                out.push_str(&format!(
                    "--- {}\n{}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
        }
        out
    }
}

pub fn read_events(path: &Path) -> Vec<(String, String, u128)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}

pub struct Replica {
    pub identity: String,
    pub token: String,
    pub log: PathBuf,
    pub child: Child,
    status: Option<ExitStatus>,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} {} failed", self.pid());
    }

    /// Waits for the replica to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let what = format!("replica {} to exit", self.identity);
        let child = &mut self.child;
        let s = wait_for(&what, timeout, || child.try_wait().expect("try_wait"));
        self.status = Some(s);
        s
    }

    pub fn has_exited(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(s) => {
                self.status = Some(s);
                true
            }
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let what = format!("{:?} in the log of {}", needle, self.identity);
        wait_for(&what, timeout, || {
            self.log_text().contains(needle).then_some(())
        });
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chaos helpers (tests/chaos.rs). Additive: nothing above depends on them.
// ---------------------------------------------------------------------------------------------

/// One line of the CMD event log written by [`Cluster::chaos_cmd`]: the kind (`start`, `stop`,
/// `ignored`, `crash`, `OVERLAP`), the replica identity, unix nanos, and the CMD's pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdEvent {
    pub kind: String,
    pub identity: String,
    pub nanos: u128,
    pub pid: Option<u32>,
}

/// Whether `pid` is a live process (present in /proc and not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text
            .rfind(')')
            .and_then(|i| text.get(i + 1..))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

impl Cluster {
    /// Like [`Cluster::singleton_cmd`] (same lock, same event log, same `OVERLAP` check), but
    /// every line also carries the CMD's pid, and two files in the cluster directory steer it:
    /// - `crash`: the running CMD removes it, logs `crash` and exits with code 3;
    /// - `stubborn`: while it exists, SIGTERM/SIGINT are ignored (logged as `ignored`), so only
    ///   a SIGKILL ends CMD.
    ///
    /// No helper process keeps the lock's file descriptor open, so the lock is free the instant
    /// the shell dies, however it dies.
    pub fn chaos_cmd(&self) -> Vec<String> {
        let script = r#"
ev() { echo "$1 $T_ID $(date +%s%N 9>&-) $$" >> "$T_DIR/events.log"; }
exec 9>>"$T_DIR/singleton.lock"
if ! flock -n 9; then exec 9>&-; ev OVERLAP; exit 99; fi
ev start
on_term() {
  if [ -e "$T_DIR/stubborn" ]; then ev ignored; return 0; fi
  ev stop; exit 0
}
trap on_term TERM INT
while :; do
  if [ -e "$T_DIR/crash" ] && rm "$T_DIR/crash" 9>&- 2>/dev/null; then ev crash; exit 3; fi
  sleep 0.05 9>&-
done
"#;
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// Events of [`Cluster::chaos_cmd`] (lines of [`Cluster::singleton_cmd`] parse too, with
    /// `pid: None`).
    pub fn cmd_events(&self) -> Vec<CmdEvent> {
        std::fs::read_to_string(self.events_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some(CmdEvent {
                    kind: it.next()?.to_string(),
                    identity: it.next()?.to_string(),
                    nanos: it.next()?.parse().ok()?,
                    pid: it.next().and_then(|p| p.parse().ok()),
                })
            })
            .collect()
    }

    /// Whether `pid` is a live CMD shell of this cluster (not a process that reused the pid:
    /// the shell's environment names this cluster's directory).
    pub fn cmd_alive(&self, pid: u32) -> bool {
        let marker = format!("T_DIR={}", self.dir.display());
        pid_alive(pid)
            && std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "sh")
    }

    /// CMDs (identity, pid) that started and are still alive, oldest first.
    pub fn running_cmds(&self) -> Vec<(String, u32)> {
        self.cmd_events()
            .into_iter()
            .filter(|e| e.kind == "start")
            .filter_map(|e| Some((e.identity, e.pid?)))
            .filter(|(_, pid)| self.cmd_alive(*pid))
            .collect()
    }

    /// Starts a replica like [`Cluster::replica`], but appends its stderr to `log_name` in the
    /// cluster directory instead of truncating `<identity>.log`, so a replica restarted under
    /// the same identity (a container restart in the same pod) keeps the earlier history.
    pub fn replica_appending(
        &self,
        identity: &str,
        log_name: &str,
        cmd: Option<Vec<String>>,
        env: &[(&str, &str)],
    ) -> Replica {
        let log = self.dir.join(log_name);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let cmd = cmd.unwrap_or_else(|| self.chaos_cmd());
        self.spawn_replica(identity, cmd, env, log, stderr)
    }

    /// Rotates `replica`'s bearer token the way the kubelet does: the server accepts
    /// `new_token` first, the service-account `token` file is replaced atomically (write a
    /// temporary file, rename it over the old one), then the server forgets the old token.
    pub fn rotate_token(&self, replica: &mut Replica, new_token: &str) {
        let user = format!("system:serviceaccount:{NS}:{}", replica.identity);
        self.api.add_token(new_token, &user);
        let sa = self.dir.join(format!("sa-{}", replica.identity));
        let tmp = sa.join(".token.tmp");
        std::fs::write(&tmp, new_token).expect("write new token");
        std::fs::rename(&tmp, sa.join("token")).expect("swap token file");
        self.api.remove_token(&replica.token);
        replica.token = new_token.to_string();
    }

    /// Successful Lease writes (PUT/POST answered 2xx) made with `token`, oldest first, as
    /// instants of the server's request log.
    pub fn lease_writes(&self, token: &str) -> Vec<Instant> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| {
                r.resource == "leases"
                    && r.token.as_deref() == Some(token)
                    && (r.method == "PUT" || r.method == "POST")
                    && (200..300).contains(&r.code)
            })
            .map(|r| r.at)
            .collect()
    }
}
