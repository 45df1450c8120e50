//! PipelineDef (a parsed JSON value) -> Pipeline (compiled). Every problem is collected; the
//! result is a pipeline only when there are none.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use fm_expr::{RefRoot, Value};
use serde_json::Map;

use crate::component::Registry;
use crate::model::dialect::{self, Dialect};
use crate::model::flowmason;
use crate::model::graph::{has_bit, Graph};
use crate::model::input_paths::check_input_paths;
use crate::model::outcome::read_outcome;
use crate::model::path::index_path;
use crate::model::pipeline::{
    Control, InputSchema, OutputSpec, Pipeline, ScopeMembership, ScopeRole, Stage,
};
use crate::model::reader::{CompileCx, ConfigReader, StageRefRole};
use crate::model::stage_fields::{
    read_budget, read_duration_ms, read_on_error, read_retry, read_trigger,
};
use crate::problem::{did_you_mean, Problem};

/// What compilation may consult besides the file.
pub struct CompileOptions<'a> {
    pub registry: &'a Registry,
    /// When set, a referenced secret for which this returns false is a problem (`fm validate
    /// --secrets`, and every run).
    pub secret_available: Option<&'a dyn Fn(&str) -> bool>,
}

const TOP_KEYS_HINT: &str =
    "a pipeline has: name, version, description, input, output, outcome, stages";

