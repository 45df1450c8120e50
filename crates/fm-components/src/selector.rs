//! `selector` (FlowMason): pick the best of several candidates with an LLM.
//!
//! Config: `candidates` (a list of at least two; FlowMason's templates write `options`),
//! `criteria` (a list or one string), `context`, `selection_mode` (`best`, `top_n`, `rank_all`),
//! `top_n` (1-10), `explain_choice`; plus the generator's provider settings. Output:
//! `{selected, selected_index, explanation, rankings, confidence}`, with `reasoning` as the same
//! text as `explanation` (the templates' name). A reply without a valid `selected_index` fails
//! the stage (kind `invalid_response`): a choice is never made up.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Selector(pub Arc<Generator>);

#[derive(Debug)]
pub struct SelectorRuntime {
    llm: Llm,
    candidates: ValueTemplate,
    criteria: Option<ValueTemplate>,
    context: Option<Template>,
    mode: String,
    top_n: u64,
}

impl Component for Selector {
    fn name(&self) -> &'static str {
        "selector"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: choose the best of several candidates with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("candidates", &["options"]) {
            r.missing("candidates");
        }
        let candidates = r.value_template("candidates", &["options"]);
        let criteria = r.value_template("criteria", &[]);
        let context = r.template("context", &[]);
        let mode = r
            .string("selection_mode", &[])
            .unwrap_or_else(|| "best".into());
        if !["best", "top_n", "rank_all"].contains(&mode.as_str()) {
            let p = r.key_path("selection_mode");
            r.problem_with_hint(
                "invalid_value",
                p,
                format!("unknown selection_mode '{mode}'"),
                "use best, top_n or rank_all",
            );
            return None;
        }
        let top_n = r.u64("top_n", &[]).unwrap_or(1);
        if !(1..=10).contains(&top_n) {
            let p = r.key_path("top_n");
            r.problem("invalid_value", p, format!("top_n is 1 to 10, got {top_n}"));
            return None;
        }
        let _ = r.bool("explain_choice", &[]);
        let llm = Llm::read(&self.0, r, true, 0.2, 2048)?;
        Some(Arc::new(SelectorRuntime {
            llm,
            candidates: candidates?,
            criteria,
            context,
            mode,
            top_n,
        }))
    }
}

impl StageRuntime for SelectorRuntime {
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

impl SelectorRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let candidates = llm_task::texts(cx, Some(&self.candidates), "config.candidates")?;
        if candidates.len() < 2 {
            return Err(StageError::new(
                fm_core::ErrorKind::Data,
                format!(
                    "selector needs at least 2 candidates, got {}",
                    candidates.len()
                ),
            )
            .retryable(false));
        }
        let criteria = llm_task::texts(cx, self.criteria.as_ref(), "config.criteria")?;
        let context = llm_task::opt_text(cx, &self.context, "context")?;
        let mut listed = String::new();
        for (i, c) in candidates.iter().enumerate() {
            listed.push_str(&format!("\n[Option {}]:\n{c}\n", i + 1));
        }
        let mode = match self.mode.as_str() {
            "top_n" => format!(
                "Select the top {} options, ranked from best to worst.",
                self.top_n
            ),
            "rank_all" => "Rank all options from best to worst with scores.".to_owned(),
            _ => "Select the single best option from the candidates.".to_owned(),
        };
        let system = format!(
            "You are an expert evaluator tasked with selecting the best option(s) from a set of candidates.\n\n{mode}\n\n\
             Respond in JSON format:\n{{\n    \"selected_index\": 0,\n    \"explanation\": \"why this was selected\",\n    \
             \"rankings\": [{{\"index\": 0, \"score\": 0.95, \"strengths\": [\"...\"], \"weaknesses\": [\"...\"]}}],\n    \
             \"confidence\": 0.85\n}}\nselected_index is 0-based."
        );
        let prompt = format!(
            "Select the best option from these {} candidates:\n{listed}\n{}{}\n\nEvaluate each option and select the best one.",
            candidates.len(),
            llm_task::bullets("Evaluate based on these criteria:", &criteria),
            context.map_or(String::new(), |c| format!("\nContext: {c}")),
        );
        let (reply, json) = self.llm.ask(cx, system, prompt).await?;
        let Some(j) = json else {
            return Err(llm_task::not_json("selector", &reply));
        };
        let index = j
            .get("selected_index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < candidates.len());
        let Some(index) = index else {
            return Err(llm_task::not_json(
                &format!(
                    "selector (no selected_index from 0 to {})",
                    candidates.len() - 1
                ),
                &reply,
            ));
        };
        let explanation = llm_task::field(&j, "explanation", json!(""));
        Ok(json!({
            "selected": candidates[index],
            "selected_index": index,
            "explanation": explanation,
            "reasoning": explanation,
            "rankings": llm_task::field(&j, "rankings", json!([])),
            "confidence": llm_task::field(&j, "confidence", json!(0.0)),
        }))
    }
}
