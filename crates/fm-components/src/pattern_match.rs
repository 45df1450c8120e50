//! `pattern_match`: deterministic known-issue matching. The gathered evidence (logs, metrics,
//! recent deploys, the alert) is checked against a runbook library of known issues; each pattern
//! is a set of conditions written as fm expressions over `evidence`. No model, no I/O at run time:
//! the same evidence always gives the same answer, which is what makes the incident pipeline's
//! "known issues only" guardrail enforceable.
//!
//! Config:
//! - `library`: a JSON file of patterns (see below). A relative path is resolved against the
//!   **current directory** of the process (where `fm` runs; the repository root for the shipped
//!   pipeline). It is read and every condition compiled when the pipeline loads, so a broken
//!   library is a validation problem (`fm validate`), never a surprise during an incident.
//! - `patterns`: the same list inline (instead of, or after, the library's).
//! - `log_signals`: inline signals, added to the library's.
//! - `evidence` (required): an object whose string leaves are templates, e.g.
//!   `{logs: "{{stages.fetch-logs.output.body.logs | default(none)}}", metrics: ..., deploys: ...,
//!   alert: ...}`.
//!
//! The library: `{"log_signals": {"oom": ["OutOfMemoryError", "OOMKilled"]}, "patterns": [{id,
//! issue_type, description, conditions: ["expr", {name, expr}], min_conditions?, remediation,
//! confidence}]}`. A condition is a bare expression (`evidence.log_counts.oom >= 3`) or a `{{ }}`
//! template; it holds when its value is truthy. A condition that fails to evaluate (the data it
//! reads is missing, e.g. metrics were unavailable) does not hold; its error is reported.
//!
//! What conditions see, under `evidence` (the raw values are normalised first, so conditions stay
//! short and never parse HTTP responses):
//! - `alert`: as given.
//! - `logs`: the log entries (a list; a `{logs: [...]}` body or an http_request output is
//!   unwrapped); `log_messages`: their messages; `log_text`: the messages, one per line;
//!   `log_counts.<signal>`: how many lines contain one of the signal's phrases (case-insensitive).
//! - `metrics.<name>`: the values of the Prometheus series named `<name>` (`__name__`), as
//!   numbers, oldest first (a query_range/query response, its `data`, its `result` or an
//!   http_request output); `metric_stats.<name>`: `{min, max, first, last, count}`.
//! - `deploys`: the recent deploys (a list, newest first, as the deploy API returns them).
//! - `available`: `{logs, metrics, deploys}`: whether each was actually obtained.
//! - any other key given in `evidence`, unchanged.
//!
//! Output: `{matched, pattern: {id, issue_type, remediation, confidence, description,
//! held_conditions} | null, ambiguous, summary, available, signals (the log counts), candidates:
//! [{id, issue_type, confidence, remediation, matched, held, required, conditions: [{name, expr,
//! held, error?}]}], library}`. `summary` is one line for humans (what matched, or the closest
//! candidate and which evidence was unavailable). When several patterns
//! match, the first in file order wins, unless they disagree on the issue type: then nothing
//! matches (`ambiguous: true`), because contradictory evidence is a human's call.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use fm_core::exec::OverlayScope;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::problem::did_you_mean;
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::{is_truthy, EmptyScope, RefRoot, Template, Value};
use futures::future::BoxFuture;
use serde_json::{json, Map};

pub struct PatternMatch;

/// The keys of `evidence` that the component computes; conditions may read these and the keys
/// given in the config's `evidence`.
pub const EVIDENCE_KEYS: [&str; 10] = [
    "alert",
    "logs",
    "log_messages",
    "log_text",
    "log_counts",
    "metrics",
    "metric_stats",
    "deploys",
    "available",
    "raw",
];

const CONFIDENCES: [&str; 3] = ["high", "medium", "low"];

