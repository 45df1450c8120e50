//! Property tests: the hyphen rule, typed/text rendering round trips, and
//! "never panics" over arbitrary input.

use std::collections::HashSet;

use fm_expr::{CompileOptions, JsonScope, RefRoot, StageField, Template};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The hyphen rule, restated independently of the lexer.
fn predicted_id(run: &str, known: Option<&HashSet<String>>) -> String {
    let Some(known) = known else {
        return run.to_owned();
    };
    if known.contains(run) {
        return run.to_owned();
    }
    known
        .iter()
        .filter(|k| {
            !k.is_empty()
                && run.len() > k.len()
                && run.starts_with(k.as_str())
                && run[k.len()..].starts_with('-')
        })
        .max_by_key(|k| k.len())
        .cloned()
        .unwrap_or_else(|| run.to_owned())
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9_][a-z0-9_]{0,4}"
}

/// A run of 1..4 hyphen-joined segments and a set of known ids that often
/// contains some of its hyphen prefixes (and unrelated ids).
fn run_and_ids() -> impl Strategy<Value = (String, HashSet<String>)> {
    (
        prop::collection::vec(segment(), 1..5),
        prop::collection::vec(any::<bool>(), 5),
        prop::collection::vec(segment(), 0..3),
    )
        .prop_map(|(segs, pick, others)| {
            let run = segs.join("-");
            let mut ids: HashSet<String> = others.into_iter().collect();
            for i in 1..=segs.len() {
                if pick.get(i - 1).copied().unwrap_or(false) {
                    ids.insert(segs[..i].join("-"));
                }
            }
            (run, ids)
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn fixed_scope() -> JsonScope {
    JsonScope::new(json!({
        "input": {"a": 1, "b": [1, 2, {"c": "x"}], "s": "text"},
        "stages": {"fetch-logs": {"output": {"body": {"logs": ["l1", "l2"], "total": 2}}, "status": "completed"}},
        "secrets": {"K": "v"},
        "env": {"E": "e"},
        "execution": {"id": "x", "duration_ms": 1500},
        "vars": {"x": 5, "y": "five", "output": {"status_code": 200}}
    }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hyphen_rule_picks_the_predicted_id((run, ids) in run_and_ids(), with_ids in any::<bool>()) {
        let known = with_ids.then_some(&ids);
        let expected = predicted_id(&run, known);
        prop_assert_eq!(fm_expr::stage_id_len(&run, known), expected.len());
        let src = format!("{{{{ stages.{run}.output.n }}}}");
        let compiled = Template::compile(&src, &CompileOptions { stage_ids: known });
        if expected == run {
            let t = compiled.map_err(|e| TestCaseError::fail(e.render()))?;
            let r = &t.references()[0];
            prop_assert_eq!(&r.root, &RefRoot::Stage { id: run.clone(), field: StageField::Output });
            prop_assert_eq!(&r.path, &vec!["n".to_string()]);
            // upstream.<id> follows the same rule.
            let up = Template::compile(&format!("{{{{upstream.{run}.n}}}}"), &CompileOptions { stage_ids: known })
                .map_err(|e| TestCaseError::fail(e.render()))?;
            prop_assert_eq!(&up.references()[0].root, &RefRoot::Stage { id: run.clone(), field: StageField::Output });
        } else {
            // The id is the known prefix; the rest starts with a minus, so the field is missing.
            let err = compiled.err().ok_or_else(|| TestCaseError::fail("expected an error"))?;
            let needle = format!("`stages.{expected}` must be followed by a field");
            prop_assert!(err.message.contains(&needle), "{}", err.message);
        }
    }

    #[test]
    fn minus_is_subtraction_outside_stage_ids(
        a in "[a-h][a-z_]{0,5}", b in "[j-z][a-z_]{0,5}",
        x in -1000i64..1000, y in -1000i64..1000,
        l in prop::sample::select(vec!["", " ", "  "]), r in prop::sample::select(vec!["", " ", "\t"]),
    ) {
        prop_assume!(!["and", "or", "not", "in", "is", "if", "else", "true", "false", "null", "none"].contains(&a.as_str()));
        prop_assume!(!["and", "or", "not", "in", "is", "if", "else", "true", "false", "null", "none"].contains(&b.as_str()));
        let scope = JsonScope::new(json!({"vars": {a.clone(): x, b.clone(): y}, "stages": {"s-1": {"output": {"n": x}}}}));
        let t = Template::compile(&format!("{{{{{a}{l}-{r}{b}}}}}"), &CompileOptions::default())
            .map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(t.render(&scope).map_err(|e| TestCaseError::fail(e.render()))?, json!(x - y));
        // After the field, '-' is minus too, even with a hyphenated id.
        let t = Template::compile(&format!("{{{{stages.s-1.output.n{l}-{r}{y}}}}}"), &CompileOptions::default())
            .map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(t.render(&scope).map_err(|e| TestCaseError::fail(e.render()))?, json!(x - y));
    }

    #[test]
    fn lone_expression_round_trips_any_value(v in json_value(), pad in prop::sample::select(vec!["", " ", "  \n"])) {
        let scope = JsonScope::new(json!({"vars": {"x": v.clone()}}));
        let t = Template::compile(&format!("{{{{{pad}x{pad}}}}}"), &CompileOptions::default())
            .map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(&t.render(&scope).map_err(|e| TestCaseError::fail(e.render()))?, &v);
        let text = t.render_string(&scope).map_err(|e| TestCaseError::fail(e.render()))?;
        let expected = match &v {
            Value::String(s) => s.clone(),
            other => serde_json::to_string(other).map_err(|e| TestCaseError::fail(e.to_string()))?,
        };
        prop_assert_eq!(&text, &expected);
        prop_assert_eq!(fm_expr::to_text(&v).into_owned(), expected.clone());
        // Mixed templates use the same text.
        let mixed = Template::compile("<{{x}}>", &CompileOptions::default()).map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(mixed.render(&scope).map_err(|e| TestCaseError::fail(e.render()))?, Value::String(format!("<{expected}>")));
        // tojson is JSON for every value, strings included.
        let tj = Template::compile("{{x | tojson}}", &CompileOptions::default()).map_err(|e| TestCaseError::fail(e.render()))?;
        let json_text = tj.render_string(&scope).map_err(|e| TestCaseError::fail(e.render()))?;
        prop_assert_eq!(Some(json_text), serde_json::to_string(&v).ok());
    }

    #[test]
    fn never_panics_on_arbitrary_text(src in "\\PC{0,64}") {
        exercise(&src);
    }

    #[test]
    fn never_panics_on_token_soup(parts in prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40)) {
        let body: String = parts.concat();
        exercise(&format!("{{{{{body}}}}}"));
        exercise(&body);
    }
}

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "stages.",
    "fetch-logs",
    ".output",
    ".body",
    ".logs",
    "upstream.",
    "secrets.K",
    "env.E",
    "execution.id",
    "input",
    "x",
    "y",
    "1",
    "0",
    "-1",
    "2.5",
    "1e308",
    "9223372036854775807",
    "-",
    "+",
    "*",
    "**",
    "/",
    "//",
    "%",
    "~",
    "|",
    "default(",
    "length",
    "tojson",
    "round(",
    "map(",
    "'upper'",
    "select(",
    "'odd'",
    "sort",
    "join(",
    "replace(",
    "truncate(",
    "int",
    "first",
    "rfc3339",
    "range(",
    "now()",
    "min(",
    "max(",
    ")",
    "(",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    " ",
    "'a'",
    "\"b\"",
    "'\\u00e9'",
    "'\\ud800'",
    "is",
    " defined",
    " not",
    " and ",
    " or ",
    " if ",
    " else ",
    " in ",
    "==",
    "!=",
    "<",
    ">=",
    "true",
    "None",
    "é",
    "\\",
    "'",
    "\"",
    ".",
    "[0]",
    "[-1]",
    "['k']",
    "attribute=",
    "=",
];

fn exercise(src: &str) {
    let scope = fixed_scope();
    let ids: HashSet<String> = ["fetch-logs".to_string(), "fetch".to_string()].into();
    for opts in [
        CompileOptions::default(),
        CompileOptions {
            stage_ids: Some(&ids),
        },
    ] {
        for compiled in [
            Template::compile(src, &opts),
            Template::compile_expression(src, &opts),
        ] {
            match compiled {
                Ok(t) => {
                    let _ = t.references();
                    for result in [
                        t.render(&scope).map(|_| ()),
                        t.render_string(&scope).map(|_| ()),
                        t.render_parts(&scope).map(|_| ()),
                    ] {
                        if let Err(e) = result {
                            let _ = (e.render(), e.to_string());
                        }
                    }
                }
                Err(e) => {
                    let _ = (e.render(), e.to_string());
                }
            }
        }
    }
}

/// Templates just under the nesting limit compile and render on a tokio
/// worker's default 2 MiB stack even in unoptimized builds (release builds
/// need about a tenth of that).
#[test]
fn deep_nesting_fits_a_worker_stack() {
    let n = 63;
    let sources = vec![
        format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n)),
        format!("{{{{ {}1{} }}}}", "[".repeat(n), "]".repeat(n)),
        format!("{{{{ {}x }}}}", "- ".repeat(n)),
        format!("{{{{ {}x }}}}", "not ".repeat(n)),
        format!("{{{{ {}1{} }}}}", "min(".repeat(n), ")".repeat(n)),
        format!("{{{{ {}1{} }}}}", "{'a': ".repeat(n), "}".repeat(n)),
        format!("{{{{ {}1 }}}}", "1 if x else ".repeat(n)),
        format!("{{{{ {}2 }}}}", "1 ** ".repeat(n)),
        format!("{{{{ x{} }}}}", " | default(1)".repeat(n)),
        format!("{{{{ {}x{} }}}}", "input[".repeat(n), "]".repeat(n)),
        format!(
            "{{{{ {}1{} }}}}",
            "min([(".repeat(n / 3),
            ")])".repeat(n / 3)
        ),
        format!("{{{{ {}1{} }}}}", "x | default(".repeat(n), ")".repeat(n)),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let scope = fixed_scope();
            for src in &sources {
                match Template::compile(src, &CompileOptions::default()) {
                    Ok(t) => {
                        let _ = t.render(&scope);
                    }
                    Err(e) => {
                        let _ = e.render();
                    }
                }
            }
        });
    assert!(handle.is_ok_and(|h| h.join().is_ok()));
}
