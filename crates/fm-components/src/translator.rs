//! `translator` (FlowMason): translate a text.
//!
//! Config: `text` and `target_language` (required), `source_language` (default: detected),
//! `preserve_formatting`, `preserve_tone` (default true), `context`; plus the generator's
//! provider settings. Output: `{translated, source_language, target_language, input}`.

use std::sync::Arc;

use fm_core::model::ConfigReader;
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Translator(pub Arc<Generator>);

#[derive(Debug)]
pub struct TranslatorRuntime {
    llm: Llm,
    text: Template,
    target: Template,
    source: Option<Template>,
    context: Option<Template>,
    preserve_formatting: bool,
    preserve_tone: bool,
}

impl Component for Translator {
    fn name(&self) -> &'static str {
        "translator"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: translate a text with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let text = llm_task::required_template(r, "text", &["content"]);
        let target = llm_task::required_template(r, "target_language", &[]);
        let source = r.template("source_language", &[]);
        let context = r.template("context", &[]);
        let preserve_formatting = r.bool("preserve_formatting", &[]).unwrap_or(true);
        let preserve_tone = r.bool("preserve_tone", &[]).unwrap_or(true);
        let llm = Llm::read(&self.0, r, false, 0.3, 4096)?;
        Some(Arc::new(TranslatorRuntime {
            llm,
            text: text?,
            target: target?,
            source,
            context,
            preserve_formatting,
            preserve_tone,
        }))
    }
}

impl StageRuntime for TranslatorRuntime {
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

impl TranslatorRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let text = llm_task::text(cx, &self.text, "text")?;
        let target = llm_task::text(cx, &self.target, "target_language")?;
        let source = llm_task::opt_text(cx, &self.source, "source_language")?;
        let mut prompt = match &source {
            Some(s) => format!("Translate the following text from {s} to {target}:\n\n{text}"),
            None => format!(
                "Detect the language and translate the following text to {target}:\n\n{text}"
            ),
        };
        if self.preserve_formatting {
            prompt.push_str("\n\nPreserve the original formatting, including paragraphs, bullet points, and emphasis.");
        }
        if self.preserve_tone {
            prompt.push_str("\n\nPreserve the original tone, style, and voice.");
        }
        if let Some(c) = llm_task::opt_text(cx, &self.context, "context")? {
            prompt.push_str(&format!("\n\nContext: {c}"));
        }
        prompt.push_str("\n\nReturn only the translated text without any explanations.");
        let system = "You are an expert translator. Translate text accurately while preserving meaning, tone, and context.".to_owned();
        let (reply, _) = self.llm.ask(cx, system, prompt).await?;
        Ok(json!({
            "translated": reply.trim(),
            "source_language": source.unwrap_or_else(|| "auto-detected".into()),
            "target_language": target,
            "input": text,
        }))
    }
}
