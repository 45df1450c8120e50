//! `json_transform`: reshape data. `data` (default: the run's input) with either `expression`
//! (JMESPath, e.g. `{alert_id: id, service: payload.source}`) or `template` (an object whose
//! string leaves are templates with `data` in scope). Its output is the result itself, so
//! `stages.<id>.output.<field>` reads a field of the result.
//!
//! FlowMason's `jmespath_expression` and `mapping` are accepted as spellings of the same keys.

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

#[derive(Debug)]
pub struct JsonTransformRuntime {
    data: Option<ValueTemplate>,
    transform: Option<Transform>,
}

impl Component for JsonTransform {
    fn name(&self) -> &'static str {
        "json_transform"
    }

    fn summary(&self) -> &'static str {
        "Reshape data with a JMESPath expression or a template object"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
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
        Some(Arc::new(JsonTransformRuntime { data, transform }))
    }
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
        let data = match &self.data {
            Some(t) => t
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.data"))?,
            None => cx
                .scope
                .resolve(&fm_expr::Root::Var("input"))
                .map(|c| c.into_owned())
                .unwrap_or(Value::Null),
        };
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
