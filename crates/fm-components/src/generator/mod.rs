//! `generator`: ask an LLM (OpenAI or Anthropic, or any OpenAI-compatible server).
//!
//! Config: `provider` (openai | anthropic), `model`, `temperature`, `max_tokens`,
//! `system_prompt` (template), `prompt` (template, required), `response_format` (`"text"`,
//! `"json"` or a JSON Schema object), `base_url`, `timeout` (ms or "2m"; default 120 s).
//!
//! Output: `{content, json, model, provider, usage}`. When the reply holds a JSON object (the
//! whole reply, a fenced block, or else the first `{...}` that parses), its fields are also put at
//! the top level without replacing those five, so `stages.analyze.output.issue_type` works.
//!
//! Rate limits (429) and server errors (5xx, Anthropic's 529) are retried here with exponential
//! backoff honouring Retry-After: at most 4 tries and about 60 s of waiting in all. The API key
//! never appears in output, logs or messages.

mod anthropic;
mod openai;
mod provider;
pub(crate) mod reply;

use std::sync::Arc;
use std::time::Duration;

use fm_core::model::stage_fields::read_duration_ms;
use fm_core::model::ConfigReader;
use fm_core::{Component, ErrorKind, LogLevel, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde_json::{json, Map};

pub use provider::{LlmEnv, ProviderKind, ANTHROPIC_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL};

use self::provider::{LlmRequest, Provider, Resolved, StageChoice};
use crate::http::status::{millis, retry_after};
use crate::http::template_error;
use crate::http::transport::{
    clip, lossy_text, new_client, read_capped, transport_error, USER_AGENT,
};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Provider answers larger than this are refused (a chat reply is a few KiB).
const MAX_REPLY_BYTES: u64 = 16 * 1024 * 1024;

/// How the generator retries rate limits and server errors inside one stage attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryTuning {
    /// Tries in all (the first one included).
    pub max_tries: u32,
    /// The wait before the second try; it doubles for each further one (unless the provider
    /// says how long with Retry-After).
    pub base_delay: Duration,
    /// The most the generator waits in all before giving up.
    pub max_total_wait: Duration,
}

impl Default for RetryTuning {
    fn default() -> Self {
        RetryTuning {
            max_tries: 4,
            base_delay: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(60),
        }
    }
}

/// The `generator` component: the environment snapshot it resolves providers from, and one
/// shared HTTP client.
pub struct Generator {
    env: Arc<LlmEnv>,
    client: crate::http::transport::LazyClient,
    retry: RetryTuning,
}

impl Generator {
    /// Same as [`Generator::from_env`].
    pub fn new() -> Self {
        Self::from_env()
    }

    /// Reads `FM_LLM_PROVIDER`, `FM_LLM_MODEL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
    /// `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL` once, now.
    pub fn from_env() -> Self {
        Self::with_env(LlmEnv::from_process_env())
    }

    /// With an explicit environment (tests, the sandbox): the process environment is not read.
    pub fn with_env(env: LlmEnv) -> Self {
        Generator {
            env: Arc::new(env),
            client: new_client(),
            retry: RetryTuning::default(),
        }
    }

    /// Changes how rate limits and server errors are retried (tests use tiny delays).
    pub fn with_retry(mut self, retry: RetryTuning) -> Self {
        self.retry = retry;
        self
    }
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

/// What the stage wants back.
#[derive(Clone)]
pub(crate) enum ResponseFormat {
    Text,
    Json,
    Schema {
        schema: Value,
        validator: Arc<jsonschema::Validator>,
    },
}

impl std::fmt::Debug for ResponseFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseFormat::Text => f.write_str("Text"),
            ResponseFormat::Json => f.write_str("Json"),
            ResponseFormat::Schema { schema, .. } => {
                f.debug_struct("Schema").field("schema", schema).finish()
            }
        }
    }
}