pub fn compile(doc: &Value, opts: &CompileOptions<'_>) -> Result<Pipeline, Vec<Problem>> {
    let Value::Object(top) = doc else {
        return Err(vec![Problem::new(
            "wrong_type",
            "$",
            "a pipeline file must be a JSON/YAML object",
        )
        .with_hint(TOP_KEYS_HINT)]);
    };

    // Pass 1: the stage ids, needed before any template is compiled (the hyphen rule).
    let raw_stages: Vec<&Value> = match top.get("stages") {
        Some(Value::Array(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let mut early = Vec::new();
    let ids = collect_ids(&raw_stages, &mut early);
    let id_set: HashSet<String> = ids.iter().flatten().cloned().collect();
    let mut cx = CompileCx::new(&id_set);
    cx.dialect = dialect::detect(top);
    cx.problems.extend(early);

    let mut r = ConfigReader::new(top, "", None, &mut cx);
    // FlowMason has both: `id` names the pipeline, `name` is its title. The reference format
    // has one of them.
    let (name, title) = match r.dialect() {
        Dialect::FlowMason => {
            let id = r.string("id", &[]);
            let title = r.string("name", &[]);
            (id.or_else(|| title.clone()), title)
        }
        Dialect::Reference => (r.string("name", &["id"]), None),
    };
    let name = name.unwrap_or_else(|| "pipeline".to_owned());
    let mut metadata = flowmason::read_top_metadata(&mut r);
    if let Some(t) = title.filter(|t| *t != name) {
        metadata.insert("title".into(), Value::String(t));
    }
    let version = match r.raw("version", &[]) {
        Some((_, Value::String(s))) => Some(s.clone()),
        Some((_, Value::Number(n))) => Some(n.to_string()),
        Some((path, _)) => {
            r.problem(
                "wrong_type",
                path,
                "version must be a string such as \"1.0.0\"",
            );
            None
        }
        None => None,
    };
    let description = r.string("description", &[]);
    let _ = r.raw("$schema", &[]);
    let _ = r.raw("output_schema", &[]);
    let input_schema = match r.raw("input", &["input_schema"]) {
        Some((path, v)) => compile_schema(&path, v, &mut r),
        None => None,
    };
    let output_raw = r.raw("output", &[]);
    let outcome = read_outcome(&mut r);
    let output_stage = r.string("output_stage_id", &[]);
    if !r.has("stages", &[]) {
        r.missing("stages");
    } else if let Some((path, v)) = r.raw("stages", &[]) {
        if !v.is_array() {
            r.problem(
                "wrong_type",
                path,
                "'stages' must be a list of stage objects",
            );
        }
    }
    let output_template = output_raw.and_then(|(path, v)| r.compile_value(&path, v));
    r.finish();

    // Pass 2: each stage.
    let mut stages: Vec<Option<Stage>> = Vec::with_capacity(raw_stages.len());
    for (i, raw) in raw_stages.iter().enumerate() {
        let id = ids[i].clone();
        stages.push(compile_stage(i, raw, id, opts.registry, &mut cx));
    }

    // Every stage must have compiled for the graph checks to mean anything.
    let index: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| id.clone().map(|id| (id, i)))
        .collect();
    let mut problems = std::mem::take(&mut cx.problems);
    resolve_stage_refs(&cx, &index, &mut problems);
    if ids.iter().any(Option::is_none) {
        // Without every id the graph cannot be built; check references by name only.
        check_template_refs_by_name(&cx, &index, opts, &mut problems);
        return Err(dedupe(problems));
    }
    // A stage whose config had problems still takes part in the graph checks (as a
    // placeholder), so that one run of `fm validate` reports everything.
    let mut stages: Vec<Stage> = stages
        .into_iter()
        .zip(&ids)
        .map(|(s, id)| {
            s.unwrap_or_else(|| {
                placeholder_stage(id.clone().unwrap_or_default(), &raw_stages, &index)
            })
        })
        .collect();
    wire_control(&mut stages, &cx, &index, &mut problems);

    let graph = Graph::build(&stages);
    let topo_nodes = match graph.topo_order() {
        Ok(order) => order,
        Err(cycle) => {
            problems.push(cycle_problem(&cycle, &stages));
            check_template_refs_by_name(&cx, &index, opts, &mut problems);
            return Err(dedupe(problems));
        }
    };
    let ancestors = graph.ancestors(&topo_nodes, stages.len());
    let (secrets, env) = check_template_refs(&cx, &index, &stages, &ancestors, opts, &mut problems);
    if let Some(schema) = &input_schema {
        check_input_paths(&cx, &schema.raw, &mut problems);
    }

    let output = match (output_template, output_stage) {
        (Some(t), _) => OutputSpec::Template(t),
        (None, Some(id)) => match index.get(&id) {
            Some(&i) => OutputSpec::Stage(i),
            None => {
                problems.push(undefined_stage("output_stage_id".into(), None, &id, &index));
                OutputSpec::TerminalStages
            }
        },
        (None, None) => OutputSpec::TerminalStages,
    };

    if !problems.is_empty() {
        return Err(dedupe(problems));
    }
    let topo_order = topo_nodes
        .into_iter()
        .filter(|n| n % 2 == 0)
        .map(|n| n / 2)
        .collect();
    Ok(Pipeline {
        name,
        dialect: cx.dialect,
        metadata,
        version,
        description,
        input_schema,
        output,
        outcome,
        stages,
        index,
        topo_order,
        secrets,
        env,
    })
}

fn collect_ids(raw: &[&Value], problems: &mut Vec<Problem>) -> Vec<Option<String>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let path = index_path("stages", i);
            let id = match v.get("id") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    problems.push(Problem::new(
                        "wrong_type",
                        format!("{path}.id"),
                        "a stage id must be a string",
                    ));
                    return None;
                }
                None => {
                    if v.is_object() {
                        problems.push(
                            Problem::new(
                                "missing_key",
                                format!("{path}.id"),
                                "every stage needs an 'id'",
                            )
                            .with_hint("letters, digits, '-' and '_', unique in the pipeline"),
                        );
                    }
                    return None;
                }
            };
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push(
                    Problem::new(
                        "invalid_id",
                        format!("{path}.id"),
                        format!("invalid stage id '{id}'"),
                    )
                    .with_hint("use only letters, digits, '-' and '_'"),
                );
            } else if id.starts_with('-') || id.ends_with('-') {
                problems.push(Problem::new(
                    "invalid_id",
                    format!("{path}.id"),
                    format!("stage id '{id}' must not start or end with '-'"),
                ));
            }
            if let Some(first) = seen.insert(id.clone(), i) {
                problems.push(
                    Problem::new(
                        "duplicate_id",
                        format!("{path}.id"),
                        format!("stage id '{id}' is already used by stages[{first}]"),
                    )
                    .with_stage(Some(&id)),
                );
                return None;
            }
            Some(id)
        })
        .collect()
}

