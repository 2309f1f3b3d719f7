//! The status endpoint: `status::parse_head` never panics on any bytes (partial or garbage
//! request heads), and whatever it accepts gets a well-formed answer, whatever the election
//! status holds (identities, holders and names are arbitrary strings from the environment
//! and the Lease). `/status` is valid JSON; every `/metrics` line is a comment or one sample.
#![no_main]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_await_election::leadership::Status;
use k8s_await_election::status::{metrics_text, parse_head, respond, status_json, Parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes steer the status; the rest is the request.
    let (ctl, rest) = data.split_at(data.len().min(4));
    let mut ctl = ctl.to_vec();
    ctl.resize(4, 0);
    let split = rest.len().min(usize::from(ctl[0]));
    let (strings, request) = rest.split_at(split);
    let text = String::from_utf8_lossy(strings);
    let mut parts = text.split('\u{1}');
    let now = Instant::now();
    let status = Status {
        name: parts.next().unwrap_or_default().to_string(),
        identity: parts.next().unwrap_or_default().to_string(),
        lock: parts.next().unwrap_or_default().to_string(),
        holder: parts.next().map(String::from),
        leading: ctl[1] & 1 == 1,
        last_renew: (ctl[1] & 2 == 2)
            .then(|| now.checked_sub(Duration::from_secs(u64::from(ctl[2]))))
            .flatten(),
        last_renew_wall: (ctl[1] & 4 == 4)
            .then(|| UNIX_EPOCH + Duration::from_secs(u64::from(ctl[3]) << 26)),
        expires_wall: (ctl[1] & 8 == 8).then(SystemTime::now),
        renewals: u64::from(ctl[2]),
        renew_failures: u64::from(ctl[3]),
        transitions: u64::MAX,
        ..Status::default()
    };

    for expired in [false, true] {
        let doc = status_json(&status, expired);
        let v: serde_json::Value = serde_json::from_str(&doc).expect("/status is JSON");
        assert_eq!(v["identity"], status.identity.as_str());
    }
    let metrics = metrics_text(&status);
    for line in metrics.lines() {
        assert!(
            line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line
                    .rsplit_once("} ")
                    .is_some_and(|(_, value)| value.parse::<f64>().is_ok()),
            "not one sample per line: {line:?}"
        );
    }

    match parse_head(request) {
        Parse::Done(req) => {
            assert!(req.path.starts_with('/') || req.path == "*", "{req:?}");
            let resp = respond(&req, &status, now, Duration::from_secs(15));
            for head_only in [false, true] {
                let bytes = resp.to_bytes(head_only);
                assert!(bytes.starts_with(b"HTTP/1.1 "));
            }
        }
        Parse::Bad(code) => assert!((400..=599).contains(&code)),
        Parse::Incomplete => {}
    }
});