/// A compiled `generator` stage.
#[derive(Debug)]
pub struct GeneratorRuntime {
    client: crate::http::transport::LazyClient,
    /// The provider, endpoint, key and model; `Err` says how to configure one (preflight).
    resolved: Result<Resolved, String>,
    system_prompt: Option<Template>,
    prompt: Template,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    format: ResponseFormat,
    timeout: Duration,
    retry: RetryTuning,
    /// A FlowMason pipeline: the output also has FlowMason's `tokens_used` and `finish_reason`.
    flowmason: bool,
}

impl Component for Generator {
    fn name(&self) -> &'static str {
        "generator"
    }

    fn summary(&self) -> &'static str {
        "Ask an LLM (OpenAI, Anthropic or an OpenAI-compatible server); JSON replies become fields"
    }

    fn takes_llm_settings(&self) -> bool {
        true
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let system_prompt = r.template("system_prompt", &["system"]);
        let prompt = r.template("prompt", &[]);
        if !r.has("prompt", &[]) {
            r.missing("prompt");
        }
        let format = read_format(r);
        // FlowMason's generator takes an output-format hint that it does not act on either.
        let _ = r.raw("output_format", &[]);
        let rt = self.llm_runtime(r, format?)?;
        Some(Arc::new(GeneratorRuntime {
            system_prompt,
            prompt: prompt?,
            ..rt
        }))
    }
}

impl Generator {
    /// Reads the settings every model component shares (`provider`, `model`, `temperature`,
    /// `max_tokens`, `base_url`, `timeout`) into a runtime whose prompts the caller gives at run
    /// time ([`GeneratorRuntime::run_with`]). FlowMason's model components (critic, improver,
    /// ...) are built on it.
    pub(crate) fn llm_runtime(
        &self,
        r: &mut ConfigReader<'_, '_>,
        format: ResponseFormat,
    ) -> Option<GeneratorRuntime> {
        let mut ok = true;
        let provider = match r.string("provider", &[]) {
            None => None,
            Some(p) => match ProviderKind::parse(&p) {
                Some(k) => Some(k),
                None => {
                    let path = r.key_path("provider");
                    let hint = fm_core::problem::did_you_mean(&p, ProviderKind::NAMES)
                        .map_or_else(|| "use openai or anthropic (an OpenAI-compatible server is 'openai' with a base_url)".to_owned(), |s| format!("did you mean '{s}'?"));
                    r.problem_with_hint(
                        "invalid_value",
                        path,
                        format!("unknown provider '{p}'"),
                        hint,
                    );
                    ok = false;
                    None
                }
            },
        };
        let model = r.string("model", &[]);
        let temperature = r.f64("temperature", &[]);
        if let Some(t) = temperature {
            if !(0.0..=2.0).contains(&t) {
                let path = r.key_path("temperature");
                r.problem(
                    "invalid_value",
                    path,
                    format!("temperature must be between 0 and 2, got {t}"),
                );
                ok = false;
            }
        }
        let max_tokens = r.u64("max_tokens", &[]);
        if max_tokens == Some(0) {
            let path = r.key_path("max_tokens");
            r.problem("invalid_value", path, "max_tokens must be at least 1");
            ok = false;
        }
        let base_url = r.string("base_url", &[]);
        if let Some(b) = &base_url {
            if let Err(e) = url::Url::parse(b) {
                let path = r.key_path("base_url");
                r.problem(
                    "invalid_url",
                    path,
                    format!("base_url '{b}' is not a URL: {e}"),
                );
                ok = false;
            }
        }
        let timeout = read_duration_ms(r, "timeout").unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            let path = r.key_path("timeout");
            r.problem("invalid_value", path, "timeout must be more than 0 ms");
            ok = false;
        }
        if !ok {
            return None;
        }
        let choice = StageChoice {
            provider,
            model,
            base_url,
        };
        Some(GeneratorRuntime {
            client: self.client.clone(),
            resolved: provider::resolve(&choice, &self.env),
            system_prompt: None,
            prompt: Template::compile("", &fm_expr::CompileOptions { stage_ids: None }).ok()?,
            temperature,
            max_tokens,
            format,
            timeout,
            retry: self.retry,
            flowmason: r.dialect().is_flowmason(),
        })
    }
}

