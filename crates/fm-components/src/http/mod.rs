//! `http_request` (alias `http-request`): one HTTP request per attempt.
//!
//! Config: `url` (template), `method` (default GET; a literal or a template), `headers` (values
//! are templates), `query_params` (alias `params`; arrays repeat the parameter), one of `body`
//! (any JSON, sent as JSON), `form` (an object, sent url-encoded) or `text` (a string template,
//! sent as text/plain), `timeout` (ms or "30s"; default 30 s), `follow_redirects` (default true,
//! at most 10), `expect_status` (200, [200, 404], "2xx", "200-299"; default any 2xx),
//! `max_body_bytes` (default 10 MiB), `read_only` (default: true for GET/HEAD/OPTIONS only; set
//! it on a query sent as POST, such as a log search, so that `--dry-run` still sends it).
//!
//! Output: `{status_code, headers, body, elapsed_ms, success, url}`; `body` is parsed JSON when
//! the answer is JSON, text otherwise; `success` is whether the status is 2xx. A status outside
//! `expect_status` fails the attempt with kind `http_status`, carrying that output so a retry
//! condition can read `output.status_code`.
//!
//! In a FlowMason 1.x pipeline, as in FlowMason: `timeout` is in seconds (1 to 300), and with
//! no `expect_status` no status fails the stage (read `success`).
//!
//! Values interpolated into the URL are encoded for where they land (see [`url`]); with
//! `--dry-run`, [`fm_core::DRY_RUN_RULE`].

pub mod allow;
mod exchange;
pub(crate) mod status;
pub(crate) mod transport;
pub(crate) mod url;

use std::sync::Arc;
use std::time::Duration;

use fm_core::model::stage_fields::read_duration_ms;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageError, StageRuntime};
use fm_expr::{Template, Value};
use reqwest::Method;

use self::status::ExpectStatus;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
pub const MAX_REDIRECTS: usize = 10;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The `http_request` component. Holds the one connection-pooled client every stage shares.
pub struct HttpRequest {
    client: transport::LazyClient,
    allow: allow::HostAllowlist,
}

impl HttpRequest {
    pub fn new() -> Self {
        HttpRequest {
            client: transport::new_client(),
            allow: allow::HostAllowlist::any(),
        }
    }

    /// Requests (and redirects) may only reach these hosts; anything else fails the stage.
    pub fn with_allowed_hosts(mut self, allow: allow::HostAllowlist) -> Self {
        self.allow = allow;
        self
    }
}

impl Default for HttpRequest {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone)]
enum MethodSpec {
    Literal(Method),
    Template(Template),
}

#[derive(Debug, Clone)]
enum BodySpec {
    None,
    Json(ValueTemplate),
    Form(ValueTemplate),
    Text(Template),
}

/// A compiled `http_request` stage.
#[derive(Debug)]
pub struct HttpRequestRuntime {
    client: transport::LazyClient,
    url: Template,
    method: MethodSpec,
    headers: Option<ValueTemplate>,
    query: Option<ValueTemplate>,
    body: BodySpec,
    timeout: Duration,
    follow_redirects: bool,
    expect: ExpectStatus,
    max_body_bytes: u64,
    /// Declared read-only by the pipeline's author: a dry run sends it whatever its method.
    pub(crate) read_only: bool,
    pub(crate) allow: allow::HostAllowlist,
}

impl Component for HttpRequest {
    fn name(&self) -> &'static str {
        "http_request"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["http-request"]
    }

    fn summary(&self) -> &'static str {
        "Send an HTTP request (JSON, form or text body) and return status, headers and body"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let mut ok = true;
        let url = read_url(r);
        let method = read_method(r);
        let headers = read_object(r, "headers", &[], true);
        let query = read_object(r, "query_params", &["params"], false);
        let body = read_body(r);
        let timeout = if r.dialect().is_flowmason() {
            read_timeout_seconds(r)
        } else {
            read_duration_ms(r, "timeout")
        };
        let timeout = match timeout {
            Some(d) if d.is_zero() => {
                let p = r.key_path("timeout");
                r.problem("invalid_value", p, "timeout must be more than 0 ms");
                ok = false;
                DEFAULT_TIMEOUT
            }
            Some(d) => d,
            None => DEFAULT_TIMEOUT,
        };
        let follow_redirects = r.bool("follow_redirects", &[]).unwrap_or(true);
        let read_only = r.bool("read_only", &[]).unwrap_or(false);
        if let Some((path, v)) = r.raw("verify_ssl", &[]) {
            if v != &Value::Bool(true) {
                r.problem_with_hint(
                    "not_supported",
                    path,
                    "fm always verifies TLS certificates ('verify_ssl' can only be true)",
                    "use http:// for a service without TLS, or give it a certificate this machine trusts",
                );
                ok = false;
            }
        }
        let expect = match r.raw("expect_status", &["expected_status"]) {
            None if r.dialect().is_flowmason() => ExpectStatus::any(),
            None => ExpectStatus::default(),
            Some((path, v)) => match ExpectStatus::parse(v) {
                Ok(e) => e,
                Err(message) => {
                    r.problem_with_hint(
                        "invalid_value",
                        path,
                        message,
                        "for example 200, [200, 404] or \"2xx\"",
                    );
                    ok = false;
                    ExpectStatus::default()
                }
            },
        };
        let max_body_bytes = match r.u64("max_body_bytes", &[]) {
            Some(0) => {
                let p = r.key_path("max_body_bytes");
                r.problem("invalid_value", p, "max_body_bytes must be more than 0");
                ok = false;
                DEFAULT_MAX_BODY_BYTES
            }
            Some(n) => n,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let (url, method, headers, query, body) =
            (url?, method?, headers.ok()?, query.ok()?, body?);
        if !ok {
            return None;
        }
        Some(Arc::new(HttpRequestRuntime {
            client: self.client.clone(),
            url,
            method,
            headers,
            query,
            body,
            timeout,
            follow_redirects,
            expect,
            max_body_bytes,
            read_only,
            allow: self.allow.clone(),
        }))
    }
}

