//! `json_transform`: reshape data. `data` (default: the run's input) with either `expression`
//! (JMESPath, e.g. `{alert_id: id, service: payload.source}`) or `template` (an object whose
//! string leaves are templates with `data` in scope). Its output is the result itself, so
//! `stages.<id>.output.<field>` reads a field of the result.
//!
//! FlowMason's `jmespath_expression` is accepted as a spelling of `expression`.
//!
//! In a FlowMason 1.x pipeline the keys mean what FlowMason's class means: `mapping` maps output
//! fields to **source paths** in `data` (`{"customer_id": "id"}` reads `data.id`), with
//! `defaults`, `exclude_fields`, `flatten` and `parse_json_strings`, and the output is
//! `{result, fields_mapped, fields_missing}`; `template` (the Studio templates' key) keeps fm's
//! meaning, its rendered object being the output.

use std::sync::Arc;

use fm_core::exec::OverlayScope;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::Value;
use futures::future::BoxFuture;

pub struct JsonTransform;

#[derive(Debug)]
enum Transform {
    JmesPath {
        source: String,
        expr: jmespath::Expression<'static>,
    },
    Template(ValueTemplate),
}

/// FlowMason's class semantics (a FlowMason pipeline without `template`).
#[derive(Debug)]
struct FlowMasonMode {
    /// Output field -> a template that renders to a source path in `data`.
    mapping: Option<Vec<(String, ValueTemplate)>>,
    defaults: Option<ValueTemplate>,
    exclude_fields: Vec<String>,
    flatten: bool,
    parse_json_strings: bool,
}

#[derive(Debug)]
pub struct JsonTransformRuntime {
    data: Option<ValueTemplate>,
    transform: Option<Transform>,
    flowmason: Option<FlowMasonMode>,
}

impl Component for JsonTransform {
    fn name(&self) -> &'static str {
        "json_transform"
    }

    fn summary(&self) -> &'static str {
        "Reshape data with a JMESPath expression or a template object"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if r.dialect().is_flowmason() && !r.has("template", &[]) {
            return compile_flowmason(r);
        }
        let data = r.value_template("data", &["input"]);
        let expression = r.raw("expression", &["jmespath_expression", "jmespath"]);
        let has_template = r.has("template", &["mapping"]);
        let transform = match (expression, has_template) {
            (Some(_), true) => {
                let p = r.key_path("template");
                r.problem_with_hint(
                    "conflicting_keys",
                    p,
                    "give either 'expression' (JMESPath) or 'template', not both",
                    "use 'expression' to query the data, 'template' to build new JSON from it",
                );
                return None;
            }
            (Some((path, Value::String(src))), false) => match jmespath::compile(src) {
                Ok(expr) => Some(Transform::JmesPath {
                    source: src.clone(),
                    expr,
                }),
                Err(e) => {
                    r.problem_with_hint(
                        "invalid_expression",
                        path,
                        format!("invalid JMESPath expression: {e}"),
                        "see https://jmespath.org/specification.html",
                    );
                    return None;
                }
            },
            (Some((path, _)), false) => {
                r.problem("wrong_type", path, "'expression' must be a JMESPath string");
                return None;
            }
            (None, true) => {
                r.set_extra_vars(&["data"]);
                let t = r.value_template("template", &["mapping"])?;
                Some(Transform::Template(t))
            }
            (None, false) => None,
        };
        if data.is_none() && transform.is_none() {
            let p = r.path().to_owned();
            r.problem_with_hint(
                "missing_key",
                p,
                "json_transform needs 'expression' or 'template' (or at least 'data')",
                "e.g. \"expression\": \"{alert_id: id, service: payload.source}\"",
            );
            return None;
        }
        Some(Arc::new(JsonTransformRuntime {
            data,
            transform,
            flowmason: None,
        }))
    }
}

