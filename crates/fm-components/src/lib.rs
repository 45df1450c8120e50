//! fm's built-in components, one file each, registered in [`builtin_registry`].

pub mod aggregate;
pub mod analyzer;
pub mod chat;
pub mod combiner;
pub mod critic;
pub mod delay;
pub mod filter;
pub mod filter_transformer;
pub mod generator;
pub mod http;
pub mod improver;
pub mod join;
pub mod json_transform;
pub mod llm_task;
pub mod logger;
pub mod pattern_match;
pub mod rewriter;
mod rows;
pub mod schema_validate;
pub mod selector;
pub mod summarizer;
pub mod translator;
pub mod variable_set;
pub mod write_artifact;

use std::sync::Arc;

use fm_core::Registry;

pub use generator::{Generator, LlmEnv};
pub use http::HttpRequest;

/// Every built-in component, including the control-flow ones. The generator reads its provider
/// settings from the process environment, once, here.
pub fn builtin_registry() -> Registry {
    registry_with(LlmEnv::from_process_env())
}

/// [`builtin_registry`] with the generator's provider settings given rather than read from the
/// environment (tests, `--sandbox`).
pub fn registry_with(llm_env: LlmEnv) -> Registry {
    registry_with_options(llm_env, http::allow::HostAllowlist::any())
}

/// The registry a server uses: outbound requests restricted to `allowed_hosts`.
pub fn registry_with_options(
    llm_env: LlmEnv,
    allowed_hosts: http::allow::HostAllowlist,
) -> Registry {
    let mut r = Registry::new();
    fm_core::register_control(&mut r);
    r.register(Arc::new(
        HttpRequest::new().with_allowed_hosts(allowed_hosts),
    ));
    r.register(Arc::new(json_transform::JsonTransform));
    r.register(Arc::new(logger::Logger));
    let generator = Arc::new(Generator::with_env(llm_env));
    r.register(generator.clone());
    r.register(Arc::new(delay::Delay));
    r.register(Arc::new(pattern_match::PatternMatch));
    r.register(Arc::new(write_artifact::WriteArtifact));
    // FlowMason's data components.
    r.register(Arc::new(filter::Filter));
    r.register(Arc::new(schema_validate::SchemaValidate));
    r.register(Arc::new(variable_set::VariableSet));
    r.register(Arc::new(aggregate::Aggregate));
    r.register(Arc::new(join::Join));
    r.register(Arc::new(filter_transformer::FilterTransformer));
    // FlowMason's model components, over the generator's providers.
    r.register(Arc::new(critic::Critic(generator.clone())));
    r.register(Arc::new(improver::Improver(generator.clone())));
    r.register(Arc::new(selector::Selector(generator.clone())));
    r.register(Arc::new(combiner::Combiner(generator.clone())));
    r.register(Arc::new(summarizer::Summarizer(generator.clone())));
    r.register(Arc::new(analyzer::Analyzer(generator.clone())));
    r.register(Arc::new(rewriter::Rewriter(generator.clone())));
    r.register(Arc::new(translator::Translator(generator.clone())));
    r.register(Arc::new(chat::Chat(generator)));
    r
}
