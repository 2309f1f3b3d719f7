//! When a watch with `allowWatchBookmarks=true` gets its next BOOKMARK, as the watch cache
//! schedules them (`cacheWatcher.nextBookmarkTime`): every bookmark interval (a minute by
//! default), and one 2 s before `timeoutSeconds` ends the stream, so that a client resuming
//! after the timeout starts from a recent resourceVersion. None once that last one is due
//! in the past (a watch shorter than 2 s gets none before its end).

use std::time::{Duration, Instant};

/// How long before the stream's deadline the last bookmark is sent.
pub const BEFORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The next bookmark after `now` for a stream that ends at `deadline`, or None.
pub fn next_bookmark(now: Instant, interval: Duration, deadline: Instant) -> Option<Instant> {
    let heartbeat = now + interval;
    let at = match deadline.checked_sub(BEFORE_TIMEOUT) {
        Some(pre) if pre < heartbeat => pre,
        Some(_) => heartbeat,
        None => return None,
    };
    (at >= now).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let now = Instant::now();
        let s = Duration::from_secs;
        // a long watch: every interval
        assert_eq!(next_bookmark(now, s(60), now + s(1800)), Some(now + s(60)));
        // near the end: 2 s before the deadline
        assert_eq!(next_bookmark(now, s(60), now + s(10)), Some(now + s(8)));
        // after that one: none
        let later = now + s(8) + Duration::from_millis(1);
        assert_eq!(next_bookmark(later, s(60), now + s(10)), None);
        // a watch shorter than 2 s: none
        assert_eq!(next_bookmark(now, s(60), now + s(1)), None);
    }
}