fn read_format(r: &mut ConfigReader<'_, '_>) -> Option<ResponseFormat> {
    let Some((path, v)) = r.raw("response_format", &[]) else {
        return Some(ResponseFormat::Text);
    };
    match v {
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(ResponseFormat::Text),
            "json" | "json_object" => Some(ResponseFormat::Json),
            _ => {
                r.problem_with_hint(
                    "invalid_value",
                    path,
                    format!("unknown response_format '{s}'"),
                    "use \"text\", \"json\", or a JSON Schema object",
                );
                None
            }
        },
        Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("json_object") => {
            Some(ResponseFormat::Json)
        }
        Value::Object(_) => match jsonschema::validator_for(v) {
            Ok(validator) => Some(ResponseFormat::Schema {
                schema: v.clone(),
                validator: Arc::new(validator),
            }),
            Err(e) => {
                r.problem_with_hint(
                    "invalid_schema",
                    path,
                    format!("response_format is not a valid JSON Schema: {e}"),
                    "see https://json-schema.org/understanding-json-schema/",
                );
                None
            }
        },
        other => {
            let found = fm_core::model::reader::json_type_name(other);
            r.problem(
                "wrong_type",
                path,
                format!("response_format must be \"text\", \"json\" or a JSON Schema object, found {found}"),
            );
            None
        }
    }
}

impl StageRuntime for GeneratorRuntime {
    /// A model call changes nothing: safe to repeat, and it runs in dry runs too.
    fn idempotent(&self) -> bool {
        true
    }

    fn preflight(&self) -> Result<(), String> {
        self.resolved.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(self.run(cx))
    }
}

/// One try's outcome.
enum Try {
    Reply(Value),
    /// 429, 5xx, 529: worth another try.
    Again {
        status: u16,
        message: String,
        wait: Option<Duration>,
    },
}

impl GeneratorRuntime {
    /// A model component's own defaults, where the stage sets none.
    pub(crate) fn default_sampling(&mut self, temperature: f64, max_tokens: u64) {
        self.temperature.get_or_insert(temperature);
        self.max_tokens.get_or_insert(max_tokens);
    }

    /// Replaces the API key wherever it might have been echoed.
    fn mask(&self, text: String, key: Option<&str>) -> String {
        match key {
            Some(k) if !k.is_empty() && text.contains(k) => text.replace(k, "***"),
            _ => text,
        }
    }

    fn masked_error(&self, mut e: StageError, key: Option<&str>) -> StageError {
        e.message = self.mask(std::mem::take(&mut e.message), key);
        e
    }

    async fn run(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let system = match &self.system_prompt {
            Some(t) => Some(
                t.render_string(cx.scope)
                    .map_err(|e| template_error(&e, "system_prompt"))?,
            ),
            None => None,
        };
        let prompt = self
            .prompt
            .render_string(cx.scope)
            .map_err(|e| template_error(&e, "prompt"))?;
        self.run_with(cx, system, prompt).await
    }

    /// Asks with prompts built by the caller; the output is the generator's (`content`, `json`,
    /// `model`, `provider`, `usage`, and the reply's JSON fields).
    pub(crate) async fn run_with(
        &self,
        cx: &StageContext<'_>,
        system: Option<String>,
        prompt: String,
    ) -> Result<Value, StageError> {
        let resolved = self
            .resolved
            .as_ref()
            .map_err(|m| StageError::new(ErrorKind::Config, m.clone()).retryable(false))?;
        let client = self
            .client
            .get()
            .map_err(|m| StageError::new(ErrorKind::Internal, m).retryable(false))?;
        let api = resolved.kind.api();
        let body = api.body(&LlmRequest {
            model: &resolved.model,
            system: system.as_deref(),
            prompt: &prompt,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            format: &self.format,
        });
        let key = resolved.api_key.as_deref();
        let reply = self
            .call_with_retries(cx, client, api, resolved, &body)
            .await
            .map_err(|e| self.masked_error(e, key))?;
        self.finish(api, resolved, &reply)
            .map_err(|e| self.masked_error(e, key))
    }

