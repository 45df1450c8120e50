//! LLM providers: the environment the generator reads, how a stage's provider, endpoint, key and
//! model are chosen, and the trait each provider's wire format implements.

use std::fmt;

use fm_expr::Value;

use super::ResponseFormat;

pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// A snapshot of the environment variables the generator reads, taken once when the component
/// is created (`Generator::new`), or built by hand (tests, the sandbox).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LlmEnv {
    /// `FM_LLM_PROVIDER`: `openai` or `anthropic`.
    pub provider: Option<String>,
    /// `FM_LLM_MODEL`: the model for stages that name none.
    pub model: Option<String>,
    /// `OPENAI_API_KEY`.
    pub openai_api_key: Option<String>,
    /// `OPENAI_BASE_URL` (default https://api.openai.com/v1): also how a local
    /// OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) is reached.
    pub openai_base_url: Option<String>,
    /// `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Option<String>,
    /// `ANTHROPIC_BASE_URL` (default https://api.anthropic.com).
    pub anthropic_base_url: Option<String>,
}

impl LlmEnv {
    /// Reads the process environment (empty values count as unset).
    pub fn from_process_env() -> Self {
        Self::from_secrets(&fm_core::SecretSource::from_env())
    }

    /// Reads the settings where a run reads its secrets: the secrets file (`--secrets`, the
    /// server's `secrets_file`), then the environment. Empty values count as unset.
    pub fn from_secrets(source: &fm_core::SecretSource) -> Self {
        let var = |name: &str| source.get(name).filter(|v| !v.trim().is_empty());
        LlmEnv {
            provider: var("FM_LLM_PROVIDER"),
            model: var("FM_LLM_MODEL"),
            openai_api_key: var("OPENAI_API_KEY"),
            openai_base_url: var("OPENAI_BASE_URL"),
            anthropic_api_key: var("ANTHROPIC_API_KEY"),
            anthropic_base_url: var("ANTHROPIC_BASE_URL"),
        }
    }
}

/// Keys are never printed.
impl fmt::Debug for LlmEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |k: &Option<String>| if k.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("LlmEnv")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("openai_api_key", &key(&self.openai_api_key))
            .field("openai_base_url", &self.openai_base_url)
            .field("anthropic_api_key", &key(&self.anthropic_api_key))
            .field("anthropic_base_url", &self.anthropic_base_url)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
}

impl ProviderKind {
    pub const NAMES: [&'static str; 2] = ["openai", "anthropic"];

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    pub(crate) fn api(self) -> &'static dyn Provider {
        match self {
            ProviderKind::OpenAi => &super::openai::OpenAi,
            ProviderKind::Anthropic => &super::anthropic::Anthropic,
        }
    }

    fn key_var(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        }
    }

    fn base_var(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_BASE_URL",
            ProviderKind::Anthropic => "ANTHROPIC_BASE_URL",
        }
    }
}

/// One request, independent of the provider.
pub(crate) struct LlmRequest<'a> {
    pub model: &'a str,
    pub system: Option<&'a str>,
    pub prompt: &'a str,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub format: &'a ResponseFormat,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

/// One answer, independent of the provider.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LlmReply {
    pub content: String,
    pub model: Option<String>,
    pub usage: Usage,
    /// Why the model stopped (`stop`, `length`, `end_turn`, `max_tokens`), when it says.
    pub stop_reason: Option<String>,
}

/// A provider's wire format.
pub(crate) trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// The request URL for a base URL (no trailing slash).
    fn endpoint(&self, base: &str) -> String;
    /// Headers besides Content-Type, including the credential when there is one.
    fn headers(&self, api_key: Option<&str>) -> Vec<(&'static str, String)>;
    fn body(&self, req: &LlmRequest<'_>) -> Value;
    /// The reply of a 2xx answer; `Err` says what is missing or malformed.
    fn parse_reply(&self, body: &Value) -> Result<LlmReply, String>;
    /// The provider's own error message from an error answer's body.
    fn error_message(&self, body: &Value) -> Option<String> {
        let e = body.get("error")?;
        e.get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .map(str::to_owned)
    }
}

/// Where and how a stage talks to its model.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("provider", &self.kind.name())
            .field("base_url", &self.base_url)
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "<set>"
                } else {
                    "<unset>"
                },
            )
            .field("model", &self.model)
            .finish()
    }
}

/// What a stage's config says about its provider.
#[derive(Debug, Default, Clone)]
pub(crate) struct StageChoice {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
}

pub const NO_PROVIDER_HELP: &str =
    "set OPENAI_API_KEY or ANTHROPIC_API_KEY (in the secrets file or the environment); or, for a \
local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio), FM_LLM_PROVIDER=openai and \
OPENAI_BASE_URL (e.g. http://localhost:11434/v1); or run with --sandbox for a simulated model";

