//! `ConfigReader`: reads one JSON object of a pipeline file (top level, a stage, a component's
//! config), remembers which keys were asked for, and reports everything else as an unknown key
//! with a did-you-mean. Problems are collected, never returned early, so `fm validate` can list
//! every problem at once.

use std::collections::HashSet;

use fm_expr::{Reference, Template, Value};
use serde_json::Map;

use crate::model::dialect::Dialect;
use crate::model::path::{child_path, index_path};
use crate::model::value_template::ValueTemplate;
use crate::problem::{did_you_mean, Problem};

/// How a stage is referred to by id from a config (not from a template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageRefRole {
    DependsOn,
    /// Named in a router's route (or its default); `route` is the route's index, `None` for default.
    Route {
        route: Option<usize>,
    },
    Try,
    Catch,
    Finally,
}

#[derive(Debug, Clone)]
pub struct StageRef {
    pub from_stage: String,
    pub path: String,
    pub target: String,
    pub role: StageRefRole,
}

/// Every template compiled while loading, with what it reads: the validator's input.
#[derive(Debug, Clone)]
pub struct TemplateUse {
    pub stage: Option<String>,
    pub path: String,
    pub references: Vec<Reference>,
    /// Bare variable names this template may read besides `input` (e.g. `output` in a retry
    /// condition, `data` in a json_transform template).
    pub extra_vars: &'static [&'static str],
}

/// Shared state of one compilation.
pub struct CompileCx<'a> {
    pub stage_ids: &'a HashSet<String>,
    /// The file's dialect: components whose meaning differs between the two read it.
    pub dialect: Dialect,
    pub problems: Vec<Problem>,
    pub templates: Vec<TemplateUse>,
    pub stage_refs: Vec<StageRef>,
}

impl<'a> CompileCx<'a> {
    pub fn new(stage_ids: &'a HashSet<String>) -> Self {
        CompileCx {
            stage_ids,
            dialect: Dialect::Reference,
            problems: Vec::new(),
            templates: Vec::new(),
            stage_refs: Vec::new(),
        }
    }

    pub fn expr_options(&self) -> fm_expr::CompileOptions<'a> {
        fm_expr::CompileOptions {
            stage_ids: Some(self.stage_ids),
        }
    }
}

/// Reads one JSON object. Call [`ConfigReader::finish`] when done to report unknown keys.
pub struct ConfigReader<'r, 'a> {
    map: &'r Map<String, Value>,
    path: String,
    stage: Option<String>,
    known: Vec<&'static str>,
    /// The preferred spelling of each key asked for (suggestions come from these first).
    canonical: Vec<&'static str>,
    extra_vars: &'static [&'static str],
    pub cx: &'r mut CompileCx<'a>,
}

impl<'r, 'a> ConfigReader<'r, 'a> {
    pub fn new(
        map: &'r Map<String, Value>,
        path: impl Into<String>,
        stage: Option<&str>,
        cx: &'r mut CompileCx<'a>,
    ) -> Self {
        ConfigReader {
            map,
            path: path.into(),
            stage: stage.map(str::to_owned),
            known: Vec::new(),
            canonical: Vec::new(),
            extra_vars: &[],
            cx,
        }
    }

    /// The pipeline file's dialect (see [`Dialect`]).
    pub fn dialect(&self) -> Dialect {
        self.cx.dialect
    }

    /// The stage this object belongs to, if any.
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn key_path(&self, key: &str) -> String {
        child_path(&self.path, key)
    }

