//! RFC 3339 timestamps <-> Unix seconds, via `humantime` (UTC only; numeric
//! offsets like `+02:00` are folded in here since humantime does not parse them).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First second of year 10000: humantime cannot format from here on.
const MAX_SECS: f64 = 253_402_300_800.0;

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `secs` as RFC 3339 UTC: whole seconds when `secs` is whole, else milliseconds.
/// `None` outside 1970-01-01 ..= 9999-12-31.
pub(crate) fn format_rfc3339(secs: f64) -> Option<String> {
    if !(0.0..MAX_SECS).contains(&secs) {
        return None;
    }
    let t = UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
    let mut out = String::new();
    let ok = if secs.fract() == 0.0 {
        std::fmt::write(
            &mut out,
            format_args!("{}", humantime::format_rfc3339_seconds(t)),
        )
    } else {
        std::fmt::write(
            &mut out,
            format_args!("{}", humantime::format_rfc3339_millis(t)),
        )
    };
    ok.ok().map(|_| out)
}

/// Parse an RFC 3339 timestamp (`Z`, a numeric offset, or none = UTC) to Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let (base, offset_secs) = split_offset(s);
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Some(secs - offset_secs)
}

/// Split `...+HH:MM` / `...-HH:MM` into the local time and the offset in seconds.
fn split_offset(s: &str) -> (&str, f64) {
    let b = s.as_bytes();
    let n = b.len();
    if n > 6
        && matches!(b[n - 6], b'+' | b'-')
        && b[n - 3] == b':'
        && s[..n - 6].contains(['T', 't', ' '])
    {
        let hh = s.get(n - 5..n - 3).and_then(|h| h.parse::<u32>().ok());
        let mm = s.get(n - 2..).and_then(|m| m.parse::<u32>().ok());
        if let (Some(hh), Some(mm)) = (hh, mm) {
            let sign = if b[n - 6] == b'-' { -1.0 } else { 1.0 };
            return (&s[..n - 6], sign * f64::from(hh * 3600 + mm * 60));
        }
    }
    (s, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        assert_eq!(
            format_rfc3339(1705290120.0).as_deref(),
            Some("2024-01-15T03:42:00Z")
        );
        assert_eq!(
            format_rfc3339(1705290120.5).as_deref(),
            Some("2024-01-15T03:42:00.500Z")
        );
        assert_eq!(parse_rfc3339("2024-01-15T03:42:00Z"), Some(1705290120.0));
        assert_eq!(
            parse_rfc3339("2024-01-15T05:42:00+02:00"),
            Some(1705290120.0)
        );
        assert_eq!(format_rfc3339(-1.0), None);
        assert_eq!(format_rfc3339(1e12), None);
        assert_eq!(parse_rfc3339("nope"), None);
    }
}
