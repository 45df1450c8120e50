//! Fixture cases: every `tests/cases/*.json` file is one case, so adding a
//! case is adding a file. Fields:
//!
//! * `template` (string), `mode`: `"template"` (default) or `"expression"`
//! * `context` (object) and/or `context_file` (name in `tests/contexts/`,
//!   a `{"stage_ids": [...], "context": {...}}` file) plus `context_merge`
//!   (deep-merged over it); `stage_ids` (list) overrides the file's
//! * one or more expectations:
//!   `expect` (the typed `render()` value), `expect_text` (`render_string()`),
//!   `expect_near_now` (a number within 120 s of now + this offset),
//!   `expect_text_with_now` (`render_string()` where `{NOW}` stands for a
//!   Unix-seconds number near now), `expect_error` (substring of
//!   `Error::render()`), `expect_error_rendered` (all of it),
//!   `expect_error_kind` (`"Undefined"`, ...), `expect_references`
//!   (`[{"root": "stages.x.output", "path": [...], "guarded": false}]`).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use fm_expr::{CompileOptions, Error, JsonScope, Template};
use serde_json::{json, Value};

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn near_now(v: f64, offset: f64) -> bool {
    (v - (now() + offset)).abs() < 120.0
}

/// Check `text` against a pattern where `{NOW}` is a number near now.
fn matches_with_now(text: &str, pattern: &str) -> Result<(), String> {
    let mut rest = text;
    let pieces: Vec<&str> = pattern.split("{NOW}").collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            rest = rest
                .strip_prefix(piece)
                .ok_or(format!("expected prefix {piece:?} in {text:?}"))?;
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..end]
            .parse()
            .map_err(|_| format!("expected a number at {rest:?}"))?;
        if !near_now(n, 0.0) {
            return Err(format!("{n} is not near now"));
        }
        rest = rest[end..]
            .strip_prefix(piece)
            .ok_or(format!("expected {piece:?} at {rest:?}"))?;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected trailing text {rest:?}"))
    }
}

fn check_error(case: &Value, err: &Error) -> Result<(), String> {
    let rendered = err.render();
    let mut expected_any = false;
    if let Some(sub) = case.get("expect_error").and_then(Value::as_str) {
        expected_any = true;
        if !rendered.contains(sub) {
            return Err(format!("error does not contain {sub:?}:\n{rendered}"));
        }
    }
    if let Some(full) = case.get("expect_error_rendered").and_then(Value::as_str) {
        expected_any = true;
        if rendered != full {
            return Err(format!(
                "rendered error differs:\n--- got\n{rendered}\n--- expected\n{full}"
            ));
        }
    }
    if let Some(kind) = case.get("expect_error_kind").and_then(Value::as_str) {
        expected_any = true;
        if format!("{:?}", err.kind) != kind {
            return Err(format!(
                "error kind {:?}, expected {kind}: {rendered}",
                err.kind
            ));
        }
    }
    if expected_any {
        Ok(())
    } else {
        Err(format!("unexpected error:\n{rendered}"))
    }
}

fn run_case(dir: &Path, case: &Value) -> Result<(), String> {
    let mut context = json!({});
    let mut stage_ids: Option<HashSet<String>> = None;
    if let Some(name) = case.get("context_file").and_then(Value::as_str) {
        let path = dir.join("..").join("contexts").join(format!("{name}.json"));
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        context = file["context"].clone();
        if let Some(ids) = file.get("stage_ids").and_then(Value::as_array) {
            stage_ids = Some(
                ids.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            );
        }
    }
    if let Some(c) = case.get("context") {
        merge(&mut context, c);
    }
    if let Some(c) = case.get("context_merge") {
        merge(&mut context, c);
    }
    if let Some(ids) = case.get("stage_ids").and_then(Value::as_array) {
        stage_ids = Some(
            ids.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    let scope = JsonScope::new(context);
    let opts = CompileOptions {
        stage_ids: stage_ids.as_ref(),
    };
    let source = case["template"]
        .as_str()
        .ok_or("case has no \"template\" string")?;
    let compiled = match case.get("mode").and_then(Value::as_str) {
        Some("expression") => Template::compile_expression(source, &opts),
        _ => Template::compile(source, &opts),
    };
    let t = match compiled {
        Ok(t) => t,
        Err(e) => return check_error(case, &e),
    };
    if let Some(expected) = case.get("expect_references") {
        let got: Vec<Value> = t
            .references()
            .iter()
            .map(|r| json!({"root": r.root.display(), "path": r.path, "guarded": r.guarded}))
            .collect();
        if &Value::Array(got.clone()) != expected {
            return Err(format!("references: got {}", Value::Array(got)));
        }
    }
    let mut checked = case.get("expect_references").is_some();
    if let Some(expected) = case.get("expect") {
        checked = true;
        match t.render(&scope) {
            Ok(v) if &v == expected => {}
            Ok(v) => return Err(format!("render: got {v}, expected {expected}")),
            Err(e) => return check_error(case, &e),
        }
    }
    if let Some(expected) = case.get("expect_text").and_then(Value::as_str) {
        checked = true;
        match t.render_string(&scope) {
            Ok(s) if s == expected => {}
            Ok(s) => return Err(format!("render_string: got {s:?}, expected {expected:?}")),
            Err(e) => return check_error(case, &e),
        }
    }
    if let Some(offset) = case.get("expect_near_now").and_then(Value::as_f64) {
        checked = true;
        match t.render(&scope) {
            Ok(Value::Number(n)) if n.as_f64().is_some_and(|n| near_now(n, offset)) => {}
            Ok(v) => return Err(format!("expected a number near now{offset:+}, got {v}")),
            Err(e) => return check_error(case, &e),
        }
    }
    if let Some(pattern) = case.get("expect_text_with_now").and_then(Value::as_str) {
        checked = true;
        match t.render_string(&scope) {
            Ok(s) => matches_with_now(&s, pattern)?,
            Err(e) => return check_error(case, &e),
        }
    }
    let wants_error = ["expect_error", "expect_error_rendered", "expect_error_kind"]
        .iter()
        .any(|k| case.get(k).is_some());
    if wants_error {
        match t.render(&scope) {
            Ok(v) => return Err(format!("expected an error, got {v}")),
            Err(e) => check_error(case, &e)?,
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err("case has no expectation".into())
    }
}

#[test]
fn fixtures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cases");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| format!("bad JSON: {e}")))
            .and_then(|case| run_case(&dir, &case));
        if let Err(msg) = result {
            failures.push(format!("{name}: {msg}"));
        }
    }
    eprintln!("{} fixture cases, {} failed", files.len(), failures.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
