//! Wall-clock helpers: RFC 3339 formatting/parsing and the relative time
//! expressions the simulated APIs accept ("-30m", "-24h").
//!
//! Written by hand (civil-date arithmetic) so the crate needs no date library;
//! every API here only deals in UTC and whole or fractional Unix seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch as a float (negative before 1970).
pub fn unix_secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The inverse of [`unix_secs`].
pub fn from_unix_secs(secs: f64) -> SystemTime {
    if secs >= 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    } else {
        UNIX_EPOCH - Duration::from_secs_f64(-secs)
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) for days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-01-15T03:42:00Z` (whole seconds), the shape deploy tools and Statuspage use.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = unix_secs(t).floor() as i64;
    format_parts(secs, None)
}

/// `2024-01-15T03:42:00.123Z`, the shape log stores use.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let s = unix_secs(t);
    let secs = s.floor() as i64;
    let millis = (((s - secs as f64) * 1000.0).round() as i64).clamp(0, 999);
    format_parts(secs, Some(millis))
}

fn format_parts(secs: i64, millis: Option<i64>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match millis {
        Some(ms) => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z"),
        None => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
    }
}

/// Parses RFC 3339 (`2024-01-15T03:42:00Z`, fractional seconds, `+02:00` offsets,
/// lower-case `t`/`z`, or a space separator) into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (hh, mi, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        frac = format!("0.{digits}").parse().ok()?;
        rest = &r[digits.len()..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest.get(1..)?;
            if o.len() != 5 || o.as_bytes()[2] != b':' {
                return None;
            }
            let oh: i64 = o.get(0..2)?.parse().ok()?;
            let om: i64 = o.get(3..5)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + hh * 3600 + mi * 60 + ss - offset_secs;
    Some(secs as f64 + frac)
}

/// Parses a Prometheus-style duration: `90`, `1.5` (seconds) or `1h30m`, `5m`, `15s`, `500ms`, `2d`, `1w`.
pub fn parse_duration_secs(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let n_len = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        if n_len == 0 {
            return None;
        }
        let n: f64 = rest[..n_len].parse().ok()?;
        rest = &rest[n_len..];
        let u_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = match &rest[..u_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_len..];
    }
    Some(total)
}

/// A point in time as log and deploy APIs accept it: relative (`-30m`, `-24h`, `now`),
/// RFC 3339, or Unix seconds. Relative values are resolved against `now`.
pub fn parse_time_expr(s: &str, now: SystemTime) -> Option<SystemTime> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Some(now);
    }
    if let Some(rel) = s.strip_prefix('-') {
        if rel.parse::<f64>().is_err() {
            let d = parse_duration_secs(rel)?;
            return Some(from_unix_secs(unix_secs(now) - d));
        }
    }
    if let Some(secs) = parse_rfc3339(s) {
        return Some(from_unix_secs(secs));
    }
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(from_unix_secs)
}

/// "3 days", "20 minutes", "2 hours": for evidence strings a human reads.
pub fn humanize_secs(secs: f64) -> String {
    let secs = secs.abs();
    let (n, unit) = if secs < 90.0 {
        (secs.round(), "second")
    } else if secs < 90.0 * 60.0 {
        ((secs / 60.0).round(), "minute")
    } else if secs < 36.0 * 3600.0 {
        ((secs / 3600.0).round(), "hour")
    } else {
        ((secs / 86_400.0).round(), "day")
    };
    let n = n as i64;
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339("2024-01-15T03:42:00Z");
        assert_eq!(t, Some(1_705_290_120.0));
        assert_eq!(
            rfc3339(from_unix_secs(1_705_290_120.0)),
            "2024-01-15T03:42:00Z"
        );
        assert_eq!(
            rfc3339_millis(from_unix_secs(1_705_290_120.25)),
            "2024-01-15T03:42:00.250Z"
        );
        assert_eq!(
            parse_rfc3339("2024-01-15T05:42:00.5+02:00"),
            Some(1_705_290_120.5)
        );
        assert_eq!(parse_rfc3339("2024-13-15T05:42:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn durations_and_relative_times() {
        assert_eq!(parse_duration_secs("60"), Some(60.0));
        assert_eq!(parse_duration_secs("1h30m"), Some(5400.0));
        assert_eq!(parse_duration_secs("500ms"), Some(0.5));
        assert_eq!(parse_duration_secs("abc"), None);
        let now = from_unix_secs(10_000.0);
        assert_eq!(parse_time_expr("-30m", now), Some(from_unix_secs(8_200.0)));
        assert_eq!(parse_time_expr("now", now), Some(now));
        assert_eq!(parse_time_expr("1700", now), Some(from_unix_secs(1700.0)));
        assert_eq!(humanize_secs(3.0 * 86_400.0), "3 days");
        assert_eq!(humanize_secs(7200.0), "2 hours");
        assert_eq!(humanize_secs(60.0), "60 seconds");
    }
}
