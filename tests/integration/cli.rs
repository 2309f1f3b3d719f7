//! The command line and configuration as a user meets them: bad values are one clear line,
//! the configuration exit code, no API connection and no CMD; passthrough execs CMD in place;
//! `--help`/`--version` only as the sole argument.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use crate::prereqs;
use crate::procs::{copy_executable, widowed_pipe};
use crate::tempdir::TempDir;
use crate::BIN;

/// A bare command with a clean environment (no inherited K8S_AWAIT_ELECTION_*).
fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear().env("PATH", "/usr/bin:/bin");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run binary")
}

/// Listens where the binary would find the API server and tells whether anything connected.
struct RecordingApi {
    listener: TcpListener,
}

impl RecordingApi {
    fn new() -> RecordingApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        RecordingApi { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    /// True if a connection is waiting in the backlog (the binary has exited by then).
    fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

#[test]
fn every_bad_value_is_one_line_exit_78_no_request_no_child() {
    let base: &[(&str, &str)] = &[
        ("K8S_AWAIT_ELECTION_ENABLED", "1"),
        ("K8S_AWAIT_ELECTION_NAME", "test"),
        ("K8S_AWAIT_ELECTION_LOCK_NAME", "lock"),
        ("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "default"),
        ("K8S_AWAIT_ELECTION_IDENTITY", "pod-0"),
    ];
    // (variable, value); an empty value removes a required variable.
    let cases: &[(&str, &str)] = &[
        ("K8S_AWAIT_ELECTION_LOCK_NAME", ""),
        ("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", ""),
        ("K8S_AWAIT_ELECTION_IDENTITY", ""),
        ("K8S_AWAIT_ELECTION_LOCK_NAME", "Bad_Name"),
        ("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "no.dots"),
        ("K8S_AWAIT_ELECTION_LEASE_DURATION", "fifteen"),
        ("K8S_AWAIT_ELECTION_LEASE_DURATION", "0"),
        ("K8S_AWAIT_ELECTION_LEASE_DURATION", "9"),
        ("K8S_AWAIT_ELECTION_RENEW_DEADLINE", "2"),
        ("K8S_AWAIT_ELECTION_RETRY_PERIOD", "-1"),
        ("K8S_AWAIT_ELECTION_RETRY_PERIOD", "1.5"),
        // Below the lower bound (100ms): ~870 requests a second with 1ms.
        ("K8S_AWAIT_ELECTION_RETRY_PERIOD", "1ms"),
        ("K8S_AWAIT_ELECTION_RETRY_PERIOD", "99ms"),
        ("K8S_AWAIT_ELECTION_GRACE_PERIOD", "30"),
        ("K8S_AWAIT_ELECTION_KILL_MARGIN", "0"),
        ("K8S_AWAIT_ELECTION_KILL_MARGIN", "soon"),
        ("K8S_AWAIT_ELECTION_KILL_MARGIN", "6s"),
        ("K8S_AWAIT_ELECTION_SIGNAL_TARGET", "everyone"),
        ("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", "9999"),
        ("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", "example.com:9999"),
        ("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", ":70000"),
        ("K8S_AWAIT_ELECTION_SERVICE_NAME", "Web"),
        ("K8S_AWAIT_ELECTION_SERVICE_NAMESPACE", "other"),
        ("K8S_AWAIT_ELECTION_POD_IP", "10.1.2.300"),
        (
            "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON",
            "[{\"port\":0,\"name\":\"http\"}]",
        ),
        (
            "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON",
            "[{\"port\":80,\"protocol\":\"ICMP\"}]",
        ),
        ("K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON", "not json"),
        ("K8S_AWAIT_ELECTION_NODE_NAME", "Node_1"),
    ];
    let dir = TempDir::new("cli-badvalues");
    for (var, value) in cases {
        let api = RecordingApi::new();
        let marker = dir.join("cmd-ran");
        let mut cmd = bin();
        cmd.args(["touch", marker.to_str().expect("utf-8 path")])
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
            .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", &dir);
        for (k, v) in base {
            cmd.env(k, v);
        }
        // Service variables need the service name and pod IP to get as far as their own check.
        if var.contains("SERVICE_PORTS") || var.ends_with("POD_IP") || var.ends_with("NODE_NAME") {
            cmd.env("K8S_AWAIT_ELECTION_SERVICE_NAME", "web")
                .env("K8S_AWAIT_ELECTION_POD_IP", "10.1.2.3");
        }
        cmd.env(var, value);
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{var}={value:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{var}={value:?}: expected one line, got {stderr}"
        );
        assert!(
            lines[0].contains(var),
            "{var}={value:?}: line does not name the variable: {stderr}"
        );
        if !value.is_empty() {
            assert!(
                lines[0].contains(&format!("{value:?}")),
                "{var}={value:?}: line does not show the value: {stderr}"
            );
        }
        assert!(
            !api.was_contacted(),
            "{var}={value:?}: the API server was contacted"
        );
        assert!(!marker.exists(), "{var}={value:?}: CMD ran");
    }
}

#[test]
fn missing_in_cluster_config_is_an_api_error_without_a_child() {
    let dir = TempDir::new("cli-nocluster");
    let marker = dir.join("cmd-ran");
    let out = run(bin()
        .args(["touch", marker.to_str().expect("utf-8 path")])
        .env("K8S_AWAIT_ELECTION_ENABLED", "1")
        .env("K8S_AWAIT_ELECTION_LOCK_NAME", "lock")
        .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "default")
        .env("K8S_AWAIT_ELECTION_IDENTITY", "pod-0")
        .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", dir.join("missing")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("KUBERNETES_SERVICE_HOST"), "{stderr}");
    assert!(!marker.exists());
}

#[test]
fn passthrough_execs_in_place_keeping_the_pid() {
    let child = bin()
        .args(["sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
    assert!(
        out.stderr.is_empty(),
        "passthrough is silent: {:?}",
        out.stderr
    );
}

#[test]
fn passthrough_with_empty_enabled_passes_exit_code_and_stdin() {
    let mut child = bin()
        .args(["sh", "-c", "read line; echo got:$line; exit 42"])
        .env("K8S_AWAIT_ELECTION_ENABLED", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"hello\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
}

#[test]
fn passthrough_not_found_127_not_executable_126() {
    let out = run(bin().arg("no-such-command-k8s-await-election"));
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-command-k8s-await-election"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let dir = TempDir::new("cli-noexec");
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(bin().arg(&script));
    assert_eq!(
        out.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(bin().arg(&dir));
    assert_eq!(
        out.status.code(),
        Some(126),
        "a directory is not executable"
    );
}

#[test]
fn help_and_version_only_as_the_sole_argument() {
    let out = run(bin().arg("--help"));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: k8s-await-election CMD"));

    let out = run(bin().arg("--version"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("k8s-await-election {}", env!("CARGO_PKG_VERSION"))
    );

    // Anywhere else they belong to CMD.
    let out = run(bin().args(["printf", "%s\\n", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--help\n");
    let out = run(bin().args(["--version", "x"]));
    assert_eq!(out.status.code(), Some(127), "--version is CMD here");
}

/// stdout and stderr may be pipes nobody reads any more (a log collector that went away): the
/// answers are lost, the exit codes are not (no death by SIGPIPE, no panic on a failed write).
#[test]
fn closed_output_pipes_change_no_exit_code() {
    /// Arguments, environment, expected exit code.
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        i32,
    );
    let cases: &[Case] = &[
        (&["--version"], &[], 0),
        (&["--help"], &[], 0),
        (&[], &[], 64),
        (&["true"], &[("K8S_AWAIT_ELECTION_ENABLED", "1")], 78),
        (&["k8s-await-election-test-no-such-command"], &[], 127),
    ];
    for (args, env, code) in cases {
        let status = bin()
            .args(*args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(widowed_pipe())
            .stderr(widowed_pipe())
            .status()
            .expect("run binary");
        assert_eq!(status.code(), Some(*code), "{args:?} {env:?}: {status:?}");
    }
}

#[test]
fn no_command_is_a_usage_error() {
    let out = run(&mut bin());
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

/// The static binary (scripts/build-static.sh) runs in an empty root directory, like a
/// FROM-scratch image: passthrough execs a CMD that is itself, and `--version` works.
#[test]
fn static_binary_runs_in_an_empty_root() {
    let test = "static_binary_runs_in_an_empty_root";
    let Some(stat) = prereqs::require(test, prereqs::static_binary()) else {
        return;
    };
    if !prereqs::is_root() {
        panic!("this test needs root (chroot); run the suite as root as CI does");
    }
    let root = TempDir::new("cli-chroot");
    copy_executable(&stat, &root.join("k8s-await-election"));
    let out = run(Command::new("chroot").args([
        root.to_str().expect("utf-8"),
        "/k8s-await-election",
        "/k8s-await-election",
        "--version",
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("k8s-await-election "));
    // Nothing else is in that root: no libc, no loader.
    let entries = std::fs::read_dir(&root).expect("read").count();
    assert_eq!(entries, 1);
}

/// A value that is not UTF-8 is never read as unset: in election mode every variable we read
/// (ours, the in-cluster ones, `RUST_LOG`) is exit 78 with one line naming it and showing the
/// bytes escaped, before any request or child; `ENABLED` with such a value enables election.
#[test]
fn non_utf8_values_are_one_line_exit_78_and_enabled_still_enables() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = TempDir::new("cli-nonutf8");
    let marker = dir.join("cmd-ran");
    let bad = OsStr::from_bytes(b"x\xff");
    let election = |api: &RecordingApi| {
        let mut cmd = bin();
        cmd.args(["touch", marker.to_str().expect("utf-8 path")])
            .env("K8S_AWAIT_ELECTION_ENABLED", "1")
            .env("K8S_AWAIT_ELECTION_LOCK_NAME", "lock")
            .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "default")
            .env("K8S_AWAIT_ELECTION_IDENTITY", "pod-0")
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
            .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", dir.path());
        cmd
    };
    let mut names: Vec<&str> = k8s_await_election::config::VARIABLES
        .iter()
        .map(|v| v.name)
        .filter(|n| *n != "K8S_AWAIT_ELECTION_ENABLED")
        .collect();
    names.extend([
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR",
        "RUST_LOG",
    ]);
    for name in names {
        let api = RecordingApi::new();
        let out = run(election(&api).env(name, bad));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: expected one line, got {stderr}");
        assert!(
            lines[0].contains(&format!(r#"{name}="x\xff""#)) && lines[0].contains("UTF-8"),
            "{name}: {stderr}"
        );
        assert!(!api.was_contacted(), "{name}: the API server was contacted");
        assert!(!marker.exists(), "{name}: CMD ran");
    }

    // ENABLED=$'\xff' is non-empty: election mode (here: its missing lock name), not an exec.
    let out = run(bin()
        .args(["touch", marker.to_str().expect("utf-8 path")])
        .env("K8S_AWAIT_ELECTION_ENABLED", OsStr::from_bytes(b"\xff")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("K8S_AWAIT_ELECTION_LOCK_NAME"), "{stderr}");
    assert!(!marker.exists(), "CMD ran without an election");
}
