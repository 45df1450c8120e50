//! Prometheus HTTP API: `/api/v1/query_range` and `/api/v1/query`, GET with
//! query parameters or POST with a form-encoded body (what Prometheus reads;
//! a JSON body is ignored, exactly as Prometheus ignores it, so the request
//! fails for lack of parameters). Responses and `bad_data` errors follow
//! Prometheus' JSON format and messages.
//!
//! PromQL support is limited to vector selectors — `metric{label="v"}`,
//! `{__name__=~"a|b",service="x"}` with `=`, `!=`, `=~`, `!~` — which is what
//! the incident pipeline sends. Regexes support literals, `|`, `.`, `.*`, `.+`.
//!
//! In the flaky-context scenario every query hangs for 60 s first.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::scenarios::Scenario;
use crate::signals::{self, format_sample, SeriesContext, METRICS};
use crate::time::{parse_duration_secs, parse_rfc3339, unix_secs};
use crate::util::{json, parse_form};

/// How long the flaky-context scenario's metrics API hangs: longer than any sane timeout.
const FLAKY_HANG: Duration = Duration::from_secs(60);
/// Prometheus' limit on points per series in a range query.
const MAX_POINTS: f64 = 11_000.0;

fn bad_data(msg: String) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"status": "error", "errorType": "bad_data", "error": msg}),
    )
}

/// Parameters as Prometheus sees them: URL query, overridden by a form body.
fn params(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Map<String, Value>, bool) {
    let mut p = Map::new();
    for (k, v) in parse_form(uri.query().unwrap_or("")) {
        p.insert(k, Value::String(v));
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut json_body = false;
    if *method == Method::POST {
        if ctype.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in parse_form(&String::from_utf8_lossy(body)) {
                p.insert(k, Value::String(v));
            }
        } else if ctype.starts_with("application/json") || body.first() == Some(&b'{') {
            json_body = true;
        }
    }
    (p, json_body)
}

