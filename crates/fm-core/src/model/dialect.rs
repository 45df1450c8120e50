//! Which dialect a pipeline file is written in: the reference document's format, or FlowMason
//! 1.x as FlowMason itself writes it (its Studio templates, `flowmason init`, its component
//! classes). The two mostly agree; where they differ (json_transform's `mapping`, http_request's
//! `timeout` unit and status handling, output shapes), each pipeline gets its own dialect's
//! meaning. The table is in docs/pipeline-format.md.
//!
//! A file is FlowMason's when it uses a key only FlowMason writes (`component_type`,
//! `input_schema`, `output_stage_id`, `input_mapping`, a gallery key such as `category`, ...).
//! Everything else is read as the reference format.

use fm_expr::Value;
use serde_json::Map;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// The reference document's format (fm's own examples and shipped pipeline).
    #[default]
    Reference,
    /// FlowMason 1.x, as its templates, scaffolds and component classes write it.
    FlowMason,
}

impl Dialect {
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Reference => "reference format",
            Dialect::FlowMason => "FlowMason 1.x dialect",
        }
    }

    pub fn is_flowmason(self) -> bool {
        self == Dialect::FlowMason
    }
}

/// Top-level keys only FlowMason writes.
pub const FLOWMASON_TOP_KEYS: &[&str] = &[
    "input_schema",
    "output_schema",
    "output_stage_id",
    "category",
    "tags",
    "metadata",
    "sample_input",
    "example_input",
    "difficulty",
    "use_cases",
    "extends",
    "abstract",
    "overrides",
    "compositions",
];

/// Stage keys only FlowMason writes.
pub const FLOWMASON_STAGE_KEYS: &[&str] = &[
    "component_type",
    "type",
    "input_mapping",
    "llm_settings",
    "provider",
    "model",
    "timeout_ms",
    "retry_config",
    "error_handling",
    "fallback_output",
    "enabled",
    "metadata",
    "component_package",
];

/// Decides the dialect from the file's keys.
pub fn detect(top: &Map<String, Value>) -> Dialect {
    let top_marker = FLOWMASON_TOP_KEYS.iter().any(|k| top.contains_key(*k))
        || top
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("flowmason"));
    let stage_marker = match top.get("stages") {
        Some(Value::Array(stages)) => stages.iter().any(|s| {
            s.as_object().is_some_and(|m| {
                FLOWMASON_STAGE_KEYS.iter().any(|k| m.contains_key(*k))
                    || m.get("on_error").and_then(Value::as_str) == Some("propagate")
            })
        }),
        _ => false,
    };
    if top_marker || stage_marker {
        Dialect::FlowMason
    } else {
        Dialect::Reference
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn d(v: Value) -> Dialect {
        detect(v.as_object().unwrap())
    }

    #[test]
    fn reference_files_stay_reference() {
        assert_eq!(
            d(json!({"name": "x", "input": {}, "output": {}, "stages": [
                {"id": "a", "component": "logger", "retry": {}, "config": {}}]})),
            Dialect::Reference
        );
    }

    #[test]
    fn any_flowmason_key_makes_it_flowmason() {
        assert_eq!(
            d(json!({"name": "x", "input_schema": {}, "stages": []})),
            Dialect::FlowMason
        );
        assert_eq!(
            d(json!({"name": "x", "stages": [{"id": "a", "component_type": "logger"}]})),
            Dialect::FlowMason
        );
        assert_eq!(
            d(
                json!({"name": "x", "stages": [{"id": "a", "component": "logger", "on_error": "propagate"}]})
            ),
            Dialect::FlowMason
        );
        assert_eq!(
            d(
                json!({"$schema": "https://flowmason.dev/schemas/pipeline.schema.json", "stages": []})
            ),
            Dialect::FlowMason
        );
    }
}
