//! FlowMason 1.x's own vocabulary, read with FlowMason's meaning: the gallery and metadata keys
//! of a pipeline (kept, not refused), the stage keys its `ComponentConfig` and canonical schema
//! define (`input_mapping`, `llm_settings`, `provider`, `model`, `timeout_ms`, `retry_config`,
//! `error_handling`, `fallback_output`, `enabled`, `metadata`, `component_package`), and the
//! FlowMason components fm does not run, each refused with the reason.

use std::sync::Arc;
use std::time::Duration;

use fm_expr::Value;
use futures::future::BoxFuture;
use serde_json::Map;

use crate::component::{StageContext, StageError, StageRuntime};
use crate::model::pipeline::{Backoff, RetryPolicy};
use crate::model::reader::ConfigReader;

/// Top-level keys FlowMason writes for its gallery and docs: kept in `Pipeline::metadata`.
const KEPT_TOP_KEYS: &[&str] = &[
    "category",
    "tags",
    "metadata",
    "sample_input",
    "example_input",
    "difficulty",
    "use_cases",
];

/// FlowMason's pipeline inheritance and composition: refused with the reason.
const INHERITANCE_KEYS: &[&str] = &["extends", "abstract", "overrides", "compositions"];

/// Reads the kept top-level keys into a map, and refuses inheritance with a clear message.
pub fn read_top_metadata(r: &mut ConfigReader<'_, '_>) -> Map<String, Value> {
    let mut kept = Map::new();
    for &key in KEPT_TOP_KEYS {
        if let Some((_, v)) = r.raw(key, &[]) {
            kept.insert(key.to_owned(), v.clone());
        }
    }
    for &key in INHERITANCE_KEYS {
        if let Some((path, v)) = r.raw(key, &[]) {
            // `abstract: false` and empty lists say nothing; accept them.
            let says_nothing = matches!(v, Value::Bool(false) | Value::Null)
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(Map::is_empty);
            if !says_nothing {
                r.problem_with_hint(
                    "not_supported",
                    path,
                    format!("FlowMason pipeline inheritance and composition ('{key}') is not supported by fm"),
                    "write the stages out in this file (a sub-pipeline stage will be the way to reuse one)",
                );
            }
        }
    }
    kept
}

/// The LLM settings a stage may carry outside its config (FlowMason's `provider`, `model`,
/// `llm_settings`), merged into the config of a model component.
const LLM_SETTING_KEYS: &[&str] = &[
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "top_p",
    "stop_sequences",
];

/// The FlowMason stage keys, read.
#[derive(Debug, Default)]
pub struct StageExtras {
    /// `input_mapping`: merged with `config` (config wins on a shared key, as in FlowMason).
    pub input_mapping: Option<(String, Map<String, Value>)>,
    /// `provider`, `model` and `llm_settings`, as config keys (with the path each came from).
    pub llm: Vec<(String, String, Value)>,
    pub timeout_ms: Option<Duration>,
    /// From `retry_config` or `error_handling: {on_error: retry}`.
    pub retry: Option<RetryPolicy>,
    /// `error_handling.on_error: continue`.
    pub continue_on_error: bool,
    pub fallback_output: Option<(String, Value)>,
    /// `metadata`, `component_package`: kept.
    pub kept: Map<String, Value>,
}

pub fn read_stage_extras(r: &mut ConfigReader<'_, '_>) -> StageExtras {
    let mut x = StageExtras::default();
    match r.raw("input_mapping", &[]) {
        Some((path, Value::Object(m))) => x.input_mapping = Some((path, m.clone())),
        Some((path, _)) => r.problem("wrong_type", path, "'input_mapping' must be an object"),
        None => {}
    }
    for key in ["provider", "model"] {
        match r.raw(key, &[]) {
            Some((path, v @ Value::String(_))) => x.llm.push((key.to_owned(), path, v.clone())),
            Some((path, _)) => r.problem("wrong_type", path, format!("'{key}' must be a string")),
            None => {}
        }
    }
    if let Some(mut sub) = r.object("llm_settings", &[]) {
        for &key in LLM_SETTING_KEYS {
            if let Some((path, v)) = sub.raw(key, &[]) {
                x.llm.push((key.to_owned(), path, v.clone()));
            }
        }
        sub.finish();
    }
    if let Some((path, v)) = r.raw("timeout_ms", &[]) {
        match v.as_u64() {
            Some(ms) if ms > 0 => x.timeout_ms = Some(Duration::from_millis(ms)),
            _ => r.problem_with_hint(
                "invalid_value",
                path,
                "'timeout_ms' must be a positive number of milliseconds",
                "for example 30000 for 30 seconds",
            ),
        }
    }
    if let Some(mut sub) = r.object("retry_config", &[]) {
        sub.set_extra_vars(&["output"]);
        x.retry = read_retry_config(&mut sub);
        sub.finish();
    }
    if let Some(mut sub) = r.object("error_handling", &[]) {
        let (retry, cont) = read_error_handling(&mut sub);
        sub.finish();
        if retry.is_some() && x.retry.is_some() {
            let p = r.key_path("error_handling");
            r.problem_with_hint(
                "conflicting_keys",
                p,
                "both 'retry_config' and 'error_handling' say how to retry",
                "keep one of them",
            );
        }
        x.retry = x.retry.or(retry);
        x.continue_on_error = cont;
    }
    if let Some((path, v)) = r.raw("fallback_output", &[]) {
        x.fallback_output = Some((path, v.clone()));
    }
    if let Some((path, v)) = r.raw("enabled", &[]) {
        match v {
            Value::Bool(true) => {}
            Value::Bool(false) => r.problem_with_hint(
                "not_supported",
                path,
                "a disabled stage ('enabled: false') is not supported yet",
                "remove the stage (and what depends on it) while it is disabled",
            ),
            _ => r.problem("wrong_type", path, "'enabled' must be true or false"),
        }
    }
    for key in ["metadata", "component_package"] {
        if let Some((_, v)) = r.raw(key, &[]) {
            x.kept.insert(key.to_owned(), v.clone());
        }
    }
    x
}

