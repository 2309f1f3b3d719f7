//! Replicas of the real binary against the test Kubernetes API server, each with its own bearer
//! token and service-account directory, all running one CMD that records when it runs.
//!
//! The CMD ([`Cluster::singleton_cmd`]) takes an exclusive `flock` on a file shared by all
//! replicas before it logs `start`; a second copy running at the same time cannot get the lock
//! and logs `OVERLAP` instead. The kernel drops the lock the instant the last process holding
//! it dies (CMD, or the grandchild a `slow-dying` CMD passed it to), so this checks "never two
//! CMDs at once" — CMD and what it started — exactly, without comparing timestamps.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use test_apiserver::ApiServer;

use crate::procs::{pid_alive, send_signal};
use crate::tempdir::TempDir;
use crate::wait::wait_for;
use crate::BIN;

/// The namespace of the Lease (and of every other object).
pub const NS: &str = "default";
/// The name of the Lease.
pub const LOCK: &str = "my-lock";
/// The short test lease duration.
pub const LEASE: Duration = Duration::from_secs(4);
/// The short test renew deadline.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(3);
/// The short test retry period.
pub const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// The kill margin for the short test timings (the default 2 s does not fit in 4 - 3 s): the
/// test CMDs are small shells, gone within milliseconds of a SIGKILL (but for the `slow-dying`
/// hog of [`Cluster::singleton_cmd`], which may take longer, yet leaves the lock to a quick one).
pub const KILL_MARGIN: &str = "250ms";

/// Sets the election environment on `cmd`: election on, Lease `lock` in [`NS`] for
/// `identity`, the short test timings, the API server on 127.0.0.1:`port` and the
/// service-account directory `sa_dir` (as the binary will see it).
pub fn election_env(
    cmd: &mut Command,
    port: u16,
    sa_dir: impl AsRef<OsStr>,
    lock: &str,
    identity: &str,
) {
    cmd.env("K8S_AWAIT_ELECTION_ENABLED", "1")
        .env("K8S_AWAIT_ELECTION_LOCK_NAME", lock)
        .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", NS)
        .env("K8S_AWAIT_ELECTION_IDENTITY", identity)
        .env("K8S_AWAIT_ELECTION_LEASE_DURATION", secs(LEASE))
        .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", secs(RENEW_DEADLINE))
        .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", secs(RETRY_PERIOD))
        .env("K8S_AWAIT_ELECTION_KILL_MARGIN", KILL_MARGIN)
        .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", sa_dir)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", port.to_string());
}

fn secs(d: Duration) -> String {
    d.as_secs().to_string()
}

/// The API server and a directory for the replicas' logs, tokens and the CMD event log.
pub struct Cluster {
    /// The test API server.
    pub api: ApiServer,
    /// Logs (`<identity>.log`), service-account directories, the shared lock and event log.
    pub dir: TempDir,
    /// Timings as environment values (lease, renew, retry).
    pub timings: (String, String, String),
    /// The binary the replicas run: the debug build unless [`Cluster::with_binary`] says
    /// otherwise.
    pub bin: PathBuf,
}

/// One line of the CMD event log written by [`Cluster::singleton_cmd`]: the kind (`start`,
/// `stop`, `ignored`, `crash`, `slow`, `OVERLAP`), the replica's `T_ID` (its identity unless
/// set otherwise), unix nanos, and the CMD's pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdEvent {
    /// `start`, `stop`, `ignored`, `crash`, `slow` or `OVERLAP`.
    pub kind: String,
    /// The `T_ID` of the replica whose CMD wrote the line: its identity, or the name of a
    /// process sharing one ([`Cluster::replica_named`]).
    pub identity: String,
    /// Wall-clock time of the line, nanoseconds since the epoch.
    pub nanos: u128,
    /// The CMD shell's pid.
    pub pid: Option<u32>,
}

