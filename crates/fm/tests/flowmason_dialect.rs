//! The FlowMason 1.x dialect as `fm validate` sees it: FlowMason's own vocabulary is accepted with
//! its meaning (and kept where it is metadata), real mistakes are still errors with a
//! did-you-mean, and FlowMason components fm does not run are refused as not supported.
//! What the keys do at run time is in the fixtures (tests/pipelines/flowmason-*.json).
#![allow(clippy::unwrap_used)]

mod support;

use fm_core::model::Dialect;
use fm_core::Problem;
use serde_json::{json, Value};

fn problems(doc: Value) -> Vec<Problem> {
    support::compile(&doc).err().unwrap_or_default()
}

fn find<'a>(ps: &'a [Problem], code: &str) -> &'a Problem {
    ps.iter()
        .find(|p| p.code == code)
        .unwrap_or_else(|| panic!("no '{code}' problem in {ps:#?}"))
}

fn studio(stages: Value) -> Value {
    json!({"id": "t", "name": "A Studio template", "category": "testing", "tags": ["x"],
           "difficulty": "beginner", "use_cases": ["u"], "example_input": {"a": 1},
           "input_schema": {"type": "object"}, "stages": stages})
}

#[test]
fn a_studio_template_compiles_with_its_gallery_keys_kept() {
    let p = support::compile(&studio(json!([
        {"id": "g", "component_type": "generator", "name": "G", "position": {"x": 1, "y": 2},
         "config": {"prompt": "hi"}, "llm_settings": {"temperature": 0.9, "model": "m1"},
         "metadata": {"owner": "sre"}, "component_package": "flowmason/core@1.0.0"}
    ])))
    .unwrap();
    assert_eq!(p.dialect, Dialect::FlowMason);
    assert_eq!(p.name, "t", "FlowMason's id names the pipeline");
    assert_eq!(p.metadata["title"], json!("A Studio template"));
    assert_eq!(p.metadata["category"], json!("testing"));
    assert_eq!(p.metadata["example_input"], json!({"a": 1}));
    assert_eq!(p.stages[0].metadata["metadata"], json!({"owner": "sre"}));
    assert_eq!(
        p.stages[0].metadata["component_package"],
        json!("flowmason/core@1.0.0")
    );
}

#[test]
fn reference_files_keep_their_dialect() {
    let p = support::compile(
        &json!({"name": "x", "input": {"type": "object"}, "stages": [
        {"id": "a", "component": "logger", "config": {"message": "m"}}]}),
    )
    .unwrap();
    assert_eq!(p.dialect, Dialect::Reference);
}

#[test]
fn mistakes_are_still_errors_with_a_did_you_mean() {
    let ps = problems(studio(json!([
        {"id": "g", "component_type": "generator", "config": {"prompt": "hi"},
         "retry_confg": {"max_retries": 2}, "llm_settings": {"temprature": 0.2}}
    ])));
    let stage = ps
        .iter()
        .find(|p| p.path == "stages[0].retry_confg")
        .unwrap();
    assert_eq!(stage.hint.as_deref(), Some("did you mean 'retry_config'?"));
    let llm = ps
        .iter()
        .find(|p| p.path == "stages[0].llm_settings.temprature")
        .unwrap();
    assert_eq!(llm.hint.as_deref(), Some("did you mean 'temperature'?"));
}

#[test]
fn components_fm_cannot_run_are_refused_as_not_supported_not_as_unknown() {
    let ps = problems(studio(json!([
        {"id": "rag", "component_type": "retriever", "config": {}},
        {"id": "each", "component_type": "foreach", "config": {}},
        {"id": "s3", "component_type": "s3", "config": {}},
    ])));
    let msgs: Vec<&str> = ps
        .iter()
        .filter(|p| p.code == "not_supported")
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(msgs.len(), 3, "{ps:#?}");
    assert!(msgs[0].contains("'retriever'") && msgs[0].contains("RAG"));
    assert!(msgs[1].contains("'foreach'") && msgs[1].contains("control flow"));
    assert!(msgs[2].contains("S3"));
    assert!(ps.iter().all(|p| p.code != "unknown_component"));
}

#[test]
fn http_request_timeout_is_seconds_in_a_flowmason_pipeline() {
    let ok = support::compile(&studio(json!([
        {"id": "h", "component_type": "http-request", "config": {"url": "http://127.0.0.1:9/x", "timeout": 30}}
    ])));
    assert!(ok.is_ok(), "{ok:?}");
    let ps = problems(studio(json!([
        {"id": "h", "component_type": "http-request", "config": {"url": "http://127.0.0.1:9/x", "timeout": 10000}}
    ])));
    let p = find(&ps, "invalid_value");
    assert_eq!(p.path, "stages[0].config.timeout");
    assert!(p.message.contains("seconds"), "{p:?}");
    assert!(p.hint.as_deref().unwrap().contains("write 10"), "{p:?}");
}

#[test]
fn json_transform_mapping_values_are_source_paths() {
    let ps = problems(studio(json!([
        {"id": "j", "component_type": "json_transform", "config": {"data": "{{input}}", "mapping": {"n": 3}}}
    ])));
    let p = find(&ps, "wrong_type");
    assert_eq!(p.path, "stages[0].config.mapping.n");
    assert!(p.message.contains("source path"), "{p:?}");
}

#[test]
fn llm_settings_on_a_component_that_calls_no_model_are_refused() {
    let ps = problems(studio(json!([
        {"id": "l", "component_type": "logger", "config": {"message": "m"}, "provider": "openai"}
    ])));
    let p = find(&ps, "not_applicable");
    assert_eq!(p.path, "stages[0].provider");
}

#[test]
fn fallback_output_needs_on_error_continue_and_disabled_stages_are_not_supported_yet() {
    let ps = problems(studio(json!([
        {"id": "a", "component_type": "logger", "config": {"message": "m"}, "fallback_output": {"x": 1}},
        {"id": "b", "component_type": "logger", "config": {"message": "m"}, "enabled": false},
    ])));
    assert_eq!(find(&ps, "invalid_value").path, "stages[0].fallback_output");
    assert_eq!(find(&ps, "not_supported").path, "stages[1].enabled");
}

#[test]
fn input_mapping_is_the_config_and_its_problems_point_at_it() {
    let ok = support::compile(&studio(json!([
        {"id": "l", "component_type": "logger", "input_mapping": {"message": "{{input.a}}"}}
    ])));
    assert!(ok.is_ok(), "{ok:?}");
    let ps = problems(studio(json!([
        {"id": "l", "component_type": "logger", "input_mapping": {"mesage": "x", "message": "y"}}
    ])));
    let p = ps
        .iter()
        .find(|p| p.path == "stages[0].input_mapping.mesage")
        .unwrap();
    assert_eq!(p.hint.as_deref(), Some("did you mean 'message'?"));
}

#[test]
fn context_is_a_namespace_with_its_own_message() {
    let ps = problems(studio(json!([
        {"id": "l", "component_type": "logger", "config": {"message": "{{context.service.name}}"}}
    ])));
    let p = find(&ps, "not_supported");
    assert!(p.message.contains("foreach or loop"), "{p:?}");
    assert!(ps.iter().all(|p| p.code != "undefined_variable"));
}

#[test]
fn inheritance_is_refused_as_not_supported() {
    let mut doc =
        studio(json!([{"id": "l", "component_type": "logger", "config": {"message": "m"}}]));
    doc["extends"] = json!("base-pipeline@1.0.0");
    let ps = problems(doc);
    assert_eq!(find(&ps, "not_supported").path, "extends");
}
