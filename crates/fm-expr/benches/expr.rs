//! Hot paths: a path lookup and a router condition against a realistic scope.

use std::collections::HashSet;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fm_expr::{CompileOptions, JsonScope, Template};
use serde_json::json;

fn scope() -> JsonScope {
    JsonScope::new(json!({
        "input": {"id": "incident-12345"},
        "stages": {
            "receive-alert": {"output": {"service": "payment-service", "severity": "critical",
                "summary": "payment-service: High memory usage (>90%)"}, "status": "completed"},
            "analyze-incident": {"output": {"issue_type": "OOM", "confidence": "high",
                "root_cause": "Memory leak in payment processing loop"}, "status": "completed"},
            "fetch-logs": {"output": {"body": {"logs": [{"m": "a"}, {"m": "b"}, {"m": "c"}], "total": 3}}}
        },
        "execution": {"duration_ms": 79000}
    }))
}

fn benches(c: &mut Criterion) {
    let ids: HashSet<String> = ["receive-alert", "analyze-incident", "fetch-logs"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let opts = CompileOptions {
        stage_ids: Some(&ids),
    };
    let scope = scope();

    let lookup = Template::compile("{{stages.receive-alert.output.service}}", &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("path_lookup", |b| {
        b.iter(|| black_box(lookup.render(black_box(&scope))))
    });

    let router = Template::compile(
        "{{stages.analyze-incident.output.issue_type == 'OOM' and stages.analyze-incident.output.confidence == 'high'}}",
        &opts,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("router_condition", |b| {
        b.iter(|| black_box(router.render(black_box(&scope))))
    });

    let slack = Template::compile(
        "*Resolution Time:*\n{{execution.duration_ms / 1000 | round(1)}}s",
        &opts,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("mixed_text_with_filter", |b| {
        b.iter(|| black_box(slack.render(black_box(&scope))))
    });

    let prompt = "Incident triage for {{stages.receive-alert.output.service}}:\n\nAlert: {{stages.receive-alert.output.summary}}\n## Recent Logs (errors):\n{{stages.fetch-logs.output.body.logs | tojson}}";
    c.bench_function("compile_prompt", |b| {
        b.iter(|| black_box(Template::compile(black_box(prompt), &opts)))
    });
}

criterion_group!(expr, benches);
criterion_main!(expr);
