//! The static release binary in a `FROM scratch`-like root: nothing but our binary, the
//! user's CMD (a static busybox standing in for it), `/dev/null` and the service-account
//! files; no libc, no loader, no /etc. Run as PID 1 of a new PID namespace (`unshare --pid --fork`
//! then `chroot`) with that namespace's `/proc` mounted in the root, as every container runtime
//! does, it must win the election over TLS, start CMD, forward signals, reap orphans, pass
//! CMD's exit code through and release the Lease (which it may only do because `/proc` lets
//! it confirm that nothing CMD started is left).
//!
//! Needs root, `unshare`, `chroot`, the static binary (scripts/build-static.sh) and a static
//! busybox (`apt-get install busybox-static`; scripts/test.sh installs it when it can).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use test_apiserver::ApiServer;

use crate::cluster::{election_env, NS};
use crate::prereqs;
use crate::procs::{children, copy_executable, send_signal, stat, wait_timeout};
use crate::tempdir::TempDir;
use crate::wait::wait_for;

/// The static binary, when every prerequisite of the scratch-image test `test` is met: the
/// binary, a static busybox, PID namespaces as root (see [`prereqs::require`]).
fn prerequisites(test: &str) -> Option<PathBuf> {
    let bin = prereqs::static_binary();
    let missing: Vec<String> = [
        bin.as_ref().err().cloned(),
        prereqs::static_busybox().err(),
        prereqs::pid_namespace_support().err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let all = match bin {
        Ok(bin) if missing.is_empty() => Ok(bin),
        _ => Err(format!("missing: {}", missing.join("; "))),
    };
    prereqs::require(test, all)
}

/// A root directory holding only the binary, busybox (as `sh` and friends), `/dev/null` and
/// the service-account files, plus an `out` directory CMD writes to; and the API server the
/// binary in it talks to.
struct ScratchRoot {
    dir: TempDir,
    api: ApiServer,
}

impl ScratchRoot {
    /// A root with the static binary `bin`, and an API server that knows `token`, which the
    /// root's service-account files hold.
    fn new(tag: &str, bin: &Path, token: &str) -> ScratchRoot {
        let api = ApiServer::start();
        api.add_token(token, &format!("system:serviceaccount:{NS}:scratch"));
        let dir = TempDir::new(&format!("scratch-{tag}"));
        for sub in ["bin", "dev", "out", "proc", "sa"] {
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
        copy_executable(bin, &dir.join("k8s-await-election"));
        let busybox = prereqs::static_busybox().expect("a static busybox");
        copy_executable(busybox, &dir.join("bin/busybox"));
        for applet in ["sh", "sleep", "cat", "kill"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).expect("symlink");
        }
        api.write_service_account_dir(&dir.join("sa"), token, NS)
            .expect("service account");
        ScratchRoot { dir, api }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.join("out").join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out(name)).unwrap_or_default()
    }

    /// `unshare --pid --fork --mount-proc=ROOT/proc chroot ROOT /k8s-await-election sh -c
    /// SCRIPT` with election env (`--mount-proc` implies a new mount namespace).
    fn command(&self, identity: &str, script: &str) -> Command {
        let mut c = Command::new("unshare");
        let mount_proc = format!("--mount-proc={}", self.dir.join("proc").display());
        c.args(["--pid", "--fork", "--kill-child", &mount_proc, "chroot"])
            .arg(&self.dir)
            .args(["/k8s-await-election", "/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/bin:/usr/sbin:/usr/bin:/sbin");
        election_env(&mut c, self.api.port(), "/sa", "scratch", identity);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.out("stderr")).expect("stderr file"));
        c
    }

    /// The holder the Lease names ("" once released).
    fn lease_holder(&self) -> Option<String> {
        self.api
            .get_object("leases", NS, "scratch")?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .map(String::from)
    }
}

#[test]
fn static_binary_as_pid1_in_an_empty_root_leads_forwards_reaps_and_exits_with_cmds_code() {
    let test =
        "static_binary_as_pid1_in_an_empty_root_leads_forwards_reaps_and_exits_with_cmds_code";
    let Some(bin) = prerequisites(test) else {
        return;
    };
    let root = ScratchRoot::new("pid1", &bin, "scratch-token");
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
        .command("scratch-0", script)
        .spawn()
        .expect("spawn unshare");
    let unshare = child.id();
    let ours = wait_for("our binary under unshare", Duration::from_secs(5), || {
        children(unshare).first().map(|s| s.pid)
    });
    wait_for("CMD to start", Duration::from_secs(10), || {
        root.read("log").contains("started").then_some(())
    });
    assert_eq!(root.lease_holder().as_deref(), Some("scratch-0"));
    // Our binary is PID 1 inside: CMD's parent, and the new parent of the orphan once its
    // own parent exits; when the orphan ends it must be reaped, not left a zombie.
    wait_for("the orphan to be adopted", Duration::from_secs(5), || {
        (children(ours).len() == 2).then_some(())
    });
    wait_for("the orphan to be reaped", Duration::from_secs(5), || {
        let kids = children(ours);
        (kids.len() == 1 && kids.iter().all(|k| k.state != 'Z')).then_some(())
    });
    send_signal(ours, "USR1");
    wait_for("USR1 to reach CMD", Duration::from_secs(5), || {
        root.read("log").contains("usr1").then_some(())
    });
    std::fs::write(root.out("stop"), "").expect("stop file");
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(42), "stderr:\n{}", root.read("stderr"));
    assert_eq!(
        root.lease_holder().as_deref(),
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
    let test = "static_binary_in_an_empty_root_reports_a_cmd_killed_by_sigsegv_as_139";
    let Some(bin) = prerequisites(test) else {
        return;
    };
    let root = ScratchRoot::new("segv", &bin, "segv-token");
    let mut child = root
        .command("scratch-1", "kill -SEGV $$")
        .spawn()
        .expect("spawn unshare");
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(139), "stderr:\n{}", root.read("stderr"));
    assert_eq!(root.lease_holder().as_deref(), Some(""));
}