/// FlowMason's `retry_config`: `max_retries` (0-10, retries after the first attempt),
/// `initial_delay_ms` (its class) or `backoff_ms` (its schema), `max_delay_ms`,
/// `backoff_multiplier` (>= 1), `retry_on_status_codes` (the attempt's `status_code`).
fn read_retry_config(r: &mut ConfigReader<'_, '_>) -> Option<RetryPolicy> {
    let path = r.path().to_owned();
    let retries = r.u64("max_retries", &[]).unwrap_or(3);
    if retries > 10 {
        r.problem(
            "invalid_value",
            format!("{path}.max_retries"),
            format!("max_retries is at most 10 in FlowMason, got {retries}"),
        );
    }
    let initial = r.u64("initial_delay_ms", &["backoff_ms"]).unwrap_or(1000);
    let max_delay = r.u64("max_delay_ms", &[]).unwrap_or(30_000);
    let factor = r.f64("backoff_multiplier", &[]).unwrap_or(2.0);
    if !(1.0..=5.0).contains(&factor) {
        r.problem(
            "invalid_value",
            format!("{path}.backoff_multiplier"),
            format!("backoff_multiplier must be between 1 and 5, got {factor}"),
        );
    }
    let condition = match r.raw("retry_on_status_codes", &[]) {
        Some((p, Value::Array(codes))) if codes.iter().all(|c| c.as_u64().is_some()) => {
            let list: Vec<String> = codes.iter().map(ToString::to_string).collect();
            let source = format!("{{{{output.status_code in [{}]}}}}", list.join(", "));
            r.condition_value(&p, &Value::String(source))
        }
        Some((p, _)) => {
            r.problem(
                "wrong_type",
                p,
                "'retry_on_status_codes' must be a list of HTTP status codes",
            );
            None
        }
        None => None,
    };
    if let Some((p, _)) = r.raw("retry_on_errors", &[]) {
        r.problem_with_hint(
            "not_supported",
            p,
            "'retry_on_errors' (FlowMason exception names) is not supported",
            "fm retries connection errors, timeouts and HTTP 408/425/429/5xx; use retry_on_status_codes for other statuses",
        );
    }
    Some(RetryPolicy {
        max_attempts: u32::try_from(retries.min(10)).unwrap_or(10) + 1,
        delay: Duration::from_millis(initial),
        backoff: Backoff::Exponential {
            max_delay: Duration::from_millis(max_delay.max(initial)),
            jitter: true,
            factor: factor.clamp(1.0, 5.0),
        },
        condition,
    })
}

/// The Studio templates' `error_handling: {on_error: retry, max_retries, retry_delay}`
/// (`retry_delay` in milliseconds), or `{on_error: continue | propagate}`.
fn read_error_handling(r: &mut ConfigReader<'_, '_>) -> (Option<RetryPolicy>, bool) {
    let path = r.path().to_owned();
    let on_error = r.string("on_error", &["strategy"]);
    let retries = r.u64("max_retries", &[]);
    let delay = r.u64("retry_delay", &["retry_delay_ms"]);
    match on_error.as_deref() {
        Some("retry") | None if retries.is_some() || on_error.is_some() => {
            let retries = retries.unwrap_or(3);
            if retries > 100 {
                r.problem(
                    "invalid_value",
                    format!("{path}.max_retries"),
                    format!("max_retries {retries} is more than 100"),
                );
            }
            let policy = RetryPolicy {
                max_attempts: u32::try_from(retries.min(99)).unwrap_or(99) + 1,
                delay: Duration::from_millis(delay.unwrap_or(1000)),
                backoff: Backoff::Fixed,
                condition: None,
            };
            (Some(policy), false)
        }
        None => (None, false),
        Some("continue") => (None, true),
        Some("propagate") | Some("fail") => (None, false),
        Some(other) => {
            r.problem_with_hint(
                "invalid_value",
                format!("{path}.on_error"),
                format!("unknown error_handling.on_error '{other}'"),
                "use retry, continue or propagate",
            );
            (None, false)
        }
    }
}