#[derive(Debug)]
pub struct PatternMatchRuntime {
    library: Option<String>,
    evidence: ValueTemplate,
    signals: Vec<Signal>,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Signal {
    name: String,
    /// Lower-cased phrases.
    phrases: Vec<String>,
}

#[derive(Debug)]
struct Pattern {
    id: String,
    issue_type: String,
    description: String,
    remediation: Option<String>,
    confidence: String,
    min_conditions: usize,
    conditions: Vec<Condition>,
}

#[derive(Debug)]
struct Condition {
    name: String,
    template: Template,
}

/// Problems found in a library or inline patterns: (where inside it, message).
#[derive(Default)]
struct LibCx {
    problems: Vec<(String, String)>,
}

impl LibCx {
    fn problem(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push((at.into(), message.into()));
    }
}

impl Component for PatternMatch {
    fn name(&self) -> &'static str {
        "pattern_match"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["known_issue_match"]
    }

    fn summary(&self) -> &'static str {
        "Match gathered evidence against a library of known issues (deterministic, no model)"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let library = r.string("library", &["runbook", "runbooks"]);
        let inline_patterns = r.raw("patterns", &[]).map(|(p, v)| (p, v.clone()));
        let inline_signals = r.raw("log_signals", &[]).map(|(p, v)| (p, v.clone()));
        let evidence_keys: Vec<String> = match r.raw("evidence", &[]) {
            Some((_, Value::Object(m))) => m.keys().cloned().collect(),
            Some((p, other)) => {
                r.problem(
                    "wrong_type",
                    p,
                    format!(
                        "'evidence' must be an object ({{logs, metrics, deploys, alert}}), not {}",
                        fm_core::model::reader::json_type_name(other)
                    ),
                );
                return None;
            }
            None => {
                let p = r.path().to_owned();
                r.problem_with_hint(
                    "missing_key",
                    p,
                    "pattern_match needs 'evidence': what to match",
                    "e.g. \"evidence\": {\"logs\": \"{{stages.fetch-logs.output.body.logs | default(none)}}\"}",
                );
                return None;
            }
        };
        let evidence = r.value_template("evidence", &[]);

        let mut signals: Vec<Signal> = Vec::new();
        let mut raw_patterns: Vec<(String, Value, String)> = Vec::new(); // (source, pattern, at)
        let mut ok = true;

        if let Some(lib) = &library {
            let at = r.key_path("library");
            match read_library(lib) {
                Ok(doc) => {
                    let mut lcx = LibCx::default();
                    collect_library(&doc, &mut lcx, &mut signals, &mut raw_patterns, lib);
                    for (where_, msg) in lcx.problems {
                        r.problem_with_hint(
                            "invalid_library",
                            at.clone(),
                            format!("{lib}: {where_}: {msg}"),
                            "see docs/incident-response.md, \"Adding a known issue\"",
                        );
                        ok = false;
                    }
                }
                Err((msg, hint)) => {
                    r.problem_with_hint("invalid_library", at, msg, hint);
                    ok = false;
                }
            }
        }
        if let Some((at, v)) = &inline_signals {
            let mut lcx = LibCx::default();
            read_signals(v, "log_signals", &mut lcx, &mut signals);
            for (_, msg) in lcx.problems {
                r.problem("invalid_value", at.clone(), msg);
                ok = false;
            }
        }
        if let Some((at, v)) = &inline_patterns {
            match v {
                Value::Array(items) => {
                    for (i, p) in items.iter().enumerate() {
                        raw_patterns.push(("config".into(), p.clone(), format!("{at}[{i}]")));
                    }
                }
                other => {
                    r.problem(
                        "wrong_type",
                        at.clone(),
                        format!(
                            "'patterns' must be a list of patterns, not {}",
                            fm_core::model::reader::json_type_name(other)
                        ),
                    );
                    ok = false;
                }
            }
        }
        if library.is_none() && inline_patterns.is_none() {
            let p = r.path().to_owned();
            r.problem_with_hint(
                "missing_key",
                p,
                "pattern_match needs 'library' (a file of known issues) or inline 'patterns'",
                "e.g. \"library\": \"runbooks/known-issues.json\"",
            );
            return None;
        }

        // Signal names must be unique.
        let mut seen = HashSet::new();
        for s in &signals {
            if !seen.insert(s.name.clone()) {
                let at = r.path().to_owned();
                r.problem(
                    "invalid_library",
                    at,
                    format!("log signal '{}' is defined twice", s.name),
                );
                ok = false;
            }
        }

