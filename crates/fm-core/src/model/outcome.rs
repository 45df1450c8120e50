//! Reading the pipeline-level `outcome` declaration:
//!
//! ```json
//! "outcome": {
//!   "value": "{{ 'escalated' if stages.page.status == 'succeeded' else none }}",
//!   "reason": "{{ stages.guardrails.output.reason }}",
//!   "values": ["auto_remediated", "escalated"]
//! }
//! ```
//!
//! or just `"outcome": "{{ ... }}"` (a value without a reason or a closed set).

use fm_expr::Value;

use crate::model::pipeline::OutcomeSpec;
use crate::model::reader::{json_type_name, ConfigReader};

/// What a declared outcome value may look like: it becomes a label and a filter.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(crate) fn read_outcome(r: &mut ConfigReader<'_, '_>) -> Option<OutcomeSpec> {
    let (path, v) = r.raw("outcome", &[])?;
    match v {
        Value::String(_) => {
            let value = r.template("outcome", &[])?;
            Some(OutcomeSpec {
                value,
                reason: None,
                values: None,
            })
        }
        Value::Object(map) => {
            let mut o = r.nested(map, path.clone());
            let value = o.template("value", &[]);
            if !o.has("value", &[]) {
                o.missing("value");
            }
            let reason = o.template("reason", &[]);
            let values = match o.raw("values", &[]) {
                None => None,
                Some((vpath, Value::Array(items))) => {
                    let mut names = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(s) if valid_name(s) => names.push(s.to_owned()),
                            _ => o.problem_with_hint(
                                "invalid_value",
                                format!("{vpath}[{i}]"),
                                format!("'{}' is not an outcome name", fm_expr::to_text(item)),
                                "outcome names are short lower-case words: letters, digits, '_' and '-' (e.g. escalated, auto_remediated)",
                            ),
                        }
                    }
                    if names.is_empty() {
                        o.problem("invalid_value", vpath, "'values' lists no outcome");
                    }
                    Some(names)
                }
                Some((vpath, other)) => {
                    o.problem(
                        "wrong_type",
                        vpath,
                        format!(
                            "'values' must be a list of outcome names, found {}",
                            json_type_name(other)
                        ),
                    );
                    None
                }
            };
            o.finish();
            Some(OutcomeSpec {
                value: value?,
                reason,
                values,
            })
        }
        other => {
            r.problem_with_hint(
                "wrong_type",
                path,
                format!(
                    "'outcome' must be a template string or an object, found {}",
                    json_type_name(other)
                ),
                "{\"value\": \"{{ ... }}\", \"reason\": \"{{ ... }}\", \"values\": [\"escalated\", ...]}",
            );
            None
        }
    }
}
