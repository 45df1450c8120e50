//! `input.*` reads checked against the pipeline's declared input schema: `{{input.servce}}`
//! is a typo to report before a run, not a run failure at 3 a.m.

use fm_expr::{RefRoot, Value};

use crate::model::reader::CompileCx;
use crate::problem::{did_you_mean, Problem};

/// Reports every unguarded `input.a.b` read whose key the schema does not declare at a level
/// that declares its `properties` (and does not allow other keys explicitly). A read guarded by
/// `default(...)` or `is defined` handles absence itself and is left alone.
pub(crate) fn check_input_paths(cx: &CompileCx<'_>, schema: &Value, problems: &mut Vec<Problem>) {
    for t in &cx.templates {
        for r in &t.references {
            if r.guarded || !matches!(&r.root, RefRoot::Var(v) if v == "input") {
                continue;
            }
            let Some(found) = first_undeclared(schema, &r.path) else {
                continue;
            };
            let read = format!("input.{}", r.path[..=found.depth].join("."));
            let prefix = if found.depth == 0 {
                "input".to_owned()
            } else {
                format!("input.{}", r.path[..found.depth].join("."))
            };
            let hint =
                match did_you_mean(&r.path[found.depth], found.known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean '{prefix}.{s}'?"),
                    None if found.known.is_empty() => {
                        "declare it in the pipeline's input schema".to_owned()
                    }
                    None => format!(
                        "declared under {prefix}: {}; or declare it in the pipeline's input schema",
                        found.known.join(", ")
                    ),
                };
            problems.push(
                Problem::new(
                    "undeclared_input",
                    t.path.clone(),
                    format!("'{read}' is not declared in the pipeline's input schema"),
                )
                .with_stage(t.stage.as_deref())
                .with_hint(hint),
            );
        }
    }
}

struct Undeclared {
    /// Index of the first undeclared segment.
    depth: usize,
    /// The keys declared at that level.
    known: Vec<String>,
}

fn first_undeclared(schema: &Value, path: &[String]) -> Option<Undeclared> {
    let mut s = schema;
    for (depth, seg) in path.iter().enumerate() {
        // Where the schema composes or refers elsewhere, it cannot be read simply: trust it.
        if ["$ref", "allOf", "anyOf", "oneOf", "patternProperties"]
            .iter()
            .any(|k| s.get(*k).is_some())
        {
            return None;
        }
        let props = s.get("properties").and_then(Value::as_object)?;
        if let Some(sub) = props.get(seg) {
            s = sub;
            continue;
        }
        match s.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => return None,
        }
        return Some(Undeclared {
            depth,
            known: props.keys().cloned().collect(),
        });
    }
    None
}