/// Prometheus' timestamp parameter: Unix seconds (float) or RFC 3339.
fn parse_time(name: &str, v: Option<&Value>) -> Result<f64, Response> {
    let s = v.and_then(Value::as_str).unwrap_or("");
    if let Ok(f) = s.trim().parse::<f64>() {
        if f.is_finite() {
            return Ok(f);
        }
    }
    parse_rfc3339(s).ok_or_else(|| {
        bad_data(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    })
}

fn hint(mut r: Response, json_body: bool) -> Response {
    if json_body {
        r.headers_mut().insert(
            "x-fm-sandbox-hint",
            HeaderValue::from_static(
                "Prometheus reads query or form-encoded parameters; a JSON body is ignored",
            ),
        );
    }
    r
}

async fn slow_start(sh: &AppState) {
    if sh.scenario == Scenario::FlakyContext {
        sh.world().count("prometheus.hangs");
        sh.pause(FLAKY_HANG).await;
    }
    sh.pause(sh.latencies.metrics).await;
}

pub(crate) async fn query_range(
    State(sh): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    slow_start(&sh).await;
    sh.world().count("prometheus.queries");
    let (p, json_body) = params(&method, &uri, &headers, &body);
    let result = (|| -> Result<Value, Response> {
        let start = parse_time("start", p.get("start"))?;
        let end = parse_time("end", p.get("end"))?;
        if end < start {
            return Err(bad_data(
                "end timestamp must not be before start time".into(),
            ));
        }
        let step_s = p.get("step").and_then(Value::as_str).unwrap_or("");
        let step = parse_duration_secs(step_s).ok_or_else(|| {
            bad_data(format!(
                "invalid parameter \"step\": cannot parse \"{step_s}\" to a valid duration"
            ))
        })?;
        if step <= 0.0 {
            return Err(bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS {
            return Err(bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let q = p.get("query").and_then(Value::as_str).unwrap_or("");
        let matchers =
            parse_selector(q).map_err(|e| bad_data(format!("invalid parameter \"query\": {e}")))?;
        let now = unix_secs(SystemTime::now());
        let mut result = Vec::new();
        for (labels, ctx_key) in matching_series(&sh, &matchers) {
            let w = sh.world();
            let ctx = context(&w, &ctx_key.0);
            let mut values = Vec::new();
            let mut t = start;
            while t <= end + 1e-9 {
                // No samples in the future, as in a real TSDB.
                if t <= now + 1.0 {
                    if let Some(v) = signals::metric_value(&ctx.as_ctx(), &ctx_key.1, t) {
                        values.push(json!([ts_json(t), format_sample(v)]));
                    }
                }
                t += step;
            }
            if !values.is_empty() {
                result.push(json!({"metric": labels, "values": values}));
            }
        }
        Ok(json!({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    })();
    match result {
        Ok(v) => json(StatusCode::OK, v),
        Err(r) => hint(r, json_body),
    }
}

pub(crate) async fn query(
    State(sh): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    slow_start(&sh).await;
    sh.world().count("prometheus.queries");
    let (p, json_body) = params(&method, &uri, &headers, &body);
    let result = (|| -> Result<Value, Response> {
        let now = unix_secs(SystemTime::now());
        let t = match p.get("time") {
            None => now,
            v => parse_time("time", v)?,
        };
        let q = p.get("query").and_then(Value::as_str).unwrap_or("");
        let matchers =
            parse_selector(q).map_err(|e| bad_data(format!("invalid parameter \"query\": {e}")))?;
        let mut result = Vec::new();
        for (labels, key) in matching_series(&sh, &matchers) {
            let w = sh.world();
            let ctx = context(&w, &key.0);
            if let Some(v) = signals::metric_value(&ctx.as_ctx(), &key.1, t) {
                result.push(json!({"metric": labels, "value": [ts_json(t), format_sample(v)]}));
            }
        }
        Ok(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
    })();
    match result {
        Ok(v) => json(StatusCode::OK, v),
        Err(r) => hint(r, json_body),
    }
}

/// Prometheus prints sample timestamps as seconds with up to millisecond precision.
fn ts_json(t: f64) -> Value {
    let ms = (t * 1000.0).round();
    if ms % 1000.0 == 0.0 {
        json!((ms / 1000.0) as i64)
    } else {
        json!(ms / 1000.0)
    }
}

/// Owned inputs for a [`SeriesContext`] (built under the world lock).
struct OwnedCtx {
    profile: crate::scenarios::Profile,
    anchor: f64,
    recovered: bool,
    deploy_at: Option<f64>,
    outages: Vec<(f64, Option<f64>)>,
}

impl OwnedCtx {
    fn as_ctx(&self) -> SeriesContext<'_> {
        SeriesContext {
            profile: self.profile,
            anchor: self.anchor,
            recovered: self.recovered,
            deploy_at: self.deploy_at,
            outages: &self.outages,
        }
    }
}

fn context(w: &crate::state::World, service: &str) -> OwnedCtx {
    let now = SystemTime::now();
    let (anchor, recovered) = w.anchor(service, now);
    OwnedCtx {
        profile: w
            .services
            .get(service)
            .map(|s| s.profile)
            .unwrap_or(crate::scenarios::Profile::Healthy),
        anchor: unix_secs(anchor),
        recovered,
        deploy_at: w.bad_deploy_at(service).map(unix_secs),
        outages: w.outage_windows(service),
    }
}

/// Every (labels, (service, metric)) whose labels satisfy the matchers, sorted by labels.
fn matching_series(
    sh: &AppState,
    matchers: &[Matcher],
) -> Vec<(Map<String, Value>, (String, String))> {
    let w = sh.world();
    let mut out = Vec::new();
    for (name, s) in &w.services {
        for metric in METRICS {
            let mut labels = Map::new();
            labels.insert("__name__".into(), json!(metric));
            labels.insert(
                "instance".into(),
                json!(format!("{name}.{}.svc:8080", s.namespace)),
            );
            labels.insert("job".into(), json!(name));
            labels.insert("namespace".into(), json!(s.namespace));
            labels.insert("service".into(), json!(name));
            let ok = matchers.iter().all(|m| {
                let v = labels.get(&m.label).and_then(Value::as_str).unwrap_or("");
                m.matches(v)
            });
            if ok {
                out.push((labels, (name.clone(), metric.to_string())));
            }
        }
    }
    out.sort_by(|a, b| (&a.1 .1, &a.1 .0).cmp(&(&b.1 .1, &b.1 .0)));
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

#[derive(Debug, Clone)]
struct Matcher {
    label: String,
    op: Op,
    value: String,
    /// For =~ / !~: the alternatives, each a small pattern.
    alternatives: Vec<Vec<Pat>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Lit(char),
    Any,
    AnyStar,
    AnyPlus,
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.alternatives.iter().any(|a| pat_match(a, v)),
            Op::Nre => !self.alternatives.iter().any(|a| pat_match(a, v)),
        }
    }
}

fn pat_match(p: &[Pat], s: &str) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(Pat::Lit(c)) => s.starts_with(*c) && pat_match(&p[1..], &s[c.len_utf8()..]),
        Some(Pat::Any) => s
            .chars()
            .next()
            .is_some_and(|c| pat_match(&p[1..], &s[c.len_utf8()..])),
        Some(Pat::AnyStar) => {
            s.char_indices().any(|(i, _)| pat_match(&p[1..], &s[i..])) || pat_match(&p[1..], "")
        }
        Some(Pat::AnyPlus) => {
            s.char_indices()
                .skip(1)
                .any(|(i, _)| pat_match(&p[1..], &s[i..]))
                || (!s.is_empty() && pat_match(&p[1..], ""))
        }
    }
}

/// Compiles the regex subset: literals (with `\` escapes), `.`, `.*`, `.+`, `|`.
fn compile_regex(re: &str) -> Result<Vec<Vec<Pat>>, String> {
    let mut alts = vec![Vec::new()];
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = alts.last_mut().ok_or("empty regex")?;
        match c {
            '|' => alts.push(Vec::new()),
            '\\' => cur.push(Pat::Lit(chars.next().ok_or("trailing backslash in regex")?)),
            '.' => match chars.peek() {
                Some('*') => {
                    chars.next();
                    cur.push(Pat::AnyStar);
                }
                Some('+') => {
                    chars.next();
                    cur.push(Pat::AnyPlus);
                }
                _ => cur.push(Pat::Any),
            },
            '(' | ')' | '[' | ']' | '{' | '}' | '?' | '*' | '+' | '^' | '$' => {
                return Err(format!(
                    "the fm sandbox supports only literal alternation (a|b), '.', '.*' and '.+' in regex matchers, got {re:?}"
                ))
            }
            c => cur.push(Pat::Lit(c)),
        }
    }
    Ok(alts)
}

/// Parses a PromQL vector selector into matchers (the metric name becomes `__name__="..."`).
fn parse_selector(q: &str) -> Result<Vec<Matcher>, String> {
    let s: Vec<char> = q.trim().chars().collect();
    if s.is_empty() {
        return Err("1:1: parse error: no expression found in input".into());
    }
    let mut i = 0;
    let mut matchers = Vec::new();
    let is_name_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let unsupported = || {
        format!(
            "the fm sandbox supports only vector selectors like up{{service=\"x\"}} or {{__name__=~\"a|b\",service=\"x\"}}, got {:?}",
            q.trim()
        )
    };
    if is_name_start(s[0]) {
        while i < s.len() && is_name(s[i]) {
            i += 1;
        }
        let name: String = s[..i].iter().collect();
        matchers.push(Matcher {
            label: "__name__".into(),
            op: Op::Eq,
            value: name,
            alternatives: vec![],
        });
    }
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i < s.len() && s[i] == '{' {
        i += 1;
        loop {
            skip_ws(&mut i);
            if i < s.len() && s[i] == '}' {
                i += 1;
                break;
            }
            let start = i;
            while i < s.len() && is_name(s[i]) {
                i += 1;
            }
            if start == i {
                return Err(format!(
                    "1:{}: parse error: unexpected character inside braces: {:?}",
                    i + 1,
                    s.get(i).copied().unwrap_or(' ')
                ));
            }
            let label: String = s[start..i].iter().collect();
            skip_ws(&mut i);
            let op = match (s.get(i), s.get(i + 1)) {
                (Some('='), Some('~')) => (Op::Re, 2),
                (Some('!'), Some('~')) => (Op::Nre, 2),
                (Some('!'), Some('=')) => (Op::Ne, 2),
                (Some('='), _) => (Op::Eq, 1),
                _ => {
                    return Err(format!(
                        "1:{}: parse error: unexpected character after label name {label:?}",
                        i + 1
                    ))
                }
            };
            i += op.1;
            skip_ws(&mut i);
            let quote = match s.get(i) {
                Some(c @ ('"' | '\'' | '`')) => *c,
                _ => {
                    return Err(format!(
                        "1:{}: parse error: unexpected character in label matcher, expected string",
                        i + 1
                    ))
                }
            };
            i += 1;
            let mut value = String::new();
            loop {
                match s.get(i) {
                    None => return Err("parse error: unterminated quoted string".into()),
                    Some(c) if *c == quote => {
                        i += 1;
                        break;
                    }
                    Some('\\') if quote != '`' => {
                        // PromQL strings use Go escapes; keep the escaped character
                        // (for regexes, keep the backslash so `\.` stays literal).
                        let next = s
                            .get(i + 1)
                            .copied()
                            .ok_or("parse error: unterminated quoted string")?;
                        match next {
                            'n' => value.push('\n'),
                            't' => value.push('\t'),
                            '"' | '\'' | '\\' => value.push(next),
                            other => {
                                value.push('\\');
                                value.push(other);
                            }
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
            let alternatives = match op.0 {
                Op::Re | Op::Nre => compile_regex(&value)?,
                _ => vec![],
            };
            matchers.push(Matcher {
                label,
                op: op.0,
                value,
                alternatives,
            });
            skip_ws(&mut i);
            match s.get(i) {
                Some(',') => i += 1,
                Some('}') => {
                    i += 1;
                    break;
                }
                _ => return Err(format!("1:{}: parse error: unexpected character in label matching, expected \",\" or \"}}\"", i + 1)),
            }
        }
    }
    skip_ws(&mut i);
    if i != s.len() || matchers.is_empty() {
        return Err(unsupported());
    }
    if matchers.iter().all(|m| m.matches("")) {
        return Err("vector selector must contain at least one non-empty matcher".into());
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(q: &str) -> Vec<Matcher> {
        parse_selector(q).unwrap_or_default()
    }

    #[test]
    fn parses_selectors() {
        let m = sel("up{service=\"payment-service\"}");
        assert_eq!(m.len(), 2);
        assert!(m[0].matches("up") && !m[0].matches("upx"));
        let m = sel("{__name__=~\"up|process_memory_percent\", service=\"x\",}");
        assert!(m[0].matches("process_memory_percent") && !m[0].matches("db_pool_wait_seconds"));
        let m = sel("{__name__=~\"db_pool_.*\",service!=\"y\"}");
        assert!(m[0].matches("db_pool_wait_seconds") && !m[1].matches("y"));
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("").is_err());
        assert!(parse_selector("{service=~\".*\"}").is_err());
        assert!(parse_selector("{__name__=~\"(a|b)\"}").is_err());
    }
}
