//! `improver` (FlowMason): refine content from feedback.
//!
//! Config: `content` and `feedback` (required), `improvements` (a list), `preserve_aspects`,
//! `improvement_focus` (FlowMason's templates write `instructions`: the same field),
//! `max_iterations` (1-5, kept for FlowMason's sake: one pass is made); plus the generator's
//! provider settings. Output: `{improved_content, changes_made, preserved_aspects,
//! improvement_summary}`, with `improved` and `content` as the same text (the names FlowMason's
//! templates read). A reply that is not JSON is taken as the improved text, as in FlowMason.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Improver(pub Arc<Generator>);

#[derive(Debug)]
pub struct ImproverRuntime {
    llm: Llm,
    content: Template,
    feedback: Template,
    improvements: Option<ValueTemplate>,
    preserve_aspects: Option<ValueTemplate>,
    focus: Option<Template>,
}

impl Component for Improver {
    fn name(&self) -> &'static str {
        "improver"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: improve content from feedback with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let content = llm_task::required_template(r, "content", &[]);
        let feedback = llm_task::required_template(r, "feedback", &[]);
        let improvements = r.value_template("improvements", &[]);
        let preserve_aspects = r.value_template("preserve_aspects", &[]);
        let focus = r.template("improvement_focus", &["instructions"]);
        if let Some(n) = r.u64("max_iterations", &[]) {
            if !(1..=5).contains(&n) {
                let p = r.key_path("max_iterations");
                r.problem(
                    "invalid_value",
                    p,
                    format!("max_iterations is 1 to 5, got {n}"),
                );
                return None;
            }
        }
        let llm = Llm::read(&self.0, r, false, 0.5, 4096)?;
        Some(Arc::new(ImproverRuntime {
            llm,
            content: content?,
            feedback: feedback?,
            improvements,
            preserve_aspects,
            focus,
        }))
    }
}

impl StageRuntime for ImproverRuntime {
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

impl ImproverRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let content = llm_task::text(cx, &self.content, "content")?;
        let feedback = llm_task::text(cx, &self.feedback, "feedback")?;
        let improvements = llm_task::texts(cx, self.improvements.as_ref(), "config.improvements")?;
        let preserve = llm_task::texts(
            cx,
            self.preserve_aspects.as_ref(),
            "config.preserve_aspects",
        )?;
        let focus = llm_task::opt_text(cx, &self.focus, "improvement_focus")?;
        let system = "You are an expert editor and content improver. Your task is to improve the given content based on the provided feedback while maintaining the original intent and voice.\n\n\
            After improving the content, provide a JSON response with:\n{\n    \"improved_content\": \"the improved text\",\n    \"changes_made\": [\"list of changes\"],\n    \"preserved_aspects\": [\"what was kept\"],\n    \"improvement_summary\": \"brief summary\"\n}".to_owned();
        let prompt = format!(
            "Original content:\n---\n{content}\n---\n\nFeedback:\n{feedback}{}{}{}\n\nPlease improve the content based on this feedback.",
            llm_task::bullets("Specific improvements to make:", &improvements),
            llm_task::bullets("Preserve these aspects:", &preserve),
            focus.map_or(String::new(), |f| format!("\n\nPrimary focus: {f}")),
        );
        let (reply, json) = self.llm.ask(cx, system, prompt).await?;
        let (improved, changes, kept, summary) = match &json {
            Some(j) => (
                llm_task::field(j, "improved_content", Value::String(reply.clone())),
                llm_task::field(j, "changes_made", json!([])),
                llm_task::field(j, "preserved_aspects", json!([])),
                llm_task::field(j, "improvement_summary", json!("")),
            ),
            None => (
                Value::String(reply),
                json!(["Applied feedback"]),
                json!(preserve),
                json!("Content improved based on feedback"),
            ),
        };
        Ok(json!({
            "improved_content": improved,
            "changes_made": changes,
            "preserved_aspects": kept,
            "improvement_summary": summary,
            "improved": improved,
            "content": improved,
        }))
    }
}