        let mut patterns = Vec::new();
        let mut ids = HashSet::new();
        let signal_names: Vec<&str> = signals.iter().map(|s| s.name.as_str()).collect();
        for (source, raw, at) in &raw_patterns {
            let mut lcx = LibCx::default();
            if let Some(p) = compile_pattern(raw, at, &mut lcx, &signal_names, &evidence_keys) {
                if !ids.insert(p.id.clone()) {
                    lcx.problem(at.clone(), format!("pattern id '{}' is used twice", p.id));
                } else {
                    patterns.push(p);
                }
            }
            for (where_, msg) in lcx.problems {
                let (path, message) = if source == "config" {
                    (where_, msg)
                } else {
                    (r.key_path("library"), format!("{source}: {where_}: {msg}"))
                };
                r.problem_with_hint(
                    "invalid_library",
                    path,
                    message,
                    "see docs/incident-response.md, \"Adding a known issue\"",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(Arc::new(PatternMatchRuntime {
            library,
            evidence: evidence?,
            signals,
            patterns,
        }))
    }
}

fn read_library(path: &str) -> Result<Value, (String, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "?".into());
        (
            format!("cannot read the known-issue library '{path}': {e}"),
            format!("a relative library path is resolved against the current directory ({cwd})"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        (
            format!("the known-issue library '{path}' is not valid JSON: {e}"),
            "check for a missing comma, quote or bracket near that position".into(),
        )
    })
}

fn collect_library(
    doc: &Value,
    lcx: &mut LibCx,
    signals: &mut Vec<Signal>,
    patterns: &mut Vec<(String, Value, String)>,
    source: &str,
) {
    let Value::Object(top) = doc else {
        lcx.problem(
            "$",
            "a library is an object {log_signals, patterns}".to_owned(),
        );
        return;
    };
    for key in top.keys() {
        if ![
            "$schema",
            "description",
            "version",
            "log_signals",
            "patterns",
        ]
        .contains(&key.as_str())
        {
            let hint = did_you_mean(key, ["description", "version", "log_signals", "patterns"])
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            lcx.problem(key.clone(), format!("unknown key '{key}'{hint}"));
        }
    }
    if let Some(v) = top.get("log_signals") {
        read_signals(v, "log_signals", lcx, signals);
    }
    match top.get("patterns") {
        Some(Value::Array(items)) => {
            for (i, p) in items.iter().enumerate() {
                patterns.push((source.to_owned(), p.clone(), format!("patterns[{i}]")));
            }
        }
        Some(_) => lcx.problem("patterns", "'patterns' must be a list"),
        None => lcx.problem("$", "a library needs 'patterns' (a list)"),
    }
}

fn read_signals(v: &Value, at: &str, lcx: &mut LibCx, out: &mut Vec<Signal>) {
    let Value::Object(map) = v else {
        lcx.problem(
            at,
            "'log_signals' must be an object: signal name -> list of phrases",
        );
        return;
    };
    for (name, phrases) in map {
        if !is_identifier(name) {
            lcx.problem(
                format!("{at}.{name}"),
                "a signal name is letters, digits and '_' (it is read as evidence.log_counts.<name>)",
            );
            continue;
        }
        let list: Option<Vec<String>> = match phrases {
            Value::String(s) => Some(vec![s.to_lowercase()]),
            Value::Array(items) => items
                .iter()
                .map(|p| p.as_str().map(str::to_lowercase))
                .collect(),
            _ => None,
        };
        match list {
            Some(l) if !l.is_empty() && l.iter().all(|p| !p.is_empty()) => out.push(Signal {
                name: name.clone(),
                phrases: l,
            }),
            _ => lcx.problem(
                format!("{at}.{name}"),
                "a signal is a non-empty list of non-empty phrases (strings)",
            ),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn compile_pattern(
    raw: &Value,
    at: &str,
    lcx: &mut LibCx,
    signals: &[&str],
    evidence_keys: &[String],
) -> Option<Pattern> {
    let Value::Object(m) = raw else {
        lcx.problem(
            at,
            "a pattern is an object {id, issue_type, description, conditions, remediation, confidence}",
        );
        return None;
    };
    const KEYS: [&str; 8] = [
        "id",
        "issue_type",
        "description",
        "conditions",
        "min_conditions",
        "remediation",
        "confidence",
        "notes",
    ];
    for key in m.keys() {
        if !KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(key, KEYS)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            lcx.problem(format!("{at}.{key}"), format!("unknown key '{key}'{hint}"));
        }
    }
    let before = lcx.problems.len();
    let string = |key: &str, required: bool, lcx: &mut LibCx| match m.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        None | Some(Value::Null) if !required => None,
        _ => {
            lcx.problem(
                format!("{at}.{key}"),
                format!("'{key}' must be a non-empty string"),
            );
            None
        }
    };
    let id = string("id", true, lcx);
    let issue_type = string("issue_type", true, lcx);
    let description = string("description", false, lcx).unwrap_or_default();
    let remediation = string("remediation", false, lcx);
    let confidence = string("confidence", true, lcx);
    if let Some(c) = &confidence {
        if !CONFIDENCES.contains(&c.as_str()) {
            lcx.problem(
                format!("{at}.confidence"),
                format!("confidence '{c}' is not one of high, medium, low"),
            );
        }
    }
    let label = id.clone().unwrap_or_else(|| at.to_owned());
    let mut conditions = Vec::new();
    match m.get("conditions") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, c) in items.iter().enumerate() {
                let cat = format!("{at}.conditions[{i}]");
                if let Some(c) = compile_condition(c, &cat, lcx, signals, evidence_keys) {
                    conditions.push(c);
                }
            }
        }
        _ => lcx.problem(
            format!("{at}.conditions"),
            format!("pattern '{label}' needs 'conditions': a non-empty list of expressions over `evidence`"),
        ),
    }
    let total = m
        .get("conditions")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let min_conditions = match m.get("min_conditions") {
        None | Some(Value::Null) => total,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && (n as usize) <= total => n as usize,
            _ => {
                lcx.problem(
                    format!("{at}.min_conditions"),
                    format!("min_conditions must be a whole number from 1 to {total} (the number of conditions)"),
                );
                total
            }
        },
    };
    if lcx.problems.len() > before {
        return None;
    }
    Some(Pattern {
        id: id?,
        issue_type: issue_type?,
        description,
        remediation,
        confidence: confidence?,
        min_conditions,
        conditions,
    })
}

