//! One replica's term from the outside: CMD's exit code comes out and the Lease is released,
//! SIGTERM before leading ends the wait, and what gets logged (never the token; one line per
//! event by default).

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::wait::wait_for;

#[test]
fn cmd_exit_code_passes_through_and_the_lease_is_released() {
    let c = Cluster::new("exitcode");
    let mut r = c.replica(
        "solo",
        Some(vec!["sh".into(), "-c".into(), "exit 42".into()]),
        &[],
    );
    let status = r.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(42), "{}", r.log_text());
    let l = c.lease().expect("lease exists");
    assert_eq!(l["spec"]["holderIdentity"], "", "released: {l}");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 1);
    assert_eq!(l["spec"]["acquireTime"], l["spec"]["renewTime"]);
}

#[test]
fn sigterm_before_leading_exits_promptly_without_cmd() {
    let c = Cluster::new("termwait");
    let _leader = c.replica("leader", None, &[]);
    wait_for("leader to lead", Duration::from_secs(10), || {
        (c.starts() == ["leader"]).then_some(())
    });
    let mut f = c.replica("follower", None, &[]);
    f.wait_log("new leader: leader", Duration::from_secs(10));
    let t = Instant::now();
    f.signal("TERM");
    let status = f.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(143), "{}", f.log_text());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {} ms",
        t.elapsed().as_millis()
    );
    assert_eq!(c.starts(), ["leader"]);
    assert_eq!(c.holder().as_deref(), Some("leader"));
}

#[test]
fn the_token_never_reaches_the_log_even_at_trace_level() {
    let c = Cluster::new("trace");
    let mut r = c.replica(
        "tracer",
        Some(vec!["sh".into(), "-c".into(), "exit 0".into()]),
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(r.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = r.log_text();
    assert!(log.contains("TRACE"), "trace logging was on");
    assert!(!log.contains(&r.token), "token in the log");
    // Hex dumps split the token across rows; its hex form must not appear either.
    let hex: String = r
        .token
        .bytes()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let compact: String = log.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(!compact.contains(&hex), "token bytes in a hex dump");
    assert!(
        !log.contains("Bearer"),
        "an Authorization header in the log"
    );
}

#[test]
fn default_logging_is_info_one_line_per_event() {
    let c = Cluster::new("loglevel");
    let mut r = c.replica(
        "quiet",
        Some(vec!["sh".into(), "-c".into(), "sleep 2.5".into()]),
        &[("RUST_LOG", "")],
    );
    assert_eq!(r.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = r.log_text();
    assert!(
        log.contains(" INFO  k8s-await-election: became leader"),
        "{log}"
    );
    assert!(log.contains("released the lease"), "{log}");
    for line in log.lines() {
        assert!(
            line.contains(" INFO ") || line.contains(" WARN ") || line.contains(" ERROR "),
            "unexpected line at the default level: {line}\n{log}"
        );
    }
    // A few lines for a whole term, not one per request.
    assert!(log.lines().count() <= 8, "{log}");
}
