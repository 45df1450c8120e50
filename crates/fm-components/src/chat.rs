//! `chat` (FlowMason): one turn of a conversation.
//!
//! Config: `message` (required), `history` (a list of `{role, content}`), `system_prompt`,
//! `persona`, `max_history` (message pairs kept, 1-100, default 10); plus the generator's
//! provider settings. Output: `{response, history, turn_count}`: the history with this turn
//! added, trimmed to `max_history` pairs.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::llm_task::{self, Llm};
use crate::Generator;

pub struct Chat(pub Arc<Generator>);

#[derive(Debug)]
pub struct ChatRuntime {
    llm: Llm,
    message: Template,
    history: Option<ValueTemplate>,
    system_prompt: Option<Template>,
    persona: Option<Template>,
    max_history: usize,
}

impl Component for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: one conversation turn with history, with an LLM"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let message = llm_task::required_template(r, "message", &[]);
        let history = r.value_template("history", &[]);
        let system_prompt = r.template("system_prompt", &["system"]);
        let persona = r.template("persona", &[]);
        let max_history = r.u64("max_history", &[]).unwrap_or(10);
        if !(1..=100).contains(&max_history) {
            let p = r.key_path("max_history");
            r.problem(
                "invalid_value",
                p,
                format!("max_history is 1 to 100, got {max_history}"),
            );
            return None;
        }
        let llm = Llm::read(&self.0, r, false, 0.7, 2048)?;
        Some(Arc::new(ChatRuntime {
            llm,
            message: message?,
            history,
            system_prompt,
            persona,
            max_history: usize::try_from(max_history).unwrap_or(10),
        }))
    }
}

impl StageRuntime for ChatRuntime {
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

impl ChatRuntime {
    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let message = llm_task::text(cx, &self.message, "message")?;
        let history = match llm_task::value(cx, self.history.as_ref(), "config.history")? {
            Value::Null => Vec::new(),
            Value::Array(items) => items,
            other => {
                return Err(StageError::new(
                    ErrorKind::Data,
                    format!(
                        "chat: history must be a list of {{role, content}} messages, got {}",
                        fm_core::model::reader::json_type_name(&other)
                    ),
                )
                .retryable(false))
            }
        };
        let mut system = llm_task::opt_text(cx, &self.system_prompt, "system_prompt")?
            .unwrap_or_else(|| "You are a helpful assistant engaged in a conversation.".into());
        if let Some(p) = llm_task::opt_text(cx, &self.persona, "persona")? {
            system.push_str(&format!("\n\nPersona: {p}"));
        }
        let keep = self.max_history * 2;
        let recent = &history[history.len().saturating_sub(keep)..];
        let mut prompt = String::new();
        for m in recent {
            let content = m.get("content").map(fm_expr::to_text).unwrap_or_default();
            match m.get("role").and_then(Value::as_str) {
                Some("user") => prompt.push_str(&format!("User: {content}\n\n")),
                Some("assistant") => prompt.push_str(&format!("Assistant: {content}\n\n")),
                _ => {}
            }
        }
        prompt.push_str(&format!("User: {message}\n\nAssistant:"));
        let (reply, _) = self.llm.ask(cx, system, prompt).await?;
        let response = reply.trim().to_owned();
        let mut updated: Vec<Value> = recent.to_vec();
        updated.push(json!({"role": "user", "content": message}));
        updated.push(json!({"role": "assistant", "content": response}));
        let turns = updated.len() / 2;
        Ok(json!({"response": response, "history": updated, "turn_count": turns}))
    }
}