    async fn call_with_retries(
        &self,
        cx: &StageContext<'_>,
        client: &reqwest::Client,
        api: &dyn Provider,
        resolved: &Resolved,
        body: &Value,
    ) -> Result<Value, StageError> {
        let name = api.kind().name();
        let max = self.retry.max_tries.max(1);
        let mut waited = Duration::ZERO;
        let mut tries = 1;
        loop {
            let (status, message, wait) = match self.call_once(client, api, resolved, body).await? {
                Try::Reply(v) => return Ok(v),
                Try::Again {
                    status,
                    message,
                    wait,
                } => (status, message, wait),
            };
            let delay = wait.unwrap_or_else(|| {
                self.retry
                    .base_delay
                    .saturating_mul(1 << (tries - 1).min(16))
            });
            let give_up = if tries >= max {
                Some(format!("gave up after {tries} tries"))
            } else if waited + delay > self.retry.max_total_wait {
                Some(format!(
                    "gave up after {tries} tries: waiting another {} ms would pass the generator's limit of {} ms",
                    millis(delay),
                    millis(self.retry.max_total_wait)
                ))
            } else {
                None
            };
            if let Some(why) = give_up {
                let mut e = StageError::new(
                    ErrorKind::Provider,
                    format!(
                        "{name} answered {status} {}: {message} ({why})",
                        reason(status)
                    ),
                );
                e.retry_after_ms = wait.map(millis);
                return Err(e);
            }
            cx.log(
                LogLevel::Warn,
                self.mask(
                    format!(
                        "{name} answered {status} {}: {message}; try {tries} of {max}, trying again in {} ms",
                        reason(status),
                        millis(delay)
                    ),
                    resolved.api_key.as_deref(),
                ),
                None,
            );
            tokio::time::sleep(delay).await;
            waited += delay;
            tries += 1;
        }
    }

