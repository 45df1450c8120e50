//! `filter` (FlowMason): test data against a condition, or keep the items of a list that pass.
//!
//! Config: `data` (required), `condition` (an expression; `data` in `pass_fail` mode, `item` in
//! `filter_array` mode; `{{ }}` optional), `field_conditions` (an object field -> expected value,
//! all must match), `pass_if_missing` (a field that is missing, or a condition that cannot be
//! evaluated, passes), `filter_mode` (`pass_fail` or `filter_array`), `invert`.
//!
//! Output: `{passed, data, filtered_count, reason}`: in pass_fail mode `data` is the data when it
//! passed and null otherwise; in filter_array mode it is the items that passed.

use std::sync::Arc;

use fm_core::exec::OverlayScope;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::{json, Map};

pub struct Filter;

#[derive(Debug)]
pub struct FilterRuntime {
    data: ValueTemplate,
    condition: Option<Template>,
    field_conditions: Option<Map<String, Value>>,
    pass_if_missing: bool,
    array_mode: bool,
    invert: bool,
}

impl Component for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: pass or fail data on a condition, or keep the list items that pass"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("data", &[]) {
            r.missing("data");
        }
        let data = r.value_template("data", &[]);
        let array_mode = match r.string("filter_mode", &["mode"]).as_deref() {
            None | Some("pass_fail") => false,
            Some("filter_array") => true,
            Some(other) => {
                let p = r.key_path("filter_mode");
                r.problem_with_hint(
                    "invalid_value",
                    p,
                    format!("unknown filter_mode '{other}'"),
                    "use pass_fail or filter_array",
                );
                return None;
            }
        };
        r.set_extra_vars(if array_mode { &["item"] } else { &["data"] });
        let condition = r.condition("condition", &["expression"]);
        r.set_extra_vars(&[]);
        let field_conditions = match r.raw("field_conditions", &[]) {
            None => None,
            Some((_, Value::Object(m))) => Some(m.clone()),
            Some((p, _)) => {
                r.problem(
                    "wrong_type",
                    p,
                    "'field_conditions' must be an object of field -> value",
                );
                return None;
            }
        };
        let pass_if_missing = r.bool("pass_if_missing", &[]).unwrap_or(false);
        let invert = r.bool("invert", &[]).unwrap_or(false);
        Some(Arc::new(FilterRuntime {
            data: data?,
            condition,
            field_conditions,
            pass_if_missing,
            array_mode,
            invert,
        }))
    }
}

impl StageRuntime for FilterRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move { self.apply(cx) })
    }
}

impl FilterRuntime {
    fn apply(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let data = self
            .data
            .render(cx.scope)
            .map_err(|e| StageError::template(&e, "config.data"))?;
        if self.array_mode {
            let Value::Array(items) = &data else {
                return Err(StageError::new(
                    ErrorKind::Data,
                    format!(
                        "filter_array mode needs a list as data, got {}",
                        fm_core::model::reader::json_type_name(&data)
                    ),
                )
                .retryable(false));
            };
            let mut kept = Vec::new();
            for item in items {
                let (passed, _) = self.test(cx, "item", item)?;
                if passed != self.invert {
                    kept.push(item.clone());
                }
            }
            let filtered = items.len() - kept.len();
            let reason = format!("Filtered {filtered} items, {} passed", kept.len());
            return Ok(
                json!({"passed": !kept.is_empty(), "data": kept, "filtered_count": filtered, "reason": reason}),
            );
        }
        let (passed, mut reason) = self.test(cx, "data", &data)?;
        let passed = passed != self.invert;
        if self.invert {
            reason = format!("(inverted) {reason}");
        }
        Ok(json!({
            "passed": passed,
            "data": if passed { data } else { Value::Null },
            "filtered_count": 0,
            "reason": reason,
        }))
    }

    /// Whether `value` (seen as `name` by the condition) passes, and why.
    fn test(
        &self,
        cx: &StageContext<'_>,
        name: &str,
        value: &Value,
    ) -> Result<(bool, String), StageError> {
        if let Some(c) = &self.condition {
            let scope = OverlayScope {
                parent: cx.scope,
                name,
                value,
            };
            return match c.render(&scope) {
                Ok(v) => Ok((
                    fm_expr::is_truthy(&v),
                    format!("Expression '{}' = {}", c.source(), fm_expr::to_text(&v)),
                )),
                Err(e) if self.pass_if_missing => Ok((
                    true,
                    format!("Expression error (pass_if_missing): {}", e.render()),
                )),
                Err(e) => Ok((false, format!("Expression error: {}", e.render()))),
            };
        }
        if let Some(fields) = &self.field_conditions {
            let Some(obj) = value.as_object() else {
                return Ok((false, "Field conditions require an object".into()));
            };
            for (field, expected) in fields {
                match obj.get(field) {
                    None if self.pass_if_missing => continue,
                    None => return Ok((false, format!("Missing field: {field}"))),
                    Some(actual) if actual != expected => {
                        return Ok((
                            false,
                            format!(
                                "Field '{field}': expected {}, got {}",
                                fm_expr::to_text(expected),
                                fm_expr::to_text(actual)
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            return Ok((true, "All field conditions matched".into()));
        }
        Ok((true, "No conditions specified".into()))
    }
}