/// FlowMason's json_transform class: `data`, `mapping` (source paths), `jmespath_expression`,
/// `defaults`, `flatten`, `exclude_fields`, `parse_json_strings`.
fn compile_flowmason(r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
    let data = r.value_template("data", &["input"]);
    let mut ok = true;
    let transform = match r.raw("jmespath_expression", &["expression", "jmespath"]) {
        Some((path, Value::String(src))) => match jmespath::compile(src) {
            Ok(expr) => Some(Transform::JmesPath {
                source: src.clone(),
                expr,
            }),
            Err(e) => {
                r.problem_with_hint(
                    "invalid_expression",
                    path,
                    format!("invalid JMESPath expression: {e}"),
                    "see https://jmespath.org/specification.html",
                );
                return None;
            }
        },
        Some((path, _)) => {
            r.problem("wrong_type", path, "'jmespath_expression' must be a string");
            return None;
        }
        None => None,
    };
    let mapping = match r.raw("mapping", &[]) {
        None => None,
        Some((path, Value::Object(m))) => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, v) in m {
                let key_path = format!("{path}.{k}");
                if !v.is_string() {
                    r.problem_with_hint(
                        "wrong_type",
                        key_path,
                        format!("in FlowMason's json_transform a mapping value is a source path in `data`, such as \"user.id\"; found {}", fm_core::model::reader::json_type_name(v)),
                        "to build new JSON from templates, use 'template' instead of 'mapping'",
                    );
                    ok = false;
                    continue;
                }
                if let Some(t) = r.compile_value(&key_path, v) {
                    fields.push((k.clone(), t));
                }
            }
            Some(fields)
        }
        Some((path, _)) => {
            r.problem(
                "wrong_type",
                path,
                "'mapping' must be an object of output field -> source path",
            );
            return None;
        }
    };
    if transform.is_some() && mapping.is_some() {
        let p = r.key_path("mapping");
        r.problem_with_hint(
            "conflicting_keys",
            p,
            "give either 'jmespath_expression' or 'mapping', not both",
            "FlowMason would use the expression and ignore the mapping",
        );
        ok = false;
    }
    let defaults = r.value_template("defaults", &[]);
    let exclude_fields = match r.raw("exclude_fields", &[]) {
        None => Vec::new(),
        Some((_, Value::Array(items))) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some((path, _)) => {
            r.problem(
                "wrong_type",
                path,
                "'exclude_fields' must be a list of field names",
            );
            ok = false;
            Vec::new()
        }
    };
    let flatten = r.bool("flatten", &[]).unwrap_or(false);
    let parse_json_strings = r.bool("parse_json_strings", &[]).unwrap_or(true);
    if !ok {
        return None;
    }
    Some(Arc::new(JsonTransformRuntime {
        data,
        transform,
        flowmason: Some(FlowMasonMode {
            mapping,
            defaults,
            exclude_fields,
            flatten,
            parse_json_strings,
        }),
    }))
}

impl StageRuntime for JsonTransformRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move { self.apply(cx) })
    }
}

impl JsonTransformRuntime {
    fn apply(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let data = self.data(cx)?;
        if let Some(fm) = &self.flowmason {
            return self.apply_flowmason(fm, cx, data);
        }
        self.transform(data, cx)
    }

    fn data(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        Ok(match &self.data {
            Some(t) => t
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.data"))?,
            None => cx
                .scope
                .resolve(&fm_expr::Root::Var("input"))
                .map(|c| c.into_owned())
                .unwrap_or(Value::Null),
        })
    }

