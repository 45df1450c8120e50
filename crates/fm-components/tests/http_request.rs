//! http_request against stand-in servers: every config key, bodies, status handling, retries,
//! transport failures, URL safety, the body cap and dry runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{dead_port, error_kind, error_message, output, problems, run, serve, Opts, Reply};
use fm_core::{ErrorKind, RunStatus, StageStatus};
use serde_json::{json, Value};

fn stage(config: Value) -> Value {
    json!({"id": "call", "component": "http_request", "config": config})
}

#[tokio::test]
async fn get_with_query_params_and_headers() {
    let srv = serve(|_, _| {
        Reply::json(200, json!([{"version": "v42", "age_minutes": 30}]))
            .header("x-multi", "a")
            .header("x-multi", "b")
            .header("X-Upper", "Yes")
    })
    .await;
    let rec = run(
        stage(json!({
            "url": "{{input.deploy_api}}/deployments",
            "method": "GET",
            "headers": {"X-Service": "{{input.service}}", "Accept": "application/json"},
            "query_params": {"service": "{{input.service}}", "since": "-24h", "limit": 5, "tag": ["a b", "c&d"], "skip": null},
            "timeout": 10000
        })),
        Opts::default().input(json!({"deploy_api": srv.base, "service": "payment-service"})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.only();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/deployments");
    assert_eq!(
        seen.query.as_deref(),
        Some("service=payment-service&since=-24h&limit=5&tag=a+b&tag=c%26d")
    );
    assert_eq!(seen.header("x-service"), Some("payment-service"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(
        seen.header("user-agent"),
        Some(concat!("fm/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(seen.header("content-type"), None);

    let out = output(&rec, "call");
    assert_eq!(out["status_code"], 200);
    assert_eq!(out["body"][0]["version"], "v42");
    assert_eq!(out["headers"]["x-multi"], "a, b");
    assert_eq!(out["headers"]["x-upper"], "Yes");
    assert_eq!(out["headers"]["content-type"], "application/json");
    assert!(out["elapsed_ms"].is_u64());
    let url = out["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/deployments?service=payment-service", srv.base)),
        "{url}"
    );
}

#[tokio::test]
async fn post_json_body_keeps_types_and_content_type() {
    let srv = serve(|_, _| Reply::json(202, json!({"ok": true}))).await;
    let rec = run(
        json!([{
            "id": "patch", "component": "http-request",
            "config": {
                "url": "{{input.k8s_api}}/apis/apps/v1/namespaces/production/deployments/{{input.service}}/scale",
                "method": "PATCH",
                "headers": {"Authorization": "Bearer {{secrets.K8S_TOKEN}}", "Content-Type": "application/strategic-merge-patch+json"},
                "body": {"spec": {"replicas": "{{input.replicas | default(3)}}"}, "note": "scale {{input.service}}"}
            }
        }, {
            "id": "post", "component": "http_request",
            "config": {"url": "{{input.k8s_api}}/events", "method": "post", "body": ["{{input.service}}", 1, null]}
        }]),
        Opts::default()
            .input(json!({"k8s_api": srv.base, "service": "payment-service"}))
            .secret("K8S_TOKEN", "k8s-secret-token"),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.seen();
    let patch = seen.iter().find(|s| s.method == "PATCH").unwrap();
    assert_eq!(
        patch.path,
        "/apis/apps/v1/namespaces/production/deployments/payment-service/scale"
    );
    assert_eq!(
        patch.header("authorization"),
        Some("Bearer k8s-secret-token")
    );
    assert_eq!(
        patch.header("content-type"),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(
        patch.json(),
        json!({"spec": {"replicas": 3}, "note": "scale payment-service"})
    );
    let post = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.json(), json!(["payment-service", 1, null]));
    assert_eq!(output(&rec, "patch")["status_code"], 202);
    // The token reached the server, but the record never shows it.
    let text = serde_json::to_string(&rec).unwrap();
    assert!(!text.contains("k8s-secret-token"));
}

#[tokio::test]
async fn form_body_is_urlencoded() {
    let srv = serve(|_, _| Reply::text(200, "ok")).await;
    let rec = run(
        stage(json!({
            "url": "{{input.base}}/token",
            "method": "POST",
            "form": {"grant_type": "client_credentials", "scope": ["read", "write all"], "who": "{{input.who}}", "n": 2}
        })),
        Opts::default().input(json!({"base": srv.base, "who": "a&b=c"})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.only();
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.text(),
        "grant_type=client_credentials&scope=read&scope=write+all&who=a%26b%3Dc&n=2"
    );
    assert_eq!(output(&rec, "call")["body"], "ok");
}

#[tokio::test]
async fn text_body_is_text_plain_unless_told() {
    let srv = serve(|_, _| Reply::bare(200, "{\"parsed\": true}")).await;
    let rec = run(
        json!([
            {"id": "plain", "component": "http_request",
             "config": {"url": "{{input.base}}/t", "method": "PUT", "text": "service {{input.s}} is {{input.n}}"}},
            {"id": "csv", "component": "http_request",
             "config": {"url": "{{input.base}}/c", "method": "POST", "text": "a,b\n1,2", "headers": {"content-type": "text/csv"}}}
        ]),
        Opts::default().input(json!({"base": srv.base, "s": "api", "n": 3})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.seen();
    let t = seen.iter().find(|s| s.path == "/t").unwrap();
    assert_eq!(t.method, "PUT");
    assert_eq!(t.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(t.text(), "service api is 3");
    let c = seen.iter().find(|s| s.path == "/c").unwrap();
    assert_eq!(c.header("content-type"), Some("text/csv"));
    assert_eq!(c.text(), "a,b\n1,2");
    // No Content-Type in the answer but it parses as JSON: parsed.
    assert_eq!(output(&rec, "plain")["body"], json!({"parsed": true}));
}

#[tokio::test]
async fn answer_bodies_json_text_and_mislabelled() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/text" => Reply::text(200, "{\"looks\": \"like json\"}"),
        "/bare" => Reply::bare(200, "just words"),
        "/bad-json" => Reply::bare(200, "not json").header("content-type", "application/json"),
        "/problem" => {
            Reply::bare(200, "{\"a\":1}").header("content-type", "application/problem+json")
        }
        _ => Reply::bare(204, ""),
    })
    .await;
    let st = |id: &str| json!({"id": id, "component": "http_request", "config": {"url": format!("{{{{input.base}}}}/{id}")}});
    let rec = run(
        json!([
            st("text"),
            st("bare"),
            st("bad-json"),
            st("problem"),
            st("empty")
        ]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    // A text/plain answer stays text even when it would parse.
    assert_eq!(output(&rec, "text")["body"], "{\"looks\": \"like json\"}");
    assert_eq!(output(&rec, "bare")["body"], "just words");
    assert_eq!(output(&rec, "problem")["body"], json!({"a": 1}));
    assert_eq!(output(&rec, "empty")["body"], "");
    assert_eq!(output(&rec, "empty")["status_code"], 204);
    // Says JSON, is not: kept as text, with a warning.
    assert_eq!(output(&rec, "bad-json")["body"], "not json");
    assert!(
        rec.warnings.iter().any(|w| w.stage.as_deref() == Some("bad-json") && w.message.contains("does not parse")),
        "{:#?}",
        rec.warnings
    );
}

#[tokio::test]
async fn method_from_a_template_and_head() {
    let srv = serve(|_, _| Reply::text(200, "body")).await;
    let rec = run(
        json!([
            {"id": "m", "component": "http_request", "config": {"url": "{{input.base}}/m", "method": "{{input.method}}", "body": {"x": 1}}},
            {"id": "h", "component": "http_request", "config": {"url": "{{input.base}}/h", "method": "HEAD"}},
            {"id": "bad", "component": "http_request", "depends_on": ["m", "h"], "config": {"url": "{{input.base}}/b", "method": "{{input.bad}}"}}
        ]),
        Opts::default().input(json!({"base": srv.base, "method": "delete", "bad": "FETCH"})),
    )
    .await;
    let seen = srv.seen();
    assert!(seen.iter().any(|s| s.method == "DELETE" && s.path == "/m"));
    assert!(seen.iter().any(|s| s.method == "HEAD" && s.path == "/h"));
    assert_eq!(output(&rec, "h")["body"], "");
    assert_eq!(error_kind(&rec, "bad"), ErrorKind::Config);
    assert!(
        error_message(&rec, "bad").contains("'FETCH'"),
        "{}",
        error_message(&rec, "bad")
    );
    assert!(!seen.iter().any(|s| s.path == "/b"));
}

#[tokio::test]
async fn config_problems_are_reported_at_load() {
    let ps = problems(json!([
        {"id": "a", "component": "http_request", "config": {"url": "http://h/x", "timout": 5}},
        {"id": "b", "component": "http_request", "config": {"url": "http://h/x", "body": {}, "form": {}}},
        {"id": "c", "component": "http_request", "config": {"url": "http://h/x", "method": "PATCHH"}},
        {"id": "d", "component": "http_request", "config": {"url": "http://h/x", "expect_status": "6xx"}},
        {"id": "e", "component": "http_request", "config": {"method": "GET"}},
        {"id": "f", "component": "http_request", "config": {"url": "not a url"}},
        {"id": "g", "component": "http_request", "config": {"url": "http://h/x", "headers": {"bad header": "x"}}},
        {"id": "h", "component": "http_request", "config": {"url": "http://h/x", "timeout": "soon"}},
        {"id": "i", "component": "http_request", "config": {"url": "http://h/x", "query_params": [1]}},
        {"id": "j", "component": "http_request", "config": {"url": "http://h/x", "max_body_bytes": 0}}
    ]));
    let find = |stage: &str| {
        problems_for(&ps, stage).unwrap_or_else(|| panic!("no problem for stage {stage}: {ps:#?}"))
    };
    let a = find("a");
    assert_eq!(a.code, "unknown_key");
    assert_eq!(a.hint.as_deref(), Some("did you mean 'timeout'?"));
    assert_eq!(find("b").code, "conflicting_keys");
    assert_eq!(find("c").hint.as_deref(), Some("did you mean 'PATCH'?"));
    assert!(find("d").message.contains("6xx"));
    assert_eq!(find("e").code, "missing_key");
    assert_eq!(find("f").code, "invalid_url");
    assert!(find("g").message.contains("header name"));
    assert_eq!(find("h").path, "stages[7].config.timeout");
    assert_eq!(find("i").code, "wrong_type");
    assert!(find("j").message.contains("max_body_bytes"));
}

fn problems_for<'a>(ps: &'a [fm_core::Problem], stage: &str) -> Option<&'a fm_core::Problem> {
    ps.iter().find(|p| p.stage.as_deref() == Some(stage))
}

#[tokio::test]
async fn expect_status_accepts_and_rejects() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/missing" => Reply::json(404, json!({"error": "no such thing"})),
        _ => Reply::json(
            400,
            json!({"status": "invalid event", "errors": ["routing_key is invalid"]}),
        ),
    })
    .await;
    let rec = run(
        json!([
            {"id": "ok404", "component": "http_request", "config": {"url": "{{input.base}}/missing", "expect_status": [200, 404]}},
            {"id": "class", "component": "http_request", "config": {"url": "{{input.base}}/missing", "expect_status": "4xx"}},
            {"id": "bad", "component": "http_request", "on_error": "continue",
             "retry": {"max_attempts": 3, "delay_ms": 10},
             "config": {"url": "{{input.base}}/v2/enqueue", "method": "POST", "body": {"routing_key": "x"}}},
            {"id": "strict", "component": "http_request", "on_error": "continue",
             "config": {"url": "{{input.base}}/missing", "expect_status": 200}}
        ]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.stage("ok404").unwrap().status, StageStatus::Succeeded);
    assert_eq!(output(&rec, "ok404")["status_code"], 404);
    assert_eq!(rec.stage("class").unwrap().status, StageStatus::Succeeded);

    let bad = rec.stage("bad").unwrap();
    assert_eq!(bad.status, StageStatus::Failed);
    // A 400 is not worth repeating: one attempt despite the retry policy.
    assert_eq!(bad.attempts, 1);
    let err = bad.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::HttpStatus);
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        format!(
            "POST {}/v2/enqueue answered 400 Bad Request: {{\"status\":\"invalid event\",\"errors\":[\"routing_key is invalid\"]}}",
            srv.base
        )
    );
    // The answer is kept in the record.
    assert_eq!(output(&rec, "bad")["status_code"], 400);
    assert_eq!(output(&rec, "bad")["body"]["status"], "invalid event");
    assert!(
        error_message(&rec, "strict").ends_with("(expected 200)"),
        "{}",
        error_message(&rec, "strict")
    );
}

#[tokio::test]
async fn long_error_bodies_are_clipped_in_the_message() {
    let long = "x".repeat(1000);
    let srv = serve(move |_, _| Reply::text(500, &long)).await;
    let rec = run(
        stage(json!({"url": "{{input.base}}/boom"})),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    let msg = error_message(&rec, "call");
    assert!(
        msg.starts_with(&format!(
            "GET {}/boom answered 500 Internal Server Error: xxx",
            srv.base
        )),
        "{msg}"
    );
    assert!(msg.ends_with("x…"), "{msg}");
    assert!(msg.len() < 400, "{}", msg.len());
    assert_eq!(output(&rec, "call")["body"].as_str().unwrap().len(), 1000);
}

#[tokio::test]
async fn retry_condition_sees_status_code_and_recovers() {
    let srv = serve(|_, i| {
        if i < 2 {
            Reply::text(503, "warming up")
        } else {
            Reply::json(200, json!({"status": "healthy"}))
        }
    })
    .await;
    let rec = run(
        json!({"id": "verify-health", "component": "http_request",
               "retry": {"max_attempts": 3, "delay_ms": 10, "condition": "{{output.status_code != 200}}"},
               "config": {"url": "{{input.base}}/health", "method": "GET", "timeout": 10000}}),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let s = rec.stage("verify-health").unwrap();
    assert_eq!(s.attempts, 3);
    assert_eq!(output(&rec, "verify-health")["body"]["status"], "healthy");
    assert_eq!(srv.seen().len(), 3);
}

#[tokio::test]
async fn retry_inside_config_as_the_reference_writes_it() {
    let srv = serve(|_, i| {
        if i < 1 {
            Reply::text(503, "down")
        } else {
            Reply::text(200, "up")
        }
    })
    .await;
    let rec = run(
        stage(json!({"url": "{{input.base}}/health", "timeout": 10000,
                     "retry": {"max_attempts": 6, "delay_ms": 5, "condition": "{{output.status_code != 200}}"}})),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    assert_eq!(rec.stage("call").unwrap().attempts, 2);
}

#[tokio::test]
async fn retry_condition_never_satisfied_fails_clearly() {
    let srv = serve(|_, _| Reply::text(503, "still down").header("retry-after", "0")).await;
    let rec = run(
        stage(json!({"url": "{{input.base}}/health"})).as_object().cloned().map(|mut m| {
            m.insert("retry".into(), json!({"max_attempts": 3, "delay_ms": 10, "condition": "{{output.status_code != 200}}"}));
            Value::Object(m)
        }).unwrap(),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Failed);
    let s = rec.stage("call").unwrap();
    assert_eq!(s.status, StageStatus::Failed);
    assert_eq!(s.attempts, 3);
    let msg = error_message(&rec, "call");
    assert!(
        msg.contains("answered 503 Service Unavailable: still down"),
        "{msg}"
    );
    assert!(msg.contains("gave up after 3 attempts"), "{msg}");
    assert_eq!(output(&rec, "call")["status_code"], 503);
    assert_eq!(srv.seen().len(), 3);
}

#[tokio::test]
async fn retryable_statuses_and_retry_after() {
    let srv = serve(|s, _| match s.path.as_str() {
        "/slow-down" => Reply::text(429, "rate limited").header("Retry-After", "7"),
        "/date" => {
            let when =
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
            Reply::text(503, "maintenance").header("Retry-After", &when)
        }
        "/timeout" => Reply::text(408, "too slow"),
        _ => Reply::text(403, "forbidden"),
    })
    .await;
    let st = |id: &str| json!({"id": id, "component": "http_request", "on_error": "continue", "config": {"url": format!("{{{{input.base}}}}/{id}")}});
    let rec = run(
        json!([st("slow-down"), st("date"), st("timeout"), st("forbidden")]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    let err = |id: &str| rec.stage(id).unwrap().error.clone().unwrap();
    assert!(err("slow-down").retryable);
    assert_eq!(err("slow-down").retry_after_ms, Some(7000));
    let date = err("date");
    assert!(date.retryable);
    let ms = date.retry_after_ms.unwrap();
    assert!((110_000..=120_000).contains(&ms), "{ms}");
    assert!(err("timeout").retryable);
    assert!(!err("forbidden").retryable);
    assert_eq!(err("forbidden").retry_after_ms, None);
}

#[tokio::test]
async fn timeouts_in_ms_and_as_text() {
    let srv = serve(|_, _| Reply::text(200, "late").after(Duration::from_secs(3))).await;
    let rec = run(
        json!([
            {"id": "ms", "component": "http_request", "on_error": "continue", "config": {"url": "{{input.base}}/a", "timeout": 200}},
            {"id": "text", "component": "http_request", "on_error": "continue", "config": {"url": "{{input.base}}/b", "timeout": "300ms"}}
        ]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(error_kind(&rec, "ms"), ErrorKind::Timeout);
    assert_eq!(
        error_message(&rec, "ms"),
        format!("GET {}/a: no answer within 200 ms", srv.base)
    );
    assert_eq!(error_kind(&rec, "text"), ErrorKind::Timeout);
    assert!(error_message(&rec, "text").ends_with("no answer within 300 ms"));
    assert!(rec.stage("ms").unwrap().error.as_ref().unwrap().retryable);
    assert!(rec.stage("ms").unwrap().duration_ms.unwrap() < 2000);
}

#[tokio::test]
async fn connection_refused_is_named() {
    let port = dead_port().await;
    let rec = run(
        stage(json!({"url": format!("http://127.0.0.1:{port}/health")})),
        Opts::default(),
    )
    .await;
    assert_eq!(error_kind(&rec, "call"), ErrorKind::Connection);
    let msg = error_message(&rec, "call");
    assert_eq!(
        msg,
        format!(
            "GET http://127.0.0.1:{port}/health: could not connect to 127.0.0.1:{port} (connection refused) — is the service running and the URL right?"
        )
    );
    assert!(rec.stage("call").unwrap().error.as_ref().unwrap().retryable);
}

#[tokio::test]
async fn dns_failure_is_named() {
    let rec = run(
        stage(json!({"url": "http://fm-does-not-exist.invalid/health", "timeout": 5000})),
        Opts::default(),
    )
    .await;
    let kind = error_kind(&rec, "call");
    let msg = error_message(&rec, "call");
    match kind {
        ErrorKind::Dns => assert!(
            msg.contains("could not resolve the host name 'fm-does-not-exist.invalid'"),
            "{msg}"
        ),
        // A resolver that hangs rather than failing.
        ErrorKind::Timeout => assert!(msg.contains("no answer within 5000 ms"), "{msg}"),
        other => panic!("unexpected {other:?}: {msg}"),
    }
}

#[tokio::test]
async fn tls_failure_is_named() {
    // https:// to a server that speaks plain HTTP: the handshake fails.
    let srv = serve(|_, _| Reply::text(200, "plain")).await;
    let rec = run(
        stage(json!({"url": format!("https://127.0.0.1:{}/x", srv.port), "timeout": 5000})),
        Opts::default(),
    )
    .await;
    let msg = error_message(&rec, "call");
    assert_eq!(error_kind(&rec, "call"), ErrorKind::Tls, "{msg}");
    assert!(
        msg.contains(&format!("TLS with 127.0.0.1:{} failed", srv.port)),
        "{msg}"
    );
    assert!(!rec.stage("call").unwrap().error.as_ref().unwrap().retryable);
}

#[tokio::test]
async fn interpolated_path_values_cannot_change_the_path() {
    let srv = serve(|_, _| Reply::text(200, "ok")).await;
    for (hostile, expected) in [
        (
            "../../api/v1/secrets",
            "/deployments/..%2F..%2Fapi%2Fv1%2Fsecrets/scale",
        ),
        ("x?y#z", "/deployments/x%3Fy%23z/scale"),
        ("a b", "/deployments/a%20b/scale"),
        ("100%", "/deployments/100%25/scale"),
        ("a\\..\\b", "/deployments/a%5C..%5Cb/scale"),
    ] {
        let rec = run(
            stage(json!({"url": "{{input.k8s_api}}/deployments/{{input.service}}/scale", "method": "GET"})),
            Opts::default().input(json!({"k8s_api": srv.base, "service": hostile})),
        )
        .await;
        assert_eq!(rec.status, RunStatus::Succeeded, "{hostile}: {rec:#?}");
        let last = srv.seen().pop().unwrap();
        assert_eq!(last.target, expected, "{hostile}");
        assert_eq!(last.query, None, "{hostile}");
    }
    // A whole dot-segment would climb the path even percent-encoded: refused, nothing sent.
    let before = srv.seen().len();
    let rec = run(
        stage(json!({"url": "{{input.k8s_api}}/api/v1/x/{{input.service}}/secrets"})),
        Opts::default().input(json!({"k8s_api": srv.base, "service": ".."})),
    )
    .await;
    assert_eq!(error_kind(&rec, "call"), ErrorKind::Config);
    assert_eq!(srv.seen().len(), before);
    assert!(srv
        .seen()
        .iter()
        .all(|s| !s.path.starts_with("/api/v1/secrets")));
}

#[tokio::test]
async fn interpolated_query_values_are_encoded() {
    let srv = serve(|_, _| Reply::text(200, "ok")).await;
    let rec = run(
        stage(json!({"url": "{{input.base}}/search?q={{input.q}}&n=1", "query_params": {"extra": "{{input.q}}"}})),
        Opts::default().input(json!({"base": srv.base, "q": "a&b=c #d"})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    assert_eq!(
        srv.only().query.as_deref(),
        Some("q=a%26b%3Dc%20%23d&n=1&extra=a%26b%3Dc+%23d")
    );
}

#[tokio::test]
async fn host_values_must_be_host_names() {
    let rec = run(
        stage(json!({"url": "https://{{input.service}}.internal/health"})),
        Opts::default().input(json!({"service": "evil.com/steal?x="})),
    )
    .await;
    assert_eq!(error_kind(&rec, "call"), ErrorKind::Config);
    let msg = error_message(&rec, "call");
    assert!(msg.contains("host part"), "{msg}");
    // The reference's form with a proper service name builds the URL (and fails only on DNS
    // or connection, never on config).
    let rec = run(
        stage(json!({"url": "http://{{input.service}}.invalid/health", "timeout": 3000})),
        Opts::default().input(json!({"service": "payment-service"})),
    )
    .await;
    assert_ne!(error_kind(&rec, "call"), ErrorKind::Config);
}

#[tokio::test]
async fn a_secret_base_url_is_used_as_is() {
    let srv = serve(|_, _| Reply::text(200, "ok")).await;
    let hook = format!("{}/slack/webhook/T000/B000/XXXX", srv.base);
    let rec = run(
        stage(
            json!({"url": "{{secrets.SLACK_WEBHOOK}}", "method": "POST", "body": {"text": "hi"}}),
        ),
        Opts::default().secret("SLACK_WEBHOOK", &hook),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    assert_eq!(srv.only().path, "/slack/webhook/T000/B000/XXXX");
    assert!(!serde_json::to_string(&rec)
        .unwrap()
        .contains("T000/B000/XXXX"));
}

#[tokio::test]
async fn bad_rendered_url_is_a_config_error() {
    let rec = run(
        stage(json!({"url": "{{input.base}}/x"})),
        Opts::default().input(json!({"base": "payment-service"})),
    )
    .await;
    assert_eq!(error_kind(&rec, "call"), ErrorKind::Config);
    let msg = error_message(&rec, "call");
    assert!(msg.contains("'payment-service/x' is not valid"), "{msg}");
    assert!(!rec.stage("call").unwrap().error.as_ref().unwrap().retryable);
}

#[tokio::test]
async fn body_cap_is_reported_never_silent() {
    let big = "y".repeat(5000);
    let srv = serve(move |_, _| Reply::text(200, &big)).await;
    let rec = run(
        json!([
            {"id": "capped", "component": "http_request", "config": {"url": "{{input.base}}/big", "max_body_bytes": 1000}},
            {"id": "whole", "component": "http_request", "config": {"url": "{{input.base}}/big"}}
        ]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let out = output(&rec, "capped");
    assert_eq!(out["body"].as_str().unwrap().len(), 1000);
    assert_eq!(out["body_truncated"], true);
    assert_eq!(out["body_bytes"], 5000);
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.stage.as_deref() == Some("capped") && w.message.contains("max_body_bytes")),
        "{:#?}",
        rec.warnings
    );
    let whole = output(&rec, "whole");
    assert_eq!(whole["body"].as_str().unwrap().len(), 5000);
    assert!(whole.get("body_truncated").is_none());
}

#[tokio::test]
async fn dry_run_sends_a_post_declared_read_only_and_a_retry_condition_never_loops_on_unsent() {
    let srv = serve(|_, _| Reply::json(200, json!({"logs": []}))).await;
    let rec = run(
        json!([
            {"id": "search", "component": "http_request",
             "config": {"url": "{{input.base}}/query", "method": "POST", "read_only": true, "body": {"q": "level:error"}}},
            {"id": "act", "component": "http_request",
             "retry": {"max_attempts": 5, "delay_ms": 1, "condition": "{{output.status_code != 200}}"},
             "config": {"url": "{{input.base}}/act", "method": "POST", "body": {}}}
        ]),
        Opts::default().input(json!({"base": srv.base})).dry_run(),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.seen();
    assert_eq!(seen.len(), 1, "only the read-only POST is sent: {seen:#?}");
    assert_eq!(seen[0].path, "/query");
    assert_eq!(output(&rec, "act")["dry_run"], true);
    assert_eq!(
        rec.stages.iter().find(|s| s.id == "act").unwrap().attempts,
        1
    );
}

#[tokio::test]
async fn dry_run_describes_mutations_and_sends_reads() {
    let srv = serve(|_, _| Reply::json(200, json!({"healthy": true}))).await;
    let rec = run(
        json!([
            {"id": "escalate", "component": "http_request",
             "config": {"url": "{{input.base}}/v2/enqueue", "method": "POST",
                        "headers": {"Authorization": "Bearer {{secrets.TOKEN}}", "X-Api-Key": "literal-key", "X-Trace": "t1"},
                        "body": {"routing_key": "rk", "summary": "[NEEDS HUMAN] {{input.summary}}"}}},
            {"id": "health", "component": "http_request", "config": {"url": "{{input.base}}/health"}}
        ]),
        Opts::default()
            .input(json!({"base": srv.base, "summary": "OOM"}))
            .secret("TOKEN", "pd-token-value")
            .dry_run(),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(output(&rec, "health")["body"]["healthy"], true);

    let out = output(&rec, "escalate");
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["sent"], false);
    assert_eq!(out["status_code"], Value::Null);
    let req = &out["request"];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["url"], format!("{}/v2/enqueue", srv.base));
    assert_eq!(req["headers"]["authorization"], "***");
    assert_eq!(req["headers"]["x-api-key"], "***");
    assert_eq!(req["headers"]["x-trace"], "t1");
    assert_eq!(req["headers"]["content-type"], "application/json");
    assert_eq!(
        req["body"],
        json!({"routing_key": "rk", "summary": "[NEEDS HUMAN] OOM"})
    );
    assert!(rec
        .logs
        .iter()
        .any(|l| l.stage.as_deref() == Some("escalate")
            && l.message.starts_with("dry run: POST ")
            && l.message.ends_with("not sent")));
    let text = serde_json::to_string(&rec).unwrap();
    assert!(!text.contains("pd-token-value") && !text.contains("literal-key"));
}

#[tokio::test]
async fn redirects_followed_limited_or_not() {
    let other = serve(|_, _| Reply::text(200, "other origin")).await;
    let other_base = other.base.clone();
    let srv = serve(move |s, _| match s.path.as_str() {
        "/old" => Reply::text(302, "").header("location", "/new"),
        "/keep" => Reply::text(307, "").header("location", "/new"),
        "/away" => Reply::text(301, "").header("location", &format!("{other_base}/landing")),
        "/loop" => Reply::text(302, "").header("location", "/loop"),
        _ => Reply::text(200, "new place"),
    })
    .await;
    let st = |id: &str, extra: Value| {
        let mut config = json!({"url": format!("{{{{input.base}}}}/{}", id.split('-').next().unwrap()), "method": "POST", "body": {"a": 1},
                                "headers": {"Authorization": "Bearer abc"}});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"id": id, "component": "http_request", "on_error": "continue", "config": config})
    };
    let rec = run(
        json!([
            st("old", json!({})),
            st("keep", json!({})),
            st("away", json!({})),
            st("loop", json!({})),
            st(
                "old-nofollow",
                json!({"follow_redirects": false, "expect_status": 302})
            )
        ]),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    let seen = srv.seen();
    // 302 after POST: a body-less GET.
    assert_eq!(output(&rec, "old")["url"], format!("{}/new", srv.base));
    assert_eq!(output(&rec, "old")["body"], "new place");
    assert!(seen
        .iter()
        .any(|s| s.path == "/new" && s.method == "GET" && s.body.is_empty()));
    // 307: the same method and body.
    assert!(seen
        .iter()
        .any(|s| s.path == "/new" && s.method == "POST" && s.json() == json!({"a": 1})));
    // Across origins the credentials stay behind.
    let landed = other.only();
    assert_eq!(landed.path, "/landing");
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(output(&rec, "away")["body"], "other origin");
    // A loop stops after 10 redirects.
    assert_eq!(error_kind(&rec, "loop"), ErrorKind::InvalidResponse);
    assert!(error_message(&rec, "loop").contains("more than 10 redirects"));
    assert_eq!(seen.iter().filter(|s| s.path == "/loop").count(), 11);
    // Not following: the 302 itself.
    assert_eq!(output(&rec, "old-nofollow")["status_code"], 302);
    assert_eq!(output(&rec, "old-nofollow")["headers"]["location"], "/new");
}

#[tokio::test]
async fn user_agent_can_be_replaced() {
    let srv = serve(|_, _| Reply::text(200, "ok")).await;
    let rec = run(
        stage(json!({"url": "{{input.base}}/x", "headers": {"user-agent": "custom/1"}})),
        Opts::default().input(json!({"base": srv.base})),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded);
    assert_eq!(srv.only().header("user-agent"), Some("custom/1"));
}

#[test]
fn idempotent_by_method() {
    use fm_core::CompileOptions;
    let r = fm_components::registry_with(fm_components::LlmEnv::default());
    let doc = json!({"name": "t", "stages": [
        {"id": "get", "component": "http_request", "config": {"url": "http://h/x"}},
        {"id": "options", "component": "http_request", "config": {"url": "http://h/x", "method": "OPTIONS"}},
        {"id": "post", "component": "http_request", "config": {"url": "http://h/x", "method": "POST"}},
        {"id": "delete", "component": "http_request", "config": {"url": "http://h/x", "method": "DELETE"}},
        {"id": "tmpl", "component": "http_request", "config": {"url": "http://h/x", "method": "{{input.m}}"}},
        {"id": "forced", "component": "http_request", "idempotent": true, "config": {"url": "http://h/x", "method": "PUT"}}
    ]});
    let p = fm_core::compile(
        &doc,
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    )
    .unwrap();
    let idem = |id: &str| p.stages.iter().find(|s| s.id == id).unwrap().idempotent;
    assert!(idem("get") && idem("options") && idem("forced"));
    assert!(!idem("post") && !idem("delete") && !idem("tmpl"));
}

#[tokio::test]
async fn in_a_flowmason_pipeline_a_status_does_not_fail_the_stage_and_success_says_it() {
    let srv = serve(|_, _| Reply::json(503, json!({"status": "down"}))).await;
    let rec = run(
        json!({"id": "probe", "component_type": "http-request",
               "config": {"url": format!("{}/health", srv.base), "timeout": 5}}),
        Opts::default(),
    )
    .await;
    let out = output(&rec, "probe");
    assert_eq!(out["status_code"], json!(503));
    assert_eq!(out["success"], json!(false));
    assert_eq!(out["body"], json!({"status": "down"}));
    // The reference format keeps failing on a status outside expect_status.
    let rec = run(
        json!({"id": "probe", "component": "http_request",
               "config": {"url": format!("{}/health", srv.base)}}),
        Opts::default(),
    )
    .await;
    assert_eq!(error_kind(&rec, "probe"), fm_core::ErrorKind::HttpStatus);
    assert_eq!(output(&rec, "probe")["success"], json!(false));
}

#[tokio::test]
async fn in_a_flowmason_pipeline_timeout_is_seconds() {
    let srv = serve(|_, _| Reply::json(200, json!({})).after(Duration::from_millis(1500))).await;
    let rec = run(
        json!({"id": "slow", "component_type": "http-request",
               "config": {"url": format!("{}/slow", srv.base), "timeout": 1}}),
        Opts::default(),
    )
    .await;
    assert_eq!(error_kind(&rec, "slow"), fm_core::ErrorKind::Timeout);
    assert!(error_message(&rec, "slow").contains("no answer within 1000 ms"));
}
