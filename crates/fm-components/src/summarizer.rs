//! `summarizer` (FlowMason): summarize a text.
//!
//! Config: `text` (required), `style` (`brief`, `detailed`, `bullet`, `executive`; default
//! brief), `max_length` (words), `focus`; plus the generator's provider settings. Output:
//! `{summary, style, input, word_count}`.

use std::sync::Arc;

use fm_core::model::ConfigReader;
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Summarizer(pub Arc<Generator>);

#[derive(Debug)]
pub struct SummarizerRuntime {
    llm: Llm,
    text: Template,
    style: String,
    max_length: Option<u64>,
    focus: Option<Template>,
}

impl Component for Summarizer {
    fn name(&self) -> &'static str {
        "summarizer"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: summarize a text with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let text = llm_task::required_template(r, "text", &["content"]);
        let style = r.string("style", &[]).unwrap_or_else(|| "brief".into());
        let max_length = r.u64("max_length", &[]);
        let focus = r.template("focus", &[]);
        let llm = Llm::read(&self.0, r, false, 0.3, 2048)?;
        Some(Arc::new(SummarizerRuntime {
            llm,
            text: text?,
            style,
            max_length,
            focus,
        }))
    }
}

impl StageRuntime for SummarizerRuntime {
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

impl SummarizerRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let text = llm_task::text(cx, &self.text, "text")?;
        let mut prompt = match self.style.as_str() {
            "brief" => format!("Provide a brief 1-2 sentence summary of the following text:\n\n{text}"),
            "detailed" => format!("Provide a detailed summary of the following text, capturing all key points:\n\n{text}"),
            "bullet" => format!("Summarize the following text as bullet points:\n\n{text}"),
            "executive" => format!("Provide an executive summary of the following text, focusing on key decisions and action items:\n\n{text}"),
            _ => format!("Summarize the following text:\n\n{text}"),
        };
        if let Some(f) = llm_task::opt_text(cx, &self.focus, "focus")? {
            prompt.push_str(&format!("\n\nFocus particularly on: {f}"));
        }
        if let Some(n) = self.max_length {
            prompt.push_str(&format!("\n\nKeep the summary under {n} words."));
        }
        let system = "You are an expert summarizer. Create clear, accurate summaries.".to_owned();
        let (reply, _) = self.llm.ask(cx, system, prompt).await?;
        let summary = reply.trim().to_owned();
        Ok(json!({
            "summary": summary,
            "style": self.style,
            "input": text,
            "word_count": summary.split_whitespace().count(),
        }))
    }
}
