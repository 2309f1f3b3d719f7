//! Typed kubectl against the test API server while replicas of the binary elect a leader: the
//! server's discovery documents and Tables must be what kubectl expects from kube-apiserver,
//! so `kubectl get lease` (and `--watch`) shows the holder. Needs `kubectl` on PATH (or in
//! `KUBECTL`); .ci/run installs Debian's `kubernetes-client` when it is missing, and under CI
//! (`CI` set) a missing kubectl fails the test; elsewhere it is skipped with a message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, LOCK, NS};
use crate::wait::wait_for;

const TEST: &str = "kubectl::typed_kubectl_gets_and_watches_the_lease";

/// `KUBECTL`, or `kubectl` found on PATH.
fn find_kubectl() -> Result<PathBuf, String> {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return Ok(PathBuf::from(k));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "needs kubectl on PATH (apt-get install kubernetes-client; .ci/run does)".to_string()
        })
}

/// A kubeconfig for the cluster's API server with a token of its own.
fn kubeconfig(c: &Cluster) -> PathBuf {
    let token = "token-kubectl";
    c.api
        .add_token(token, &format!("system:serviceaccount:{NS}:kubectl"));
    let ca = c.dir.join("kubectl-ca.crt");
    std::fs::write(&ca, c.api.ca_pem()).expect("write ca");
    let path = c.dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: kubectl\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: kubectl, namespace: {NS}}}\ncurrent-context: test\n",
        c.api.url(),
        ca.display()
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

fn kubectl_cmd(kubectl: &Path, config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl);
    cmd.arg("--kubeconfig")
        .arg(config)
        .args(args)
        // No cache of discovery between runs (HOME may be shared).
        .env("KUBECACHEDIR", config.with_file_name("kube-cache"))
        .stdin(Stdio::null());
    cmd
}

fn run(kubectl: &Path, config: &Path, args: &[&str]) -> String {
    let out = kubectl_cmd(kubectl, config, args)
        .output()
        .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The (name, holder) of each table row kubectl printed (the header skipped).
fn rows(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .filter(|l| !l.starts_with("NAME"))
        .filter_map(|l| {
            let mut cells = l.split_whitespace();
            Some((cells.next()?.to_string(), cells.next()?.to_string()))
        })
        .collect()
}

#[test]
fn typed_kubectl_gets_and_watches_the_lease() {
    let kubectl = match find_kubectl() {
        Ok(k) => k,
        // Only CI must have it (.ci/run installs it); elsewhere it is optional.
        Err(reason) if std::env::var_os("CI").is_some() => panic!("{TEST}: {reason}"),
        Err(reason) => return eprintln!("SKIPPED {TEST}: {reason}"),
    };
    let c = Cluster::new("kubectl");
    let mut a = c.first_leader("a");
    let config = kubeconfig(&c);

    let table = run(&kubectl, &config, &["get", "lease"]);
    assert!(
        table
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .eq(["NAME", "HOLDER", "AGE"]),
        "{table}"
    );
    assert_eq!(rows(&table), [(LOCK.to_string(), "a".to_string())]);
    let holder = run(
        &kubectl,
        &config,
        &[
            "get",
            "lease",
            LOCK,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    assert_eq!(holder, "a");

    // Watch while a hands over to b: kubectl prints the new holder.
    let mut watch = kubectl_cmd(&kubectl, &config, &["get", "lease", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl --watch");
    let stdout = watch.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let next_row = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    if rows(&l).iter().any(|(n, h)| n == LOCK && h == want) {
                        return;
                    }
                    seen.push(l);
                }
                Err(_) => panic!("kubectl --watch never showed holder {want}: {seen:?}"),
            }
        }
    };
    next_row("a");
    let _b = c.replica("b", None, &[]);
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    wait_for("b to lead", Duration::from_secs(15), || {
        (c.starts() == ["a", "b"]).then_some(())
    });
    next_row("b");
    let _ = watch.kill();
    let _ = watch.wait();
    let by_kubectl: Vec<String> = c
        .api
        .requests()
        .into_iter()
        .filter(|r| r.token.as_deref() == Some("token-kubectl") && r.resource == "leases")
        .map(|r| r.verb)
        .collect();
    assert!(
        by_kubectl.iter().any(|v| v == "watch"),
        "kubectl watched the leases: {by_kubectl:?}"
    );
}
