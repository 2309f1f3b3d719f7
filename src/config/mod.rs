//! The environment → [`Config`], validated before anything else happens.
//!
//! Owns every `K8S_AWAIT_ELECTION_*` variable: names, defaults, parsing and the rules that
//! relate them. It reads nothing but the environment it is handed (a lookup function, so tests
//! need no process environment) and performs no other I/O. A bad value becomes a
//! [`ConfigError`] naming the variable and the value; `app` turns it into one log line and the
//! configuration exit code before any API request or fork.
//!
//! Submodules: `vars` (the variable names and [`VARIABLES`]), `error` ([`ConfigError`]),
//! `encoding` (values that are not UTF-8, [`check_utf8`]),
//! `timings` (the three client-go timings, durations and the rules between them), `service`
//! (Service routing settings and the port list), `status_endpoint` (`[IP]:PORT`), `names`
//! (Kubernetes name rules).

use std::time::Duration;

mod encoding;
mod error;
mod names;
mod service;
mod status_endpoint;
mod timings;
mod vars;

pub use encoding::check_utf8;
pub use error::{quoted, ConfigError};
pub use service::{parse_ports, EndpointPort, Service, ServiceMode};
pub use status_endpoint::{parse_status_endpoint, StatusEndpoint};
pub use timings::{
    parse_duration, show, Timings, DEFAULT_KILL_MARGIN, DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD, MIN_LEASE_DURATION, MIN_RETRY_PERIOD,
};
pub use vars::{
    Variable, ENABLED, EVENTS, GRACE_PERIOD, IDENTITY, KILL_MARGIN, LEASE_DURATION, LOCK_NAME,
    LOCK_NAMESPACE, LOG_FORMAT, NAME, NODE_NAME, POD_IP, RENEW_DEADLINE, RETRY_PERIOD,
    SERVICE_MODE, SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_PORTS_JSON, SIGNAL_TARGET,
    STATUS_ENDPOINT, VARIABLES,
};

use error::bad;
use names::{check_dns1123_label, check_dns1123_subdomain};
use service::service_from_env;
use timings::{check_kill_margin, check_timings, duration_var};

/// Everything the process needs to know, decided before it does anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// CMD and its arguments (never empty).
    pub command: Vec<std::ffi::OsString>,
    /// `None`: election disabled, exec CMD directly.
    pub election: Option<Election>,
}

/// Settings for election mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Election {
    /// Name of the election, used in logs and metric labels (defaults to the lock name).
    pub name: String,
    /// Name of the Lease (a DNS-1123 subdomain).
    pub lock_name: String,
    /// Namespace of the Lease (a DNS-1123 label).
    pub lock_namespace: String,
    /// This replica's unique identity, written as the Lease's holder.
    pub identity: String,
    /// Where the status endpoint listens; `None`: no status endpoint.
    pub status_endpoint: Option<StatusEndpoint>,
    /// Service routing; `None`: no Service is pointed at the leader.
    pub service: Option<Service>,
    /// Lease duration, renew deadline and retry period.
    pub timings: Timings,
    /// Time CMD gets between SIGTERM and SIGKILL when we lose leadership.
    pub grace_period: Duration,
    /// Time kept between the SIGKILL of a stepping-down CMD and the lease's expiry
    /// (`K8S_AWAIT_ELECTION_KILL_MARGIN`): the kernel needs it to finish a large process.
    pub kill_margin: Duration,
    /// Where forwarded signals go.
    pub signal_target: SignalTarget,
    /// Post Kubernetes Events on leadership changes (`K8S_AWAIT_ELECTION_EVENTS`).
    pub events: bool,
}

/// The format of log lines (`K8S_AWAIT_ELECTION_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `<time> <LEVEL> k8s-await-election: <message>` (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The log format `value` names (`None`: unset or empty, the default); `Err` for any other
/// value. Read before the rest of the configuration, so even its errors use the format.
pub fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value {
        None | Some("" | "text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(v) => Err(bad(LOG_FORMAT, v, "expected \"text\" or \"json\"")),
    }
}

/// Where CMD's forwarded signals go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalTarget {
    /// CMD's process only (tini's default).
    Child,
    /// CMD's whole process group; CMD is started in a group of its own (dumb-init's default).
    Group,
}

