//! The environment → [`Config`], validated before anything else happens.
//!
//! Owns every `K8S_AWAIT_ELECTION_*` variable: names, defaults, parsing and the rules that
//! relate them. It reads nothing but the environment it is handed (a lookup function, so tests
//! need no process environment) and performs no other I/O. A bad value becomes a
//! [`ConfigError`] naming the variable and the value; `app` turns it into one log line and the
//! configuration exit code before any API request or fork.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const ENABLED: &str = "K8S_AWAIT_ELECTION_ENABLED";
pub const NAME: &str = "K8S_AWAIT_ELECTION_NAME";
pub const LOCK_NAME: &str = "K8S_AWAIT_ELECTION_LOCK_NAME";
pub const LOCK_NAMESPACE: &str = "K8S_AWAIT_ELECTION_LOCK_NAMESPACE";
pub const IDENTITY: &str = "K8S_AWAIT_ELECTION_IDENTITY";
pub const STATUS_ENDPOINT: &str = "K8S_AWAIT_ELECTION_STATUS_ENDPOINT";
pub const SERVICE_NAME: &str = "K8S_AWAIT_ELECTION_SERVICE_NAME";
pub const SERVICE_NAMESPACE: &str = "K8S_AWAIT_ELECTION_SERVICE_NAMESPACE";
pub const SERVICE_PORTS_JSON: &str = "K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON";
pub const SERVICE_MODE: &str = "K8S_AWAIT_ELECTION_SERVICE_MODE";
pub const POD_IP: &str = "K8S_AWAIT_ELECTION_POD_IP";
pub const NODE_NAME: &str = "K8S_AWAIT_ELECTION_NODE_NAME";
pub const LEASE_DURATION: &str = "K8S_AWAIT_ELECTION_LEASE_DURATION";
pub const RENEW_DEADLINE: &str = "K8S_AWAIT_ELECTION_RENEW_DEADLINE";
pub const RETRY_PERIOD: &str = "K8S_AWAIT_ELECTION_RETRY_PERIOD";
pub const GRACE_PERIOD: &str = "K8S_AWAIT_ELECTION_GRACE_PERIOD";
pub const SIGNAL_TARGET: &str = "K8S_AWAIT_ELECTION_SIGNAL_TARGET";

/// client-go's defaults, which the Go tool also uses.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Time reserved after the SIGKILL for the kernel to deliver it and for us to reap CMD, so CMD
/// is gone before the lease could expire in anybody else's eyes (see [`Timings::max_grace`]).
pub const MAX_KILL_MARGIN: Duration = Duration::from_millis(500);

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
    pub lock_name: String,
    pub lock_namespace: String,
    pub identity: String,
    pub status_endpoint: Option<StatusEndpoint>,
    pub service: Option<Service>,
    pub timings: Timings,
    /// Time CMD gets between SIGTERM and SIGKILL when we lose leadership.
    pub grace_period: Duration,
    pub signal_target: SignalTarget,
}

/// The three client-go timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }
}

impl Timings {
    /// The margin kept between the SIGKILL and the moment the lease could expire for others:
    /// a quarter of `lease_duration - renew_deadline`, at most [`MAX_KILL_MARGIN`].
    pub fn kill_margin(&self) -> Duration {
        (self.step_down_window() / 4).min(MAX_KILL_MARGIN)
    }

    /// Time between the step-down decision and the lease's expiry in others' eyes.
    pub fn step_down_window(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_deadline)
    }

    /// The longest grace period that still has CMD dead and reaped before the lease expires:
    /// `lease_duration - renew_deadline - kill_margin`.
    pub fn max_grace(&self) -> Duration {
        self.step_down_window().saturating_sub(self.kill_margin())
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

/// `K8S_AWAIT_ELECTION_STATUS_ENDPOINT`: an optional IP and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEndpoint {
    /// `None` for `:PORT`: every address, IPv6 and IPv4, like Go's `net.Listen`.
    pub ip: Option<IpAddr>,
    pub port: u16,
}

/// Which objects point the Service at the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMode {
    /// An EndpointSlice if RBAC allows it, else a v1 Endpoints object (see README).
    Auto,
    /// Only the v1 Endpoints object, as the Go tool up to v0.4 did.
    Endpoints,
    /// Only an EndpointSlice managed by us.
    EndpointSlice,
}

/// Service routing settings (`K8S_AWAIT_ELECTION_SERVICE_*`, `_POD_IP`, `_NODE_NAME`).
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    pub ports: Vec<EndpointPort>,
    pub pod_ip: IpAddr,
    pub node_name: Option<String>,
    pub mode: ServiceMode,
}

