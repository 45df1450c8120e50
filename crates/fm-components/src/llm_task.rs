//! What FlowMason's model components (critic, improver, selector, combiner, summarizer, analyzer,
//! rewriter, translator, chat) share: their provider settings are the generator's (`provider`,
//! `model`, `temperature`, `max_tokens`, `base_url`, `timeout`, and a FlowMason stage's
//! `llm_settings`), they render their fields, build FlowMason's prompts, ask through the
//! generator's providers (with its retries, timeouts and key masking), and shape the answer
//! into FlowMason's output.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{ErrorKind, StageContext, StageError};
use fm_expr::{Template, Value};
use serde_json::Map;

use crate::generator::{GeneratorRuntime, ResponseFormat};
use crate::Generator;

/// The LLM half of a model component: a generator runtime whose prompts are built at run time.
#[derive(Debug)]
pub struct Llm {
    rt: GeneratorRuntime,
}

impl Llm {
    /// Reads the shared provider settings. FlowMason's default temperature and max_tokens for
    /// the component apply when the stage sets none.
    pub fn read(
        generator: &Arc<Generator>,
        r: &mut ConfigReader<'_, '_>,
        json: bool,
        temperature: f64,
        max_tokens: u64,
    ) -> Option<Llm> {
        let format = if json {
            ResponseFormat::Json
        } else {
            ResponseFormat::Text
        };
        let mut rt = generator.llm_runtime(r, format)?;
        rt.default_sampling(temperature, max_tokens);
        Some(Llm { rt })
    }

    pub fn preflight(&self) -> Result<(), String> {
        fm_core::StageRuntime::preflight(&self.rt)
    }

    /// Asks; returns the reply's text and, when it holds one, its JSON object.
    pub async fn ask(
        &self,
        cx: &StageContext<'_>,
        system: String,
        prompt: String,
    ) -> Result<(String, Option<Map<String, Value>>), StageError> {
        let out = self.rt.run_with(cx, Some(system), prompt).await?;
        let content = out
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let json = match out.get("json") {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        };
        Ok((content, json))
    }
}

/// A required text field.
pub fn text(cx: &StageContext<'_>, t: &Template, what: &str) -> Result<String, StageError> {
    t.render_string(cx.scope)
        .map_err(|e| crate::http::template_error(&e, what))
}

/// An optional text field.
pub fn opt_text(
    cx: &StageContext<'_>,
    t: &Option<Template>,
    what: &str,
) -> Result<Option<String>, StageError> {
    t.as_ref().map(|t| text(cx, t, what)).transpose()
}

/// A list of texts: a list value (each item as text), or one string (one item).
pub fn texts(
    cx: &StageContext<'_>,
    t: Option<&ValueTemplate>,
    what: &str,
) -> Result<Vec<String>, StageError> {
    let Some(t) = t else { return Ok(Vec::new()) };
    let v = t
        .render(cx.scope)
        .map_err(|e| StageError::template(&e, what))?;
    Ok(match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|v| fm_expr::to_text(v).into_owned())
            .collect(),
        other => vec![fm_expr::to_text(&other).into_owned()],
    })
}

/// Any JSON value.
pub fn value(
    cx: &StageContext<'_>,
    t: Option<&ValueTemplate>,
    what: &str,
) -> Result<Value, StageError> {
    match t {
        Some(t) => t
            .render(cx.scope)
            .map_err(|e| StageError::template(&e, what)),
        None => Ok(Value::Null),
    }
}

/// A required template field; reports it missing.
pub fn required_template(
    r: &mut ConfigReader<'_, '_>,
    key: &'static str,
    aliases: &[&'static str],
) -> Option<Template> {
    if !r.has(key, aliases) {
        r.missing(key);
        return None;
    }
    r.template(key, aliases)
}

/// A model that was asked for JSON and answered something else: a structured verdict is never
/// made up. Retryable: asking again may well give JSON.
pub fn not_json(component: &str, content: &str) -> StageError {
    let shown: String = content.chars().take(200).collect();
    StageError::new(
        ErrorKind::InvalidResponse,
        format!("{component}: the model's reply is not the JSON object asked for: {shown}"),
    )
}

/// `json[key]` or a default.
pub fn field(json: &Map<String, Value>, key: &str, default: Value) -> Value {
    json.get(key)
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or(default)
}

/// "\n\nHeading:\n- a\n- b\n" for a non-empty list, else "".
pub fn bullets(heading: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!("\n\n{heading}\n");
    for i in items {
        s.push_str("- ");
        s.push_str(i);
        s.push('\n');
    }
    s
}