/// Reads the configuration. `env` looks a variable up (`std::env::var` in the binary); empty
/// values count as unset, as they do for the Go tool.
pub fn from_env(
    command: Vec<std::ffi::OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    if get(ENABLED).is_none() {
        return Ok(Config {
            command,
            election: None,
        });
    }
    let required = |k: &'static str, what: &str| {
        get(k).ok_or_else(|| ConfigError {
            variable: k,
            value: None,
            problem: format!("it is required when {ENABLED} is set ({what})"),
        })
    };

    let lock_name = required(LOCK_NAME, "the name of the Lease")?;
    check_dns1123_subdomain(LOCK_NAME, &lock_name)?;
    let lock_namespace = required(LOCK_NAMESPACE, "the namespace of the Lease")?;
    check_dns1123_label(LOCK_NAMESPACE, &lock_namespace)?;
    let identity = required(IDENTITY, "this replica's unique name, usually the pod name")?;
    if identity.len() > 1024 || identity.chars().any(char::is_control) {
        return Err(bad(
            IDENTITY,
            &identity,
            "expected at most 1024 printable characters",
        ));
    }
    let name = get(NAME).unwrap_or_else(|| lock_name.clone());

    let timings = Timings {
        lease_duration: duration_var(
            LEASE_DURATION,
            get(LEASE_DURATION),
            DEFAULT_LEASE_DURATION,
            MIN_LEASE_DURATION,
        )?,
        renew_deadline: duration_var(
            RENEW_DEADLINE,
            get(RENEW_DEADLINE),
            DEFAULT_RENEW_DEADLINE,
            Duration::ZERO,
        )?,
        retry_period: duration_var(
            RETRY_PERIOD,
            get(RETRY_PERIOD),
            DEFAULT_RETRY_PERIOD,
            MIN_RETRY_PERIOD,
        )?,
    };
    check_timings(&timings, &get)?;
    let kill_margin = duration_var(
        KILL_MARGIN,
        get(KILL_MARGIN),
        DEFAULT_KILL_MARGIN,
        Duration::ZERO,
    )?;
    check_kill_margin(&timings, kill_margin, &get)?;

    let grace_period = match get(GRACE_PERIOD) {
        None => timings.max_grace(kill_margin),
        Some(v) => {
            let grace = parse_duration(&v).ok_or_else(|| {
                bad(
                    GRACE_PERIOD,
                    &v,
                    "expected whole seconds (\"3\") or a duration like \"500ms\" or \"3s\"",
                )
            })?;
            if grace > timings.max_grace(kill_margin) {
                return Err(bad(
                    GRACE_PERIOD,
                    &v,
                    format!(
                        "it must be at most {} (lease duration - renew deadline - {} kill margin), so CMD is gone before the lease can expire",
                        show(timings.max_grace(kill_margin)),
                        show(kill_margin)
                    ),
                ));
            }
            grace
        }
    };

    let signal_target = match get(SIGNAL_TARGET).as_deref() {
        None | Some("child") => SignalTarget::Child,
        Some("group") => SignalTarget::Group,
        Some(v) => return Err(bad(SIGNAL_TARGET, v, "expected \"child\" or \"group\"")),
    };

    let status_endpoint = match get(STATUS_ENDPOINT) {
        None => None,
        Some(v) => Some(parse_status_endpoint(&v).ok_or_else(|| {
            bad(
                STATUS_ENDPOINT,
                &v,
                "expected [IP]:PORT such as \":9999\", \"0.0.0.0:9999\", \"[::]:9999\" or \"127.0.0.1:9999\" (port 1-65535)",
            )
        })?),
    };

    let service = service_from_env(&get, &lock_namespace)?;
    log_format(get(LOG_FORMAT).as_deref())?;
    let events = match get(EVENTS).as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(v) => return Err(bad(EVENTS, v, "expected \"on\" or \"off\"")),
    };

    Ok(Config {
        command,
        election: Some(Election {
            name,
            lock_name,
            lock_namespace,
            identity,
            status_endpoint,
            service,
            timings,
            grace_period,
            kill_margin,
            signal_target,
            events,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(vec!["true".into()], &|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 4] = [
        (ENABLED, "1"),
        (LOCK_NAME, "my-lock"),
        (LOCK_NAMESPACE, "default"),
        (IDENTITY, "pod-0"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut v: Vec<(&str, &str)> = BASE.to_vec();
        v.extend_from_slice(extra);
        cfg(&v)
    }

    #[test]
    fn disabled_when_unset_or_empty() {
        assert_eq!(cfg(&[]).map(|c| c.election), Ok(None));
        assert_eq!(cfg(&[(ENABLED, "")]).map(|c| c.election), Ok(None));
    }

    #[test]
    fn defaults() {
        let c = with(&[]).expect("valid").election.expect("enabled");
        assert_eq!(c.name, "my-lock");
        assert_eq!(c.timings, Timings::default());
        assert_eq!(c.kill_margin, Duration::from_secs(2));
        assert_eq!(c.grace_period, Duration::from_secs(3));
        assert_eq!(c.signal_target, SignalTarget::Child);
        assert_eq!(c.service, None);
        assert!(c.events);
    }

    #[test]
    fn events_and_log_format() {
        let off = with(&[(EVENTS, "off"), (LOG_FORMAT, "json")]).expect("valid");
        assert!(!off.election.expect("enabled").events);
        assert_eq!(log_format(Some("json")), Ok(LogFormat::Json));
        assert_eq!(log_format(None), Ok(LogFormat::Text));
        assert_eq!(with(&[(EVENTS, "no")]).unwrap_err().variable, EVENTS);
        assert_eq!(
            with(&[(LOG_FORMAT, "yaml")]).unwrap_err().variable,
            LOG_FORMAT
        );
    }

    #[test]
    fn timing_lower_bounds_are_accepted_and_named_when_undercut() {
        let c = with(&[
            (LEASE_DURATION, "1s"),
            (RENEW_DEADLINE, "500ms"),
            (RETRY_PERIOD, "100ms"),
            (KILL_MARGIN, "100ms"),
        ])
        .expect("the bounds themselves are valid")
        .election
        .expect("enabled");
        assert_eq!(c.timings.retry_period, MIN_RETRY_PERIOD);
        assert_eq!(c.timings.lease_duration, MIN_LEASE_DURATION);
        let e = with(&[(RETRY_PERIOD, "1ms")]).expect_err("too short");
        assert!(e.to_string().contains("at least 100ms"), "{e}");
        let e =
            with(&[(LEASE_DURATION, "999ms"), (RENEW_DEADLINE, "500ms")]).expect_err("too short");
        assert!(e.to_string().contains("at least 1s"), "{e}");
    }

    #[test]
    fn go_style_seconds_and_units() {
        let c = with(&[
            (LEASE_DURATION, "4"),
            (RENEW_DEADLINE, "3"),
            (RETRY_PERIOD, "1"),
            (KILL_MARGIN, "250ms"),
        ])
        .expect("valid")
        .election
        .expect("enabled");
        assert_eq!(c.timings.lease_duration, Duration::from_secs(4));
        assert_eq!(c.grace_period, Duration::from_millis(750));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        for b in ["", "s", "-1", "1.5", "1h", "15 s", "99999999999"] {
            assert_eq!(parse_duration(b), None, "{b}");
        }
    }

    #[test]
    fn service_settings() {
        let c = with(&[
            (SERVICE_NAME, "web"),
            (POD_IP, "fd00::5"),
            (NODE_NAME, "node-1.example"),
            (
                SERVICE_PORTS_JSON,
                r#"[{"name":"http","port":8080,"protocol":"TCP","appProtocol":"http"}]"#,
            ),
        ])
        .expect("valid")
        .election
        .expect("enabled");
        let s = c.service.expect("service");
        assert_eq!(s.namespace, "default");
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.mode, ServiceMode::Auto);
    }

    #[test]
    fn every_bad_value_names_variable_and_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(LEASE_DURATION, "abc")], LEASE_DURATION),
            (&[(LEASE_DURATION, "0")], LEASE_DURATION),
            (&[(RETRY_PERIOD, "-2")], RETRY_PERIOD),
            // Lower bounds: ~870 requests a second with a 1 ms retry period.
            (
                &[(RENEW_DEADLINE, "1000ms"), (RETRY_PERIOD, "1ms")],
                RETRY_PERIOD,
            ),
            (&[(RETRY_PERIOD, "99ms")], RETRY_PERIOD),
            (
                &[
                    (LEASE_DURATION, "900ms"),
                    (RENEW_DEADLINE, "500ms"),
                    (RETRY_PERIOD, "100ms"),
                ],
                LEASE_DURATION,
            ),
            (&[(LEASE_DURATION, "10")], LEASE_DURATION),
            (&[(RENEW_DEADLINE, "2")], RENEW_DEADLINE),
            (&[(GRACE_PERIOD, "10")], GRACE_PERIOD),
            (&[(GRACE_PERIOD, "3500ms")], GRACE_PERIOD),
            (&[(KILL_MARGIN, "0")], KILL_MARGIN),
            (&[(KILL_MARGIN, "6s")], KILL_MARGIN),
            // Short timings leave less than the default kill margin.
            (
                &[
                    (LEASE_DURATION, "4"),
                    (RENEW_DEADLINE, "3"),
                    (RETRY_PERIOD, "1"),
                ],
                KILL_MARGIN,
            ),
            (&[(SIGNAL_TARGET, "all")], SIGNAL_TARGET),
            (&[(STATUS_ENDPOINT, "9999")], STATUS_ENDPOINT),
            (&[(LOCK_NAME, "My_Lock")], LOCK_NAME),
            (&[(LOCK_NAMESPACE, "a.b")], LOCK_NAMESPACE),
            (
                &[(SERVICE_NAME, "1web"), (POD_IP, "10.0.0.1")],
                SERVICE_NAME,
            ),
            (&[(SERVICE_NAME, "web")], POD_IP),
            (&[(SERVICE_NAME, "web"), (POD_IP, "10.0.0.300")], POD_IP),
            (&[(SERVICE_NAME, "web"), (POD_IP, "127.0.0.1")], POD_IP),
            (&[(SERVICE_NAME, "web"), (POD_IP, "::1")], POD_IP),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, "{"),
                ],
                SERVICE_PORTS_JSON,
            ),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, r#"[{"port":0}]"#),
                ],
                SERVICE_PORTS_JSON,
            ),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, r#"[{"port":80,"protocol":"tcp"}]"#),
                ],
                SERVICE_PORTS_JSON,
            ),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, r#"[{"port":80,"name":"HTTP"}]"#),
                ],
                SERVICE_PORTS_JSON,
            ),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, r#"[{"port":80},{"port":81}]"#),
                ],
                SERVICE_PORTS_JSON,
            ),
            (
                &[
                    (SERVICE_NAME, "web"),
                    (POD_IP, "10.0.0.1"),
                    (SERVICE_PORTS_JSON, r#"[{"Port":80}]"#),
                ],
                SERVICE_PORTS_JSON,
            ),
            (&[(SERVICE_NAMESPACE, "x")], SERVICE_NAMESPACE),
        ];
        for (extra, var) in cases {
            let mut v: Vec<(&str, &str)> = BASE.to_vec();
            v.extend_from_slice(extra);
            let err = cfg(&v).expect_err(var);
            assert_eq!(err.variable, *var, "{extra:?}");
            let line = err.to_string();
            assert!(line.contains(var), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        for missing in [LOCK_NAME, LOCK_NAMESPACE, IDENTITY] {
            let v: Vec<(&str, &str)> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = cfg(&v).expect_err(missing);
            assert_eq!(err.variable, missing);
            assert!(err.to_string().contains("is not set"));
        }
    }

    #[test]
    fn reads_exactly_the_listed_variables() {
        // Every variable set (valid values), so every branch that reads one is taken.
        let values: HashMap<&str, &str> = HashMap::from([
            (ENABLED, "1"),
            (NAME, "election"),
            (LOCK_NAME, "my-lock"),
            (LOCK_NAMESPACE, "default"),
            (IDENTITY, "pod-0"),
            (STATUS_ENDPOINT, ":9999"),
            (SERVICE_NAME, "web"),
            (SERVICE_NAMESPACE, "default"),
            (SERVICE_PORTS_JSON, r#"[{"port":8080}]"#),
            (SERVICE_MODE, "auto"),
            (POD_IP, "10.0.0.5"),
            (NODE_NAME, "node-1"),
            (LEASE_DURATION, "15"),
            (RENEW_DEADLINE, "10"),
            (RETRY_PERIOD, "2"),
            (GRACE_PERIOD, "3"),
            (SIGNAL_TARGET, "group"),
        ]);
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        from_env(vec!["true".into()], &|k| {
            read.borrow_mut().insert(k.to_string());
            values.get(k).map(|v| v.to_string())
        })
        .expect("valid");
        let listed: std::collections::BTreeSet<String> =
            VARIABLES.iter().map(|v| v.name.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
    }
}
