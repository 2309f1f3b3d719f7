//! The views of the election: routing a parsed [`Request`] to its [`Response`], the
//! `/status` JSON document, the `/metrics` Prometheus text and the Go tool's health check.
//!
//! Pure functions of an election [`Status`] and the time; no sockets.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{Request, Response, JSON};
use super::Status;
use crate::timefmt;

/// client-go's `HealthzAdaptor` tolerance (`Check(2 * time.Second)` in the Go tool).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(2);
/// The Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the health check fails, as client-go's `HealthzAdaptor.Check(2s)`: only while
/// leading with the last renewal more than lease duration + 2 s ago. A leader without a recorded renewal counts as healthy.
pub fn is_expired(status: &Status, now: Instant, lease_duration: Duration) -> bool {
    status.leading
        && status
            .last_renew
            .is_some_and(|at| now.saturating_duration_since(at) > lease_duration + EXPIRY_TOLERANCE)
}

/// The answer to `req` given the election `status` at `now`.
pub fn respond(req: &Request, status: &Status, now: Instant, lease_duration: Duration) -> Response {
    let expired = is_expired(status, now, lease_duration);
    let own = match req.path.as_str() {
        "/status" => Some(Route::Status),
        "/metrics" => Some(Route::Metrics),
        _ => None,
    };
    let Some(route) = own else {
        // The Go tool's answer, for every other path and method.
        let (code, body) = if expired {
            (500, "{\"status\": \"expired\"}")
        } else {
            (200, "{\"status\": \"ok\"}")
        };
        return Response {
            code,
            content_type: JSON,
            body: body.to_string(),
            headers: Vec::new(),
        };
    };
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(405, "method not allowed\n");
        r.headers.push("Allow: GET, HEAD".to_string());
        return r;
    }
    match route {
        Route::Status => Response {
            code: 200,
            content_type: JSON,
            body: status_json(status, expired),
            headers: Vec::new(),
        },
        Route::Metrics => Response {
            code: 200,
            content_type: METRICS_CONTENT_TYPE,
            body: metrics_text(status),
            headers: Vec::new(),
        },
    }
}

enum Route {
    Status,
    Metrics,
}

/// The `/status` document.
pub fn status_json(status: &Status, expired: bool) -> String {
    let time = |t: Option<SystemTime>| t.map(timefmt::micro_time);
    let doc = serde_json::json!({
        "status": if expired { "expired" } else { "ok" },
        "name": status.name,
        "identity": status.identity,
        "lock": status.lock,
        "holder": status.holder,
        "leading": status.leading,
        "lastRenewTime": time(status.last_renew_wall),
        "leaseExpiryTime": time(status.expires_wall),
        "renewals": status.renewals,
        "renewFailures": status.renew_failures,
        "transitions": status.transitions,
        "slowpath": status.slowpath,
    });
    let mut text = doc.to_string();
    text.push('\n');
    text
}

