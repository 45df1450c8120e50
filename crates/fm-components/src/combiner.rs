//! `combiner` (FlowMason; its Studio writes `synthesizer`): synthesize several inputs into one.
//!
//! Config: `inputs` (a list of texts, at least two) or, as the templates write it, `sources`
//! (a list of `{label, content}`); `synthesis_strategy` (`integrate`, `summarize`, `compare`,
//! `consensus`, `best_of`), `context`, `output_format`, `preserve_sources`, `max_length` (words),
//! `instructions`; plus the generator's provider settings. Output: `{synthesized, sources_used,
//! strategy_applied, key_themes}`; a reply that is not JSON is taken as the synthesis.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

const STRATEGIES: [(&str, &str); 5] = [
    ("integrate", "Integration Strategy: Combine all inputs into a single coherent narrative. Weave together the information smoothly, eliminating redundancy while preserving all unique insights."),
    ("summarize", "Summarization Strategy: Create a concise summary that captures the key points from all inputs. Focus on the most important information and common themes."),
    ("compare", "Comparison Strategy: Analyze the inputs and highlight similarities and differences. Present a balanced view of how the sources agree or disagree."),
    ("consensus", "Consensus Strategy: Identify areas of agreement across all inputs. Focus on common ground and shared conclusions."),
    ("best_of", "Best-of Strategy: Evaluate each input and select the highest quality content. Combine the strongest elements from each source."),
];

pub struct Combiner(pub Arc<Generator>);

#[derive(Debug)]
pub struct CombinerRuntime {
    llm: Llm,
    inputs: ValueTemplate,
    strategy: String,
    context: Option<Template>,
    output_format: Option<Template>,
    instructions: Option<Template>,
    preserve_sources: bool,
    max_length: Option<u64>,
}

impl Component for Combiner {
    fn name(&self) -> &'static str {
        "combiner"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["synthesizer"]
    }

    fn summary(&self) -> &'static str {
        "FlowMason: synthesize several inputs into one text with an LLM (alias synthesizer)"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("inputs", &["sources"]) {
            r.missing("inputs");
        }
        let inputs = r.value_template("inputs", &["sources"]);
        let strategy = r
            .string("synthesis_strategy", &["strategy"])
            .unwrap_or_else(|| "integrate".into());
        if !STRATEGIES.iter().any(|(s, _)| *s == strategy) {
            let p = r.key_path("synthesis_strategy");
            r.problem_with_hint(
                "invalid_value",
                p,
                format!("unknown synthesis_strategy '{strategy}'"),
                "use integrate, summarize, compare, consensus or best_of",
            );
            return None;
        }
        let context = r.template("context", &[]);
        let output_format = r.template("output_format", &[]);
        let instructions = r.template("instructions", &[]);
        let preserve_sources = r.bool("preserve_sources", &[]).unwrap_or(false);
        let max_length = r.u64("max_length", &[]);
        let llm = Llm::read(&self.0, r, false, 0.5, 4096)?;
        Some(Arc::new(CombinerRuntime {
            llm,
            inputs: inputs?,
            strategy,
            context,
            output_format,
            instructions,
            preserve_sources,
            max_length,
        }))
    }
}

impl StageRuntime for CombinerRuntime {
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

/// One input as text: a `{label, content}` source becomes "label: content".
fn input_text(v: &Value) -> String {
    match (v.get("label"), v.get("content")) {
        (Some(l), Some(c)) => format!("{}: {}", fm_expr::to_text(l), fm_expr::to_text(c)),
        (None, Some(c)) => fm_expr::to_text(c).into_owned(),
        _ => fm_expr::to_text(v).into_owned(),
    }
}

impl CombinerRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let inputs = match llm_task::value(cx, Some(&self.inputs), "config.inputs")? {
            Value::Array(items) => items.iter().map(input_text).collect::<Vec<_>>(),
            other => vec![input_text(&other)],
        };
        if inputs.len() < 2 {
            return Err(StageError::new(
                fm_core::ErrorKind::Data,
                format!("combiner needs at least 2 inputs, got {}", inputs.len()),
            )
            .retryable(false));
        }
        let context = llm_task::opt_text(cx, &self.context, "context")?;
        let format = llm_task::opt_text(cx, &self.output_format, "output_format")?;
        let instructions = llm_task::opt_text(cx, &self.instructions, "instructions")?;
        let how = STRATEGIES
            .iter()
            .find(|(s, _)| *s == self.strategy)
            .map_or("", |(_, h)| h);
        let strategy = &self.strategy;
        let system = format!(
            "You are an expert at synthesizing information from multiple sources.\n\n{how}\n\n\
             After synthesizing, provide a JSON response with:\n{{\n    \"synthesized\": \"the synthesized content\",\n    \
             \"key_themes\": [\"list of common themes\"],\n    \"strategy_applied\": \"{strategy}\"\n}}"
        );
        let mut listed = String::new();
        for (i, t) in inputs.iter().enumerate() {
            listed.push_str(&format!("\n[Source {}]:\n{t}\n", i + 1));
        }
        let mut extra = String::new();
        if let Some(c) = context {
            extra.push_str(&format!("\nContext: {c}"));
        }
        if let Some(f) = format {
            extra.push_str(&format!("\nOutput format: {f}"));
        }
        if let Some(n) = self.max_length {
            extra.push_str(&format!("\nTarget length: approximately {n} words"));
        }
        if self.preserve_sources {
            extra.push_str("\nInclude source attribution (e.g., 'According to Source 1...')");
        }
        if let Some(i) = instructions {
            extra.push_str(&format!("\nInstructions: {i}"));
        }
        let prompt = format!(
            "Synthesize the following {} inputs:\n{listed}\n{extra}\n\nApply the '{strategy}' strategy to combine these inputs into a unified output.",
            inputs.len()
        );
        let (reply, json) = self.llm.ask(cx, system, prompt).await?;
        let (synthesized, strategy_applied, themes) = match &json {
            Some(j) => (
                llm_task::field(j, "synthesized", Value::String(reply.clone())),
                llm_task::field(j, "strategy_applied", json!(strategy)),
                llm_task::field(j, "key_themes", json!([])),
            ),
            None => (Value::String(reply), json!(strategy), json!([])),
        };
        Ok(json!({
            "synthesized": synthesized,
            "sources_used": inputs.len(),
            "strategy_applied": strategy_applied,
            "key_themes": themes,
        }))
    }
}
