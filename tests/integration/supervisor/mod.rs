//! The supervisor, tested through the real binary in election mode against the test API server
//! (single replica, short timings): exit codes, signal forwarding, reaping of adopted orphans,
//! CMD's clean process state, stdio and environment pass-through, spawn failures — both as a
//! child subreaper (the binary's normal case outside a container) and as PID 1 of a new PID
//! namespace (`unshare --pid --fork --mount-proc`, which needs root; those tests print a skip
//! reason when it is unavailable). Passthrough mode (no election) is covered at the end.

#[path = "common/procs.rs"]
mod procs;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use procs::{children, exit_code, poll, send_signal, status_field, wait_timeout, widowed_pipe};
use test_apiserver::{ApiServer, Fault};

const BIN: &str = env!("CARGO_BIN_EXE_k8s-await-election");
const NAMESPACE: &str = "default";
/// Generous: acquiring the lease takes ~1 s, but CI machines have 2 busy cores.
const START: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The binary is a normal process, hence a child subreaper.
    Subreaper,
    /// The binary is PID 1 of a new PID namespace.
    Pid1,
}

/// Skip (with a printed reason) a PID-1 test when PID namespaces are unavailable.
fn pid1_available(test: &str) -> bool {
    match procs::pid_namespace_support() {
        Ok(()) => true,
        Err(reason) => {
            // Where the suite must be complete (CI, scripts/test.sh) a skip is a failure.
            if std::env::var_os("CI").is_some() || std::env::var_os("REQUIRE_STATIC").is_some() {
                panic!("{test} needs a new PID namespace as root: {reason}");
            }
            eprintln!("SKIPPED {test}: needs a new PID namespace as root: {reason}");
            false
        }
    }
}

/// An API server, a service-account directory and a scratch directory for one test.
struct Rig {
    server: ApiServer,
    name: String,
    sa_dir: PathBuf,
    dir: PathBuf,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("supervisor-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test directory");
        let server = ApiServer::start();
        let token = format!("token-{name}");
        server.add_token(&token, &format!("system:serviceaccount:{NAMESPACE}:{name}"));
        let sa_dir = dir.join("serviceaccount");
        server
            .write_service_account_dir(&sa_dir, &token, NAMESPACE)
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

