//! Configuration: `config::from_env` with arbitrary values for every variable never panics,
//! and whatever it accepts obeys the rules the election's safety rests on (lease duration >
//! renew deadline > 1.2 x retry period, all positive; the grace period leaves CMD dead before
//! the lease can expire). The value parsers (`parse_duration`, `parse_ports`,
//! `parse_status_endpoint`) never panic on any text either.
#![no_main]

use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Duration;

use k8s_await_election::config::{self, parse_duration, parse_ports, parse_status_endpoint};
use libfuzzer_sys::fuzz_target;

/// Variables others read, as noise: a record's index byte picks from `config::VARIABLES`
/// followed by these (the committed corpus relies on that order).
const OTHERS: [&str; 2] = ["KUBERNETES_SERVICE_HOST", "RUST_LOG"];

/// The `index`-th variable of `config::VARIABLES` followed by [`OTHERS`], modulo their count.
fn variable(index: char) -> &'static str {
    let i = index as usize % (config::VARIABLES.len() + OTHERS.len());
    match config::VARIABLES.get(i) {
        Some(v) => v.name,
        None => OTHERS[i - config::VARIABLES.len()],
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The whole input as one value for each parser.
    let _ = parse_duration(&text);
    let _ = parse_ports(&text);
    let _ = parse_status_endpoint(&text);
    if let Some(d) = parse_duration(&text) {
        assert!(d.as_secs() <= 999_999_999 * 60, "{text:?} -> {d:?}");
    }

    // Otherwise: records `<index byte><value>` separated by 0x00; a valid base configuration
    // is filled in first, so the fuzzer's values reach the later checks.
    let mut env: HashMap<&str, String> = HashMap::from([
        (config::ENABLED, "1".to_string()),
        (config::LOCK_NAME, "lock".to_string()),
        (config::LOCK_NAMESPACE, "default".to_string()),
        (config::IDENTITY, "pod-0".to_string()),
    ]);
    for record in text.split('\0') {
        let mut chars = record.chars();
        let Some(index) = chars.next() else { continue };
        let var = variable(index);
        env.insert(var, chars.as_str().to_string());
    }
    let lookup = |k: &str| env.get(k).cloned();
    let cmd = vec![OsString::from("true")];
    let Ok(cfg) = config::from_env(cmd.clone(), &lookup) else {
        return;
    };
    assert_eq!(cfg.command, cmd);
    let Some(e) = cfg.election else { return };
    let t = e.timings;
    // The lower bounds (README "Timings").
    assert!(t.retry_period >= Duration::from_millis(100), "{t:?}");
    assert!(t.lease_duration >= Duration::from_secs(1), "{t:?}");
    assert!(
        e.kill_margin <= t.lease_duration - t.renew_deadline,
        "{t:?} {e:?}"
    );
    assert!(t.lease_duration > t.renew_deadline, "{t:?}");
    assert!(
        t.renew_deadline.as_secs_f64() > 1.2 * t.retry_period.as_secs_f64() * 0.999_999,
        "{t:?}"
    );
    assert!(
        e.grace_period <= t.max_grace(e.kill_margin),
        "grace {:?} > {:?}",
        e.grace_period,
        t.max_grace(e.kill_margin)
    );
    assert!(
        t.renew_deadline + e.grace_period < t.lease_duration,
        "{t:?} {e:?}"
    );
    assert!(!e.identity.is_empty() && !e.lock_name.is_empty());
    if let Some(s) = &e.service {
        assert!(!s.pod_ip.is_unspecified() && !s.pod_ip.is_multicast());
    }
});
