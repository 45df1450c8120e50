//! A JSON value whose string leaves are compiled templates: how every component config is stored.

use fm_expr::{Scope, Template, Value};
use serde_json::Map;

use crate::model::path::child_path;

/// A config value compiled once at load. Subtrees without any template are kept as literal JSON,
/// so rendering them is a clone and nothing else.
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    Literal(Value),
    Template(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

/// A template that failed while rendering, with the config path of the failing leaf.
#[derive(Debug, Clone)]
pub struct RenderError {
    /// Path below the value the template was compiled from, e.g. `body.payload.summary`.
    pub path: String,
    pub error: fm_expr::Error,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.error.render())
        } else {
            write!(f, "in {}: {}", self.path, self.error.render())
        }
    }
}

impl ValueTemplate {
    /// Compiles every string leaf. Errors are returned with the path of the failing leaf.
    pub fn compile(
        value: &Value,
        opts: &fm_expr::CompileOptions<'_>,
        on_template: &mut dyn FnMut(&str, &Template),
    ) -> Result<ValueTemplate, Vec<(String, fm_expr::Error)>> {
        let mut errors = Vec::new();
        let compiled = compile_at(value, "", opts, on_template, &mut errors);
        if errors.is_empty() {
            Ok(compiled)
        } else {
            Err(errors)
        }
    }

    pub fn literal(value: Value) -> Self {
        ValueTemplate::Literal(value)
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, ValueTemplate::Literal(_))
    }

    /// Renders with the typed rule for each string leaf (a lone `{{ expr }}` keeps its JSON type).
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, RenderError> {
        match self {
            ValueTemplate::Literal(v) => Ok(v.clone()),
            ValueTemplate::Template(t) => t.render(scope).map_err(|error| RenderError {
                path: String::new(),
                error,
            }),
            ValueTemplate::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(
                        item.render(scope)
                            .map_err(|e| prefix(e, &format!("[{i}]")))?,
                    );
                }
                Ok(Value::Array(out))
            }
            ValueTemplate::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, v) in fields {
                    let rendered = v.render(scope).map_err(|e| prefix(e, &child_path("", k)))?;
                    out.insert(k.clone(), rendered);
                }
                Ok(Value::Object(out))
            }
        }
    }

    /// The template, when this value is a single string template (not a literal, array or object).
    pub fn as_template(&self) -> Option<&Template> {
        match self {
            ValueTemplate::Template(t) => Some(t),
            _ => None,
        }
    }
}

fn prefix(mut e: RenderError, segment: &str) -> RenderError {
    let segment = segment.trim_start_matches('.');
    e.path = if e.path.is_empty() {
        segment.to_owned()
    } else if e.path.starts_with('[') {
        format!("{segment}{}", e.path)
    } else {
        format!("{segment}.{}", e.path)
    };
    e
}

fn compile_at(
    value: &Value,
    path: &str,
    opts: &fm_expr::CompileOptions<'_>,
    on_template: &mut dyn FnMut(&str, &Template),
    errors: &mut Vec<(String, fm_expr::Error)>,
) -> ValueTemplate {
    match value {
        Value::String(s) if s.contains("{{") => match Template::compile(s, opts) {
            Ok(t) => {
                on_template(path, &t);
                ValueTemplate::Template(t)
            }
            Err(e) => {
                errors.push((path.to_owned(), e));
                ValueTemplate::Literal(value.clone())
            }
        },
        Value::Array(items) => {
            let compiled: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_at(v, &format!("{path}[{i}]"), opts, on_template, errors))
                .collect();
            if compiled.iter().all(ValueTemplate::is_literal) {
                ValueTemplate::Literal(value.clone())
            } else {
                ValueTemplate::Array(compiled)
            }
        }
        Value::Object(map) => {
            let compiled: Vec<_> = map
                .iter()
                .map(|(k, v)| {
                    let child = compile_at(v, &child_path(path, k), opts, on_template, errors);
                    (k.clone(), child)
                })
                .collect();
            if compiled.iter().all(|(_, v)| v.is_literal()) {
                ValueTemplate::Literal(value.clone())
            } else {
                ValueTemplate::Object(compiled)
            }
        }
        _ => ValueTemplate::Literal(value.clone()),
    }
}
