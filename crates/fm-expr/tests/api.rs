//! The public API surface the engine codes against.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use fm_expr::{
    is_truthy, to_text, CompileOptions, ErrorKind, JsonScope, RefRoot, RenderedPart, Span,
    StageField, Template,
};
use serde_json::json;

fn scope() -> JsonScope {
    JsonScope::new(json!({
        "input": {"base": "https://api", "q": "a b&c"},
        "stages": {"fetch-logs": {"output": {"body": {"logs": [1, 2]}}}},
        "secrets": {"TOKEN": "t"}
    }))
}

#[test]
fn render_parts_keeps_values_unstringified() {
    let t = Template::compile(
        "{{input.base}}/search?q={{input.q}}&n={{ 2 }}",
        &CompileOptions::default(),
    )
    .unwrap();
    let parts = t.render_parts(&scope()).unwrap();
    assert_eq!(
        parts,
        vec![
            RenderedPart::Value(json!("https://api")),
            RenderedPart::Text("/search?q="),
            RenderedPart::Value(json!("a b&c")),
            RenderedPart::Text("&n="),
            RenderedPart::Value(json!(2)),
        ]
    );
    assert_eq!(parts[4].as_text(), "2");
}

#[test]
fn literal_and_lone() {
    let opts = CompileOptions::default();
    let lit = Template::compile("plain } text {", &opts).unwrap();
    assert!(lit.is_literal());
    assert_eq!(lit.render(&scope()).unwrap(), json!("plain } text {"));
    assert!(lit.references().is_empty());
    let lone = Template::compile("{{ stages.fetch-logs.output.body }}", &opts).unwrap();
    assert!(!lone.is_literal() && lone.is_lone_expression());
    assert_eq!(lone.render(&scope()).unwrap(), json!({"logs": [1, 2]}));
    assert_eq!(lone.render_string(&scope()).unwrap(), r#"{"logs":[1,2]}"#);
    assert_eq!(lone.source(), "{{ stages.fetch-logs.output.body }}");
}

#[test]
fn compile_expression_for_conditions() {
    let t = Template::compile_expression(
        "stages.fetch-logs.output.body.logs | length > 1",
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(t.render(&scope()).unwrap(), json!(true));
    assert!(t.render_truthy(&scope()).unwrap());
}

#[test]
fn references_with_spans_and_guards() {
    let ids: HashSet<String> = ["fetch-logs".to_string()].into();
    let src = "{{ secrets.TOKEN }} {{ stages.fetch-logs.output.body.logs[0].x | default(1) }} {{ env.HOME ~ execution.id }}";
    let t = Template::compile(
        src,
        &CompileOptions {
            stage_ids: Some(&ids),
        },
    )
    .unwrap();
    let refs = t.references();
    assert_eq!(refs.len(), 4);
    assert_eq!(refs[0].root, RefRoot::Secret("TOKEN".into()));
    assert_eq!(&src[refs[0].span.start..refs[0].span.end], "secrets.TOKEN");
    assert_eq!(
        refs[1].root,
        RefRoot::Stage {
            id: "fetch-logs".into(),
            field: StageField::Output
        }
    );
    assert_eq!(refs[1].path, vec!["body", "logs"]);
    assert!(refs[1].guarded);
    assert_eq!(
        &src[refs[1].span.start..refs[1].span.end],
        "stages.fetch-logs.output.body.logs"
    );
    assert_eq!(refs[2].root, RefRoot::Env("HOME".into()));
    assert_eq!(refs[3].root, RefRoot::Execution("id".into()));
    assert!(!refs[3].guarded);
}

#[test]
fn error_display_and_render() {
    let t = Template::compile(
        "x: {{ stages.fetch-logs.output.body.logz }}",
        &CompileOptions::default(),
    )
    .unwrap();
    let err = t.render(&scope()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Undefined);
    assert_eq!(err.span, Some(Span { start: 6, end: 40 }));
    assert_eq!(
        err.to_string(),
        "stages.fetch-logs.output.body has no key 'logz'; it has: logs at 1:7"
    );
    insta::assert_snapshot!(err.render(), @r"
    stages.fetch-logs.output.body has no key 'logz'; it has: logs
      x: {{ stages.fetch-logs.output.body.logz }}
            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
    ");
}

#[test]
fn text_and_truthiness_helpers() {
    assert_eq!(to_text(&json!(null)), "null");
    assert_eq!(to_text(&json!(true)), "true");
    assert_eq!(to_text(&json!(1.0)), "1.0");
    assert_eq!(to_text(&json!("s")), "s");
    assert_eq!(to_text(&json!({"a": "<&>"})), r#"{"a":"<&>"}"#);
    for v in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!is_truthy(&v));
    }
}

#[test]
fn source_too_long_is_a_limit_error() {
    let big = "a".repeat(fm_expr::limits::MAX_SOURCE_LEN + 1);
    let err = Template::compile(&big, &CompileOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit);
}

#[test]
fn templates_are_shareable() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Template>();
    let t = Template::compile("{{ input.base }}", &CompileOptions::default()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || t.render(&scope()).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), json!("https://api"));
    }
}