/// One `EndpointPort`, as in `K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// A configuration problem: the variable, the offending value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    /// The value as given (`None` when the variable is missing).
    pub value: Option<String>,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None => write!(f, "{} is not set: {}", self.variable, self.problem),
            Some(v) => write!(f, "{}={:?} is invalid: {}", self.variable, v, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

fn bad(variable: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: Some(value.to_string()),
        problem: problem.into(),
    }
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
        lease_duration: duration_var(LEASE_DURATION, get(LEASE_DURATION), DEFAULT_LEASE_DURATION)?,
        renew_deadline: duration_var(RENEW_DEADLINE, get(RENEW_DEADLINE), DEFAULT_RENEW_DEADLINE)?,
        retry_period: duration_var(RETRY_PERIOD, get(RETRY_PERIOD), DEFAULT_RETRY_PERIOD)?,
    };
    check_timings(&timings, &get)?;

    let grace_period = match get(GRACE_PERIOD) {
        None => timings.max_grace(),
        Some(v) => {
            let grace = parse_duration(&v).ok_or_else(|| {
                bad(
                    GRACE_PERIOD,
                    &v,
                    "expected whole seconds (\"3\") or a duration like \"500ms\" or \"3s\"",
                )
            })?;
            if grace > timings.max_grace() {
                return Err(bad(
                    GRACE_PERIOD,
                    &v,
                    format!(
                        "it must be at most {} (lease duration - renew deadline - {} kill margin), so CMD is gone before the lease can expire",
                        show(timings.max_grace()),
                        show(timings.kill_margin())
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
            signal_target,
        }),
    })
}

fn service_from_env(
    get: &dyn Fn(&str) -> Option<String>,
    lock_namespace: &str,
) -> Result<Option<Service>, ConfigError> {
    let Some(name) = get(SERVICE_NAME) else {
        for k in [SERVICE_NAMESPACE, SERVICE_PORTS_JSON, SERVICE_MODE] {
            if let Some(v) = get(k) {
                return Err(bad(k, &v, format!("it needs {SERVICE_NAME} to be set too")));
            }
        }
        return Ok(None);
    };
    check_dns1035_label(SERVICE_NAME, &name)?;
    let namespace = get(SERVICE_NAMESPACE).unwrap_or_else(|| lock_namespace.to_string());
    check_dns1123_label(SERVICE_NAMESPACE, &namespace)?;
    let pod_ip_text = get(POD_IP).ok_or_else(|| ConfigError {
        variable: POD_IP,
        value: None,
        problem: format!(
            "it is required when {SERVICE_NAME} is set (use the downward API: fieldRef status.podIP)"
        ),
    })?;
    let pod_ip: IpAddr = pod_ip_text
        .parse()
        .map_err(|_| bad(POD_IP, &pod_ip_text, "expected an IPv4 or IPv6 address"))?;
    if pod_ip.is_unspecified() || pod_ip.is_multicast() || pod_ip.is_loopback() {
        // The API server rejects these in Endpoints and EndpointSlices (422).
        return Err(bad(
            POD_IP,
            &pod_ip_text,
            "expected the pod's unicast address (not loopback, multicast or unspecified)",
        ));
    }
    let node_name = get(NODE_NAME);
    if let Some(n) = &node_name {
        check_dns1123_subdomain(NODE_NAME, n)?;
    }
    let ports = match get(SERVICE_PORTS_JSON) {
        None => Vec::new(),
        Some(v) => parse_ports(&v)?,
    };
    let mode = match get(SERVICE_MODE).as_deref() {
        None | Some("auto") => ServiceMode::Auto,
        Some("endpoints") => ServiceMode::Endpoints,
        Some("endpointslice") => ServiceMode::EndpointSlice,
        Some(v) => {
            return Err(bad(
                SERVICE_MODE,
                v,
                "expected \"auto\", \"endpoints\" or \"endpointslice\"",
            ))
        }
    };
    Ok(Some(Service {
        name,
        namespace,
        ports,
        pod_ip,
        node_name,
        mode,
    }))
}

/// Parses and validates the EndpointPort list.
pub fn parse_ports(v: &str) -> Result<Vec<EndpointPort>, ConfigError> {
    let ports: Vec<EndpointPort> = serde_json::from_str(v).map_err(|e| {
        bad(
            SERVICE_PORTS_JSON,
            v,
            format!(
                "expected a JSON list like [{{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}}] ({e})"
            ),
        )
    })?;
    let mut names = BTreeSet::new();
    for p in &ports {
        if !(1..=65535).contains(&p.port) {
            return Err(bad(
                SERVICE_PORTS_JSON,
                v,
                format!("port {} is not in 1-65535", p.port),
            ));
        }
        if let Some(proto) = &p.protocol {
            if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    format!("protocol {proto:?} is not one of TCP, UDP, SCTP"),
                ));
            }
        }
        match &p.name {
            Some(n) => {
                if !is_dns1123_label(n) || n.is_empty() {
                    return Err(bad(
                        SERVICE_PORTS_JSON,
                        v,
                        format!("port name {n:?} must be a DNS-1123 label (lowercase letters, digits, '-', at most 63)"),
                    ));
                }
                if !names.insert(n.clone()) {
                    return Err(bad(
                        SERVICE_PORTS_JSON,
                        v,
                        format!("port name {n:?} is used twice"),
                    ));
                }
            }
            None if ports.len() > 1 => {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    "every port needs a name when there are several",
                ))
            }
            None => {}
        }
        if let Some(ap) = &p.app_protocol {
            if ap.is_empty()
                || ap.len() > 253
                || ap.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(
                    SERVICE_PORTS_JSON,
                    v,
                    format!("appProtocol {ap:?} is not a valid protocol name"),
                ));
            }
        }
    }
    Ok(ports)
}