/// FlowMason's `timeout`: whole seconds, 1 to 300 (its class refuses anything else).
fn read_timeout_seconds(r: &mut ConfigReader<'_, '_>) -> Option<Duration> {
    let (path, v) = r.raw("timeout", &[])?;
    match v.as_f64() {
        Some(s) if (1.0..=300.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            let hint = if s > 300.0 && s <= 300_000.0 {
                format!(
                    "{s} seconds is over FlowMason's limit of 300 (FlowMason refuses it too); if {s} was meant as milliseconds, write {}",
                    s / 1000.0
                )
            } else {
                "for example 30 for 30 seconds".to_owned()
            };
            r.problem_with_hint(
                "invalid_value",
                path,
                format!("in a FlowMason pipeline http_request's timeout is in seconds, from 1 to 300; got {s}"),
                hint,
            );
            None
        }
        None => {
            r.problem_with_hint(
                "wrong_type",
                path,
                "in a FlowMason pipeline http_request's timeout is a number of seconds",
                "for example 30",
            );
            None
        }
    }
}

fn read_url(r: &mut ConfigReader<'_, '_>) -> Option<Template> {
    if !r.has("url", &["endpoint"]) {
        r.missing("url");
        return None;
    }
    let t = r.template("url", &["endpoint"])?;
    if t.is_literal() {
        if let Err(message) = url::parse(t.source()) {
            let p = r.key_path("url");
            r.problem("invalid_url", p, message);
            return None;
        }
    }
    Some(t)
}

fn read_method(r: &mut ConfigReader<'_, '_>) -> Option<MethodSpec> {
    let Some((path, v)) = r.raw("method", &[]) else {
        return Some(MethodSpec::Literal(Method::GET));
    };
    let Value::String(s) = v else {
        r.problem(
            "wrong_type",
            path,
            "method must be a string such as \"POST\"",
        );
        return None;
    };
    if s.contains("{{") {
        return r.template("method", &[]).map(MethodSpec::Template);
    }
    match parse_method(s) {
        Some(m) => Some(MethodSpec::Literal(m)),
        None => {
            let hint = fm_core::problem::did_you_mean(&s.to_ascii_uppercase(), METHODS)
                .map_or_else(
                    || format!("one of {}", METHODS.join(", ")),
                    |m| format!("did you mean '{m}'?"),
                );
            r.problem_with_hint(
                "invalid_value",
                path,
                format!("unknown HTTP method '{s}'"),
                hint,
            );
            None
        }
    }
}

pub(crate) fn parse_method(s: &str) -> Option<Method> {
    let upper = s.trim().to_ascii_uppercase();
    METHODS
        .contains(&upper.as_str())
        .then(|| Method::from_bytes(upper.as_bytes()).ok())
        .flatten()
}

/// A `{{ }}` template of `config.<key>` that failed to render.
pub(crate) fn template_error(e: &fm_expr::Error, key: &str) -> StageError {
    StageError::new(ErrorKind::Template, format!("config.{key}: {}", e.render())).retryable(false)
}

/// Methods that change nothing: sent even in a dry run, and safe to repeat.
pub(crate) fn is_safe(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD || *m == Method::OPTIONS
}

/// An object whose values are templates (or one template producing an object). `Err` when
/// present but unusable (the problem is recorded).
fn read_object(
    r: &mut ConfigReader<'_, '_>,
    key: &'static str,
    aliases: &[&'static str],
    header_names: bool,
) -> Result<Option<ValueTemplate>, ()> {
    let Some((path, v)) = r.raw(key, aliases) else {
        return Ok(None);
    };
    match v {
        Value::Object(map) => {
            let mut ok = true;
            if header_names {
                for k in map.keys() {
                    if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                        r.problem(
                            "invalid_value",
                            format!("{path}.{k}"),
                            format!("'{k}' is not a valid HTTP header name"),
                        );
                        ok = false;
                    }
                }
            }
            let t = r.compile_value(&path, v).ok_or(())?;
            if ok {
                Ok(Some(t))
            } else {
                Err(())
            }
        }
        Value::String(s) if s.contains("{{") => r.compile_value(&path, v).map(Some).ok_or(()),
        other => {
            let found = fm_core::model::reader::json_type_name(other);
            r.problem(
                "wrong_type",
                path,
                format!("expected an object, found {found}"),
            );
            Err(())
        }
    }
}

fn read_body(r: &mut ConfigReader<'_, '_>) -> Option<BodySpec> {
    let given: Vec<&str> = [
        ("body", r.has("body", &[])),
        ("form", r.has("form", &[])),
        ("text", r.has("text", &[])),
    ]
    .into_iter()
    .filter_map(|(k, yes)| yes.then_some(k))
    .collect();
    if given.len() > 1 {
        let p = r.key_path(given[1]);
        r.problem_with_hint(
            "conflicting_keys",
            p,
            format!(
                "give at most one of body, form and text (found {})",
                given.join(" and ")
            ),
            "body is sent as JSON, form as application/x-www-form-urlencoded, text as text/plain",
        );
        return None;
    }
    match given.first().copied() {
        Some("body") => r.value_template("body", &[]).map(BodySpec::Json),
        Some("form") => read_object(r, "form", &[], false)
            .ok()
            .flatten()
            .map(BodySpec::Form),
        Some("text") => r.template("text", &[]).map(BodySpec::Text),
        _ => Some(BodySpec::None),
    }
}
