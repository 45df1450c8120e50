//! `analyzer` (FlowMason): analyze a text (sentiment, intent, topics, entities, or a custom
//! prompt).
//!
//! Config: `text` (required), `analysis_type` (`sentiment`, `intent`, `topics`, `entities`,
//! `custom`; default sentiment), `prompt` (for custom), `options`; plus the generator's provider
//! settings. Output: `{analysis, type, input, raw}`: `analysis` is the JSON object in the reply,
//! or its text when there is none.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Analyzer(pub Arc<Generator>);

#[derive(Debug)]
pub struct AnalyzerRuntime {
    llm: Llm,
    text: Template,
    kind: String,
    prompt: Option<Template>,
    options: Option<ValueTemplate>,
}

impl Component for Analyzer {
    fn name(&self) -> &'static str {
        "analyzer"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: analyze a text (sentiment, intent, topics, entities, custom) with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let text = llm_task::required_template(r, "text", &["content"]);
        let kind = r
            .string("analysis_type", &[])
            .unwrap_or_else(|| "sentiment".into());
        if !["sentiment", "intent", "topics", "entities", "custom"].contains(&kind.as_str()) {
            let p = r.key_path("analysis_type");
            r.problem_with_hint(
                "invalid_value",
                p,
                format!("unknown analysis_type '{kind}'"),
                "use sentiment, intent, topics, entities or custom",
            );
            return None;
        }
        let prompt = r.template("prompt", &[]);
        let options = r.value_template("options", &[]);
        let llm = Llm::read(&self.0, r, false, 0.3, 2048)?;
        Some(Arc::new(AnalyzerRuntime {
            llm,
            text: text?,
            kind,
            prompt,
            options,
        }))
    }
}

impl StageRuntime for AnalyzerRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn preflight(&self) -> Result<(), String> {
        self.llm.preflight()
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(self.run(cx))
    }
}

impl AnalyzerRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let text = llm_task::text(cx, &self.text, "text")?;
        let custom = llm_task::opt_text(cx, &self.prompt, "prompt")?;
        let options = llm_task::value(cx, self.options.as_ref(), "config.options")?;
        let (system, mut prompt) = match self.kind.as_str() {
            "sentiment" => ("You are a sentiment analysis expert. Analyze the sentiment of the given text.",
                format!("Analyze the sentiment of the following text. Return JSON with: sentiment (positive/negative/neutral), confidence (0-1), and explanation.\n\nText: {text}")),
            "intent" => ("You are an intent detection expert. Identify the user's intent from the given text.",
                format!("Identify the intent of the following text. Return JSON with: intent, confidence (0-1), and entities mentioned.\n\nText: {text}")),
            "topics" => ("You are a topic extraction expert. Extract the main topics from the given text.",
                format!("Extract the main topics from the following text. Return JSON with: topics (array of topic names), primaryTopic, and summary.\n\nText: {text}")),
            "entities" => ("You are a named entity recognition expert. Extract entities from the given text.",
                format!("Extract named entities from the following text. Return JSON with: entities (array of {{type, value, context}}).\n\nText: {text}")),
            _ => ("You are an expert analyst. Analyze the given text according to the instructions.",
                match custom {
                    Some(p) => format!("{p}\n\nText: {text}"),
                    None => format!("Analyze the following text and provide insights:\n\n{text}"),
                }),
        };
        if !options.is_null() {
            prompt.push_str(&format!("\n\nOptions: {}", fm_expr::to_text(&options)));
        }
        let (reply, json) = self.llm.ask(cx, system.to_owned(), prompt).await?;
        let raw = reply.trim().to_owned();
        Ok(json!({
            "analysis": json.map_or(Value::String(raw.clone()), Value::Object),
            "type": self.kind,
            "input": text,
            "raw": raw,
        }))
    }
}
