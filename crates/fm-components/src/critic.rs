//! `critic` (FlowMason): evaluate content against criteria and return a structured verdict.
//!
//! Config: `content` (required), `criteria` (a list, or one string), `context`, `rubric` (an
//! object criterion -> description), `strict_mode`; plus the generator's provider settings.
//! Output: `{overall_rating, score, feedback, strengths, improvements, criterion_scores,
//! passes_threshold}`. A reply without the JSON verdict fails the stage (kind
//! `invalid_response`, retryable): a score is never made up.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Critic(pub Arc<Generator>);

#[derive(Debug)]
pub struct CriticRuntime {
    llm: Llm,
    content: Template,
    criteria: Option<ValueTemplate>,
    context: Option<Template>,
    rubric: Option<ValueTemplate>,
    strict_mode: bool,
}

impl Component for Critic {
    fn name(&self) -> &'static str {
        "critic"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: evaluate content against criteria (rating, score, feedback) with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let content = llm_task::required_template(r, "content", &["text"]);
        let criteria = r.value_template("criteria", &[]);
        let context = r.template("context", &[]);
        let rubric = r.value_template("rubric", &[]);
        let strict_mode = r.bool("strict_mode", &["strict"]).unwrap_or(false);
        let llm = Llm::read(&self.0, r, true, 0.3, 2048)?;
        Some(Arc::new(CriticRuntime {
            llm,
            content: content?,
            criteria,
            context,
            rubric,
            strict_mode,
        }))
    }
}

impl StageRuntime for CriticRuntime {
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

impl CriticRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let content = llm_task::text(cx, &self.content, "content")?;
        let criteria = llm_task::texts(cx, self.criteria.as_ref(), "config.criteria")?;
        let context = llm_task::opt_text(cx, &self.context, "context")?;
        let rubric = llm_task::value(cx, self.rubric.as_ref(), "config.rubric")?;
        let mut criteria_text = String::new();
        if !criteria.is_empty() {
            criteria_text.push_str("\n\nEvaluate against these criteria:\n");
            for c in &criteria {
                criteria_text.push_str("- ");
                criteria_text.push_str(c);
                if let Some(d) = rubric.get(c).map(fm_expr::to_text) {
                    criteria_text.push_str(": ");
                    criteria_text.push_str(&d);
                }
                criteria_text.push('\n');
            }
        }
        let context_text = context.map_or(String::new(), |c| format!("\n\nContext: {c}"));
        let strictness = if self.strict_mode {
            "Apply strict evaluation standards."
        } else {
            ""
        };
        let system = format!(
            "You are an expert content evaluator. Analyze the provided content and give structured feedback.\n\n{strictness}\n\n\
             Respond in JSON format with:\n{{\n    \"overall_rating\": \"excellent|good|acceptable|needs_improvement|poor\",\n    \
             \"score\": 0.0-1.0,\n    \"feedback\": \"detailed explanation\",\n    \"strengths\": [\"list of strengths\"],\n    \
             \"improvements\": [\"list of improvements\"],\n    \"criterion_scores\": {{\"criterion\": score}},\n    \
             \"passes_threshold\": true/false\n}}"
        );
        let prompt =
            format!("Evaluate this content:\n\n---\n{content}\n---\n{criteria_text}{context_text}");
        let (reply, json) = self.llm.ask(cx, system, prompt).await?;
        let Some(j) = json else {
            return Err(llm_task::not_json("critic", &reply));
        };
        let score = match j.get("score").and_then(Value::as_f64) {
            Some(s) => s,
            None => return Err(llm_task::not_json("critic (no numeric score)", &reply)),
        };
        Ok(json!({
            "overall_rating": llm_task::field(&j, "overall_rating", json!("acceptable")),
            "score": score,
            "feedback": llm_task::field(&j, "feedback", json!("")),
            "strengths": llm_task::field(&j, "strengths", json!([])),
            "improvements": llm_task::field(&j, "improvements", json!([])),
            "criterion_scores": llm_task::field(&j, "criterion_scores", json!({})),
            "passes_threshold": llm_task::field(&j, "passes_threshold", json!(score >= 0.7)),
        }))
    }
}
