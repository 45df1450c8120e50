//! `variable_set` (FlowMason): name a value so later stages read it.
//!
//! Config, either FlowMason's class form: `name` (an identifier), `value` (any JSON, templates
//! allowed), `extract_path` (a dot path into the value, e.g. `items[0].id`), `scope`,
//! `overwrite`; output `{name, value, previous_value, was_set}`. Or, as FlowMason's templates
//! write it, `variables` (an object of name -> value); output `{variables}`. Later stages read
//! `stages.<id>.output.value` / `upstream.<id>.variables.<name>`.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::Value;
use futures::future::BoxFuture;
use serde_json::json;

pub struct VariableSet;

#[derive(Debug)]
enum Form {
    One {
        name: String,
        value: ValueTemplate,
        extract_path: Option<String>,
    },
    Many(ValueTemplate),
}

#[derive(Debug)]
pub struct VariableSetRuntime {
    form: Form,
}

impl Component for VariableSet {
    fn name(&self) -> &'static str {
        "variable_set"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: set named values (name/value, or a variables object) for later stages"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let _ = r.string("scope", &[]);
        let _ = r.bool("overwrite", &[]);
        if r.has("variables", &[]) {
            if r.has("name", &[]) {
                let p = r.key_path("variables");
                r.problem_with_hint(
                    "conflicting_keys",
                    p,
                    "give either 'variables' or 'name' and 'value', not both",
                    "'variables' sets several at once",
                );
                return None;
            }
            let vars = r.value_template("variables", &[])?;
            return Some(Arc::new(VariableSetRuntime {
                form: Form::Many(vars),
            }));
        }
        let name = r.required_string("name", &[]);
        if let Some(n) = &name {
            let ok = n
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                let p = r.key_path("name");
                r.problem("invalid_value", p, format!("variable name '{n}' must be letters, digits and '_', not starting with a digit"));
                return None;
            }
        }
        if !r.has("value", &[]) {
            r.missing("value");
        }
        let value = r.value_template("value", &[]);
        let extract_path = r.string("extract_path", &[]);
        Some(Arc::new(VariableSetRuntime {
            form: Form::One {
                name: name?,
                value: value?,
                extract_path,
            },
        }))
    }
}

impl StageRuntime for VariableSetRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            match &self.form {
                Form::Many(t) => {
                    let vars = t
                        .render(cx.scope)
                        .map_err(|e| StageError::template(&e, "config.variables"))?;
                    Ok(json!({"variables": vars}))
                }
                Form::One {
                    name,
                    value,
                    extract_path,
                } => {
                    let mut v = value
                        .render(cx.scope)
                        .map_err(|e| StageError::template(&e, "config.value"))?;
                    if let Some(p) = extract_path {
                        v = extract(&v, p).cloned().unwrap_or(Value::Null);
                    }
                    Ok(json!({"name": name, "value": v, "previous_value": null, "was_set": true}))
                }
            }
        })
    }
}

/// FlowMason's dot path: `data.items[0].name`; `None` when a step is missing.
fn extract<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.replace('[', ".[").split('.').filter(|p| !p.is_empty()) {
        cur = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(i) => cur.as_array()?.get(i.parse::<usize>().ok()?)?,
            None => cur.as_object()?.get(part)?,
        };
    }
    Some(cur)
}
