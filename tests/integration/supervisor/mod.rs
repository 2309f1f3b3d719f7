//! The supervisor, tested through the real binary in election mode against the test API server
//! (single replica, short timings): exit codes, signal forwarding, reaping of adopted orphans,
//! CMD's clean process state, stdio and environment pass-through, spawn failures — both as a
//! child subreaper (the binary's normal case outside a container) and as PID 1 of a new PID
//! namespace (`unshare --pid --fork --mount-proc`, which needs root; those tests print a skip
//! reason when it is unavailable). Passthrough mode (no election) is covered too.
//!
//! This module is the rig ([`Rig`], [`Running`]); the tests are in the submodules.

mod exits;
mod passthrough;
mod process_state;
mod signals;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use test_apiserver::ApiServer;

use crate::cluster::{election_env, NS};
use crate::prereqs;
use crate::procs::{children, exit_code, wait_timeout};
use crate::tempdir::TempDir;
use crate::wait::wait_for;
use crate::BIN;

/// Generous: acquiring the lease takes ~1 s, but CI machines have 2 busy cores.
const START: Duration = Duration::from_secs(30);
/// As generous, for the binary to exit.
const EXIT: Duration = Duration::from_secs(30);

/// How the binary runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The binary is a normal process, hence a child subreaper.
    Subreaper,
    /// The binary is PID 1 of a new PID namespace.
    Pid1,
}

/// Whether the PID-1 test `test` can run here (see [`prereqs::require`]).
fn pid1_available(test: &str) -> bool {
    prereqs::require(test, prereqs::pid_namespace_support()).is_some()
}

/// An API server, a service-account directory and a scratch directory for one test (kept
/// when the test fails).
struct Rig {
    server: ApiServer,
    name: String,
    sa_dir: PathBuf,
    dir: TempDir,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let dir = TempDir::new(&format!("supervisor-{name}"));
        let server = ApiServer::start();
        let token = format!("token-{name}");
        server.add_token(&token, &format!("system:serviceaccount:{NS}:{name}"));
        let sa_dir = dir.join("serviceaccount");
        server
            .write_service_account_dir(&sa_dir, &token, NS)
            .expect("write the service-account directory");
        Rig {
            server,
            name: name.to_string(),
            sa_dir,
            dir,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Write a shell script into the scratch directory; returns its path.
    fn script(&self, file: &str, text: &str) -> String {
        let path = self.path(file);
        fs::write(&path, text).expect("write script");
        path.to_string_lossy().into_owned()
    }

    /// The binary's argv for `mode`, in election mode, running `cmd`.
    fn argv(&self, mode: Mode, cmd: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = match mode {
            Mode::Subreaper => vec![BIN.into()],
            // --kill-child: if the test dies, unshare's death SIGKILLs the namespace's init.
            Mode::Pid1 => [
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                BIN,
            ]
            .map(String::from)
            .to_vec(),
        };
        argv.extend(cmd.iter().map(|s| s.to_string()));
        argv
    }

    /// `argv` as a Command with the election environment, stdin null, stdout/stderr to files.
    fn command(&self, argv: &[String]) -> Command {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        self.election_env(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd.stdout(fs::File::create(self.path("stdout")).expect("stdout file"));
        cmd.stderr(fs::File::create(self.path("stderr")).expect("stderr file"));
        cmd
    }

    /// The Lease's name.
    fn lock(&self) -> String {
        format!("lock-{}", self.name)
    }

    /// The replica's identity.
    fn identity(&self) -> String {
        format!("{}-0", self.name)
    }

    fn election_env(&self, cmd: &mut Command) {
        let (lock, identity) = (self.lock(), self.identity());
        election_env(cmd, self.server.port(), &self.sa_dir, &lock, &identity);
        cmd.env("K8S_AWAIT_ELECTION_NAME", &self.name)
            .env("RUST_LOG", "info,k8s_await_election=debug");
    }

    fn spawn(&self, mode: Mode, cmd: &[&str]) -> Running<'_> {
        let argv = self.argv(mode, cmd);
        self.start(mode, self.command(&argv))
    }

    fn start(&self, mode: Mode, mut cmd: Command) -> Running<'_> {
        let child = cmd.spawn().expect("start the binary");
        Running {
            rig: self,
            mode,
            child,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(self.path("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// The Lease exists and names no holder.
    fn assert_lease_released(&self) {
        let lease = self
            .server
            .get_object("leases", NS, &self.lock())
            .expect("the Lease exists");
        assert_eq!(
            lease["spec"]["holderIdentity"].as_str().unwrap_or(""),
            "",
            "the Lease is released: {lease}"
        );
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.path(file)).unwrap_or_default()
    }

    /// Run CMD to completion under `mode`; returns the binary's exit code.
    fn run(&self, mode: Mode, cmd: &[&str]) -> i32 {
        self.spawn(mode, cmd).wait_exit()
    }
}

/// The binary (or `unshare` around it) while it runs; killed on drop.
struct Running<'a> {
    rig: &'a Rig,
    mode: Mode,
    child: Child,
}

impl Running<'_> {
    /// The binary's pid as seen from the test (the host PID namespace).
    fn supervisor_pid(&self) -> u32 {
        match self.mode {
            Mode::Subreaper => self.child.id(),
            Mode::Pid1 => {
                let unshare = self.child.id();
                wait_for("unshare to fork the binary", START, || {
                    children(unshare).first().map(|s| s.pid)
                })
            }
        }
    }

    /// Wait for the exit code, panicking with the binary's stderr on timeout.
    fn wait_exit(mut self) -> i32 {
        match wait_timeout(&mut self.child, EXIT) {
            Some(status) => exit_code(status),
            None => panic!(
                "the binary did not exit within {EXIT:?}; stderr:\n{}",
                self.rig.stderr()
            ),
        }
    }

    fn context(&self) -> String {
        format!("mode {:?}; stderr:\n{}", self.mode, self.rig.stderr())
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines of `text`.
fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Run `argv` under `sh -c 'trap "" HUP USR1; exec "$@"'` so the binary starts with two
/// ignored signals (plus its own ignored SIGPIPE and blocked mask): CMD must still get
/// none of them.
fn with_ignored_signals(argv: &[String]) -> Vec<String> {
    let mut wrapped: Vec<String> = ["sh", "-c", "trap '' HUP USR1; exec \"$@\"", "sh"]
        .map(String::from)
        .to_vec();
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// A short name of `mode` for directory names.
fn mode_tag(mode: Mode) -> &'static str {
    match mode {
        Mode::Subreaper => "sub",
        Mode::Pid1 => "pid1",
    }
}