/// Picks the provider (the stage's, else `FM_LLM_PROVIDER`, else whichever key is set, OpenAI
/// first, else a configured OpenAI-compatible base URL), its endpoint, key and model.
pub(crate) fn resolve(stage: &StageChoice, env: &LlmEnv) -> Result<Resolved, String> {
    let kind = match (stage.provider, env.provider.as_deref()) {
        (Some(k), _) => k,
        (None, Some(p)) => ProviderKind::parse(p).ok_or_else(|| {
            format!(
                "FM_LLM_PROVIDER is '{p}', which is not a provider fm knows; use {}",
                ProviderKind::NAMES.join(" or ")
            )
        })?,
        (None, None) => {
            if env.openai_api_key.is_some() {
                ProviderKind::OpenAi
            } else if env.anthropic_api_key.is_some() {
                ProviderKind::Anthropic
            } else if env.openai_base_url.is_some() || stage.base_url.is_some() {
                ProviderKind::OpenAi
            } else if env.anthropic_base_url.is_some() {
                ProviderKind::Anthropic
            } else {
                return Err(format!(
                    "no LLM provider is configured for the generator: {NO_PROVIDER_HELP}"
                ));
            }
        }
    };
    let (env_key, env_base, default_base) = match kind {
        ProviderKind::OpenAi => (
            &env.openai_api_key,
            &env.openai_base_url,
            OPENAI_DEFAULT_BASE_URL,
        ),
        ProviderKind::Anthropic => (
            &env.anthropic_api_key,
            &env.anthropic_base_url,
            ANTHROPIC_DEFAULT_BASE_URL,
        ),
    };
    let explicit_base = stage.base_url.as_ref().or(env_base.as_ref());
    if env_key.is_none() && explicit_base.is_none() {
        return Err(format!(
            "the generator uses provider '{}' but {} is not set: set it, or set {} (or the stage's base_url) \
             for an endpoint that needs no key, or run with --sandbox for a simulated model",
            kind.name(),
            kind.key_var(),
            kind.base_var()
        ));
    }
    let base_url = explicit_base
        .map_or(default_base, String::as_str)
        .trim_end_matches('/')
        .to_owned();
    if let Err(e) = url::Url::parse(&base_url) {
        return Err(format!(
            "the {} base URL '{base_url}' is not a URL: {e}",
            kind.name()
        ));
    }
    let model = stage.model.clone().or_else(|| env.model.clone()).ok_or_else(|| {
        "no model is named: set 'model' in the stage's config (e.g. \"gpt-4o\"), or FM_LLM_MODEL".to_owned()
    })?;
    Ok(Resolved {
        kind,
        base_url,
        api_key: env_key.clone(),
        model,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stage(model: &str) -> StageChoice {
        StageChoice {
            model: Some(model.into()),
            ..Default::default()
        }
    }

    #[test]
    fn openai_key_wins_over_anthropic_key() {
        let env = LlmEnv {
            openai_api_key: Some("sk-o".into()),
            anthropic_api_key: Some("sk-a".into()),
            ..Default::default()
        };
        let r = resolve(&stage("m"), &env).unwrap();
        assert_eq!(r.kind, ProviderKind::OpenAi);
        assert_eq!(r.base_url, OPENAI_DEFAULT_BASE_URL);
        let only_anthropic = LlmEnv {
            anthropic_api_key: Some("sk-a".into()),
            ..Default::default()
        };
        let r = resolve(&stage("m"), &only_anthropic).unwrap();
        assert_eq!(r.kind, ProviderKind::Anthropic);
        assert_eq!(r.base_url, ANTHROPIC_DEFAULT_BASE_URL);
    }

    #[test]
    fn stage_then_env_provider() {
        let env = LlmEnv {
            provider: Some("anthropic".into()),
            openai_api_key: Some("k".into()),
            anthropic_api_key: Some("k2".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&stage("m"), &env).unwrap().kind,
            ProviderKind::Anthropic
        );
        let s = StageChoice {
            provider: Some(ProviderKind::OpenAi),
            ..stage("m")
        };
        assert_eq!(resolve(&s, &env).unwrap().kind, ProviderKind::OpenAi);
        let bad = LlmEnv {
            provider: Some("gemini".into()),
            ..Default::default()
        };
        assert!(resolve(&stage("m"), &bad)
            .unwrap_err()
            .contains("FM_LLM_PROVIDER is 'gemini'"));
    }

    #[test]
    fn keyless_local_server() {
        let env = LlmEnv {
            openai_base_url: Some("http://localhost:11434/v1/".into()),
            ..Default::default()
        };
        let r = resolve(&stage("llama3"), &env).unwrap();
        assert_eq!(
            (r.kind, r.base_url.as_str(), r.api_key.is_none()),
            (ProviderKind::OpenAi, "http://localhost:11434/v1", true)
        );
        let s = StageChoice {
            base_url: Some("http://127.0.0.1:8000/v1".into()),
            ..stage("m")
        };
        assert_eq!(
            resolve(&s, &LlmEnv::default()).unwrap().base_url,
            "http://127.0.0.1:8000/v1"
        );
    }

    #[test]
    fn nothing_configured() {
        let e = resolve(&stage("m"), &LlmEnv::default()).unwrap_err();
        assert!(
            e.contains("OPENAI_API_KEY") && e.contains("--sandbox"),
            "{e}"
        );
        let s = StageChoice {
            provider: Some(ProviderKind::Anthropic),
            ..stage("m")
        };
        let e = resolve(&s, &LlmEnv::default()).unwrap_err();
        assert!(e.contains("ANTHROPIC_API_KEY is not set"), "{e}");
    }

    #[test]
    fn model_from_env_or_error() {
        let env = LlmEnv {
            openai_api_key: Some("k".into()),
            model: Some("gpt-4o-mini".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&StageChoice::default(), &env).unwrap().model,
            "gpt-4o-mini"
        );
        let env = LlmEnv {
            openai_api_key: Some("k".into()),
            ..Default::default()
        };
        assert!(resolve(&StageChoice::default(), &env)
            .unwrap_err()
            .contains("FM_LLM_MODEL"));
    }

    #[test]
    fn debug_hides_keys() {
        let env = LlmEnv {
            openai_api_key: Some("sk-very-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{env:?}").contains("sk-very-secret"));
        let r = resolve(&stage("m"), &env).unwrap();
        assert!(!format!("{r:?}").contains("sk-very-secret"));
    }
}