fn compile_condition(
    raw: &Value,
    at: &str,
    lcx: &mut LibCx,
    signals: &[&str],
    evidence_keys: &[String],
) -> Option<Condition> {
    let (name, expr) = match raw {
        Value::String(s) => (None, s.as_str()),
        Value::Object(m) => {
            for key in m.keys() {
                if !["name", "expr", "description"].contains(&key.as_str()) {
                    lcx.problem(
                        format!("{at}.{key}"),
                        format!("unknown key '{key}' (a condition is {{name, expr}} or a string)"),
                    );
                }
            }
            match m.get("expr") {
                Some(Value::String(s)) => (m.get("name").and_then(Value::as_str), s.as_str()),
                _ => {
                    lcx.problem(
                        format!("{at}.expr"),
                        "a condition object needs 'expr': an expression over `evidence`",
                    );
                    return None;
                }
            }
        }
        _ => {
            lcx.problem(at, "a condition is an expression string or {name, expr}");
            return None;
        }
    };
    let empty = HashSet::new();
    let opts = fm_expr::CompileOptions {
        stage_ids: Some(&empty),
    };
    let compiled = if expr.contains("{{") {
        Template::compile(expr, &opts)
    } else {
        Template::compile_expression(expr, &opts)
    };
    let template = match compiled {
        Ok(t) => t,
        Err(e) => {
            lcx.problem(at, e.render());
            return None;
        }
    };
    let mut fine = true;
    for reference in template.references() {
        match &reference.root {
            RefRoot::Var(v) if v == "evidence" => {
                let Some(first) = reference.path.first() else {
                    continue;
                };
                let known = EVIDENCE_KEYS.contains(&first.as_str())
                    || evidence_keys.iter().any(|k| k == first);
                if !known {
                    let candidates = EVIDENCE_KEYS
                        .iter()
                        .copied()
                        .chain(evidence_keys.iter().map(String::as_str));
                    let hint = did_you_mean(first, candidates)
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_default();
                    lcx.problem(
                        at,
                        format!("`evidence.{first}` is not part of the evidence{hint} (see docs/components.md, pattern_match)"),
                    );
                    fine = false;
                } else if first == "log_counts" {
                    if let Some(sig) = reference.path.get(1) {
                        if !signals.contains(&sig.as_str()) {
                            let hint = did_you_mean(sig, signals.iter().copied())
                                .map(|s| format!("; did you mean '{s}'?"))
                                .unwrap_or_else(|| {
                                    format!("; defined signals: {}", signals.join(", "))
                                });
                            lcx.problem(
                                at,
                                format!("log signal '{sig}' is not defined in log_signals{hint}"),
                            );
                            fine = false;
                        }
                    }
                }
            }
            other => {
                let what = match other {
                    RefRoot::Var(v) => format!("`{v}`"),
                    RefRoot::Stage { id, .. } => format!("stage '{id}'"),
                    RefRoot::Secret(s) => format!("secret '{s}'"),
                    RefRoot::Env(e) => format!("env '{e}'"),
                    RefRoot::Execution(x) => format!("execution.{x}"),
                };
                lcx.problem(
                    at,
                    format!("a condition may read only `evidence`, not {what} (put what it needs into the stage's 'evidence')"),
                );
                fine = false;
            }
        }
    }
    fine.then(|| Condition {
        name: name.map_or_else(|| expr.to_owned(), str::to_owned),
        template,
    })
}