    /// FlowMason's class: `{result, fields_mapped, fields_missing}`.
    fn apply_flowmason(
        &self,
        fm: &FlowMasonMode,
        cx: &StageContext<'_>,
        mut data: Value,
    ) -> Result<Value, StageError> {
        if fm.parse_json_strings {
            if let Value::String(s) = &data {
                if let Some(parsed) = crate::generator::reply::extract_json(s) {
                    data = parsed;
                }
            }
        }
        let mut missing = Vec::new();
        let (result, mapped) = if self.transform.is_some() {
            (self.transform(data, cx)?, 1)
        } else if let Some(mapping) = &fm.mapping {
            let defaults = match &fm.defaults {
                Some(t) => t
                    .render(cx.scope)
                    .map_err(|e| StageError::template(&e, "config.defaults"))?,
                None => Value::Null,
            };
            let mut out = serde_json::Map::new();
            for (field, path) in mapping {
                let path = path
                    .render(cx.scope)
                    .map_err(|e| StageError::template(&e, &format!("config.mapping.{field}")))?;
                let mut value = path
                    .as_str()
                    .and_then(|p| source_path(&data, p))
                    .cloned()
                    .unwrap_or(Value::Null);
                if value.is_null() {
                    if let Some(d) = defaults.get(field) {
                        value = d.clone();
                        missing.push(Value::String(field.clone()));
                    }
                }
                out.insert(field.clone(), value);
            }
            for f in &fm.exclude_fields {
                out.shift_remove(f);
            }
            (Value::Object(out), mapping.len())
        } else if fm.flatten {
            let mut out = serde_json::Map::new();
            flatten_into(&data, "", &mut out);
            let n = out.len();
            (Value::Object(out), n)
        } else {
            (data, 0)
        };
        Ok(serde_json::json!({
            "result": result,
            "fields_mapped": mapped,
            "fields_missing": missing,
        }))
    }

    fn transform(&self, data: Value, cx: &StageContext<'_>) -> Result<Value, StageError> {
        match &self.transform {
            None => Ok(data),
            Some(Transform::JmesPath { source, expr }) => {
                let result = expr.search(&data).map_err(|e| {
                    StageError::new(
                        ErrorKind::Data,
                        format!("JMESPath expression `{source}` failed on the data: {e}"),
                    )
                    .retryable(false)
                })?;
                serde_json::to_value(&*result).map_err(|e| {
                    StageError::new(
                        ErrorKind::Internal,
                        format!("JMESPath result is not JSON: {e}"),
                    )
                })
            }
            Some(Transform::Template(t)) => {
                let scope = OverlayScope {
                    parent: cx.scope,
                    name: "data",
                    value: &data,
                };
                t.render(&scope)
                    .map_err(|e| StageError::template(&e, "config.template"))
            }
        }
    }
}

/// FlowMason's source path: `user.name`, `items[0].id`; `None` when any step is missing.
fn source_path<'v>(data: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = data;
    for part in path.replace('[', ".[").split('.') {
        if part.is_empty() {
            continue;
        }
        cur = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(i) => cur.as_array()?.get(i.parse::<usize>().ok()?)?,
            None => cur.as_object()?.get(part)?,
        };
        if cur.is_null() {
            return None;
        }
    }
    Some(cur)
}

/// FlowMason's `flatten`: `{"a": {"b": 1}, "l": [{"c": 2}, 3]}` -> `{"a.b": 1, "l[0].c": 2, "l[1]": 3}`.
fn flatten_into(v: &Value, prefix: &str, out: &mut serde_json::Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    Value::Object(_) => flatten_into(v, &key, out),
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let key = format!("{key}[{i}]");
                            if item.is_object() {
                                flatten_into(item, &key, out);
                            } else {
                                out.insert(key, item.clone());
                            }
                        }
                    }
                    other => {
                        out.insert(key, other.clone());
                    }
                }
            }
        }
        other => {
            let key = if prefix.is_empty() { "value" } else { prefix };
            out.insert(key.to_owned(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn source_paths_read_like_flowmason() {
        let d = json!({"user": {"id": 7, "tags": ["a", {"x": 1}]}});
        assert_eq!(source_path(&d, "user.id"), Some(&json!(7)));
        assert_eq!(source_path(&d, "user.tags[1].x"), Some(&json!(1)));
        assert_eq!(source_path(&d, "user.tags[5]"), None);
        assert_eq!(source_path(&d, "nope"), None);
    }

    #[test]
    fn flatten_keys_nested_fields_and_list_items() {
        let mut out = serde_json::Map::new();
        flatten_into(&json!({"a": {"b": 1}, "l": [{"c": 2}, 3]}), "", &mut out);
        assert_eq!(
            Value::Object(out),
            json!({"a.b": 1, "l[0].c": 2, "l[1]": 3})
        );
    }
}