fn compile_stage(
    i: usize,
    raw: &Value,
    id: Option<String>,
    registry: &Registry,
    cx: &mut CompileCx<'_>,
) -> Option<Stage> {
    let path = index_path("stages", i);
    let Value::Object(map) = raw else {
        cx.problems.push(Problem::new(
            "wrong_type",
            path,
            "a stage must be an object with id, component and config",
        ));
        return None;
    };
    let mut r = ConfigReader::new(map, path.clone(), id.as_deref(), cx);
    let _ = r.raw("id", &[]);
    let name = r.string("name", &[]);
    let description = r.string("description", &[]);
    let position = r.raw("position", &[]).map(|(_, v)| v.clone());
    let component_name = r.required_string("component", &["component_type", "type"]);
    // Recorded in cx.stage_refs; resolved to indexes once every id is known.
    let _ = r.stage_list("depends_on", &[], StageRefRole::DependsOn);
    let timeout = read_duration_ms(&mut r, "timeout");
    let trigger = read_trigger(&mut r);
    let on_error = read_on_error(&mut r);
    let idempotent = r.bool("idempotent", &[]);
    let budget = read_budget(&mut r);
    let extras = flowmason::read_stage_extras(&mut r);
    let retry = match r.object("retry", &[]) {
        Some(mut sub) => {
            sub.set_extra_vars(&["output"]);
            let policy = read_retry(&mut sub);
            sub.finish();
            policy
        }
        None => None,
    };
    let has_config = r.has("config", &[]);
    let mut config: Map<String, Value> = match r.raw("config", &[]) {
        Some((_, Value::Object(m))) => m.clone(),
        Some((p, _)) => {
            r.problem("wrong_type", p, "'config' must be an object");
            Map::new()
        }
        None => Map::new(),
    };
    let component = component_name
        .as_deref()
        .and_then(|n| match registry.get(n) {
            Some(c) => Some(c.clone()),
            None if flowmason::not_supported(n).is_some() => {
                let why = flowmason::not_supported(n).unwrap_or_default();
                let p = r.key_path("component");
                r.problem_with_hint(
                    "not_supported",
                    p,
                    format!("FlowMason's '{n}' component {why}"),
                    "see docs/components.md for what fm runs",
                );
                None
            }
            None => {
                let hint = did_you_mean(n, registry.all_spellings()).map_or_else(
                    || format!("known components: {}", registry.names().join(", ")),
                    |s| format!("did you mean '{s}'?"),
                );
                let p = r.key_path("component");
                r.problem_with_hint(
                    "unknown_component",
                    p,
                    format!("unknown component '{n}'"),
                    hint,
                );
                None
            }
        });
    let timeout = match (timeout, extras.timeout_ms) {
        (Some(_), Some(_)) => {
            let p = r.key_path("timeout_ms");
            r.problem_with_hint(
                "conflicting_keys",
                p,
                "both 'timeout' and 'timeout_ms' are given",
                "keep only 'timeout_ms' (milliseconds)",
            );
            timeout
        }
        (t, ms) => t.or(ms),
    };
    if extras.retry.is_some() && retry.is_some() {
        let p = r.key_path("retry");
        r.problem_with_hint(
            "conflicting_keys",
            p,
            "both 'retry' and FlowMason's 'retry_config' / 'error_handling' say how to retry",
            "keep one of them",
        );
    }
    let mut on_error = on_error;
    if extras.continue_on_error {
        on_error = crate::model::pipeline::OnError::Continue;
    }
    r.finish();
    let mut retry = retry.or(extras.retry.clone());

    if let Some(c) = &component {
        flowmason::merge_into_config(
            &mut config,
            &extras,
            c.takes_llm_settings(),
            c.name(),
            &mut cx.problems,
            id.as_deref(),
        );
    }

    // The reference document writes `retry` inside `config` (verify-health); it means the stage's
    // retry policy, so it is read as one.
    let config_path = if !has_config && extras.input_mapping.is_some() {
        format!("{path}.input_mapping")
    } else {
        format!("{path}.config")
    };
    if let Some(hoisted) = config.remove("retry") {
        let retry_path = format!("{config_path}.retry");
        match (&hoisted, retry.is_some()) {
            (_, true) => cx.problems.push(
                Problem::new(
                    "conflicting_keys",
                    retry_path,
                    "retry is given both on the stage and in its config",
                )
                .with_stage(id.as_deref())
                .with_hint("keep the stage-level 'retry' only"),
            ),
            (Value::Object(m), false) => {
                let mut sub = ConfigReader::new(m, retry_path, id.as_deref(), cx)
                    .with_extra_vars(&["output"]);
                retry = read_retry(&mut sub);
                sub.finish();
            }
            (_, false) => cx.problems.push(
                Problem::new("wrong_type", retry_path, "'retry' must be an object")
                    .with_stage(id.as_deref()),
            ),
        }
    }

    let component = component?;
    let mut cr = ConfigReader::new(&config, config_path, id.as_deref(), cx);
    let runtime = component.compile(&mut cr);
    cr.finish();
    let mut runtime = runtime?;
    let id = id?;
    let idempotent = idempotent.unwrap_or_else(|| runtime.idempotent());
    let mut timeout = timeout;
    if let Some((fallback_path, fallback)) = extras.fallback_output {
        if on_error != crate::model::pipeline::OnError::Continue {
            cx.problems.push(
                Problem::new(
                    "invalid_value",
                    fallback_path,
                    "fallback_output is used only when the stage has on_error: continue",
                )
                .with_stage(Some(&id))
                .with_hint(
                    "add \"on_error\": \"continue\" to the stage, or remove fallback_output",
                ),
            );
            return None;
        }
        runtime = Arc::new(flowmason::FallbackRuntime {
            inner: runtime,
            fallback,
            max_attempts: retry.as_ref().map_or(1, |p| p.max_attempts),
            timeout: timeout.take(),
        });
    }
    Some(Stage {
        id,
        name,
        description,
        component: component.name(),
        runtime,
        // Resolved to indexes by `wire_control`; the names are kept in cx.stage_refs.
        depends_on: Vec::new(),
        trigger,
        on_error,
        timeout,
        retry,
        idempotent,
        control: Control::None,
        scope: None,
        routed_by: Vec::new(),
        budget,
        position,
        metadata: extras.kept,
    })
}

