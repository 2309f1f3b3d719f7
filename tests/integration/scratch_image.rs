//! The static release binary in a `FROM scratch`-like root: nothing but our binary, the
//! user's CMD (a static busybox standing in for it), `/dev/null` and the service-account
//! files; no libc, no loader, no /etc, no /proc. Run as PID 1 of a new PID namespace (`unshare --pid --fork`
//! then `chroot`), it must win the election over TLS, start CMD, forward signals, reap
//! orphans, pass CMD's exit code through and release the Lease.
//!
//! Needs root, `unshare`, `chroot`, the static binary (scripts/build-static.sh) and a static
//! busybox (`apt-get install busybox-static`; scripts/test.sh installs it when it can).

#[path = "common/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use procs::{children, poll, send_signal, stat, wait_timeout};
use test_apiserver::ApiServer;

const STATIC_BIN: &str = "x86_64-unknown-linux-gnu/release/k8s-await-election";
const BUSYBOX: &str = "/bin/busybox";

/// The prerequisites, or a panic under CI (where they must exist) / `None` with a note.
fn prerequisites() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join(STATIC_BIN);
    let mut missing = Vec::new();
    if !bin.exists() {
        missing.push(format!("{} (scripts/build-static.sh)", bin.display()));
    }
    let busybox_static = std::fs::read(BUSYBOX).is_ok_and(|b| is_static_elf(&b));
    if !busybox_static {
        missing.push(format!(
            "a static {BUSYBOX} (apt-get install busybox-static)"
        ));
    }
    if let Err(e) = procs::pid_namespace_support() {
        missing.push(format!("PID namespaces as root: {e}"));
    }
    if missing.is_empty() {
        return Some(bin);
    }
    let msg = format!("missing: {}", missing.join("; "));
    if std::env::var_os("CI").is_some() || std::env::var_os("REQUIRE_STATIC").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED scratch-image tests ({msg}); scripts/test.sh runs them");
    None
}

/// True for a 64-bit little-endian ELF file without a program interpreter (`PT_INTERP`), i.e.
/// one that needs no dynamic loader.
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|x| x.try_into().ok())
            .map(|x: [u8; 8]| u64::from_le_bytes(x) as usize)
    };
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        b.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// A root directory holding only the binary, busybox (as `sh` and friends), `/dev/null` and
/// the service-account files, plus an `out` directory CMD writes to.
struct ScratchRoot {
    dir: PathBuf,
}

impl ScratchRoot {
    fn new(tag: &str, bin: &Path, api: &ApiServer, token: &str) -> ScratchRoot {
        let dir = std::env::temp_dir().join(format!(
            "k8s-await-election-scratch-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["bin", "dev", "out", "sa"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        // Container runtimes give even a FROM-scratch image /dev/null (busybox sh opens it
        // for background jobs).
        let null = dir.join("dev/null");
        let made = Command::new("mknod")
            .arg(&null)
            .args(["-m", "666", "c", "1", "3"])
            .status()
            .expect("run mknod");
        assert!(made.success(), "mknod {}", null.display());
        // With cp: a file this multi-threaded process had open for writing could leak into a
        // child another test forks at that moment, and exec'ing it would fail (ETXTBSY).
        for (from, to) in [
            (bin, dir.join("k8s-await-election")),
            (Path::new(BUSYBOX), dir.join("bin/busybox")),
        ] {
            let ok = Command::new("cp")
                .arg(from)
                .arg(&to)
                .status()
                .expect("run cp")
                .success();
            assert!(ok, "cp {} {}", from.display(), to.display());
        }
        for applet in ["sh", "sleep", "cat", "kill"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).expect("symlink");
        }
        api.write_service_account_dir(&dir.join("sa"), token, "default")
            .expect("service account");
        ScratchRoot { dir }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join("out").join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out(name)).unwrap_or_default()
    }

