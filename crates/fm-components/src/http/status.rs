//! Which statuses a stage accepts (`expect_status`), which failures are worth another attempt,
//! and how long a server asked us to wait (`Retry-After`).

use std::time::{Duration, SystemTime};

use fm_expr::Value;
use reqwest::header::HeaderMap;

/// The longest wait a `Retry-After` header can impose (a hostile or confused server must not
/// stall a run for hours).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Exact(u16),
    /// `2xx`: the hundreds digit.
    Class(u16),
    Range(u16, u16),
}

/// `expect_status`: empty means "any 2xx".
#[derive(Debug, Clone, Default)]
pub(crate) struct ExpectStatus {
    rules: Vec<Rule>,
}

impl ExpectStatus {
    /// Reads a number, a string (`"200"`, `"2xx"`, `"200-299"`) or a list of those.
    pub(crate) fn parse(v: &Value) -> Result<Self, String> {
        let items: Vec<&Value> = match v {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            Value::Array(_) => return Err("expect_status must not be an empty list".into()),
            other => vec![other],
        };
        let rules = items
            .into_iter()
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExpectStatus { rules })
    }

    /// Every status: FlowMason 1.x's http_request never fails on a status (its output's
    /// `success` says whether it was 2xx).
    pub(crate) fn any() -> Self {
        ExpectStatus {
            rules: vec![Rule::Range(100, 999)],
        }
    }

    pub(crate) fn accepts(&self, code: u16) -> bool {
        if self.rules.is_empty() {
            return (200..300).contains(&code);
        }
        self.rules.iter().any(|r| match *r {
            Rule::Exact(c) => c == code,
            Rule::Class(d) => code / 100 == d,
            Rule::Range(a, b) => (a..=b).contains(&code),
        })
    }

    pub(crate) fn describe(&self) -> String {
        if self.rules.is_empty() {
            return "2xx".into();
        }
        self.rules
            .iter()
            .map(|r| match *r {
                Rule::Exact(c) => c.to_string(),
                Rule::Class(d) => format!("{d}xx"),
                Rule::Range(a, b) => format!("{a}-{b}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn code(n: u64) -> Result<u16, String> {
    u16::try_from(n)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("{n} is not an HTTP status (100-599)"))
}

fn parse_rule(v: &Value) -> Result<Rule, String> {
    let bad = || {
        format!(
            "expect_status entries are status codes (200), classes (\"2xx\") or ranges (\"200-299\"); got {}",
            fm_expr::to_text(v)
        )
    };
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad).and_then(code).map(Rule::Exact),
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            if let Some(d) = s.strip_suffix("xx") {
                return match d.as_bytes() {
                    [c @ b'1'..=b'5'] => Ok(Rule::Class(u16::from(c - b'0'))),
                    _ => Err(bad()),
                };
            }
            if let Some((a, b)) = s.split_once('-') {
                let a = a.trim().parse::<u64>().map_err(|_| bad()).and_then(code)?;
                let b = b.trim().parse::<u64>().map_err(|_| bad()).and_then(code)?;
                return if a <= b {
                    Ok(Rule::Range(a, b))
                } else {
                    Err(bad())
                };
            }
            s.parse::<u64>()
                .map_err(|_| bad())
                .and_then(code)
                .map(Rule::Exact)
        }
        _ => Err(bad()),
    }
}

/// Whether another attempt could get a different answer: 408, 425, 429 and every 5xx.
pub(crate) fn is_retryable_status(code: u16) -> bool {
    matches!(code, 408 | 425 | 429) || (500..600).contains(&code)
}

/// `Retry-After` (seconds or an HTTP date) or OpenAI's `retry-after-ms`, capped at
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f >= 0.0)
    {
        return Some(Duration::from_secs_f64(
            (ms / 1000.0).min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = if let Ok(secs) = raw.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let when = httpdate::parse_http_date(raw).ok()?;
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn expect_status_forms() {
        let any2 = ExpectStatus::default();
        assert!(any2.accepts(204) && !any2.accepts(301));
        let e = ExpectStatus::parse(&json!([200, "4xx", "500-502"])).unwrap();
        assert!(e.accepts(200) && e.accepts(404) && e.accepts(501));
        assert!(!e.accepts(201) && !e.accepts(503));
        assert_eq!(e.describe(), "200, 4xx, 500-502");
        assert!(ExpectStatus::parse(&json!("2xx")).unwrap().accepts(299));
        assert!(ExpectStatus::parse(&json!("204")).unwrap().accepts(204));
        for bad in [
            json!("6xx"),
            json!("22xx"),
            json!(99),
            json!("abc"),
            json!([]),
            json!(true),
            json!("300-200"),
        ] {
            assert!(ExpectStatus::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert("retry-after", later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