/// The runtime of a placeholder stage: a pipeline with placeholders is invalid and never runs.
#[derive(Debug)]
struct NeverRuns;

impl crate::component::StageRuntime for NeverRuns {
    fn idempotent(&self) -> bool {
        false
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a crate::component::StageContext<'a>,
    ) -> futures::future::BoxFuture<'a, Result<Value, crate::component::StageError>> {
        Box::pin(async {
            Err(crate::component::StageError::new(
                crate::component::ErrorKind::Internal,
                "a stage whose config has problems cannot run",
            ))
        })
    }
}

/// Stands in for a stage whose config did not compile; never executed (the pipeline is invalid).
fn placeholder_stage(id: String, raw: &[&Value], index: &HashMap<String, usize>) -> Stage {
    let component = index
        .get(&id)
        .and_then(|&i| raw.get(i))
        .and_then(|v| v.get("component").or_else(|| v.get("component_type")))
        .and_then(Value::as_str)
        .map_or("invalid", |c| match c.replace('-', "_").as_str() {
            "trycatch" | "try_catch" => "trycatch",
            "router" => "router",
            _ => "invalid",
        });
    Stage {
        id,
        name: None,
        description: None,
        component,
        runtime: Arc::new(NeverRuns),
        depends_on: Vec::new(),
        trigger: Default::default(),
        on_error: Default::default(),
        timeout: None,
        retry: None,
        idempotent: false,
        control: Control::None,
        scope: None,
        routed_by: Vec::new(),
        budget: None,
        position: None,
        metadata: Map::new(),
    }
}

fn compile_schema(path: &str, v: &Value, r: &mut ConfigReader<'_, '_>) -> Option<InputSchema> {
    match jsonschema::validator_for(v) {
        Ok(validator) => Some(InputSchema {
            raw: v.clone(),
            validator,
        }),
        Err(e) => {
            r.problem_with_hint(
                "invalid_schema",
                path.to_owned(),
                format!("the input schema is not a valid JSON Schema: {e}"),
                "see https://json-schema.org/understanding-json-schema/",
            );
            None
        }
    }
}

