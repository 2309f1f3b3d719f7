//! Wall-clock timestamps as text: Kubernetes `MicroTime` (RFC 3339, exactly six fractional
//! digits, UTC) for Lease records and log lines, and a lenient RFC 3339 parser for reading
//! records other electors wrote.
//!
//! A leaf module: it knows calendars, nothing of Kubernetes or processes. We keep our own
//! tiny civil-date conversion instead of pulling in a date crate (see README, "Design").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (what the apiserver's MicroTime parser wants).
pub fn micro_time(t: SystemTime) -> String {
    let (secs, micros) = split(t);
    let (date, hms) = civil(secs);
    format!("{date}T{hms}.{micros:06}Z")
}

/// Formats `t` with millisecond precision for log lines: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn log_time(t: SystemTime) -> String {
    let (secs, micros) = split(t);
    let (date, hms) = civil(secs);
    format!("{date}T{hms}.{:03}Z", micros / 1000)
}

fn split(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        // Before 1970: only reachable with a broken clock; clamp rather than panic.
        Err(_) => (0, 0),
    }
}

fn civil(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 (`2026-11-24T08:15:30.123456Z`, any number of fractional digits, `Z` or a
/// numeric offset such as `+00:00`). Returns `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = i64::from(num(i + 1..i + 3)?);
            let om = i64::from(num(i + 4..i + 6)?);
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_six_fraction_digits() {
        let t = UNIX_EPOCH + Duration::new(1_795_594_530, 123_456_789);
        assert_eq!(micro_time(t), "2026-11-25T08:15:30.123456Z");
        assert_eq!(micro_time(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(log_time(t), "2026-11-25T08:15:30.123Z");
    }

    #[test]
    fn round_trips_and_accepts_offsets() {
        let t = UNIX_EPOCH + Duration::new(1_795_594_530, 123_456_000);
        assert_eq!(parse_rfc3339(&micro_time(t)), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25T08:15:30.123456+00:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25T10:15:30.123456+02:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-25T08:15:30Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_594_530))
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T08:15:30.123456789Z"),
            Some(UNIX_EPOCH + Duration::new(1_795_594_530, 123_456_789))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T06:15:30",
            "2026-13-24T06:15:30Z",
            "2026-11-24T06:15:30.Z",
            "2026-11-24T06:15:30.1234x6Z",
            "2026-11-24 06:15:30Z",
            "2026-11-24T06:15:30+0000",
            "२०२६-11-24T06:15:30Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn calendar_matches_known_dates() {
        for days in [-1_000_000i64, -1, 0, 59, 60, 365, 11_016, 20_416, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