/// `":9999"`, `"0.0.0.0:9999"`, `"[::]:9999"`, `"127.0.0.1:9999"`, `"localhost:9999"`.
pub fn parse_status_endpoint(v: &str) -> Option<StatusEndpoint> {
    let (host, port) = v.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let ip = if host.is_empty() {
        None
    } else if host == "localhost" {
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?))
    } else {
        Some(IpAddr::V4(host.parse::<Ipv4Addr>().ok()?))
    };
    Some(StatusEndpoint { ip, port })
}

fn duration_var(
    variable: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    match parse_duration(&v) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(bad(variable, &v, "it must be greater than zero")),
        None => Err(bad(
            variable,
            &v,
            "expected whole seconds (\"15\") or a duration like \"500ms\", \"15s\" or \"1m\"",
        )),
    }
}

/// Whole seconds (`"15"`, as the Go tool reads them) or a number with a unit `ms`, `s`, `m`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

fn check_timings(t: &Timings, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let shown =
        |k: &'static str, d: Duration| get(k).unwrap_or_else(|| format!("{} (default)", show(d)));
    if t.lease_duration <= t.renew_deadline {
        return Err(bad(
            LEASE_DURATION,
            &shown(LEASE_DURATION, t.lease_duration),
            format!(
                "the lease duration must be greater than the renew deadline ({})",
                show(t.renew_deadline)
            ),
        ));
    }
    // client-go: renewDeadline must be greater than retryPeriod * JitterFactor (1.2).
    if t.renew_deadline.as_micros() * 10 <= t.retry_period.as_micros() * 12 {
        return Err(bad(
            RENEW_DEADLINE,
            &shown(RENEW_DEADLINE, t.renew_deadline),
            format!(
                "the renew deadline must be greater than 1.2 x the retry period ({})",
                show(t.retry_period)
            ),
        ));
    }
    if t.step_down_window() < Duration::from_millis(200) {
        return Err(bad(
            LEASE_DURATION,
            &shown(LEASE_DURATION, t.lease_duration),
            "lease duration - renew deadline must be at least 200ms, the time CMD has to stop after losing leadership",
        ));
    }
    Ok(())
}

/// A duration the way a user wrote it: `15s`, `500ms`.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn check_dns1123_label(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ))
    }
}

fn check_dns1035_label(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1035 label: at most 63 lowercase letters, digits or '-', starting with a letter and ending with a letter or digit",
        ))
    }
}

fn check_dns1123_subdomain(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if s.len() <= 253 && s.split('.').all(is_dns1123_label) {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit",
        ))
    }
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
        assert_eq!(c.grace_period, Duration::from_millis(4500));
        assert_eq!(c.signal_target, SignalTarget::Child);
        assert_eq!(c.service, None);
    }

    #[test]
    fn go_style_seconds_and_units() {
        let c = with(&[
            (LEASE_DURATION, "4"),
            (RENEW_DEADLINE, "3"),
            (RETRY_PERIOD, "1"),
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
    fn status_endpoints() {
        let ok = |s: &str| parse_status_endpoint(s).expect(s);
        assert_eq!(
            ok(":9999"),
            StatusEndpoint {
                ip: None,
                port: 9999
            }
        );
        assert_eq!(ok("0.0.0.0:9999").ip, Some("0.0.0.0".parse().expect("ip")));
        assert_eq!(ok("[::]:9999").ip, Some("::".parse().expect("ip")));
        assert_eq!(ok("127.0.0.1:1").port, 1);
        for b in [
            "9999", ":0", ":65536", "::9999", "host:80", "[::1:80", "1.2.3:80", ":+80",
        ] {
            assert_eq!(parse_status_endpoint(b), None, "{b}");
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
            (&[(LEASE_DURATION, "10")], LEASE_DURATION),
            (&[(RENEW_DEADLINE, "2")], RENEW_DEADLINE),
            (&[(GRACE_PERIOD, "10")], GRACE_PERIOD),
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
}
