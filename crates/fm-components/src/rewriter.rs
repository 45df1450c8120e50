//! `rewriter` (FlowMason): rewrite a text in another style.
//!
//! Config: `text` (required), `style` (`simplify`, `formal`, `casual`, `concise`, `expand`,
//! `creative`, `improve`; default improve), `tone`, `target_audience`, `preserve_key_points`
//! (default true); plus the generator's provider settings. Output: `{rewritten, style, tone,
//! input}`.

use std::sync::Arc;

use fm_core::model::ConfigReader;
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Rewriter(pub Arc<Generator>);

#[derive(Debug)]
pub struct RewriterRuntime {
    llm: Llm,
    text: Template,
    style: String,
    tone: Option<Template>,
    audience: Option<Template>,
    preserve_key_points: bool,
}

impl Component for Rewriter {
    fn name(&self) -> &'static str {
        "rewriter"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: rewrite a text in another style or tone with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let text = llm_task::required_template(r, "text", &["content"]);
        let style = r.string("style", &[]).unwrap_or_else(|| "improve".into());
        let tone = r.template("tone", &[]);
        let audience = r.template("target_audience", &[]);
        let preserve_key_points = r.bool("preserve_key_points", &[]).unwrap_or(true);
        let llm = Llm::read(&self.0, r, false, 0.7, 4096)?;
        Some(Arc::new(RewriterRuntime {
            llm,
            text: text?,
            style,
            tone,
            audience,
            preserve_key_points,
        }))
    }
}

impl StageRuntime for RewriterRuntime {
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

impl RewriterRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let text = llm_task::text(cx, &self.text, "text")?;
        let tone = llm_task::opt_text(cx, &self.tone, "tone")?;
        let audience = llm_task::opt_text(cx, &self.audience, "target_audience")?;
        let mut prompt = match self.style.as_str() {
            "simplify" => format!("Simplify the following text to make it easier to understand. Use simpler words and shorter sentences:\n\n{text}"),
            "formal" => format!("Rewrite the following text in a formal, professional style:\n\n{text}"),
            "casual" => format!("Rewrite the following text in a casual, conversational style:\n\n{text}"),
            "concise" => format!("Rewrite the following text to be more concise while keeping all key information:\n\n{text}"),
            "expand" => format!("Expand the following text with more detail and explanation:\n\n{text}"),
            "creative" => format!("Creatively rewrite the following text to make it more engaging and interesting:\n\n{text}"),
            _ => format!("Improve the following text for clarity and readability:\n\n{text}"),
        };
        if let Some(t) = &tone {
            prompt.push_str(&format!("\n\nUse a {t} tone."));
        }
        if let Some(a) = audience {
            prompt.push_str(&format!("\n\nTarget audience: {a}"));
        }
        if self.preserve_key_points {
            prompt.push_str("\n\nEnsure all key points from the original text are preserved.");
        }
        prompt.push_str("\n\nReturn only the rewritten text.");
        let system = "You are an expert writer and editor. Rewrite text according to the given instructions while preserving the core meaning.".to_owned();
        let (reply, _) = self.llm.ask(cx, system, prompt).await?;
        Ok(json!({"rewritten": reply.trim(), "style": self.style, "tone": tone, "input": text}))
    }
}