impl StageRuntime for PatternMatchRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let raw = self
                .evidence
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.evidence"))?;
            Ok(self.evaluate(&raw))
        })
    }
}

impl PatternMatchRuntime {
    /// Matches raw evidence (as the `evidence` config renders it) against the patterns.
    pub fn evaluate(&self, raw: &Value) -> Value {
        let evidence = normalize(raw, &self.signals);
        let scope = OverlayScope {
            parent: &EmptyScope,
            name: "evidence",
            value: &evidence,
        };
        let mut candidates = Vec::with_capacity(self.patterns.len());
        let mut matched: Vec<(&Pattern, usize)> = Vec::new();
        for p in &self.patterns {
            let mut held = 0usize;
            let mut conds = Vec::with_capacity(p.conditions.len());
            for c in &p.conditions {
                let mut entry = Map::new();
                entry.insert("name".into(), json!(c.name));
                entry.insert("expr".into(), json!(c.template.source()));
                match c.template.render(&scope) {
                    Ok(v) => {
                        let ok = is_truthy(&v);
                        held += usize::from(ok);
                        entry.insert("held".into(), json!(ok));
                    }
                    Err(e) => {
                        entry.insert("held".into(), json!(false));
                        entry.insert("error".into(), json!(e.message));
                    }
                }
                conds.push(Value::Object(entry));
            }
            let is_match = held >= p.min_conditions;
            if is_match {
                matched.push((p, held));
            }
            candidates.push(json!({
                "id": p.id,
                "issue_type": p.issue_type,
                "confidence": p.confidence,
                "remediation": p.remediation,
                "matched": is_match,
                "held": held,
                "required": p.min_conditions,
                "conditions": conds,
            }));
        }
        let mut types: Vec<&str> = matched.iter().map(|(p, _)| p.issue_type.as_str()).collect();
        let mut seen = HashSet::new();
        types.retain(|t| seen.insert(*t));
        let ambiguous = types.len() > 1;
        let winner = if ambiguous { None } else { matched.first() };
        let summary = match (winner, ambiguous) {
            (_, true) => format!(
                "ambiguous: the evidence matches known issues of different types ({}); a human decides",
                types.join(", ")
            ),
            (Some((p, held)), false) => format!(
                "known issue '{}' ({}, {} confidence): {} of {} conditions held",
                p.id,
                p.issue_type,
                p.confidence,
                held,
                p.conditions.len()
            ),
            (None, false) => {
                let mut s = "no known issue matches the evidence".to_owned();
                // On a tie, the first in file order (max_by_key keeps the last of equals).
                let closest = candidates
                    .iter()
                    .rev()
                    .filter(|c| c["held"].as_u64().unwrap_or(0) > 0)
                    .max_by_key(|c| c["held"].as_u64().unwrap_or(0));
                if let Some(c) = closest {
                    s.push_str(&format!(
                        "; closest: '{}', {} of {} conditions held",
                        c["id"].as_str().unwrap_or("?"),
                        c["held"],
                        c["conditions"].as_array().map_or(0, Vec::len)
                    ));
                }
                s
            }
        };
        let missing: Vec<&str> = ["logs", "metrics", "deploys"]
            .into_iter()
            .filter(|k| evidence["available"][*k] == Value::Bool(false))
            .collect();
        let summary = if missing.is_empty() {
            summary
        } else {
            format!(
                "{summary} (partial evidence: {} unavailable)",
                missing.join(", ")
            )
        };
        let pattern = winner.map_or(Value::Null, |(p, _)| {
            let index = self
                .patterns
                .iter()
                .position(|q| q.id == p.id)
                .unwrap_or_default();
            let held: Vec<&Value> = candidates[index]["conditions"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c["held"] == Value::Bool(true))
                        .map(|c| &c["name"])
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "id": p.id,
                "issue_type": p.issue_type,
                "remediation": p.remediation,
                "confidence": p.confidence,
                "description": p.description,
                "held_conditions": held,
            })
        });
        json!({
            "matched": winner.is_some(),
            "pattern": pattern,
            "ambiguous": ambiguous,
            "summary": summary,
            "available": evidence.get("available").cloned().unwrap_or(Value::Null),
            "signals": evidence.get("log_counts").cloned().unwrap_or(Value::Null),
            "candidates": candidates,
            "library": self.library,
        })
    }
}

