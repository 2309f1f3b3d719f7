//! Retry jitter: client-go's jittered wait between campaign retries, from a small xorshift
//! generator (no cryptographic use).

use std::time::{Duration, SystemTime};

/// A small xorshift generator for retry jitter.
#[derive(Debug)]
pub(super) struct Jitter(u64);

impl Jitter {
    /// Seeded from the wall clock and our PID, so replicas started together spread out.
    pub(super) fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `retry_period × (1 + U[0, 1.2))`, client-go's jittered wait.
    pub(super) fn retry_wait(&mut self, retry_period: Duration) -> Duration {
        retry_period + retry_period.mul_f64(1.2 * self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::seeded();
        for _ in 0..10_000 {
            let u = j.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
