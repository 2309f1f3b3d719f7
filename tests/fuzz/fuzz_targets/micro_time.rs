//! MicroTime: `timefmt::parse_rfc3339` never panics on any text, and `micro_time` output (six
//! fractional digits, UTC) parses back to the same instant truncated to microseconds, for
//! every time from 1970 up to the year 9999.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use k8s_await_election::timefmt::{log_time, micro_time, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

/// 9999-12-31T23:59:59Z: the last second with a four-digit year.
const MAX_SECS: u64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(t) = parse_rfc3339(text) {
            let _ = micro_time(t);
            let _ = log_time(t);
        }
    }
    if data.len() >= 12 {
        let secs = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) % (MAX_SECS + 1);
        let nanos = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")) % 1_000_000_000;
        let t = UNIX_EPOCH + Duration::new(secs, nanos);
        let text = micro_time(t);
        assert_eq!(text.len(), "2026-11-24T08:15:30.123456Z".len(), "{text}");
        let micros = UNIX_EPOCH + Duration::new(secs, nanos / 1000 * 1000);
        assert_eq!(parse_rfc3339(&text), Some(micros), "{text}");
        let _ = log_time(t);
    }
});
