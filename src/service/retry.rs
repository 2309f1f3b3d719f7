//! The retry loop of conditional writes: conflicts, AlreadyExists and transient errors are
//! tried again with a short, growing pause until a deadline.

use std::thread;
use std::time::{Duration, Instant};

use log::debug;

use crate::kube::Error;

/// First pause between retries; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between retries (unless the server's `Retry-After` asks for more).
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// A 404 on PUT means the object vanished between our GET and PUT: a race, read again.
pub(super) fn race_on_missing(e: Error) -> Error {
    match e {
        Error::NotFound(m) => Error::Conflict(format!("deleted while we wrote it: {m}")),
        other => other,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `deadline` passes. Conflicts and
/// AlreadyExists (races with another writer) and transient errors are retried with a short,
/// growing pause (or the server's `Retry-After`).
pub(super) fn retry<T>(
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut pause = FIRST_PAUSE;
    loop {
        let e = match attempt() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let retryable =
            matches!(e, Error::Conflict(_) | Error::AlreadyExists(_)) || e.is_transient();
        let wait = e.retry_after().unwrap_or(pause);
        if !retryable || Instant::now() + wait >= deadline {
            return Err(e);
        }
        debug!("service routing: {e}; retrying");
        thread::sleep(wait);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn retry_rules() {
        let far = Instant::now() + Duration::from_secs(5);
        let calls = Cell::new(0);
        let r = retry(far, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(Error::Conflict("modified".into()))
            } else {
                Ok(calls.get())
            }
        });
        assert_eq!(r, Ok(3));

        calls.set(0);
        let r: Result<(), Error> = retry(far, || {
            calls.set(calls.get() + 1);
            Err(Error::Forbidden("no".into()))
        });
        assert_eq!(r, Err(Error::Forbidden("no".into())));
        assert_eq!(calls.get(), 1, "forbidden is final");

        let started = Instant::now();
        let soon = started + Duration::from_millis(300);
        let r: Result<(), Error> = retry(soon, || Err(Error::Timeout));
        assert_eq!(r, Err(Error::Timeout));
        assert!(started.elapsed() < Duration::from_millis(600));

        // A Retry-After beyond the deadline ends the attempts at once.
        let started = Instant::now();
        let r: Result<(), Error> = retry(started + Duration::from_secs(2), || {
            Err(Error::TooManyRequests {
                retry_after: Some(Duration::from_secs(10)),
                message: String::new(),
            })
        });
        assert!(r.is_err());
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
