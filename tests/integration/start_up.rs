//! Start-up against hostile in-cluster files and an API server that does not answer: a token
//! file that is a FIFO, a device or huge is refused at once (exit 69, one line naming the
//! file, no CMD), and SIGTERM ends us while start-up waits for the API server.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_apiserver::ApiServer;

use crate::cluster::{election_env, LOCK, NS};
use crate::procs::{exit_code, send_signal, wait_timeout};
use crate::tempdir::TempDir;
use crate::wait::wait_for;
use crate::BIN;

/// Far longer than a refused file takes (milliseconds), far shorter than a hang.
const PROMPTLY: Duration = Duration::from_secs(10);

fn replica(port: u16, sa: &std::path::Path, marker: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["touch", marker.to_str().expect("utf-8 path")])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    election_env(&mut c, port, sa, LOCK, "pod-0");
    c
}

/// A FIFO nobody writes, a symlink to `/dev/zero` and a 10 MiB file of token characters:
/// each is refused without reading it whole (or blocking on it), in one line naming the token
/// file, with exit 69 and no CMD.
#[test]
fn a_token_that_is_not_a_small_regular_file_is_exit_69_at_once() {
    let api = ApiServer::start();
    let dir = TempDir::new("startup-token");
    api.add_token("tok", &format!("system:serviceaccount:{NS}:pod-0"));
    type Make = fn(&std::path::Path);
    let cases: &[(&str, Make, &str)] = &[
        (
            "fifo",
            |p| {
                let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo");
                assert!(ok.success());
            },
            "FIFO",
        ),
        (
            "dev-zero",
            |p| std::os::unix::fs::symlink("/dev/zero", p).expect("symlink"),
            "character device",
        ),
        (
            "huge",
            |p| std::fs::write(p, vec![b'a'; 10 << 20]).expect("write"),
            "more than 65536 bytes",
        ),
    ];
    for (name, make, why) in cases {
        let sa = dir.join(format!("sa-{name}"));
        api.write_service_account_dir(&sa, "tok", NS)
            .expect("service account dir");
        let token = sa.join("token");
        std::fs::remove_file(&token).expect("remove token");
        make(&token);
        let marker = dir.join(format!("cmd-ran-{name}"));
        let mut child = replica(api.port(), &sa, &marker).spawn().expect("spawn");
        let Some(status) = wait_timeout(&mut child, PROMPTLY) else {
            panic!("{name}: still running after {PROMPTLY:?}: the token read hangs");
        };
        let out = child.wait_with_output().expect("stderr");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(exit_code(status), 69, "{name}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: expected one line, got {stderr}");
        assert!(
            lines[0].contains(&token.display().to_string()) && lines[0].contains(why),
            "{name}: the line does not name the file and why: {stderr}"
        );
        assert!(!marker.exists(), "{name}: CMD ran");
        assert!(
            api.requests().is_empty(),
            "{name}: the API server was contacted"
        );
    }
}

/// The API server's port accepts connections (the kernel completes them) but nobody answers:
/// start-up waits on its first request. SIGTERM still ends us, well before the request's own
/// deadline would, without CMD.
#[test]
fn sigterm_ends_a_start_up_that_waits_for_the_api_server() {
    let api = ApiServer::start();
    let dir = TempDir::new("startup-sigterm");
    let sa = dir.join("sa");
    api.write_service_account_dir(&sa, "tok", NS)
        .expect("service account dir");
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let marker = dir.join("cmd-ran");
    let log = dir.join("stderr.log");
    let mut child = replica(port, &sa, &marker)
        // Long timings: a campaign request may take up to 20 s (half the renew deadline).
        .env("K8S_AWAIT_ELECTION_LEASE_DURATION", "60")
        .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", "40")
        .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", "2")
        .env_remove("K8S_AWAIT_ELECTION_KILL_MARGIN")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    wait_for("the campaign to start", PROMPTLY, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("campaigning").then_some(())
    });
    send_signal(child.id(), "TERM");
    let status = wait_timeout(&mut child, Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "SIGTERM did not end the start-up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert_eq!(
        exit_code(status),
        143,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(!marker.exists(), "CMD ran");
}