/// Turns the raw evidence into the shape conditions read (see the module docs).
fn normalize(raw: &Value, signals: &[Signal]) -> Value {
    let empty = Map::new();
    let m = raw.as_object().unwrap_or(&empty);
    let logs = m.get("logs").and_then(log_entries);
    let metrics = m.get("metrics").and_then(metric_series);
    let deploys = m.get("deploys").and_then(deploy_list);

    let entries = logs.clone().unwrap_or_default();
    let messages: Vec<String> = entries.iter().map(message_of).collect();
    let lower: Vec<String> = messages.iter().map(|s| s.to_lowercase()).collect();
    let mut counts = Map::new();
    for s in signals {
        let n = lower
            .iter()
            .filter(|line| s.phrases.iter().any(|p| line.contains(p.as_str())))
            .count();
        counts.insert(s.name.clone(), json!(n));
    }

    let series = metrics.clone().unwrap_or_default();
    let mut metric_values = Map::new();
    let mut stats = Map::new();
    for (name, values) in &series {
        metric_values.insert(name.clone(), json!(values));
        if let (Some(first), Some(last)) = (values.first(), values.last()) {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            stats.insert(
                name.clone(),
                json!({"min": min, "max": max, "first": first, "last": last, "count": values.len()}),
            );
        }
    }

    let mut out = Map::new();
    // Extra keys first, so the computed ones win on a clash.
    for (k, v) in m {
        if !EVIDENCE_KEYS.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert(
        "alert".into(),
        m.get("alert").cloned().unwrap_or(Value::Null),
    );
    out.insert("logs".into(), Value::Array(entries));
    out.insert("log_text".into(), json!(messages.join("\n")));
    out.insert("log_messages".into(), json!(messages));
    out.insert("log_counts".into(), Value::Object(counts));
    out.insert("metrics".into(), Value::Object(metric_values));
    out.insert("metric_stats".into(), Value::Object(stats));
    out.insert(
        "deploys".into(),
        Value::Array(deploys.clone().unwrap_or_default()),
    );
    out.insert(
        "available".into(),
        json!({
            "logs": logs.is_some(),
            "metrics": metrics.is_some(),
            "deploys": deploys.is_some(),
        }),
    );
    Value::Object(out)
}

/// An http_request output (`{status_code, body}`) is unwrapped to its body.
fn unwrap_http(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.contains_key("status_code") && m.contains_key("body") => &m["body"],
        other => other,
    }
}