/// Merges `input_mapping` and the LLM settings into a stage's config. Returns the path to
/// report config problems at when the config came only from `input_mapping`.
pub fn merge_into_config(
    config: &mut Map<String, Value>,
    extras: &StageExtras,
    takes_llm_settings: bool,
    component: &str,
    problems: &mut Vec<crate::problem::Problem>,
    stage: Option<&str>,
) {
    if let Some((_, mapping)) = &extras.input_mapping {
        for (k, v) in mapping {
            // FlowMason: "config takes precedence" on a key both give.
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for (key, path, value) in &extras.llm {
        if !takes_llm_settings {
            problems.push(
                crate::problem::Problem::new(
                    "not_applicable",
                    path.clone(),
                    format!("'{component}' does not call a model, so '{key}' means nothing here"),
                )
                .with_stage(stage)
                .with_hint("LLM settings apply to generator, critic, improver, selector, combiner, summarizer, analyzer, rewriter, translator, chat, embedder"),
            );
            continue;
        }
        match config.get(key.as_str()) {
            Some(existing) if existing != value => problems.push(
                crate::problem::Problem::new(
                    "conflicting_keys",
                    path.clone(),
                    format!("'{key}' is given both here and in the stage's config, with different values"),
                )
                .with_stage(stage)
                .with_hint("keep one of them"),
            ),
            Some(_) => {}
            None => {
                config.insert(key.clone(), value.clone());
            }
        }
    }
}

/// FlowMason components fm does not run, with why. Anything else unknown is reported as unknown.
pub fn not_supported(component: &str) -> Option<&'static str> {
    let name = component.replace('-', "_");
    Some(match name.as_str() {
        "foreach" | "loop" | "break_loop" | "continue_loop" | "subpipeline" | "return"
        | "parallel" | "retry" | "timeout" | "conditional" | "switch_router" => {
            "is FlowMason control flow that fm does not run yet"
        }
        "retriever" | "knowledge_query" => {
            "needs a RAG vector index, which fm does not support"
        }
        "document_reader" | "form_extractor" => {
            "needs a document-AI service, which fm does not support"
        }
        "transcriber" | "text_to_speech" => "needs an audio service, which fm does not support",
        "compliance_evaluator" | "policy_lookup" | "rule_checker" => {
            "needs FlowMason's compliance policy store, which fm does not support"
        }
        "s3" => "needs S3 object storage, which fm does not support",
        "mongodb" => "needs MongoDB, which fm does not support",
        "pandas" => "runs pandas data frames, which fm does not support",
        "sql" => "runs SQL over in-memory data frames, which fm does not support (the postgres connector queries a database)",
        "echo_connector" => "is FlowMason's test connector, which fm does not ship",
        _ => return None,
    })
}

/// A stage with `fallback_output` and `on_error: continue`: when its last attempt fails, the
/// fallback stands in as its output, with a warning that says what failed. The stage's time
/// limit is applied here, so that running out of time also yields the fallback.
#[derive(Debug)]
pub struct FallbackRuntime {
    pub inner: Arc<dyn StageRuntime>,
    pub fallback: Value,
    pub max_attempts: u32,
    pub timeout: Option<Duration>,
}

impl StageRuntime for FallbackRuntime {
    fn idempotent(&self) -> bool {
        self.inner.idempotent()
    }

    fn preflight(&self) -> Result<(), String> {
        self.inner.preflight()
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let result = match self.timeout {
                Some(limit) => tokio::time::timeout(limit, self.inner.execute(cx))
                    .await
                    .unwrap_or_else(|_| {
                        Err(StageError::new(
                            crate::component::ErrorKind::Timeout,
                            format!(
                                "stage '{}' timed out after {} ms (its 'timeout_ms')",
                                cx.stage_id,
                                limit.as_millis()
                            ),
                        ))
                    }),
                None => self.inner.execute(cx).await,
            };
            match result {
                Err(e) if !e.retryable || cx.attempt >= self.max_attempts => {
                    cx.warn(format!(
                        "failed ({e}); its fallback_output stands in as its output"
                    ));
                    Ok(self.fallback.clone())
                }
                other => other,
            }
        })
    }
}