    async fn call_once(
        &self,
        client: &reqwest::Client,
        api: &dyn Provider,
        resolved: &Resolved,
        body: &Value,
    ) -> Result<Try, StageError> {
        let name = api.kind().name();
        let endpoint = api.endpoint(&resolved.base_url);
        let url = url::Url::parse(&endpoint).map_err(|e| {
            StageError::new(
                ErrorKind::Config,
                format!("{name} endpoint '{endpoint}' is not a URL: {e}"),
            )
            .retryable(false)
        })?;
        let what = format!("{name} (POST {url})");
        let exchange = async {
            let mut rb = client
                .post(url.clone())
                .header(reqwest::header::USER_AGENT, USER_AGENT)
                .json(body);
            for (k, v) in api.headers(resolved.api_key.as_deref()) {
                rb = rb.header(k, v);
            }
            let mut resp = rb
                .send()
                .await
                .map_err(|e| transport_error(&e, &url, &what, self.timeout))?;
            let status = resp.status().as_u16();
            let headers: HeaderMap = resp.headers().clone();
            let bytes = read_capped(&mut resp, MAX_REPLY_BYTES)
                .await
                .map_err(|e| transport_error(&e, &url, &what, self.timeout))?;
            if bytes.truncated_total.is_some() {
                return Err(StageError::new(
                    ErrorKind::InvalidResponse,
                    format!("{what}: the answer is larger than {MAX_REPLY_BYTES} bytes"),
                ));
            }
            Ok::<_, StageError>((status, headers, bytes.bytes))
        };
        let (status, headers, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                StageError::new(
                    ErrorKind::Timeout,
                    format!("{what}: no answer within {} ms", self.timeout.as_millis()),
                )
            })??;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return parsed.map(Try::Reply).ok_or_else(|| {
                StageError::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "{name}'s answer is not JSON: {}",
                        clip(&lossy_text(&bytes), 200)
                    ),
                )
            });
        }
        let message = parsed
            .as_ref()
            .and_then(|v| api.error_message(v))
            .unwrap_or_else(|| {
                let text = lossy_text(&bytes);
                if text.trim().is_empty() {
                    "(no message)".to_owned()
                } else {
                    clip(text.trim(), 300)
                }
            });
        if status == 429 || status == 529 || (500..600).contains(&status) {
            return Ok(Try::Again {
                status,
                message,
                wait: retry_after(&headers),
            });
        }
        Err(StageError::new(
            ErrorKind::Provider,
            format!("{name} answered {status} {}: {message}", reason(status)),
        )
        .retryable(status == 408))
    }

    /// The stage's output from a 2xx answer.
    fn finish(
        &self,
        api: &dyn Provider,
        resolved: &Resolved,
        answer: &Value,
    ) -> Result<Value, StageError> {
        let name = api.kind().name();
        let reply = api.parse_reply(answer).map_err(|m| {
            StageError::new(
                ErrorKind::InvalidResponse,
                format!(
                    "{name}'s answer could not be read: {m}: {}",
                    clip(&answer.to_string(), 200)
                ),
            )
        })?;
        let usage = json!({
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
            "total_tokens": reply.usage.total_tokens.or_else(|| {
                reply.usage.input_tokens.zip(reply.usage.output_tokens).map(|(a, b)| a + b)
            }),
        });
        let parsed = reply::extract_json(&reply.content);
        let mut out = Map::new();
        out.insert("content".into(), Value::String(reply.content.clone()));
        out.insert("json".into(), parsed.clone().unwrap_or(Value::Null));
        out.insert(
            "model".into(),
            Value::String(
                reply
                    .model
                    .clone()
                    .unwrap_or_else(|| resolved.model.clone()),
            ),
        );
        out.insert("provider".into(), Value::String(name.to_owned()));
        if self.flowmason {
            let total = usage.get("total_tokens").cloned().filter(|v| !v.is_null());
            out.insert("tokens_used".into(), total.unwrap_or(Value::from(0)));
            out.insert(
                "finish_reason".into(),
                Value::String(reply.stop_reason.clone().unwrap_or_else(|| "stop".into())),
            );
        }
        out.insert("usage".into(), usage);
        if let Some(Value::Object(fields)) = &parsed {
            for (k, v) in fields {
                if !out.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        let output = Value::Object(out);
        let invalid = |message: String| {
            Err(StageError::new(ErrorKind::InvalidResponse, message).with_output(output.clone()))
        };
        if reply.content.trim().is_empty() {
            let why = reply
                .stop_reason
                .as_deref()
                .map(|r| format!(" (stop reason: {r})"))
                .unwrap_or_default();
            return invalid(format!("{name} returned an empty reply{why}"));
        }
        match (&self.format, &parsed) {
            (ResponseFormat::Text, _) => {}
            (ResponseFormat::Json | ResponseFormat::Schema { .. }, None) => {
                return invalid(format!(
                    "response_format asks for JSON, but {name}'s reply is not JSON: {}",
                    clip(reply.content.trim(), 200)
                ));
            }
            (ResponseFormat::Json, Some(_)) => {}
            (ResponseFormat::Schema { validator, .. }, Some(v)) => {
                let errors = reply::schema_errors(validator, v);
                if !errors.is_empty() {
                    return invalid(format!(
                        "{name}'s reply does not match the response_format schema: {}",
                        errors.join("; ")
                    ));
                }
            }
        }
        Ok(output)
    }
}

fn reason(status: u16) -> &'static str {
    if status == 529 {
        return "Overloaded";
    }
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}