fn log_entries(v: &Value) -> Option<Vec<Value>> {
    match unwrap_http(v) {
        Value::Array(items) => Some(items.clone()),
        Value::Object(m) => match m.get("logs").or_else(|| m.get("entries")) {
            Some(Value::Array(items)) => Some(items.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn message_of(entry: &Value) -> String {
    match entry {
        Value::String(s) => s.clone(),
        Value::Object(m) => ["message", "msg", "line", "text", "log"]
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str))
            .map_or_else(|| entry.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

/// Prometheus series by metric name: values as numbers, oldest first.
fn metric_series(v: &Value) -> Option<BTreeMap<String, Vec<f64>>> {
    let v = unwrap_http(v);
    let result = match v {
        Value::Array(items) => items,
        Value::Object(m) => {
            if let Some(status) = m.get("status").and_then(Value::as_str) {
                if status != "success" {
                    return None;
                }
            }
            let data = m.get("data").unwrap_or(v);
            match data.get("result") {
                Some(Value::Array(items)) => items,
                _ => return None,
            }
        }
        _ => return None,
    };
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for series in result {
        let name = series
            .get("metric")
            .and_then(|m| m.get("__name__"))
            .and_then(Value::as_str)
            .unwrap_or("value")
            .to_owned();
        let points: Vec<&Value> = match (series.get("values"), series.get("value")) {
            (Some(Value::Array(vs)), _) => vs.iter().collect(),
            (_, Some(p)) => vec![p],
            _ => Vec::new(),
        };
        let values = out.entry(name).or_default();
        for p in points {
            if let Some(x) = p.get(1).and_then(sample_value) {
                values.push(x);
            }
        }
    }
    Some(out)
}

fn sample_value(v: &Value) -> Option<f64> {
    let x = match v {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

fn deploy_list(v: &Value) -> Option<Vec<Value>> {
    match unwrap_http(v) {
        Value::Array(items) => Some(items.clone()),
        Value::Object(m) => match m.get("deployments").or_else(|| m.get("items")) {
            Some(Value::Array(items)) => Some(items.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn signals() -> Vec<Signal> {
        vec![Signal {
            name: "oom".into(),
            phrases: vec!["outofmemoryerror".into(), "gc overhead".into()],
        }]
    }

    #[test]
    fn normalizes_http_outputs_and_prometheus_series() {
        let raw = json!({
            "logs": {"status_code": 200, "body": {"logs": [
                {"message": "java.lang.OutOfMemoryError: Java heap space"},
                {"message": "GC overhead limit exceeded"},
                {"message": "request timed out"}
            ]}},
            "metrics": {"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "process_memory_percent"}, "values": [[1, "45"], [2, "94.5"]]}
            ]}},
            "deploys": null,
            "extra": 7
        });
        let e = normalize(&raw, &signals());
        assert_eq!(e["log_counts"]["oom"], json!(2));
        assert_eq!(e["metrics"]["process_memory_percent"], json!([45.0, 94.5]));
        assert_eq!(
            e["metric_stats"]["process_memory_percent"]["max"],
            json!(94.5)
        );
        assert_eq!(
            e["metric_stats"]["process_memory_percent"]["first"],
            json!(45.0)
        );
        assert_eq!(
            e["available"],
            json!({"logs": true, "metrics": true, "deploys": false})
        );
        assert_eq!(e["deploys"], json!([]));
        assert_eq!(e["extra"], json!(7));
    }

    #[test]
    fn a_prometheus_error_means_metrics_unavailable() {
        let raw = json!({"metrics": {"status": "error", "errorType": "timeout"}});
        let e = normalize(&raw, &[]);
        assert_eq!(e["available"]["metrics"], json!(false));
        assert_eq!(e["metrics"], json!({}));
    }
}
