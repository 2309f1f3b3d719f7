//! Wall-clock formatting and parsing for the two Kubernetes time types, plus uid generation.
//!
//! * `metav1.Time` (creationTimestamp, managedFields[].time): RFC 3339, whole seconds, `Z`.
//! * `metav1.MicroTime` (Lease acquireTime/renewTime): RFC 3339 with EXACTLY six fractional
//!   digits; Go's `time.Parse("2006-01-02T15:04:05.000000Z07:00")` rejects any other count.
//!   Both accept numeric offsets when reading and are re-encoded in UTC with `Z`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant as (seconds since the Unix epoch, microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant {
    pub secs: i64,
    pub micros: u32,
}

/// Days since 1970-01-01 for a proleptic Gregorian civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

pub fn now() -> Instant {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Instant {
        secs: d.as_secs() as i64,
        micros: d.subsec_micros(),
    }
}

fn format_date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `2026-11-24T08:15:30Z`
pub fn format_time(t: Instant) -> String {
    format!("{}Z", format_date_time(t.secs))
}

/// `2026-11-24T08:15:30.123456Z`
pub fn format_micro(t: Instant) -> String {
    format!("{}.{:06}Z", format_date_time(t.secs), t.micros)
}

fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s[..n].iter().fold(0, |a, c| a * 10 + u32::from(c - b'0')))
}

/// Which fractional-second rule to apply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Frac {
    /// metav1.Time: optional fraction with any number of digits (Go's Parse allows it).
    Optional,
    /// metav1.MicroTime: exactly six digits.
    ExactlySix,
}

/// Parses RFC 3339 like Go's `time.Parse` does for the two layouts above.
pub fn parse_rfc3339(s: &str, frac: Frac) -> Result<Instant, String> {
    let b = s.as_bytes();
    let bad = || format!("parsing time {s:?}: not a valid RFC 3339 time");
    let year = digits(b, 4).ok_or_else(bad)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return Err(bad());
    }
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(bad());
    }
    let month = digits(&b[5..], 2).ok_or_else(bad)?;
    let day = digits(&b[8..], 2).ok_or_else(bad)?;
    let hour = digits(&b[11..], 2).ok_or_else(bad)?;
    let min = digits(&b[14..], 2).ok_or_else(bad)?;
    let sec = digits(&b[17..], 2).ok_or_else(bad)?;
    let year = i64::from(year);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return Err(format!("parsing time {s:?}: value out of range"));
    }
    let mut i = 19;
    let mut micros = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || (frac == Frac::ExactlySix && n != 6) {
            return Err(format!(
                "parsing time {s:?} as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"{}\" as \".000000\"",
                &s[i..]
            ));
        }
        let mut v = 0u64;
        for (k, c) in b[start..end].iter().enumerate() {
            if k < 6 {
                v = v * 10 + u64::from(c - b'0');
            }
        }
        for _ in n..6 {
            v *= 10;
        }
        micros = v as u32;
        i = end;
    } else if frac == Frac::ExactlySix {
        return Err(format!(
            "parsing time {s:?} as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"{}\" as \".000000\"",
            &s[i.min(s.len())..]
        ));
    }
    let offset_secs: i64 = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2], 2).ok_or_else(bad)?;
            let m = digits(&[*m1, *m2], 2).ok_or_else(bad)?;
            if h > 23 || m > 59 {
                return Err(format!("parsing time {s:?}: time zone offset out of range"));
            }
            let o = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + min * 60 + sec)
        - offset_secs;
    Ok(Instant { secs, micros })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random u64 (splitmix64 over time and a process-wide counter); not cryptographic.
pub fn random_u64() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut z = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id()) << 32;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4-shaped UUID string, unique within the process.
pub fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Five characters from the alphabet `names.SimpleNameGenerator` uses for generateName.
pub fn name_suffix() -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHA[(r % ALPHA.len() as u64) as usize] as char;
            r /= ALPHA.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_rfc3339("2026-11-24T08:15:30.123456Z", Frac::ExactlySix).unwrap();
        assert_eq!(format_micro(t), "2026-11-24T08:15:30.123456Z");
        let t = parse_rfc3339("2026-11-24T10:15:30.123456+02:00", Frac::ExactlySix).unwrap();
        assert_eq!(format_micro(t), "2026-11-24T08:15:30.123456Z");
        let t = parse_rfc3339("2024-03-01T00:30:00-01:00", Frac::Optional).unwrap();
        assert_eq!(format_time(t), "2024-03-01T01:30:00Z");
        assert!(parse_rfc3339("2026-11-24T08:15:30.12345Z", Frac::ExactlySix).is_err());
        assert!(parse_rfc3339("2026-11-24T08:15:30.123456789Z", Frac::ExactlySix).is_err());
        assert!(parse_rfc3339("2026-11-24T08:15:30Z", Frac::ExactlySix).is_err());
        assert!(parse_rfc3339("2026-02-30T08:15:30Z", Frac::Optional).is_err());
        assert!(parse_rfc3339("2026-11-24 08:15:30Z", Frac::Optional).is_err());
        assert!(parse_rfc3339("2026-11-24T08:15:30.5Z", Frac::Optional).is_ok());
        assert_ne!(new_uid(), new_uid());
    }
}
