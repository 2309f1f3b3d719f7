//! The three client-go timings ([`Timings`]), the durations users write, and the rules
//! between them that the election's safety rests on.

use std::time::Duration;

use super::error::{bad, ConfigError};
use super::vars::{KILL_MARGIN, LEASE_DURATION, RENEW_DEADLINE};

/// Default lease duration (client-go's, which the Go tool also uses).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default renew deadline (client-go's, which the Go tool also uses).
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Default retry period (client-go's, which the Go tool also uses).
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Default kill margin: the time reserved after the SIGKILL for the kernel to finish CMD and
/// for us to reap it, so CMD is gone before the lease could expire in anybody else's eyes.
/// A SIGKILLed process is not gone at once: the kernel frees its memory before its files and
/// sockets close, about 75 ms per GiB here (`scripts/bench.sh`: 6 GiB 0.46 s, 16 GiB 1.2 s).
/// Two seconds covers CMDs of about 25 GiB.
pub const DEFAULT_KILL_MARGIN: Duration = Duration::from_secs(2);

/// Shortest lease duration: the Lease stores it in whole seconds (`leaseDurationSeconds`).
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(1);
/// Shortest retry period: the leader sends one renewal per retry period and a candidate one
/// request per retry period or more, so this bounds each replica to about ten requests a
/// second. (client-go only asks for more than zero; `RETRY_PERIOD=1ms` meant ~870 requests
/// a second.)
pub const MIN_RETRY_PERIOD: Duration = Duration::from_millis(100);

/// The three client-go timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long others wait for a silent leader before taking the lease.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// Time between renewals, and between attempts after errors.
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
    /// Time between the step-down decision and the lease's expiry in others' eyes.
    pub fn step_down_window(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_deadline)
    }

    /// The longest grace period that still has CMD dead and reaped before the lease expires:
    /// `lease_duration - renew_deadline - kill_margin`.
    pub fn max_grace(&self, kill_margin: Duration) -> Duration {
        self.step_down_window().saturating_sub(kill_margin)
    }
}

/// The duration in `value` (of `variable`), or `default` when unset; zero is refused, and so
/// is anything shorter than `min`.
pub(super) fn duration_var(
    variable: &'static str,
    value: Option<String>,
    default: Duration,
    min: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    match parse_duration(&v) {
        Some(d) if d.is_zero() => Err(bad(variable, &v, "it must be greater than zero")),
        Some(d) if d < min => Err(bad(
            variable,
            &v,
            format!("it must be at least {}", show(min)),
        )),
        Some(d) => Ok(d),
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

/// The relations client-go and the grace period need between the three timings.
pub(super) fn check_timings(
    t: &Timings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
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

/// The kill margin must fit between the renew deadline and the lease duration: that is all
/// the time a step-down has, SIGTERM and grace period included.
pub(super) fn check_kill_margin(
    t: &Timings,
    kill_margin: Duration,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if kill_margin <= t.step_down_window() {
        return Ok(());
    }
    let value = get(KILL_MARGIN).unwrap_or_else(|| format!("{} (default)", show(kill_margin)));
    Err(bad(
        KILL_MARGIN,
        &value,
        format!(
            "it must be at most lease duration - renew deadline ({}): after a SIGKILL the kernel needs this long to finish CMD (about 75ms per GiB of memory) before the lease can expire; lower it only for a small CMD, or widen the gap between {LEASE_DURATION} and {RENEW_DEADLINE}",
            show(t.step_down_window())
        ),
    ))
}

/// A duration the way a user wrote it: `15s`, `500ms`.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