    /// Bare variables the templates read through this reader may use (besides `input`).
    pub fn with_extra_vars(mut self, vars: &'static [&'static str]) -> Self {
        self.extra_vars = vars;
        self
    }

    pub fn set_extra_vars(&mut self, vars: &'static [&'static str]) {
        self.extra_vars = vars;
    }

    /// True if the object has `key` or one of its aliases (marks them known).
    pub fn has(&mut self, key: &'static str, aliases: &[&'static str]) -> bool {
        self.lookup(key, aliases).is_some()
    }

    /// The raw value under `key` or its first present alias. Two spellings at once is a problem.
    pub fn raw(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
    ) -> Option<(String, &'r Value)> {
        self.lookup(key, aliases)
    }

    fn lookup(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
    ) -> Option<(String, &'r Value)> {
        self.known.push(key);
        self.canonical.push(key);
        self.known.extend_from_slice(aliases);
        let mut found: Option<(String, &'r Value)> = None;
        for name in std::iter::once(&key).chain(aliases) {
            if let Some(v) = self.map.get(*name) {
                if let Some((first, _)) = &found {
                    let p = Problem::new(
                        "conflicting_keys",
                        self.key_path(name),
                        format!("both '{first}' and '{name}' are given; they mean the same thing"),
                    )
                    .with_hint(format!("keep only '{key}'"));
                    self.push(p);
                } else {
                    found = Some((self.key_path(name), v));
                }
            }
        }
        found
    }

    pub fn problem(&mut self, code: &'static str, path: String, message: impl Into<String>) {
        let p = Problem::new(code, path, message);
        self.push(p);
    }

    pub fn problem_with_hint(
        &mut self,
        code: &'static str,
        path: String,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let p = Problem::new(code, path, message).with_hint(hint);
        self.push(p);
    }

    fn push(&mut self, p: Problem) {
        let p = p.with_stage(self.stage.as_deref());
        self.cx.problems.push(p);
    }

    fn type_problem(&mut self, path: String, expected: &str, got: &Value) {
        self.problem(
            "wrong_type",
            path,
            format!("expected {expected}, found {}", json_type_name(got)),
        );
    }

    /// A literal string (no templates allowed).
    pub fn string(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<String> {
        let (path, v) = self.lookup(key, aliases)?;
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.type_problem(path, "a string", other);
                None
            }
        }
    }

    pub fn required_string(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
    ) -> Option<String> {
        if !self.has(key, aliases) {
            self.missing(key);
            return None;
        }
        self.string(key, aliases)
    }

    pub fn missing(&mut self, key: &'static str) {
        let path = self.key_path(key);
        self.problem("missing_key", path, format!("'{key}' is required"));
    }

    pub fn bool(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<bool> {
        let (path, v) = self.lookup(key, aliases)?;
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.type_problem(path, "true or false", other);
                None
            }
        }
    }

    /// A non-negative integer (floats with no fraction are accepted: YAML and hand-written JSON).
    pub fn u64(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<u64> {
        let (path, v) = self.lookup(key, aliases)?;
        match v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
                .map(|f| f as u64)
        }) {
            Some(n) => Some(n),
            None => {
                self.type_problem(path, "a non-negative integer", v);
                None
            }
        }
    }

    pub fn f64(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<f64> {
        let (path, v) = self.lookup(key, aliases)?;
        match v.as_f64() {
            Some(n) => Some(n),
            None => {
                self.type_problem(path, "a number", v);
                None
            }
        }
    }

    /// A list of stage ids, recorded so the validator checks they exist.
    pub fn stage_list(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
        role: StageRefRole,
    ) -> Option<Vec<String>> {
        let (path, v) = self.lookup(key, aliases)?;
        self.stage_list_value(&path, v, role)
    }

    /// Like [`Self::stage_list`] for a value already in hand (e.g. the entries of a routes map).
    pub fn stage_list_value(
        &mut self,
        path: &str,
        v: &Value,
        role: StageRefRole,
    ) -> Option<Vec<String>> {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            // A single id is accepted where a list is expected: FlowMason files do this.
            Value::String(_) => vec![v],
            other => {
                self.type_problem(path.to_owned(), "a list of stage ids", other);
                return None;
            }
        };
        let mut ids = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = if v.is_array() {
                index_path(path, i)
            } else {
                path.to_owned()
            };
            match item.as_str() {
                Some(id) => {
                    self.cx.stage_refs.push(StageRef {
                        from_stage: self.stage.clone().unwrap_or_default(),
                        path: item_path,
                        target: id.to_owned(),
                        role,
                    });
                    ids.push(id.to_owned());
                }
                None => self.type_problem(item_path, "a stage id (string)", item),
            }
        }
        Some(ids)
    }

    /// A config value compiled as a value template (any JSON; string leaves are templates).
    pub fn value_template(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
    ) -> Option<ValueTemplate> {
        let (path, v) = self.lookup(key, aliases)?;
        self.compile_value(&path, v)
    }

    /// Compiles `v` (found at `path`) as a value template, recording its references.
    pub fn compile_value(&mut self, path: &str, v: &Value) -> Option<ValueTemplate> {
        let opts = self.cx.expr_options();
        let stage = self.stage.clone();
        let extra_vars = self.extra_vars;
        let mut uses = Vec::new();
        let result = ValueTemplate::compile(v, &opts, &mut |sub, t: &Template| {
            uses.push(TemplateUse {
                stage: stage.clone(),
                path: join_sub(path, sub),
                references: t.references().to_vec(),
                extra_vars,
            });
        });
        self.cx.templates.extend(uses);
        match result {
            Ok(t) => Some(t),
            Err(errors) => {
                for (sub, e) in errors {
                    self.template_problem(join_sub(path, &sub), &e);
                }
                None
            }
        }
    }

    /// A string that must be a template (or plain text).
    pub fn template(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<Template> {
        let (path, v) = self.lookup(key, aliases)?;
        match v {
            Value::String(s) => self.compile_template(&path, s, false),
            other => {
                self.type_problem(path, "a string template", other);
                None
            }
        }
    }

    /// A condition: a `{{ }}` template, or (FlowMason style) a bare expression without braces.
    pub fn condition(&mut self, key: &'static str, aliases: &[&'static str]) -> Option<Template> {
        let (path, v) = self.lookup(key, aliases)?;
        self.condition_value(&path, v)
    }

    pub fn condition_value(&mut self, path: &str, v: &Value) -> Option<Template> {
        match v {
            Value::String(s) => self.compile_template(path, s, !s.contains("{{")),
            Value::Bool(b) => {
                self.compile_template(path, if *b { "{{true}}" } else { "{{false}}" }, false)
            }
            other => {
                self.type_problem(path.to_owned(), "a condition (a template string)", other);
                None
            }
        }
    }

    fn compile_template(&mut self, path: &str, source: &str, bare: bool) -> Option<Template> {
        let opts = self.cx.expr_options();
        let compiled = if bare {
            Template::compile_expression(source, &opts)
        } else {
            Template::compile(source, &opts)
        };
        match compiled {
            Ok(t) => {
                self.cx.templates.push(TemplateUse {
                    stage: self.stage.clone(),
                    path: path.to_owned(),
                    references: t.references().to_vec(),
                    extra_vars: self.extra_vars,
                });
                Some(t)
            }
            Err(e) => {
                self.template_problem(path.to_owned(), &e);
                None
            }
        }
    }

    fn template_problem(&mut self, path: String, e: &fm_expr::Error) {
        self.problem_with_hint(
            "template_syntax",
            path,
            e.render(),
            "see docs/template-language.md",
        );
    }

    /// A nested object reader (e.g. `retry`, a route). `None` (and a problem) if not an object.
    pub fn object(
        &mut self,
        key: &'static str,
        aliases: &[&'static str],
    ) -> Option<ConfigReader<'_, 'a>> {
        let (path, v) = self.lookup(key, aliases)?;
        match v {
            Value::Object(map) => {
                let stage = self.stage.clone();
                let extra = self.extra_vars;
                Some(ConfigReader::new(map, path, stage.as_deref(), self.cx).with_extra_vars(extra))
            }
            other => {
                self.type_problem(path, "an object", other);
                None
            }
        }
    }

    /// A reader over an object found elsewhere (an array element, say), sharing this context.
    pub fn nested<'m>(
        &'m mut self,
        map: &'m Map<String, Value>,
        path: String,
    ) -> ConfigReader<'m, 'a> {
        let stage = self.stage.clone();
        let extra = self.extra_vars;
        ConfigReader::new(map, path, stage.as_deref(), self.cx).with_extra_vars(extra)
    }

    /// Reports every key that no one asked for, with a suggestion when one is close.
    pub fn finish(self) {
        let mut problems = Vec::new();
        for key in self.map.keys() {
            if self.known.iter().any(|k| k == key) {
                continue;
            }
            let mut p = Problem::new(
                "unknown_key",
                child_path(&self.path, key),
                format!("unknown key '{key}'"),
            );
            let mut known: Vec<&str> = self.canonical.to_vec();
            known.sort_unstable();
            known.dedup();
            let suggestion = did_you_mean(key, known.iter().copied())
                .or_else(|| did_you_mean(key, self.known.iter().copied()));
            p = match suggestion {
                Some(s) => p.with_hint(format!("did you mean '{s}'?")),
                None => p.with_hint(format!("known keys here: {}", known.join(", "))),
            };
            problems.push(p.with_stage(self.stage.as_deref()));
        }
        self.cx.problems.extend(problems);
    }
}

fn join_sub(path: &str, sub: &str) -> String {
    if sub.is_empty() {
        path.to_owned()
    } else if sub.starts_with('[') {
        format!("{path}{sub}")
    } else {
        format!("{path}.{sub}")
    }
}

pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
