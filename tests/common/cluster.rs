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
        let token = format!("token-{identity}");
        self.api
            .add_token(&token, &format!("system:serviceaccount:{NS}:{identity}"));
        let sa = self.dir.join(format!("sa-{identity}"));
        self.api
            .write_service_account_dir(&sa, &token, NS)
            .expect("write service account dir");
        let log = self.dir.join(format!("{identity}.log"));
        let cmd = cmd.unwrap_or_else(|| self.singleton_cmd());
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
            .stderr(std::fs::File::create(&log).expect("create log"));
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
