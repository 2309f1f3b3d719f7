//! The clock our own lease validity is measured on: `CLOCK_BOOTTIME`.
//!
//! `std::time::Instant` is `CLOCK_MONOTONIC`, which stops while the node is suspended. A
//! leader whose node sleeps through its lease would wake up believing its last renewal fresh,
//! while the other replicas (whose clocks kept running) already took the Lease over. Measured
//! on [`BootInstant`], the validity runs out during the sleep, so the main thread steps down
//! the moment it runs again. Expiry of *someone else's* lease stays on `Instant`: a clock that
//! stops only makes us wait longer there, which is the safe direction.
//!
//! A leaf: the one system call lives in `crate::sys`.

use std::ops::Add;
use std::time::Duration;

use crate::sys;

/// A moment on the boot-time clock (time since boot, suspend included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// Now. Falls back to the monotonic clock's reading in the (pre-2.6.39) kernels without
    /// `CLOCK_BOOTTIME`, where the two clocks do not differ anyway.
    pub fn now() -> BootInstant {
        BootInstant(sys::boot_time().unwrap_or_else(monotonic_since_start))
    }

    /// A moment `d` after boot (for tests and state machines that take time as an argument).
    pub const fn from_boot(d: Duration) -> BootInstant {
        BootInstant(d)
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: BootInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - d`, or `None` before boot.
    pub fn checked_sub(self, d: Duration) -> Option<BootInstant> {
        self.0.checked_sub(d).map(BootInstant)
    }

    /// The time left until this moment, from now; zero if it has passed.
    pub fn remaining(self) -> Duration {
        self.saturating_duration_since(BootInstant::now())
    }
}

impl Add<Duration> for BootInstant {
    type Output = BootInstant;

    fn add(self, d: Duration) -> BootInstant {
        BootInstant(self.0.saturating_add(d))
    }
}

fn monotonic_since_start() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_moves_forward_and_is_at_least_the_monotonic_one() {
        let a = BootInstant::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = BootInstant::now();
        assert!(b.saturating_duration_since(a) >= Duration::from_millis(5));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert!(
            sys::boot_time().is_some(),
            "CLOCK_BOOTTIME is available on Linux >= 2.6.39"
        );
    }

    #[test]
    fn arithmetic() {
        let t = BootInstant::from_boot(Duration::from_secs(10));
        assert_eq!(
            t + Duration::from_secs(5),
            BootInstant::from_boot(Duration::from_secs(15))
        );
        assert_eq!(t.checked_sub(Duration::from_secs(11)), None);
        assert_eq!(
            t.checked_sub(Duration::from_secs(4)),
            Some(BootInstant::from_boot(Duration::from_secs(6)))
        );
    }
}
