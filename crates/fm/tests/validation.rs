//! `fm validate`'s checks, one by one: each problem says what, where (JSON path, line:column)
//! and what to do; all problems of a file are reported at once.
#![allow(clippy::unwrap_used)]

mod support;

use fm_core::{CompileOptions, Problem, Source};
use serde_json::json;

fn problems(doc: serde_json::Value) -> Vec<Problem> {
    support::compile(&doc).err().unwrap_or_default()
}

fn find<'a>(ps: &'a [Problem], code: &str) -> &'a Problem {
    ps.iter()
        .find(|p| p.code == code)
        .unwrap_or_else(|| panic!("no '{code}' problem in {ps:#?}"))
}

#[test]
fn unknown_keys_everywhere_get_a_did_you_mean() {
    let ps = problems(json!({"name": "x", "stagess": [], "stages": [
        {"id": "a", "component": "logger", "depend_on": [], "config": {"mesage": "hi", "message": "x"}}
    ]}));
    let top = ps.iter().find(|p| p.path == "stagess").unwrap();
    assert_eq!(top.hint.as_deref(), Some("did you mean 'stages'?"));
    let stage = ps.iter().find(|p| p.path == "stages[0].depend_on").unwrap();
    assert_eq!(stage.hint.as_deref(), Some("did you mean 'depends_on'?"));
    let cfg = ps
        .iter()
        .find(|p| p.path == "stages[0].config.mesage")
        .unwrap();
    assert_eq!(cfg.hint.as_deref(), Some("did you mean 'message'?"));
    assert_eq!(cfg.stage.as_deref(), Some("a"));
    assert_eq!(ps.len(), 3, "{ps:#?}");
}

#[test]
fn mistyped_config_and_unknown_component() {
    let ps = problems(json!({"name": "x", "stages": [
        {"id": "a", "component": "loger", "config": {}},
        {"id": "b", "component": "logger", "config": {"message": "m", "level": 3}},
        {"id": "c", "component": "delay", "timeout": "soon", "config": {"ms": 1}},
    ]}));
    assert_eq!(
        find(&ps, "unknown_component").hint.as_deref(),
        Some("did you mean 'logger'?")
    );
    assert_eq!(find(&ps, "wrong_type").path, "stages[1].config.level");
    assert_eq!(find(&ps, "invalid_value").path, "stages[2].timeout");
}

#[test]
fn duplicate_ids_undefined_references_and_cycles() {
    let ps = problems(json!({"name": "x", "stages": [
        {"id": "a", "component": "logger", "config": {"message": "m"}},
        {"id": "a", "component": "logger", "config": {"message": "m"}},
        {"id": "b", "component": "logger", "depends_on": ["nope"], "config": {"message": "m"}},
    ]}));
    assert!(find(&ps, "duplicate_id")
        .message
        .contains("already used by stages[0]"));
    assert_eq!(find(&ps, "undefined_stage").path, "stages[2].depends_on[0]");

    let ps = problems(json!({"name": "x", "stages": [
        {"id": "a", "component": "logger", "depends_on": ["c"], "config": {"message": "m"}},
        {"id": "b", "component": "logger", "depends_on": ["a"], "config": {"message": "m"}},
        {"id": "c", "component": "logger", "depends_on": ["b"], "config": {"message": "m"}},
    ]}));
    let cycle = find(&ps, "cycle");
    assert!(
        cycle.message.contains("a -> b -> c -> a"),
        "{}",
        cycle.message
    );
}

#[test]
fn template_problems_syntax_undefined_and_races() {
    let ps = problems(json!({"name": "x", "stages": [
        {"id": "fetch-logs", "component": "logger", "config": {"message": "m"}},
        {"id": "other", "component": "logger", "config": {"message": "{{stages.fetch-logs.output.message}}"}},
        {"id": "syntax", "component": "logger", "depends_on": ["fetch-logs"], "config": {"message": "{{ stages.fetch-logs.output. }}"}},
        {"id": "ghost", "component": "logger", "config": {"message": "{{stages.fetch-logz.output.x}}"}},
        {"id": "vars", "component": "logger", "config": {"message": "{{inputs.x}}"}},
    ]}));
    let race = find(&ps, "not_an_ancestor");
    assert_eq!(race.path, "stages[1].config.message");
    assert!(race.message.contains("race"), "{}", race.message);
    assert!(race
        .hint
        .as_deref()
        .unwrap()
        .contains("add 'fetch-logs' to depends_on"));
    let syntax = find(&ps, "template_syntax");
    assert!(
        syntax.message.contains('^'),
        "a caret points at the error: {}",
        syntax.message
    );
    assert_eq!(
        find(&ps, "undefined_stage").hint.as_deref(),
        Some("did you mean 'fetch-logs'?")
    );
    assert_eq!(
        find(&ps, "undefined_variable").hint.as_deref(),
        Some("did you mean 'input'?")
    );
}

#[test]
fn missing_secrets_and_invalid_schemas() {
    let registry = support::registry();
    let doc = json!({"name": "x", "input": {"type": "objekt"}, "stages": [
        {"id": "a", "component": "logger", "config": {"message": "{{secrets.HAVE}} {{secrets.MISSING}}"}}]});
    let have = |n: &str| n == "HAVE";
    let err = fm_core::compile(
        &doc,
        &CompileOptions {
            registry: &registry,
            secret_available: Some(&have),
        },
    )
    .err()
    .unwrap();
    let secret = find(&err, "missing_secret");
    assert!(secret.message.contains("MISSING"));
    assert!(!err.iter().any(|p| p.message.contains("'HAVE'")));
    assert_eq!(find(&err, "invalid_schema").path, "input");
}

#[test]
fn problems_carry_line_and_column() {
    let text = "{\n  \"name\": \"x\",\n  \"stages\": [\n    {\"id\": \"a\", \"component\": \"logger\",\n     \"config\": {\"message\": \"m\", \"lvl\": \"info\"}}\n  ]\n}\n";
    let registry = support::registry();
    let err = fm_core::load(
        &Source::from_text("p.pipeline.json", text),
        &CompileOptions {
            registry: &registry,
            secret_available: None,
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        (err[0].line, err[0].column),
        (Some(5), Some(33)),
        "{err:#?}"
    );

    let syntax = fm_core::load(
        &Source::from_text("p.pipeline.json", "{\"name\": \"x\",\n \"stages\": [}"),
        &CompileOptions {
            registry: &registry,
            secret_available: None,
        },
    )
    .err()
    .unwrap();
    assert_eq!(syntax[0].code, "syntax");
    assert_eq!(syntax[0].line, Some(2));
}

#[test]
fn yaml_pipelines_load_too() {
    let yaml = "name: y\nstages:\n  - id: a\n    component: logger\n    config:\n      message: hi {{input.who}}\n";
    let registry = support::registry();
    let p = fm_core::load(
        &Source::from_text("p.pipeline.yaml", yaml),
        &CompileOptions {
            registry: &registry,
            secret_available: None,
        },
    )
    .unwrap();
    assert_eq!(p.stages[0].id, "a");
}
