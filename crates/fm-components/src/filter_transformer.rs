//! `filter_transformer` (FlowMason): keep the records whose `field` equals `value`.
//!
//! Config: `data` (a list of records), `field`, `value` (all required; templates allowed).
//! Output: `{data, rows_processed, rows_filtered, stats: {field, value, filter_rate}}`;
//! `rows_filtered` is, as in FlowMason, how many records were kept.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

pub struct FilterTransformer;

#[derive(Debug)]
pub struct FilterTransformerRuntime {
    data: ValueTemplate,
    field: Template,
    value: ValueTemplate,
}

impl Component for FilterTransformer {
    fn name(&self) -> &'static str {
        "filter_transformer"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: keep the records whose field equals a value"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        for key in ["data", "field", "value"] {
            if !r.has(key, &[]) {
                r.missing(key);
            }
        }
        let data = r.value_template("data", &[]);
        let field = r.template("field", &[]);
        let value = r.value_template("value", &[]);
        Some(Arc::new(FilterTransformerRuntime {
            data: data?,
            field: field?,
            value: value?,
        }))
    }
}

impl StageRuntime for FilterTransformerRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let data = self
                .data
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.data"))?;
            let rows = crate::rows::rows(data, "data")?;
            let field = crate::llm_task::text(cx, &self.field, "field")?;
            let value = self
                .value
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.value"))?;
            let total = rows.len();
            let kept: Vec<Value> = rows
                .into_iter()
                .filter(|r| r.get(&field) == Some(&value))
                .map(Value::Object)
                .collect();
            let rate = if total == 0 {
                0.0
            } else {
                kept.len() as f64 / total as f64
            };
            Ok(json!({
                "rows_processed": total,
                "rows_filtered": kept.len(),
                "stats": {"field": field, "value": value, "filter_rate": rate},
                "data": kept,
            }))
        })
    }
}