/// The memory hog a `slow-dying` [`Cluster::singleton_cmd`] execs into (python3 >= 3.10): it
/// logs SIGTERM/SIGINT as `ignored` (the shell ignored them before the exec, so none is lost
/// while python starts), maps one 256 MiB memfd 16 times touching every page (4 GiB of
/// mappings for 256 MiB of memory, whose teardown makes SIGKILL-to-reaped take about 0.1 s
/// on an idle machine, more under load), then polls for the `crash` file like the shell did.
/// No single quote in it: it is pasted into the shell script between single quotes.
pub const SLOW_DYING_HOG: &str = r#"
import mmap, os, signal, time
d, me, pid = os.environ["T_DIR"], os.environ["T_ID"], os.getpid()
def ev(kind):
    with open(d + "/events.log", "a") as f:
        f.write("%s %s %d %d\n" % (kind, me, time.time_ns(), pid))
signal.signal(signal.SIGTERM, lambda *_: ev("ignored"))
signal.signal(signal.SIGINT, lambda *_: ev("ignored"))
size = 256 << 20
fd = os.memfd_create("hog")
os.ftruncate(fd, size)
maps = [mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE) for _ in range(16)]
while True:
    try:
        os.remove(d + "/crash")
    except OSError:
        time.sleep(0.05)
        continue
    ev("crash")
    os._exit(3)
"#;

impl Cluster {
    /// A fresh API server and directory, with the short test timings 4/3/1 s.
    pub fn new(tag: &str) -> Cluster {
        Cluster {
            api: ApiServer::start(),
            dir: TempDir::new(tag),
            timings: (secs(LEASE), secs(RENEW_DEADLINE), secs(RETRY_PERIOD)),
            bin: PathBuf::from(BIN),
        }
    }

    /// This cluster with replicas running `bin` (e.g. the static release build).
    pub fn with_binary(mut self, bin: PathBuf) -> Cluster {
        self.bin = bin;
        self
    }

