//! Executing an `http_request` stage: render the request, send it (following redirects by hand),
//! read the answer under the body cap, and judge its status.

use std::time::Instant;

use fm_core::{ErrorKind, LogLevel, StageContext, StageError, StageRuntime};
use fm_expr::{to_text, Value};
use futures::future::BoxFuture;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Map};
use url::Url;

use super::status::{is_retryable_status, millis, retry_after};
use super::transport::{clip, lossy_text, read_capped, transport_error, USER_AGENT};
use super::{
    is_safe, parse_method, template_error, url as safe_url, BodySpec, HttpRequestRuntime,
    MethodSpec, MAX_REDIRECTS,
};

/// The request as it will be sent.
struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    /// The body as the dry-run description shows it.
    shown_body: Value,
}

impl StageRuntime for HttpRequestRuntime {
    fn idempotent(&self) -> bool {
        // A method chosen by a template could be anything: assume it changes something.
        self.read_only || matches!(&self.method, MethodSpec::Literal(m) if is_safe(m))
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(self.run(cx))
    }
}

fn config_error(message: impl Into<String>) -> StageError {
    StageError::new(ErrorKind::Config, message).retryable(false)
}

fn render_value(
    t: &fm_core::model::ValueTemplate,
    cx: &StageContext<'_>,
    key: &str,
) -> Result<Value, StageError> {
    t.render(cx.scope)
        .map_err(|e| StageError::template(&e, &format!("config.{key}")))
}

fn render_object(
    t: &fm_core::model::ValueTemplate,
    cx: &StageContext<'_>,
    key: &str,
) -> Result<Map<String, Value>, StageError> {
    match render_value(t, cx, key)? {
        Value::Object(m) => Ok(m),
        other => Err(config_error(format!(
            "config.{key} must be an object, but its template produced {}",
            fm_core::model::reader::json_type_name(&other)
        ))),
    }
}

/// `(name, text)` pairs of a query or form object: a list repeats the name, null is left out.
fn pairs(map: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::Array(items) => out.extend(
                items
                    .iter()
                    .filter(|i| !i.is_null())
                    .map(|i| (k.clone(), to_text(i).into_owned())),
            ),
            other => out.push((k.clone(), to_text(other).into_owned())),
        }
    }
    out
}

fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "x-api-key" | "api-key" | "cookie"
    ) || [
        "token", "secret", "password", "apikey", "api-key", "api_key",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn header_text(v: &HeaderValue) -> String {
    match v.to_str() {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
    }
}

/// Lowercase names; repeated headers joined with ", ".
fn headers_json(h: &HeaderMap, mask: bool) -> Value {
    let mut out = Map::new();
    for name in h.keys() {
        let joined = h
            .get_all(name)
            .iter()
            .map(header_text)
            .collect::<Vec<_>>()
            .join(", ");
        let shown = if mask && is_sensitive_header(name.as_str()) {
            "***".to_owned()
        } else {
            joined
        };
        out.insert(name.as_str().to_owned(), Value::String(shown));
    }
    Value::Object(out)
}

fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl HttpRequestRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let req = self.build(cx)?;
        if cx.dry_run && !is_safe(&req.method) && !self.read_only {
            return Ok(describe_unsent(cx, &req));
        }
        let client = self
            .client
            .get()
            .map_err(|e| StageError::new(ErrorKind::Internal, e).retryable(false))?;
        let what = format!("{} {}", req.method, req.url);
        let started = Instant::now();
        let exchange = async {
            let (mut resp, final_url) = self.send(client, &req, &what).await?;
            let body = read_capped(&mut resp, self.max_body_bytes)
                .await
                .map_err(|e| transport_error(&e, &final_url, &what, self.timeout))?;
            Ok::<_, StageError>((resp, final_url, body))
        };
        let (resp, final_url, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(StageError::new(
                    ErrorKind::Timeout,
                    format!("{what}: no answer within {} ms", self.timeout.as_millis()),
                ))
            }
        };
        let elapsed_ms = millis(started.elapsed());
        let status = resp.status();
        let code = status.as_u16();
        let content_type = resp.headers().get(header::CONTENT_TYPE).map(header_text);
        let body_value = match body.truncated_total {
            Some(_) => Value::String(lossy_text(&body.bytes)),
            None => decode_body(&body.bytes, content_type.as_deref(), cx, &what),
        };
        let mut out = Map::new();
        out.insert("status_code".into(), Value::from(code));
        out.insert("headers".into(), headers_json(resp.headers(), false));
        out.insert("body".into(), body_value);
        out.insert("elapsed_ms".into(), Value::from(elapsed_ms));
        out.insert("success".into(), Value::Bool(status.is_success()));
        out.insert("url".into(), Value::String(final_url.to_string()));
        if let Some(total) = body.truncated_total {
            out.insert("body_truncated".into(), Value::Bool(true));
            out.insert("body_bytes".into(), Value::from(total));
            cx.warn(format!(
                "{what}: the answer's body is at least {total} bytes, more than max_body_bytes ({}); \
                 output.body holds only the first {} bytes, as text",
                self.max_body_bytes, self.max_body_bytes
            ));
        }
        let output = Value::Object(out);
        if self.expect.accepts(code) {
            return Ok(output);
        }
        let reason = status.canonical_reason().unwrap_or("");
        let snippet = match output.get("body") {
            Some(Value::String(s)) => clip(s.trim(), 300),
            Some(v) => clip(&to_text(v), 300),
            None => String::new(),
        };
        let mut message = format!("{} {final_url} answered {code} {reason}", req.method)
            .trim_end()
            .to_owned();
        if !snippet.is_empty() {
            message.push_str(": ");
            message.push_str(&snippet);
        }
        let expected = self.expect.describe();
        if expected != "2xx" {
            message.push_str(&format!(" (expected {expected})"));
        }
        let mut err = StageError::new(ErrorKind::HttpStatus, message)
            .retryable(is_retryable_status(code))
            .with_output(output);
        err.retry_after_ms = retry_after(resp.headers()).map(millis);
        Err(err)
    }

    /// Renders every part of the request. Nothing is sent.
    fn build(&self, cx: &StageContext<'_>) -> Result<Request, StageError> {
        let method = match &self.method {
            MethodSpec::Literal(m) => m.clone(),
            MethodSpec::Template(t) => {
                let s = t
                    .render_string(cx.scope)
                    .map_err(|e| template_error(&e, "method"))?;
                parse_method(&s).ok_or_else(|| {
                    config_error(format!(
                        "config.method rendered to '{s}', which is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
                    ))
                })?
            }
        };
        let parts = self
            .url
            .render_parts(cx.scope)
            .map_err(|e| template_error(&e, "url"))?;
        let text =
            safe_url::join_parts(&parts).map_err(|m| config_error(format!("config.url: {m}")))?;
        let mut url =
            safe_url::parse(&text).map_err(|m| config_error(format!("config.url: {m}")))?;
        if let Some(q) = &self.query {
            let params = pairs(&render_object(q, cx, "query_params")?);
            if !params.is_empty() {
                url.query_pairs_mut().extend_pairs(params);
            }
        }

        let mut headers = HeaderMap::new();
        if let Some(h) = &self.headers {
            for (k, v) in render_object(h, cx, "headers")? {
                if v.is_null() {
                    continue;
                }
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    config_error(format!(
                        "config.headers: '{k}' is not a valid HTTP header name"
                    ))
                })?;
                let value = HeaderValue::from_str(&to_text(&v)).map_err(|_| {
                    config_error(format!(
                        "config.headers.{k}: the value cannot be sent in a header (it has a line break or another control character)"
                    ))
                })?;
                headers.append(name, value);
            }
        }
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }

        let (body, shown_body, default_type) = match &self.body {
            BodySpec::None => (None, Value::Null, None),
            BodySpec::Json(t) => {
                let v = render_value(t, cx, "body")?;
                let bytes = serde_json::to_vec(&v).map_err(|e| {
                    StageError::new(
                        ErrorKind::Internal,
                        format!("cannot encode the body as JSON: {e}"),
                    )
                })?;
                (Some(bytes), v, Some("application/json"))
            }
            BodySpec::Form(t) => {
                let map = render_object(t, cx, "form")?;
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs(&map))
                    .finish();
                (
                    Some(encoded.into_bytes()),
                    Value::Object(map),
                    Some("application/x-www-form-urlencoded"),
                )
            }
            BodySpec::Text(t) => {
                let s = t
                    .render_string(cx.scope)
                    .map_err(|e| template_error(&e, "text"))?;
                (
                    Some(s.clone().into_bytes()),
                    Value::String(s),
                    Some("text/plain; charset=utf-8"),
                )
            }
        };
        if let Some(ct) = default_type {
            if !headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
        }
        Ok(Request {
            method,
            url,
            headers,
            body,
            shown_body,
        })
    }

    /// Sends the request, following redirects when asked (at most [`MAX_REDIRECTS`]): 301, 302
    /// and 303 turn a POST (or any non-GET) into a body-less GET, 307 and 308 repeat it as is;
    /// credentials are not carried to another origin.
    async fn send(
        &self,
        client: &reqwest::Client,
        req: &Request,
        what: &str,
    ) -> Result<(reqwest::Response, Url), StageError> {
        let mut method = req.method.clone();
        let mut url = req.url.clone();
        let mut headers = req.headers.clone();
        let mut body = req.body.clone();
        let mut hops = 0;
        loop {
            if !self.allow.allows(&url) {
                return Err(StageError::new(
                    ErrorKind::Config,
                    format!(
                        "{what}: {} is not among the hosts this server may reach (allowed_hosts in its config); not sent",
                        url.host_str().unwrap_or("the host")
                    ),
                )
                .retryable(false));
            }
            let mut rb = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| transport_error(&e, &url, what, self.timeout))?;
            let status = resp.status().as_u16();
            if !self.follow_redirects || !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((resp, url));
            }
            let Some(location) = resp.headers().get(header::LOCATION) else {
                return Ok((resp, url));
            };
            if hops == MAX_REDIRECTS {
                return Err(StageError::new(
                    ErrorKind::InvalidResponse,
                    format!("{what}: more than {MAX_REDIRECTS} redirects (the last one to {url}); set follow_redirects: false to see the answer itself"),
                )
                .retryable(false));
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    StageError::new(
                        ErrorKind::InvalidResponse,
                        format!(
                            "{url} answered {status} with a Location that is not an http(s) URL: '{}'",
                            header_text(location)
                        ),
                    )
                    .retryable(false)
                })?;
            if matches!(status, 301..=303) && method != Method::GET && method != Method::HEAD {
                method = Method::GET;
                body = None;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
            }
            if !same_origin(&url, &next) {
                for h in [
                    header::AUTHORIZATION,
                    header::PROXY_AUTHORIZATION,
                    header::COOKIE,
                ] {
                    headers.remove(h);
                }
                headers.remove("x-api-key");
            }
            url = next;
            hops += 1;
        }
    }
}