    fn election_env(&self, cmd: &mut Command) {
        let port = self.server.port().to_string();
        cmd.env("K8S_AWAIT_ELECTION_ENABLED", "1")
            .env("K8S_AWAIT_ELECTION_NAME", &self.name)
            .env(
                "K8S_AWAIT_ELECTION_LOCK_NAME",
                format!("lock-{}", self.name),
            )
            .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", NAMESPACE)
            .env("K8S_AWAIT_ELECTION_IDENTITY", format!("{}-0", self.name))
            .env("K8S_AWAIT_ELECTION_LEASE_DURATION", "4")
            .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", "3")
            .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", "1")
            .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", &self.sa_dir)
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", port)
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
            .get_object("leases", NAMESPACE, &format!("lock-{}", self.name))
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

impl Drop for Rig {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
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
                poll("unshare to fork the binary", START, || {
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

// ---------------------------------------------------------------------------------------------
// Exit codes

fn exit_codes(mode: Mode) {
    let rig = Rig::new(&format!("exit-codes-{}", mode_tag(mode)));
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("kill -9 $$", 137),
        ("kill -SEGV $$", 139),
    ] {
        let code = rig.run(mode, &["sh", "-c", script]);
        assert_eq!(
            code,
            want,
            "CMD `sh -c '{script}'` ({mode:?}): stderr:\n{}",
            rig.stderr()
        );
        let log = rig.stderr();
        assert!(
            log.contains("started CMD (pid "),
            "no start log line:\n{log}"
        );
    }
}

#[test]
fn exit_codes_as_subreaper() {
    exit_codes(Mode::Subreaper);
}

#[test]
fn exit_codes_as_pid1() {
    if pid1_available("exit_codes_as_pid1") {
        exit_codes(Mode::Pid1);
    }
}

#[test]
fn cmd_not_found_is_127_and_not_executable_is_126() {
    let rig = Rig::new("spawn-errors");
    let missing = "k8s-await-election-test-no-such-command";
    assert_eq!(
        rig.run(Mode::Subreaper, &[missing]),
        127,
        "stderr:\n{}",
        rig.stderr()
    );
    assert!(
        rig.stderr().contains(missing),
        "error names the command:\n{}",
        rig.stderr()
    );

    let plain = rig.script("not-executable.sh", "#!/bin/sh\nexit 0\n"); // mode 0644
    assert_eq!(
        rig.run(Mode::Subreaper, &[&plain]),
        126,
        "stderr:\n{}",
        rig.stderr()
    );
    assert!(
        rig.stderr().contains("not-executable.sh"),
        "stderr:\n{}",
        rig.stderr()
    );

    let directory = rig.dir.to_string_lossy().into_owned();
    assert_eq!(
        rig.run(Mode::Subreaper, &[&directory]),
        126,
        "stderr:\n{}",
        rig.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// Signal forwarding

const FORWARDED: [&str; 8] = [
    "HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "CONT",
];

/// CMD: trap every signal of FORWARDED and log it; exit 7 once `$1.quit` exists.
const TRAP_SCRIPT: &str = r#"log=$1
for s in HUP INT QUIT USR1 USR2 TERM WINCH CONT; do trap "echo $s >> '$log'" "$s"; done
echo ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
exit 7
"#;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn signals_forwarded(mode: Mode) {
    let rig = Rig::new(&format!("signals-{}", mode_tag(mode)));
    let script = rig.script("trap.sh", TRAP_SCRIPT);
    let log = rig.path("signals.log");
    let log_arg = log.to_string_lossy().into_owned();
    let run = rig.spawn(mode, &["sh", &script, &log_arg]);
    poll("CMD to start and set its traps", START, || {
        (rig.read("signals.log").lines().next() == Some("ready")).then_some(())
    });
    let sup = run.supervisor_pid();
    // CMD runs because we lead: the Lease names this replica.
    let lease = rig
        .server
        .get_object("leases", NAMESPACE, &format!("lock-{}", rig.name))
        .expect("the Lease exists while CMD runs");
    assert_eq!(
        lease["spec"]["holderIdentity"],
        format!("{}-0", rig.name),
        "{lease}"
    );
    let mut want = vec!["ready"];
    for sig in FORWARDED {
        send_signal(sup, sig);
        want.push(sig);
        let seen = procs::poll_opt(Duration::from_secs(10), || {
            let text = rig.read("signals.log");
            (lines(&text) == want).then_some(())
        });
        assert!(
            seen.is_some(),
            "SIG{sig} did not reach CMD: log {:?}, want {want:?}; {}",
            rig.read("signals.log"),
            run.context()
        );
    }
    fs::write(format!("{log_arg}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 7, "{context}");
    // The forwarding itself is logged (at debug).
    let stderr = rig.stderr();
    for sig in FORWARDED {
        assert!(
            stderr.contains(&format!("forwarding SIG{sig} to CMD")),
            "{stderr}"
        );
    }
}

#[test]
fn signals_are_forwarded_as_subreaper() {
    signals_forwarded(Mode::Subreaper);
}

#[test]
fn signals_are_forwarded_as_pid1() {
    if pid1_available("signals_are_forwarded_as_pid1") {
        signals_forwarded(Mode::Pid1);
    }
}

/// CMD: a shell with a child shell; both log SIGUSR1. Exit 9 once `$1.quit` exists.
const GROUP_SCRIPT: &str = r#"log=$1
sh -c "trap 'echo child-USR1 >> \"$log\"' USR1
echo child-ready >> '$log'
while [ ! -e '$log.quit' ]; do sleep 0.05; done" &
trap "echo parent-USR1 >> '$log'" USR1
echo parent-ready >> "$log"
while [ ! -e "$log.quit" ]; do sleep 0.05; done
wait
exit 9
"#;

#[test]
fn group_mode_signals_the_whole_process_group() {
    let rig = Rig::new("group");
    let script = rig.script("group.sh", GROUP_SCRIPT);
    let log_arg = rig.path("group.log").to_string_lossy().into_owned();
    let argv = rig.argv(Mode::Subreaper, &["sh", &script, &log_arg]);
    let mut cmd = rig.command(&argv);
    cmd.env("K8S_AWAIT_ELECTION_SIGNAL_TARGET", "group");
    let run = rig.start(Mode::Subreaper, cmd);
    poll("both shells to set their traps", START, || {
        let text = rig.read("group.log");
        (text.contains("parent-ready") && text.contains("child-ready")).then_some(())
    });
    let sup = run.supervisor_pid();
    // CMD leads its own process group, apart from ours.
    let cmd_pid = children(sup)
        .first()
        .map(|s| s.pid)
        .expect("CMD is running");
    assert_eq!(
        pgid(cmd_pid),
        Some(cmd_pid),
        "CMD leads its own process group"
    );
    assert_ne!(pgid(sup), Some(cmd_pid));

    send_signal(sup, "USR1");
    let seen = procs::poll_opt(Duration::from_secs(10), || {
        let text = rig.read("group.log");
        (text.contains("parent-USR1") && text.contains("child-USR1")).then_some(())
    });
    assert!(
        seen.is_some(),
        "SIGUSR1 did not reach the whole group: log {:?}; {}",
        rig.read("group.log"),
        run.context()
    );
    fs::write(format!("{log_arg}.quit"), "").expect("quit file");
    let context = run.context();
    assert_eq!(run.wait_exit(), 9, "{context}");
}

/// The process group of `pid` (field 5 of /proc/<pid>/stat).
fn pgid(pid: u32) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Reaping

/// CMD orphans two `sleep 3` (their parent subshells exit at once), then becomes `sleep 120`.
const ORPHAN_SCRIPT: &str = "(sleep 3 &); (sleep 3 &); exec sleep 120";

fn orphans_reaped(mode: Mode) {
    let rig = Rig::new(&format!("orphans-{}", mode_tag(mode)));
    let run = rig.spawn(mode, &["sh", "-c", ORPHAN_SCRIPT]);
    let sup = run.supervisor_pid();
    // 1. The orphans are adopted by the binary (subreaper / PID 1): CMD plus two sleeps.
    poll("the orphans to be re-parented to the binary", START, || {
        (children(sup).len() >= 3).then_some(())
    });
    // 2. When they exit they are reaped: only CMD is left, and no zombie of ours remains.
    let left = procs::poll_opt(Duration::from_secs(15), || {
        let kids = children(sup);
        (kids.len() == 1 && kids.iter().all(|k| k.state != 'Z')).then_some(kids)
    });
    assert!(
        left.is_some(),
        "orphans not reaped: children of the binary {:?}; {}",
        children(sup),
        run.context()
    );
    // 3. And the binary itself is fine: SIGTERM is forwarded to `sleep 120`, exit 128 + 15.
    send_signal(sup, "TERM");
    let context = run.context();
    assert_eq!(run.wait_exit(), 143, "{context}");
    assert!(rig.stderr().contains("reaped orphan"), "{}", rig.stderr());
}

#[test]
fn orphans_are_reaped_as_subreaper() {
    orphans_reaped(Mode::Subreaper);
}

#[test]
fn orphans_are_reaped_as_pid1() {
    if pid1_available("orphans_are_reaped_as_pid1") {
        orphans_reaped(Mode::Pid1);
    }
}

/// CMD leaves a background `sleep` behind (its pid in `$1`) and is itself `sleep 300`.
const LEFTOVER_SCRIPT: &str = r#"sleep 300 &
echo $! > "$1"
exec sleep 300
"#;

#[test]
fn step_down_kills_cmd_and_what_it_left_behind() {
    // Subreaper mode: as PID 1 the kernel would kill leftovers when we exit anyway.
    let rig = Rig::new("leftovers");
    let script = rig.script("leftover.sh", LEFTOVER_SCRIPT);
    let pid_file = rig.path("leftover.pid").to_string_lossy().into_owned();
    let run = rig.spawn(Mode::Subreaper, &["sh", &script, &pid_file]);
    let leftover: u32 = poll("CMD to start its background sleep", START, || {
        rig.read("leftover.pid").trim().parse().ok()
    });
    // Make every renewal fail: the replica must step down (exit 75, EX_TEMPFAIL).
    rig.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let code = run.wait_exit();
    let alive = procs::stat(leftover).filter(|s| s.state != 'Z');
    if alive.is_some() {
        send_signal(leftover, "KILL"); // don't leak it past the test
    }
    assert_eq!(code, 75, "stderr:\n{}", rig.stderr());
    if std::env::var_os("SUPERVISOR_TEST_SHOW_LOG").is_some() {
        eprintln!("{}", rig.stderr());
    }
    assert!(
        alive.is_none(),
        "the background process of CMD survived the step-down: {alive:?}; stderr:\n{}",
        rig.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// CMD's process state, stdio, environment

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

fn clean_process_state(mode: Mode) {
    let rig = Rig::new(&format!("clean-{}", mode_tag(mode)));
    let argv = with_ignored_signals(&rig.argv(mode, &["cat", "/proc/self/status"]));
    let run = rig.start(mode, rig.command(&argv));
    let top = run.child.id();
    let code = run.wait_exit();
    assert_eq!(code, 0, "stderr:\n{}", rig.stderr());
    let status = rig.stdout();
    for field in ["SigBlk", "SigIgn", "SigCgt"] {
        assert_eq!(
            status_field(&status, field),
            Some("0000000000000000"),
            "{field} of CMD ({mode:?}):\n{status}"
        );
    }
    let ppid = status_field(&status, "PPid").and_then(|p| p.parse::<u32>().ok());
    match mode {
        // CMD's parent is PID 1 of its namespace: the binary.
        Mode::Pid1 => assert_eq!(ppid, Some(1), "{status}"),
        // `sh` exec'd the binary, so the pid we started is the binary, CMD's parent.
        Mode::Subreaper => assert_eq!(ppid, Some(top), "{status}"),
    }
}

#[test]
fn cmd_gets_a_clean_process_state_as_subreaper() {
    clean_process_state(Mode::Subreaper);
}

#[test]
fn cmd_gets_a_clean_process_state_as_pid1() {
    if pid1_available("cmd_gets_a_clean_process_state_as_pid1") {
        clean_process_state(Mode::Pid1);
    }
}

#[test]
fn stdin_stdout_stderr_and_environment_reach_cmd() {
    let rig = Rig::new("stdio");
    let argv = rig.argv(
        Mode::Subreaper,
        &[
            "sh",
            "-c",
            r#"read x; echo "got:$x"; echo "env:$SUPERVISOR_TEST_VALUE"; echo to-stderr >&2"#,
        ],
    );
    let mut cmd = rig.command(&argv);
    cmd.stdin(Stdio::piped());
    cmd.env("SUPERVISOR_TEST_VALUE", "a b=c 'd'");
    let mut run = rig.start(Mode::Subreaper, cmd);
    let mut stdin = run.child.stdin.take().expect("stdin pipe");
    stdin.write_all(b"hello\n").expect("write stdin");
    drop(stdin);
    let code = run.wait_exit();
    assert_eq!(code, 0, "stderr:\n{}", rig.stderr());
    let out = rig.stdout();
    assert!(lines(&out).contains(&"got:hello"), "stdout: {out:?}");
    assert!(lines(&out).contains(&"env:a b=c 'd'"), "stdout: {out:?}");
    assert!(
        lines(&rig.stderr()).contains(&"to-stderr"),
        "stderr: {}",
        rig.stderr()
    );
}

/// Our stderr is a pipe nobody reads any more (a log shipper that died): every log line then
/// fails with EPIPE. That must not kill the supervisor by SIGPIPE (exit 141, lease kept until
/// it expires); it carries on, CMD's code comes out and the Lease is released.
#[test]
fn a_closed_stderr_does_not_kill_the_supervisor() {
    let rig = Rig::new("epipe");
    let argv = rig.argv(Mode::Subreaper, &["sh", "-c", "exit 7"]);
    let mut cmd = rig.command(&argv);
    cmd.stderr(widowed_pipe());
    let run = rig.start(Mode::Subreaper, cmd);
    assert_eq!(run.wait_exit(), 7, "CMD's exit code, not death by SIGPIPE");
    rig.assert_lease_released();
}

/// Started with descriptor 2 not open at all (`2>&-`): the first socket we open must not
/// become "stderr", or log lines would go into the API connection and break it. We open
/// /dev/null there first; the election works, CMD's code comes out, the Lease is released.
#[test]
fn a_closed_stderr_descriptor_does_not_swallow_the_api_connection() {
    let rig = Rig::new("fd2-closed");
    let mut argv: Vec<String> = ["sh", "-c", "exec \"$@\" 2>&-", "sh"]
        .map(String::from)
        .to_vec();
    argv.extend(rig.argv(Mode::Subreaper, &["sh", "-c", "exit 7"]));
    let mut cmd = rig.command(&argv);
    // Plenty of log lines while requests are in flight (every request is logged).
    cmd.env("RUST_LOG", "debug");
    let run = rig.start(Mode::Subreaper, cmd);
    assert_eq!(run.wait_exit(), 7, "CMD ran and its exit code came out");
    rig.assert_lease_released();
}

/// Fills the pipe behind `writer` until a write would block: from then on, with nobody
/// reading, every write to it blocks.
fn fill_pipe(writer: &std::io::PipeWriter) {
    use std::os::fd::AsRawFd;
    let fd = writer.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; only O_NONBLOCK changes, and it is
    // restored below (the binary must get a blocking pipe).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL");
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) },
        0
    );
    let chunk = [b'x'; 4096];
    loop {
        match (&*writer).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }, 0);
}

/// Our stderr is a full pipe that nobody reads (a stalled log shipper): every write(2) to it
/// blocks. Logging must hold up neither the election nor the step-down: CMD still starts, and
/// when renewals fail CMD is stopped and we exit with 75 (EX_TEMPFAIL) as usual.
#[test]
fn a_blocked_stderr_holds_up_neither_the_election_nor_the_step_down() {
    let rig = Rig::new("blocked-stderr");
    let started = rig.path("started");
    let stopped = rig.path("stopped");
    let script = format!(
        "trap 'touch {}; exit 0' TERM; touch {}; while :; do sleep 0.05; done",
        stopped.display(),
        started.display()
    );
    let argv = rig.argv(Mode::Subreaper, &["sh", "-c", &script]);
    let mut cmd = rig.command(&argv);
    let (reader, writer) = std::io::pipe().expect("pipe");
    fill_pipe(&writer);
    cmd.stderr(writer);
    let run = rig.start(Mode::Subreaper, cmd);
    poll("CMD to start despite the blocked stderr", START, || {
        started.exists().then_some(())
    });
    rig.server.set_fault(Fault::Status {
        code: 503,
        retry_after: None,
    });
    assert_eq!(run.wait_exit(), 75, "stepped down after failed renewals");
    assert!(stopped.exists(), "CMD got SIGTERM when we stepped down");
    drop(reader);
}

// ---------------------------------------------------------------------------------------------
// Passthrough mode (election disabled): exec in place

fn passthrough(dir: &Path, argv: &[String], stdout: &str) -> (u32, i32) {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove("K8S_AWAIT_ELECTION_ENABLED")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join(stdout)).expect("stdout file"))
        .stderr(fs::File::create(dir.join("passthrough.err")).expect("stderr file"));
    let mut child = cmd.spawn().expect("start the binary");
    let pid = child.id();
    let status = wait_timeout(&mut child, EXIT).expect("passthrough exits");
    (pid, exit_code(status))
}

#[test]
fn passthrough_execs_cmd_in_place_with_a_clean_state() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("supervisor-passthrough-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("test dir");

    // Same PID: no fork.
    let (pid, code) = passthrough(
        &dir,
        &[BIN.into(), "sh".into(), "-c".into(), "echo $$".into()],
        "pid.out",
    );
    assert_eq!(code, 0);
    let printed = fs::read_to_string(dir.join("pid.out")).unwrap_or_default();
    assert_eq!(
        printed.trim(),
        pid.to_string(),
        "CMD runs as the binary's own process"
    );

    // Clean signal state, even though the binary inherited ignored signals.
    let argv = with_ignored_signals(&[BIN.into(), "cat".into(), "/proc/self/status".into()]);
    let (_, code) = passthrough(&dir, &argv, "status.out");
    assert_eq!(code, 0);
    let status = fs::read_to_string(dir.join("status.out")).unwrap_or_default();
    for field in ["SigBlk", "SigIgn"] {
        assert_eq!(
            status_field(&status, field),
            Some("0000000000000000"),
            "{field}:\n{status}"
        );
    }

    // Not found → 127.
    let (_, code) = passthrough(
        &dir,
        &[BIN.into(), "k8s-await-election-test-no-such-command".into()],
        "nf.out",
    );
    assert_eq!(code, 127);

    // ... also when the error line cannot be written (stderr a pipe nobody reads): 127, not
    // death by SIGPIPE.
    let mut child = Command::new(BIN)
        .arg("k8s-await-election-test-no-such-command")
        .env_remove("K8S_AWAIT_ELECTION_ENABLED")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(widowed_pipe())
        .spawn()
        .expect("start the binary");
    let status = wait_timeout(&mut child, EXIT).expect("passthrough exits");
    assert_eq!(exit_code(status), 127);
    let _ = fs::remove_dir_all(&dir);
}

fn mode_tag(mode: Mode) -> &'static str {
    match mode {
        Mode::Subreaper => "sub",
        Mode::Pid1 => "pid1",
    }
}