    /// `unshare --pid --fork chroot ROOT /k8s-await-election sh -c SCRIPT` with election env.
    fn command(&self, api: &ApiServer, identity: &str, script: &str) -> Command {
        let mut c = Command::new("unshare");
        c.args(["--pid", "--fork", "--kill-child", "chroot"])
            .arg(&self.dir)
            .args(["/k8s-await-election", "/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/bin:/usr/sbin:/usr/bin:/sbin")
            .env("K8S_AWAIT_ELECTION_ENABLED", "1")
            .env("K8S_AWAIT_ELECTION_LOCK_NAME", "scratch")
            .env("K8S_AWAIT_ELECTION_LOCK_NAMESPACE", "default")
            .env("K8S_AWAIT_ELECTION_IDENTITY", identity)
            .env("K8S_AWAIT_ELECTION_LEASE_DURATION", "4")
            .env("K8S_AWAIT_ELECTION_RENEW_DEADLINE", "3")
            .env("K8S_AWAIT_ELECTION_RETRY_PERIOD", "1")
            .env("K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR", "/sa")
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.out("stderr")).expect("stderr file"));
        c
    }
}

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lease_holder(api: &ApiServer) -> Option<String> {
    api.get_object("leases", "default", "scratch")?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(String::from)
}

#[test]
fn static_binary_as_pid1_in_an_empty_root_leads_forwards_reaps_and_exits_with_cmds_code() {
    let Some(bin) = prerequisites() else { return };
    let api = ApiServer::start();
    api.add_token("scratch-token", "system:serviceaccount:default:scratch");
    let root = ScratchRoot::new("pid1", &bin, &api, "scratch-token");
    // CMD: log USR1, leave an orphan behind (a background sleep whose parent exits at once),
    // and exit 42 when told to.
    let script = r#"
trap 'echo usr1 >> /out/log' USR1
echo "started $$" >> /out/log
sh -c 'sleep 1 & exit 0'
while [ ! -f /out/stop ]; do sleep 0.05; done
exit 42
"#;
    let mut child = root
        .command(&api, "scratch-0", script)
        .spawn()
        .expect("spawn unshare");
    let unshare = child.id();
    let ours = poll("our binary under unshare", Duration::from_secs(5), || {
        children(unshare).first().map(|s| s.pid)
    });
    poll("CMD to start", Duration::from_secs(10), || {
        root.read("log").contains("started").then_some(())
    });
    assert_eq!(lease_holder(&api).as_deref(), Some("scratch-0"));
    // Our binary is PID 1 inside: CMD's parent, and the new parent of the orphan once its
    // own parent exits; when the orphan ends it must be reaped, not left a zombie.
    poll("the orphan to be adopted", Duration::from_secs(5), || {
        (children(ours).len() == 2).then_some(())
    });
    poll("the orphan to be reaped", Duration::from_secs(5), || {
        let kids = children(ours);
        (kids.len() == 1 && kids.iter().all(|k| k.state != 'Z')).then_some(())
    });
    send_signal(ours, "USR1");
    poll("USR1 to reach CMD", Duration::from_secs(5), || {
        root.read("log").contains("usr1").then_some(())
    });
    std::fs::write(root.out("stop"), "").expect("stop file");
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(42), "stderr:\n{}", root.read("stderr"));
    assert_eq!(
        lease_holder(&api).as_deref(),
        Some(""),
        "the lease is released"
    );
    assert!(stat(ours).is_none());
    let stderr = root.read("stderr");
    assert!(stderr.contains("became leader"), "{stderr}");
    assert!(stderr.contains("released the lease"), "{stderr}");
}

#[test]
fn static_binary_in_an_empty_root_reports_a_cmd_killed_by_sigsegv_as_139() {
    let Some(bin) = prerequisites() else { return };
    let api = ApiServer::start();
    api.add_token("segv-token", "system:serviceaccount:default:scratch");
    let root = ScratchRoot::new("segv", &bin, &api, "segv-token");
    let mut child = root
        .command(&api, "scratch-1", "kill -SEGV $$")
        .spawn()
        .expect("spawn unshare");
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(139), "stderr:\n{}", root.read("stderr"));
    assert_eq!(lease_holder(&api).as_deref(), Some(""));
}