fn undefined_stage(
    path: String,
    from: Option<&str>,
    target: &str,
    index: &HashMap<String, usize>,
) -> Problem {
    let p = Problem::new(
        "undefined_stage",
        path,
        format!("stage '{target}' is referenced but not defined"),
    )
    .with_stage(from);
    match did_you_mean(target, index.keys().map(String::as_str)) {
        Some(s) => p.with_hint(format!("did you mean '{s}'?")),
        None => p.with_hint(format!(
            "define a stage with id '{target}', or remove the reference"
        )),
    }
}

fn resolve_stage_refs(
    cx: &CompileCx<'_>,
    index: &HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    for r in &cx.stage_refs {
        if !index.contains_key(&r.target) {
            let from = (!r.from_stage.is_empty()).then_some(r.from_stage.as_str());
            problems.push(undefined_stage(r.path.clone(), from, &r.target, index));
        } else if r.role == StageRefRole::DependsOn && r.target == r.from_stage {
            problems.push(
                Problem::new(
                    "cycle",
                    r.path.clone(),
                    format!("stage '{}' depends on itself", r.target),
                )
                .with_stage(Some(&r.from_stage)),
            );
        }
    }
}

/// Turns the stage references recorded while reading into indexes: depends_on, router targets,
/// trycatch scopes.
fn wire_control(
    stages: &mut [Stage],
    cx: &CompileCx<'_>,
    index: &HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    for r in &cx.stage_refs {
        let (Some(&from), Some(&to)) = (index.get(&r.from_stage), index.get(&r.target)) else {
            continue;
        };
        match r.role {
            StageRefRole::DependsOn => {
                if !stages[from].depends_on.contains(&to) {
                    stages[from].depends_on.push(to);
                }
            }
            StageRefRole::Route { .. } => {
                if let Control::None = stages[from].control {
                    stages[from].control = Control::Router {
                        targets: Vec::new(),
                    };
                }
                if let Control::Router { targets } = &mut stages[from].control {
                    if !targets.contains(&to) {
                        targets.push(to);
                    }
                }
                if !stages[to].routed_by.contains(&from) {
                    stages[to].routed_by.push(from);
                }
            }
            StageRefRole::Try | StageRefRole::Catch | StageRefRole::Finally => {
                if to == from {
                    problems.push(
                        Problem::new("cycle", r.path.clone(), "a trycatch cannot list itself")
                            .with_stage(Some(&r.from_stage)),
                    );
                    continue;
                }
                if let Control::None = stages[from].control {
                    stages[from].control = Control::TryCatch {
                        try_stages: Vec::new(),
                        catch_stages: Vec::new(),
                        finally_stages: Vec::new(),
                    };
                }
                let role = match r.role {
                    StageRefRole::Try => ScopeRole::Try,
                    StageRefRole::Catch => ScopeRole::Catch,
                    _ => ScopeRole::Finally,
                };
                if let Some(existing) = stages[to].scope {
                    let other = &stages[existing.trycatch].id;
                    problems.push(
                        Problem::new(
                            "scope_conflict",
                            r.path.clone(),
                            format!(
                                "stage '{}' is already in the scope of trycatch '{other}'",
                                r.target
                            ),
                        )
                        .with_stage(Some(&r.from_stage))
                        .with_hint("a stage belongs to one trycatch; nest trycatches instead"),
                    );
                    continue;
                }
                stages[to].scope = Some(ScopeMembership {
                    trycatch: from,
                    role,
                });
                if let Control::TryCatch {
                    try_stages,
                    catch_stages,
                    finally_stages,
                } = &mut stages[from].control
                {
                    match role {
                        ScopeRole::Try => try_stages.push(to),
                        ScopeRole::Catch => catch_stages.push(to),
                        ScopeRole::Finally => finally_stages.push(to),
                    }
                }
            }
        }
    }
    // A trycatch with an empty scope still needs its control marker.
    for s in stages.iter_mut() {
        if s.component == "trycatch" && s.control == Control::None {
            s.control = Control::TryCatch {
                try_stages: Vec::new(),
                catch_stages: Vec::new(),
                finally_stages: Vec::new(),
            };
        }
        if s.component == "router" && s.control == Control::None {
            s.control = Control::Router {
                targets: Vec::new(),
            };
        }
    }
}

