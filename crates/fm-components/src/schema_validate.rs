//! `schema_validate` (FlowMason): check data against a JSON Schema.
//!
//! Config: `data` (required), `json_schema` (its class's name; the templates write `schema`;
//! required, checked when the pipeline loads), `strict`, `coerce_types` (strings, numbers and
//! booleans converted to the schema's types first, as FlowMason does), `collect_all_errors`
//! (default true). Output: `{valid, data, errors: [{path, message}], error_count}`. As in
//! FlowMason, invalid data does not fail the stage (`strict` does not change that): read
//! `valid`.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::Value;
use futures::future::BoxFuture;
use serde_json::json;

pub struct SchemaValidate;

#[derive(Debug)]
pub struct SchemaValidateRuntime {
    data: ValueTemplate,
    schema: Value,
    validator: Arc<SchemaValidator>,
    coerce: bool,
    all: bool,
}

struct SchemaValidator(jsonschema::Validator);

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaValidator")
    }
}

impl Component for SchemaValidate {
    fn name(&self) -> &'static str {
        "schema_validate"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: check data against a JSON Schema (valid, errors)"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("data", &[]) {
            r.missing("data");
        }
        let data = r.value_template("data", &[]);
        let schema = match r.raw("json_schema", &["schema"]) {
            None => {
                r.missing("json_schema");
                None
            }
            Some((path, v)) => match jsonschema::validator_for(v) {
                Ok(validator) => Some((v.clone(), validator)),
                Err(e) => {
                    r.problem_with_hint(
                        "invalid_schema",
                        path,
                        format!("not a valid JSON Schema: {e}"),
                        "see https://json-schema.org/understanding-json-schema/",
                    );
                    None
                }
            },
        };
        let _ = r.bool("strict", &[]);
        let coerce = r.bool("coerce_types", &[]).unwrap_or(false);
        let all = r.bool("collect_all_errors", &[]).unwrap_or(true);
        let (schema, validator) = schema?;
        Some(Arc::new(SchemaValidateRuntime {
            data: data?,
            schema,
            validator: Arc::new(SchemaValidator(validator)),
            coerce,
            all,
        }))
    }
}

impl StageRuntime for SchemaValidateRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let mut data = self
                .data
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.data"))?;
            if self.coerce {
                data = coerce(data, &self.schema);
            }
            let mut errors = Vec::new();
            for e in self.validator.0.iter_errors(&data) {
                let path: Vec<Value> = e
                    .instance_path()
                    .into_iter()
                    .map(|seg| match seg {
                        jsonschema::paths::LocationSegment::Property(p) => {
                            Value::String(p.to_string())
                        }
                        jsonschema::paths::LocationSegment::Index(i) => Value::from(i),
                    })
                    .collect();
                errors.push(json!({"path": path, "message": e.to_string()}));
                if !self.all {
                    break;
                }
            }
            Ok(
                json!({"valid": errors.is_empty(), "data": data, "error_count": errors.len(), "errors": errors}),
            )
        })
    }
}

/// FlowMason's `coerce_types`: converts scalars to the schema's `type`, through objects' properties
/// and arrays' items; anything that does not convert is left as it is (and then reported).
fn coerce(v: Value, schema: &Value) -> Value {
    let ty = schema.get("type").and_then(Value::as_str);
    match (ty, v) {
        (Some("string"), v) if !v.is_string() => Value::String(fm_expr::to_text(&v).into_owned()),
        (Some("integer"), Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_or(Value::String(s), Value::from),
        (Some("integer"), Value::Number(n)) if n.as_i64().is_none() => n
            .as_f64()
            .map_or(Value::Number(n.clone()), |f| Value::from(f.trunc() as i64)),
        (Some("number"), Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_or(Value::String(s), Value::from),
        (Some("boolean"), Value::String(s)) => Value::Bool(matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "1" | "yes"
        )),
        (Some("object"), Value::Object(m)) => {
            let props = schema.get("properties");
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| match props.and_then(|p| p.get(&k)) {
                        Some(s) => {
                            let c = coerce(v, s);
                            (k, c)
                        }
                        None => (k, v),
                    })
                    .collect(),
            )
        }
        (Some("array"), Value::Array(items)) => {
            let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array(items.into_iter().map(|i| coerce(i, &item_schema)).collect())
        }
        (_, v) => v,
    }
}