/// The body as output: parsed JSON when the answer says it is JSON (or says nothing and parses
/// as JSON), text otherwise.
fn decode_body(
    bytes: &[u8],
    content_type: Option<&str>,
    cx: &StageContext<'_>,
    what: &str,
) -> Value {
    if bytes.is_empty() {
        return Value::String(String::new());
    }
    match content_type {
        Some(ct) if is_json_type(ct) => match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                cx.warn(format!(
                    "{what}: the answer says it is JSON ({ct}) but does not parse ({e}); output.body is its text"
                ));
                Value::String(lossy_text(bytes))
            }
        },
        Some(_) => Value::String(lossy_text(bytes)),
        None => serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(lossy_text(bytes))),
    }
}

/// `--dry-run` and a method that may change something: describe the request, send nothing.
fn describe_unsent(cx: &StageContext<'_>, req: &Request) -> Value {
    let line = format!("dry run: {} {} not sent", req.method, req.url);
    cx.log(LogLevel::Info, line.clone(), None);
    json!({
        "dry_run": true,
        "sent": false,
        "status_code": null,
        "note": format!("{line}: {}", fm_core::DRY_RUN_RULE),
        "request": {
            "method": req.method.as_str(),
            "url": req.url.as_str(),
            "headers": headers_json(&req.headers, true),
            "body": req.shown_body,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers() {
        for h in [
            "Authorization",
            "x-api-key",
            "X-Auth-Token",
            "X-Client-Secret",
            "cookie",
        ] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in ["content-type", "user-agent", "accept"] {
            assert!(!is_sensitive_header(h), "{h}");
        }
    }

    #[test]
    fn json_types() {
        assert!(is_json_type("application/json; charset=utf-8"));
        assert!(is_json_type("application/problem+json"));
        assert!(!is_json_type("text/plain"));
    }

    #[test]
    fn pairs_repeat_lists_and_skip_null() {
        let m = serde_json::json!({"a": [1, "x"], "b": null, "c": true});
        let Value::Object(m) = m else { return };
        assert_eq!(
            pairs(&m),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("a".to_owned(), "x".to_owned()),
                ("c".to_owned(), "true".to_owned())
            ]
        );
    }
}