fn cycle_problem(cycle_nodes: &[usize], stages: &[Stage]) -> Problem {
    let mut ids: Vec<&str> = Vec::new();
    for n in cycle_nodes {
        let id = stages[n / 2].id.as_str();
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    if ids.len() > 1 && ids.first() == ids.last() {
        ids.pop();
    }
    let first = ids.first().copied().unwrap_or("?");
    let shown = format!("{} -> {first}", ids.join(" -> "));
    let path = stages
        .iter()
        .position(|s| s.id == first)
        .map_or("stages".to_owned(), |i| format!("stages[{i}].depends_on"));
    Problem::new("cycle", path, format!("dependency cycle: {shown}"))
        .with_stage(Some(first))
        .with_hint("a stage cannot wait, directly or through others (routers, trycatch scopes), for itself")
}

/// Template references checked by name only (used when the graph could not be built).
fn check_template_refs_by_name(
    cx: &CompileCx<'_>,
    index: &HashMap<String, usize>,
    opts: &CompileOptions<'_>,
    problems: &mut Vec<Problem>,
) {
    let mut missing = MissingSecrets::default();
    for t in &cx.templates {
        for r in &t.references {
            match &r.root {
                RefRoot::Stage { id, .. } if !index.contains_key(id) => {
                    problems.push(undefined_stage(
                        t.path.clone(),
                        t.stage.as_deref(),
                        id,
                        index,
                    ));
                }
                RefRoot::Secret(name) => missing.note(name, t, opts),
                RefRoot::Var(name) => check_var(name, &r.path, t, cx.dialect, problems),
                _ => {}
            }
        }
    }
    missing.into_problems(problems);
}

/// Secrets read by templates that are not available, each once: the first place that reads
/// it, and every stage that does.
#[derive(Default)]
struct MissingSecrets {
    by_name: Vec<(String, String, Vec<String>)>,
}

impl MissingSecrets {
    fn note(
        &mut self,
        name: &str,
        t: &crate::model::reader::TemplateUse,
        opts: &CompileOptions<'_>,
    ) {
        let Some(available) = opts.secret_available else {
            return;
        };
        if let Some((_, _, stages)) = self.by_name.iter_mut().find(|(n, _, _)| n == name) {
            if let Some(s) = &t.stage {
                if !stages.contains(s) {
                    stages.push(s.clone());
                }
            }
            return;
        }
        if !available(name) {
            self.by_name.push((
                name.to_owned(),
                t.path.clone(),
                t.stage.iter().cloned().collect(),
            ));
        }
    }

    fn into_problems(self, problems: &mut Vec<Problem>) {
        for (name, path, stages) in self.by_name {
            let read_by = match stages.len() {
                0 => String::new(),
                1 => format!(" (read by stage '{}')", stages[0]),
                _ => format!(" (read by stages {})", stages.join(", ")),
            };
            problems.push(
                Problem::new(
                    MISSING_SECRET,
                    path,
                    format!("secret '{name}' is not provided{read_by}"),
                )
                .with_stage(stages.first().map(String::as_str))
                .with_hint(format!(
                    "put {name} in the --secrets file (JSON or KEY=value lines) or set the environment variable {name}"
                )),
            );
        }
    }
}

/// The problem code of a secret that is not provided (callers word its hint for their own
/// configuration: `--secrets`, `secrets_file`).
pub const MISSING_SECRET: &str = "missing_secret";

/// The secret a [`MISSING_SECRET`] problem is about.
pub fn missing_secret_name(p: &Problem) -> Option<&str> {
    if p.code != MISSING_SECRET {
        return None;
    }
    p.message
        .strip_prefix("secret '")
        .and_then(|rest| rest.split('\'').next())
}

fn check_var(
    name: &str,
    path: &[String],
    t: &crate::model::reader::TemplateUse,
    dialect: Dialect,
    problems: &mut Vec<Problem>,
) {
    if name == "input" || t.extra_vars.contains(&name) {
        return;
    }
    if name == "context" && dialect.is_flowmason() {
        // FlowMason's `context.*`: its run facts, and the variables its loops set.
        let field = path.first().map_or("", String::as_str);
        let (message, hint) = match field {
            "run_id" | "pipeline_id" | "pipeline_version" | "stage_id" | "trace_id" => (
                format!("'context.{field}' is not available in fm"),
                "use execution.id (the run) or execution.pipeline (the pipeline's name)".to_owned(),
            ),
            _ => (
                format!("'context.{field}' is a variable set by FlowMason's foreach or loop, which fm does not run yet"),
                "context.* holds loop variables (the item and its index) inside foreach and loop stages".to_owned(),
            ),
        };
        problems.push(
            Problem::new("not_supported", t.path.clone(), message)
                .with_stage(t.stage.as_deref())
                .with_hint(hint),
        );
        return;
    }
    let mut available = vec!["input", "stages", "secrets", "env", "execution"];
    available.extend_from_slice(t.extra_vars);
    let hint = match did_you_mean(name, available.iter().copied()) {
        Some(s) => format!("did you mean '{s}'?"),
        None => format!("available here: {}", available.join(", ")),
    };
    problems.push(
        Problem::new(
            "undefined_variable",
            t.path.clone(),
            format!("'{name}' is not defined in this template"),
        )
        .with_stage(t.stage.as_deref())
        .with_hint(hint),
    );
}

/// Checks every template reference: stages exist and are guaranteed to have finished before the
/// reading stage starts; secrets are available; variables exist. Returns the secret and env
/// names read.
fn check_template_refs(
    cx: &CompileCx<'_>,
    index: &HashMap<String, usize>,
    stages: &[Stage],
    ancestors: &[Vec<u64>],
    opts: &CompileOptions<'_>,
    problems: &mut Vec<Problem>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut secrets = BTreeSet::new();
    let mut env = BTreeSet::new();
    let mut missing = MissingSecrets::default();
    for t in &cx.templates {
        let reader = t.stage.as_deref().and_then(|s| index.get(s).copied());
        for r in &t.references {
            match &r.root {
                RefRoot::Stage { id, .. } => {
                    let Some(&target) = index.get(id) else {
                        problems.push(undefined_stage(
                            t.path.clone(),
                            t.stage.as_deref(),
                            id,
                            index,
                        ));
                        continue;
                    };
                    // The pipeline's output is evaluated after every stage has settled.
                    let Some(reader) = reader else { continue };
                    if has_bit(&ancestors[reader], target) || encloses(stages, target, reader) {
                        continue;
                    }
                    let why = if target == reader {
                        format!("stage '{id}' reads its own output")
                    } else {
                        format!("stage '{}' reads stages.{id} but does not wait for it (that would be a race)", stages[reader].id)
                    };
                    problems.push(
                        Problem::new("not_an_ancestor", t.path.clone(), why)
                            .with_stage(t.stage.as_deref())
                            .with_hint(if target == reader {
                                "in a retry condition, the attempt's result is `output`".to_owned()
                            } else {
                                format!("add '{id}' to depends_on (directly or through a stage that depends on it)")
                            }),
                    );
                }
                RefRoot::Secret(name) => {
                    secrets.insert(name.clone());
                    missing.note(name, t, opts);
                }
                RefRoot::Env(name) => {
                    env.insert(name.clone());
                }
                RefRoot::Var(name) => check_var(name, &r.path, t, cx.dialect, problems),
                RefRoot::Execution(_) => {}
            }
        }
    }
    missing.into_problems(problems);
    (secrets, env)
}

/// Whether `trycatch` is a trycatch whose scope (at any depth) contains `stage`: its members may
/// read its provisional output (`error`).
fn encloses(stages: &[Stage], trycatch: usize, stage: usize) -> bool {
    let mut cur = stages[stage].scope;
    while let Some(m) = cur {
        if m.trycatch == trycatch {
            return true;
        }
        cur = stages[m.trycatch].scope;
    }
    false
}

fn dedupe(mut problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = HashSet::new();
    problems.retain(|p| seen.insert((p.code, p.path.clone(), p.message.clone())));
    problems
}
