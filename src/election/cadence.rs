//! When the leader renews: the renew interval after a success, and how many attempts a
//! renewal then gets before the renew deadline.

use std::time::Duration;

use crate::config::Timings;

/// Time from a successful renewal (its send time) to the next one: the retry period, or a
/// quarter of the renew deadline if that is longer. After a failed attempt the leader tries
/// again every retry period until the renew deadline (DESIGN.md, "Why does the leader renew
/// every max(retry period, renew deadline / 4)?").
pub(super) fn renew_interval(t: &Timings) -> Duration {
    t.retry_period.max(t.renew_deadline / 4)
}

/// How many attempts start before the renew deadline when every one of them fails: the first
/// one a renew interval after the last success, then one each retry period.
#[cfg(test)]
fn attempts_before_deadline(t: &Timings) -> u32 {
    let mut at = renew_interval(t);
    let mut n = 0;
    while at < t.renew_deadline {
        n += 1;
        at += t.retry_period;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(lease: u64, deadline_ms: u64, retry_ms: u64) -> Timings {
        Timings {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_millis(deadline_ms),
            retry_period: Duration::from_millis(retry_ms),
        }
    }

    /// Attempts before the deadline when renewing every retry period, as client-go does.
    fn attempts_every_retry_period(t: &Timings) -> u32 {
        (1..)
            .take_while(|k| t.retry_period * *k < t.renew_deadline)
            .count() as u32
    }

    #[test]
    fn renew_interval_and_attempts_per_case() {
        // (name, timings, renew interval ms, attempts before the deadline, the same when
        // renewing every retry period)
        let cases = [
            (
                "client-go defaults 15/10/2",
                timings(15, 10_000, 2_000),
                2_500,
                4,
                4,
            ),
            ("test timings 4/3/1", timings(4, 3_000, 1_000), 1_000, 2, 2),
            (
                "retry a third of the deadline",
                timings(15, 9_000, 3_000),
                3_000,
                2,
                2,
            ),
            ("60/30/5", timings(60, 30_000, 5_000), 7_500, 5, 5),
            (
                "short retry 15/10/1",
                timings(15, 10_000, 1_000),
                2_500,
                8,
                9,
            ),
        ];
        for (name, t, interval_ms, attempts, every_retry) in cases {
            let interval = Duration::from_millis(interval_ms);
            assert_eq!(renew_interval(&t), interval, "{name}: renew interval");
            assert_eq!(attempts_before_deadline(&t), attempts, "{name}: attempts");
            assert_eq!(
                attempts_every_retry_period(&t),
                every_retry,
                "{name}: attempts renewing every retry period"
            );
        }
    }
}
