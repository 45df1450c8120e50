//! `router`: picks one branch. Routes are evaluated in order; the first whose condition is true
//! wins; stages named only in routes not taken are skipped (and that skip propagates).
//!
//! Two config forms:
//! - fm / the reference: `routes: [{name, condition, stages}]`, optional `default: [ids]`.
//! - FlowMason 1.x: `value: "{{...}}"`, `routes: {"<value>": [ids]}`, optional `default_route`
//!   (a route key or a list of ids).
//!
//! Output: `{route, selected, skipped}`. A condition that fails to evaluate counts as false and
//! is reported as a warning event carrying the error — never silently.

use std::sync::Arc;

use fm_expr::{is_truthy, Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

use crate::component::{Component, StageContext, StageError, StageRuntime};
use crate::model::path::index_path;
use crate::model::reader::{ConfigReader, StageRefRole};

pub struct Router;

#[derive(Debug)]
struct Route {
    name: String,
    /// `None` in the FlowMason form, where `key` is compared with the rendered `value`.
    condition: Option<Template>,
    key: Option<String>,
    stages: Vec<String>,
}

#[derive(Debug)]
pub struct RouterRuntime {
    value: Option<Template>,
    routes: Vec<Route>,
    default: Option<Vec<String>>,
    all_targets: Vec<String>,
}

impl Component for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["conditional_router"]
    }

    fn summary(&self) -> &'static str {
        "Choose one branch: the first route whose condition holds; the stages of the others are skipped"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let value = r.template("value", &[]);
        let mut routes = Vec::new();
        let mut ok = true;
        match r.raw("routes", &[]) {
            Some((path, Value::Array(items))) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = index_path(&path, i);
                    let Value::Object(map) = item else {
                        r.problem(
                            "wrong_type",
                            item_path,
                            "a route must be an object {name, condition, stages}",
                        );
                        ok = false;
                        continue;
                    };
                    let mut rr = r.nested(map, item_path);
                    let name = rr
                        .string("name", &[])
                        .unwrap_or_else(|| format!("route-{i}"));
                    let condition = rr.condition("condition", &["when", "if"]);
                    if !rr.has("condition", &["when", "if"]) {
                        rr.missing("condition");
                    }
                    let stages =
                        rr.stage_list("stages", &["then"], StageRefRole::Route { route: Some(i) });
                    if stages.is_none() {
                        rr.missing("stages");
                    }
                    rr.finish();
                    match (condition, stages) {
                        (Some(c), Some(s)) => routes.push(Route {
                            name,
                            condition: Some(c),
                            key: None,
                            stages: s,
                        }),
                        _ => ok = false,
                    }
                }
            }
            Some((path, Value::Object(map))) => {
                if value.is_none() {
                    r.problem_with_hint(
                        "missing_key",
                        r.key_path("value"),
                        "a routes map needs 'value': the template whose result picks the route",
                        "or write routes as a list of {name, condition, stages}",
                    );
                    ok = false;
                }
                for (i, (key, ids)) in map.iter().enumerate() {
                    let p = crate::model::path::child_path(&path, key);
                    match r.stage_list_value(&p, ids, StageRefRole::Route { route: Some(i) }) {
                        Some(stages) => routes.push(Route {
                            name: key.clone(),
                            condition: None,
                            key: Some(key.clone()),
                            stages,
                        }),
                        None => ok = false,
                    }
                }
            }
            Some((path, _)) => {
                r.problem("wrong_type", path, "'routes' must be a list of {name, condition, stages} (or a map of value -> stage ids)");
                ok = false;
            }
            None => {
                r.missing("routes");
                ok = false;
            }
        }
        let default = match r.raw("default", &["default_route"]) {
            Some((path, Value::String(s)))
                if routes.iter().any(|rt| rt.key.as_deref() == Some(s)) =>
            {
                let _ = path;
                routes
                    .iter()
                    .find(|rt| rt.key.as_deref() == Some(s))
                    .map(|rt| rt.stages.clone())
            }
            Some((path, v)) => r.stage_list_value(&path, v, StageRefRole::Route { route: None }),
            None => None,
        };
        if !ok {
            return None;
        }
        let mut all_targets: Vec<String> = Vec::new();
        for id in routes
            .iter()
            .flat_map(|rt| &rt.stages)
            .chain(default.iter().flatten())
        {
            if !all_targets.contains(id) {
                all_targets.push(id.clone());
            }
        }
        Some(Arc::new(RouterRuntime {
            value,
            routes,
            default,
            all_targets,
        }))
    }
}

impl StageRuntime for RouterRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn control(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move { Ok(self.decide(cx)) })
    }
}

impl RouterRuntime {
    /// The stages this router would select, if that can be told from `scope` alone (a scope
    /// with only the run's input, before anything runs): `None` when a condition reads
    /// something the scope does not have.
    pub fn static_choice(&self, scope: &dyn fm_expr::Scope) -> Option<Vec<String>> {
        let chosen: Option<&[String]> = match &self.value {
            Some(value) => {
                let v = value.render(scope).ok()?;
                let v = fm_expr::to_text(&v).into_owned();
                self.routes
                    .iter()
                    .find(|rt| rt.key.as_deref() == Some(v.as_str()))
                    .map(|rt| rt.stages.as_slice())
            }
            None => {
                let mut found = None;
                for rt in &self.routes {
                    let Some(cond) = &rt.condition else { continue };
                    if is_truthy(&cond.render(scope).ok()?) {
                        found = Some(rt.stages.as_slice());
                        break;
                    }
                }
                found
            }
        };
        Some(
            chosen
                .or(self.default.as_deref())
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        )
    }

    fn decide(&self, cx: &StageContext<'_>) -> Value {
        let chosen: Option<(&str, &[String])> = match &self.value {
            Some(value) => {
                let rendered = match value.render(cx.scope) {
                    Ok(v) => Some(fm_expr::to_text(&v).into_owned()),
                    Err(e) => {
                        cx.warn(format!(
                            "router value failed to evaluate, using the default route: {}",
                            e.render()
                        ));
                        None
                    }
                };
                rendered.and_then(|v| {
                    self.routes
                        .iter()
                        .find(|rt| rt.key.as_deref() == Some(v.as_str()))
                        .map(|rt| (rt.name.as_str(), rt.stages.as_slice()))
                })
            }
            None => self.routes.iter().find_map(|rt| {
                let cond = rt.condition.as_ref()?;
                match cond.render(cx.scope) {
                    Ok(v) if is_truthy(&v) => Some((rt.name.as_str(), rt.stages.as_slice())),
                    Ok(_) => None,
                    Err(e) => {
                        cx.warn(format!(
                            "route '{}': condition failed to evaluate and counts as false: {}",
                            rt.name,
                            e.render()
                        ));
                        None
                    }
                }
            }),
        };
        let (route, selected): (Value, &[String]) = match (chosen, &self.default) {
            (Some((name, stages)), _) => (Value::String(name.to_owned()), stages),
            (None, Some(d)) => (Value::String("default".to_owned()), d.as_slice()),
            (None, None) => (Value::Null, &[]),
        };
        let skipped: Vec<&String> = self
            .all_targets
            .iter()
            .filter(|t| !selected.contains(t))
            .collect();
        json!({ "route": route, "selected": selected, "skipped": skipped })
    }
}