    fn events_path(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    /// The CMD every replica runs by default: take the shared lock or report an overlap, log
    /// start and stop (with the shell's pid), and run until signalled. Three files in the
    /// cluster directory steer it:
    /// - `crash`: the running CMD removes it, logs `crash` and exits with code 3;
    /// - `stubborn`: while it exists, SIGTERM/SIGINT are ignored (logged as `ignored`), so only
    ///   a SIGKILL ends CMD;
    /// - `slow-dying`: once CMD sees it (within 50 ms, also when it appears later), CMD logs
    ///   `slow` and turns for good into a CMD that is slow to die and leaves a grandchild: it
    ///   ignores SIGTERM/SIGINT from then on, starts a grandchild of the binary (`sleep 4242`)
    ///   that ignores them too and keeps the lock's file descriptor (so the lock is held until
    ///   *that* process dies), and execs a python3 memory hog ([`SLOW_DYING_HOG`]: same pid,
    ///   `crash` still works, SIGTERM/SIGINT logged as `ignored`) that takes tens to hundreds
    ///   of milliseconds from SIGKILL to reaped.
    ///
    /// `T_NO_LEFTOVERS` set in CMD's environment (the client-go peer's in the mixed chaos runs)
    /// keeps a CMD from turning slow-dying.
    ///
    /// Unless `slow-dying` turned it, no helper process keeps the lock's file descriptor open,
    /// so the lock is free the instant the shell dies, however it dies. Without `slow-dying`
    /// CMD needs nothing but `sh`, `flock`, `date` and `sleep` (no python3).
    pub fn singleton_cmd(&self) -> Vec<String> {
        let script = format!(
            r#"
ev() {{ echo "$1 $T_ID $(date +%s%N 9>&-) $$" >> "$T_DIR/events.log"; }}
exec 9>>"$T_DIR/singleton.lock"
if ! flock -n 9; then exec 9>&-; ev OVERLAP; exit 99; fi
ev start
on_term() {{
  if [ -e "$T_DIR/stubborn" ]; then ev ignored; return 0; fi
  ev stop; exit 0
}}
trap on_term TERM INT
while :; do
  if [ -e "$T_DIR/crash" ] && rm "$T_DIR/crash" 9>&- 2>/dev/null; then ev crash; exit 3; fi
  if [ -e "$T_DIR/slow-dying" ] && [ -z "${{T_NO_LEFTOVERS:-}}" ]; then
    trap '' TERM INT
    sleep 4242 &
    ev slow
    exec python3 -c '{SLOW_DYING_HOG}' 9>&-
  fi
  sleep 0.05 9>&-
done
"#
        );
        vec!["sh".into(), "-c".into(), script]
    }

    /// Starts a replica named `identity` running `cmd` (None: [`Cluster::singleton_cmd`]),
    /// its stderr in `<identity>.log`.
    pub fn replica(
        &self,
        identity: &str,
        cmd: Option<Vec<String>>,
        env: &[(&str, &str)],
    ) -> Replica {
        let log = self.dir.join(format!("{identity}.log"));
        let stderr = std::fs::File::create(&log).expect("create log");
        self.spawn_replica(identity, identity, cmd, env, log, stderr)
    }

    /// Starts `program` (another elector, such as the client-go test peer) like
    /// [`Cluster::replica_named`] starts the binary: same environment, own token and
    /// service-account directory `sa-<name>`, the default CMD tagged `name`, `env` on top,
    /// stderr appended to `<name>.log`.
    pub fn replica_of(
        &self,
        program: &Path,
        identity: &str,
        name: &str,
        env: &[(&str, &str)],
    ) -> Replica {
        let (log, stderr) = self.append_log(&format!("{name}.log"));
        self.spawn_program(program, identity, name, None, env, log, stderr)
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
        let (log, stderr) = self.append_log(log_name);
        self.spawn_replica(identity, identity, cmd, env, log, stderr)
    }

    /// Starts a replica with election identity `identity` that the tests know as `name`
    /// (several processes may share one identity): its own bearer token `token-<name>` and
    /// service-account directory `sa-<name>`, its stderr appended to `<name>.log`, its CMD
    /// ([`Cluster::singleton_cmd`]) events tagged `name` (`T_ID`). With `name == identity` this
    /// is [`Cluster::replica_appending`] with the log `<identity>.log`.
    pub fn replica_named(&self, identity: &str, name: &str, env: &[(&str, &str)]) -> Replica {
        self.replica_of(&self.bin, identity, name, env)
    }

    /// The file `file_name` in the cluster directory, opened for appending (created if
    /// missing): a replica's stderr.
    fn append_log(&self, file_name: &str) -> (PathBuf, std::fs::File) {
        let log = self.dir.join(file_name);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        (log, stderr)
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

    /// Starts the binary for `identity`, known to the tests as `name` (its own token and
    /// service-account directory, `T_ID`), with the election environment, `env` on top, and
    /// stderr into `stderr` (the file at `log`).
    fn spawn_replica(
        &self,
        identity: &str,
        name: &str,
        cmd: Option<Vec<String>>,
        env: &[(&str, &str)],
        log: PathBuf,
        stderr: std::fs::File,
    ) -> Replica {
        self.spawn_program(&self.bin, identity, name, cmd, env, log, stderr)
    }

    /// [`Cluster::spawn_replica`] of any elector `program` that reads the same environment.
    #[allow(clippy::too_many_arguments)]
    fn spawn_program(
        &self,
        program: &Path,
        identity: &str,
        name: &str,
        cmd: Option<Vec<String>>,
        env: &[(&str, &str)],
        log: PathBuf,
        stderr: std::fs::File,
    ) -> Replica {
        let token = format!("token-{name}");
        self.api
            .add_token(&token, &format!("system:serviceaccount:{NS}:{identity}"));
        let sa = self.dir.join(format!("sa-{name}"));
        self.api
            .write_service_account_dir(&sa, &token, NS)
            .expect("write service account dir");
        let mut c = Command::new(program);
        c.args(cmd.unwrap_or_else(|| self.singleton_cmd()))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RUST_LOG", "debug,ureq=info,ureq_proto=info,rustls=info")
            .env("T_DIR", &self.dir)
            .env("T_ID", name);
        election_env(&mut c, self.api.port(), &sa, LOCK, identity);
        c.env("K8S_AWAIT_ELECTION_NAME", "test")
            .env("K8S_AWAIT_ELECTION_LEASE_DURATION", &self.timings.0)
            .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", &self.timings.1)
            .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", &self.timings.2)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn replica");
        Replica {
            identity: identity.to_string(),
            name: name.to_string(),
            token,
            log,
            child,
            status: None,
        }
    }

    /// The lines of the CMD event log, oldest first.
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

    /// Identities whose CMD started, in order.
    pub fn starts(&self) -> Vec<String> {
        self.cmd_events()
            .into_iter()
            .filter(|e| e.kind == "start")
            .map(|e| e.identity)
            .collect()
    }

    /// Panics (with [`Cluster::dump`]) if a CMD ever found another one running.
    pub fn assert_no_overlap(&self) {
        let overlaps: Vec<_> = self
            .cmd_events()
            .into_iter()
            .filter(|e| e.kind == "OVERLAP")
            .collect();
        assert!(
            overlaps.is_empty(),
            "two CMDs ran at once: {overlaps:?}\n{}",
            self.dump()
        );
    }

    /// Whether `pid` is a live CMD of this cluster, a shell or the python3 hog a `slow-dying`
    /// shell became (not a process that reused the pid: the environment names this cluster's
    /// directory).
    pub fn cmd_alive(&self, pid: u32) -> bool {
        let marker = format!("T_DIR={}", self.dir.display());
        pid_alive(pid)
            && std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| matches!(comm.trim(), "sh" | "python3"))
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

    /// The Lease as stored by the API server.
    pub fn lease(&self) -> Option<serde_json::Value> {
        self.api.get_object("leases", NS, LOCK)
    }

    /// The holder the Lease names, if any.
    pub fn holder(&self) -> Option<String> {
        self.lease()?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .filter(|h| !h.is_empty())
            .map(String::from)
    }

    /// Successful Lease writes (PUT/POST answered 2xx), oldest first: the instant of the
    /// server's request log and the token that made it.
    pub fn all_lease_writes(&self) -> Vec<(Instant, String)> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| {
                r.resource == "leases"
                    && (r.method == "PUT" || r.method == "POST")
                    && (200..300).contains(&r.code)
            })
            .map(|r| (r.at, r.token.unwrap_or_default()))
            .collect()
    }

    /// The instants of the successful Lease writes made with `token`, oldest first.
    pub fn lease_writes(&self, token: &str) -> Vec<Instant> {
        self.all_lease_writes()
            .into_iter()
            .filter(|(_, by)| by == token)
            .map(|(at, _)| at)
            .collect()
    }

    /// Rotates `replica`'s bearer token the way the kubelet does: the server accepts
    /// `new_token` first, the service-account `token` file is replaced atomically (write a
    /// temporary file, rename it over the old one), then the server forgets the old token.
    pub fn rotate_token(&self, replica: &mut Replica, new_token: &str) {
        let user = format!("system:serviceaccount:{NS}:{}", replica.identity);
        self.api.add_token(new_token, &user);
        let sa = self.dir.join(format!("sa-{}", replica.name));
        let tmp = sa.join(".token.tmp");
        std::fs::write(&tmp, new_token).expect("write new token");
        std::fs::rename(&tmp, sa.join("token")).expect("swap token file");
        self.api.remove_token(&replica.token);
        replica.token = new_token.to_string();
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

/// A running replica (killed on drop).
pub struct Replica {
    /// Its identity (`K8S_AWAIT_ELECTION_IDENTITY`).
    pub identity: String,
    /// What the tests call it (`T_ID`; names its token and service-account directory): the
    /// identity, unless several processes share that.
    pub name: String,
    /// Its current bearer token.
    pub token: String,
    /// The file its stderr goes to.
    log: PathBuf,
    /// The binary's process.
    pub child: Child,
    status: Option<ExitStatus>,
}

impl Replica {
    /// The binary's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        send_signal(self.pid(), name);
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

    /// Whether the replica has exited (recording its status).
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

    /// What the replica logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the replica's log contains `needle`.
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