/// The `/metrics` document (Prometheus text format 0.0.4).
pub fn metrics_text(status: &Status) -> String {
    let label = format!("{{name=\"{}\"}}", escape_label(&status.name));
    let mut out = String::with_capacity(1536);
    let mut metric = |name: &str, kind: &str, help: &str, value: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{label} {value}");
    };
    metric(
        "leader_election_master_status",
        "gauge",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
        if status.leading { "1" } else { "0" },
    );
    metric(
        "leader_election_slowpath_total",
        "counter",
        "Total number of slow path exercised in renewing leader leases. 'name' is the string used to identify the lease. Please make sure to group by name.",
        &status.slowpath.to_string(),
    );
    metric(
        "k8s_await_election_renewals_total",
        "counter",
        "Successful acquisitions and renewals of the lease by this replica.",
        &status.renewals.to_string(),
    );
    metric(
        "k8s_await_election_renewal_failures_total",
        "counter",
        "Failed attempts to renew the lease while leading.",
        &status.renew_failures.to_string(),
    );
    metric(
        "k8s_await_election_transitions_total",
        "counter",
        "Times this replica became the leader.",
        &status.transitions.to_string(),
    );
    if let Some(secs) = status
        .last_renew_wall
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    {
        metric(
            "k8s_await_election_last_renew_timestamp_seconds",
            "gauge",
            "Wall-clock time of this replica's last successful acquisition or renewal of the lease.",
            &format!("{:.3}", secs.as_secs_f64()),
        );
    }
    out
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{leader, req};
    use super::*;

    #[test]
    fn expiry_follows_client_go_check() {
        let lease = Duration::from_secs(15);
        let t0 = Instant::now();
        let s = leader(t0);
        assert!(!is_expired(&s, t0, lease));
        assert!(
            !is_expired(&s, t0 + Duration::from_secs(17), lease),
            "exactly +2s is still ok"
        );
        assert!(is_expired(&s, t0 + Duration::from_millis(17_001), lease));
        let follower = Status {
            leading: false,
            ..leader(t0)
        };
        assert!(!is_expired(
            &follower,
            t0 + Duration::from_secs(3600),
            lease
        ));
        let fresh = Status {
            last_renew: None,
            ..leader(t0)
        };
        assert!(!is_expired(&fresh, t0 + Duration::from_secs(3600), lease));
    }

    #[test]
    fn compatible_answers_on_every_other_path_and_method() {
        let lease = Duration::from_secs(4);
        let t0 = Instant::now();
        let s = leader(t0);
        for (m, p) in [
            ("GET", "/"),
            ("POST", "/healthz"),
            ("DELETE", "/x/y"),
            ("PUT", "*"),
        ] {
            let r = respond(&req(m, p), &s, t0, lease);
            assert_eq!(
                (r.code, r.body.as_str()),
                (200, "{\"status\": \"ok\"}"),
                "{m} {p}"
            );
            let r = respond(&req(m, p), &s, t0 + Duration::from_secs(7), lease);
            assert_eq!(
                (r.code, r.body.as_str()),
                (500, "{\"status\": \"expired\"}"),
                "{m} {p}"
            );
        }
        let r = respond(&req("POST", "/metrics"), &s, t0, lease);
        assert_eq!(r.code, 405);
        assert!(r.headers.contains(&"Allow: GET, HEAD".to_string()));
    }

    #[test]
    fn status_document() {
        let t0 = Instant::now();
        let r = respond(
            &req("GET", "/status"),
            &leader(t0),
            t0,
            Duration::from_secs(4),
        );
        assert_eq!(r.code, 200);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["name"], "my-election");
        assert_eq!(v["identity"], "pod-0");
        assert_eq!(v["lock"], "ns/my-lock");
        assert_eq!(v["holder"], "pod-0");
        assert_eq!(v["leading"], true);
        assert_eq!(v["lastRenewTime"], "2026-11-25T08:15:30.123456Z");
        assert_eq!(v["leaseExpiryTime"], "2026-11-25T08:15:34.000000Z");
        assert_eq!(v["renewals"], 7);
        assert_eq!(v["renewFailures"], 2);
        assert_eq!(v["transitions"], 1);
        assert_eq!(v["slowpath"], 3);
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&Status::default(), false)).expect("json");
        assert_eq!(v["holder"], serde_json::Value::Null);
        assert_eq!(v["lastRenewTime"], serde_json::Value::Null);
    }

    #[test]
    fn metrics_text_format() {
        let t0 = Instant::now();
        let text = metrics_text(&leader(t0));
        for line in [
            "# TYPE leader_election_master_status gauge",
            "leader_election_master_status{name=\"my-election\"} 1",
            "# TYPE leader_election_slowpath_total counter",
            "leader_election_slowpath_total{name=\"my-election\"} 3",
            "# TYPE k8s_await_election_renewals_total counter",
            "k8s_await_election_renewals_total{name=\"my-election\"} 7",
            "k8s_await_election_renewal_failures_total{name=\"my-election\"} 2",
            "k8s_await_election_transitions_total{name=\"my-election\"} 1",
            "k8s_await_election_last_renew_timestamp_seconds{name=\"my-election\"} 1795594530.123",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample has HELP and TYPE lines right before it, and the text ends in a newline.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.starts_with('#') {
                assert!(lines[i - 1].starts_with("# TYPE "), "{l}");
                assert!(lines[i - 2].starts_with("# HELP "), "{l}");
            }
        }
        assert!(text.ends_with('\n'));
        let follower = Status {
            name: "a\"b\\c\nd".into(),
            ..Status::default()
        };
        let text = metrics_text(&follower);
        assert!(
            text.contains("leader_election_master_status{name=\"a\\\"b\\\\c\\nd\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("last_renew_timestamp"));
    }
}
