//! fm's template and expression language: `{{ expr }}` templates over JSON
//! values, Jinja-flavoured, with FlowMason's `stages.<id>.output...` paths.
//! No I/O, no async. The language is specified in `docs/template-language.md`.
//!
//! ```
//! use fm_expr::{CompileOptions, JsonScope, Template};
//! use serde_json::json;
//!
//! let scope = JsonScope::new(json!({"stages": {"fetch-logs": {"output": {"body": {"logs": [1, 2]}}}}}));
//! let t = Template::compile("{{ stages.fetch-logs.output.body.logs | length }} errors", &CompileOptions::default()).unwrap();
//! assert_eq!(t.render(&scope).unwrap(), json!("2 errors"));
//! let n = Template::compile("{{ stages.fetch-logs.output.body.logs | length }}", &CompileOptions::default()).unwrap();
//! assert_eq!(n.render(&scope).unwrap(), json!(2)); // a lone expression keeps its type
//! ```
//!
//! # Why our own engine rather than minijinja
//!
//! * **Hyphenated stage ids.** `stages.fetch-logs.output` must read stage
//!   `fetch-logs`, while `a-b` elsewhere is subtraction; with known ids,
//!   `stages.count-1` is `stages.count` minus 1. That is a lexer rule no
//!   off-the-shelf Jinja offers ([`stage_id_len`]).
//! * **Typed values.** A template that is exactly one `{{expr}}` yields the
//!   expression's JSON value (`{{input}}` is an object, `{{x | default(3)}}`
//!   the number 3), not its string form.
//! * **JSON-style rendering.** `true`/`null`/compact JSON, never Python repr
//!   (`True`, `None`, `{'a': 1}`), and no HTML escaping: output goes into JSON
//!   bodies, URLs and prompts.
//! * **Strictness with useful errors.** A missing key is an error naming the
//!   path, how far it resolved and the keys that were there; every error
//!   carries the template and a span for a caret display.
//! * **Static analysis.** [`Template::references`] lists every path read,
//!   guarded or not, so pipelines are validated before they run.
//! * **Filter precedence.** The pipe binds looser than arithmetic and `~` but
//!   tighter than comparisons and boolean operators, so
//!   `execution.duration_ms / 1000 | round(1)` rounds the quotient (what the
//!   FlowMason examples mean) and `x | length > 5` compares the length.
//! * **Bounded.** Depth, size and step limits ([`limits`]) make any input safe
//!   to compile and render.
//!
//! Compiled [`Template`]s store paths pre-split and evaluate over borrowed
//! values, cloning only the final result.

mod analysis;
mod ast;
mod error;
mod eval;
mod filters;
mod functions;
mod lexer;
pub mod limits;
mod ops;
mod parser;
mod predicates;
mod render;
mod scope;
mod signature;
mod suggest;
mod template;
mod time;
mod value;

pub use analysis::Reference;
pub use ast::RefRoot;
pub use error::{Error, ErrorKind, Span};
pub use lexer::stage_id_len;
pub use render::to_text;
pub use scope::{CompileOptions, EmptyScope, JsonScope, Root, Scope, StageField, EXECUTION_FIELDS};
pub use serde_json::Value;
pub use template::{RenderedPart, Template};
pub use value::is_truthy;

/// Names of all filters (canonical spellings; `d` and `count` are aliases).
pub fn filter_names() -> impl Iterator<Item = &'static str> {
    filters::names()
}

/// Names of all functions.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    functions::names()
}

/// Names of all tests (`x is <name>`).
pub fn test_names() -> impl Iterator<Item = &'static str> {
    predicates::names()
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}

    #[test]
    fn template_is_send_sync() {
        assert_send_sync::<crate::Template>();
        assert_send_sync::<crate::Error>();
        assert_send_sync::<crate::Reference>();
    }
}
