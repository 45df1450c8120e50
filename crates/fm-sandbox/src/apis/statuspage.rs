//! Atlassian Statuspage REST API v1, incidents only:
//! `POST|GET /statuspage/v1/pages/{page_id}/incidents`,
//! `PATCH|GET /statuspage/v1/pages/{page_id}/incidents/{id}`.
//!
//! Auth is `Authorization: OAuth <STATUSPAGE_TOKEN>` (or `?api_key=`), as
//! Statuspage does. Bodies are `{"incident": {name, status, body,
//! component_ids, components, ...}}`; responses are incident objects with
//! `incident_updates`, `components` and a `shortlink`.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::auth;
use crate::time::rfc3339_millis;
use crate::util::{json, parse_form};

const REALTIME_STATUSES: &[&str] = &["investigating", "identified", "monitoring", "resolved"];
const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
];

fn authorized(headers: &HeaderMap, query: Option<&str>) -> bool {
    auth::credential(headers, "OAuth") == Some(auth::STATUSPAGE_TOKEN)
        || parse_form(query.unwrap_or(""))
            .iter()
            .any(|(k, v)| k == "api_key" && v == auth::STATUSPAGE_TOKEN)
}

fn error(code: StatusCode, msg: &str) -> Response {
    json(code, json!({"error": msg}))
}

/// Auth and page checks shared by every route.
fn precheck(headers: &HeaderMap, query: Option<&str>, page_id: &str) -> Result<(), Response> {
    if !authorized(headers, query) {
        return Err(error(StatusCode::UNAUTHORIZED, "Could not authenticate"));
    }
    if page_id != auth::STATUSPAGE_PAGE_ID {
        return Err(error(
            StatusCode::NOT_FOUND,
            "The requested page could not be found",
        ));
    }
    Ok(())
}

fn parse_incident(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => match o.remove("incident") {
            Some(Value::Object(i)) => Ok(i),
            _ => Err(error(StatusCode::BAD_REQUEST, "incident is missing")),
        },
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "Request body is not valid JSON",
        )),
    }
}

fn component_json(service: &str, status: &str, now: &str) -> Value {
    json!({
        "id": auth::STATUSPAGE_COMPONENT_ID,
        "page_id": auth::STATUSPAGE_PAGE_ID,
        "group_id": null,
        "created_at": "2023-06-01T09:00:00.000Z",
        "updated_at": now,
        "group": false,
        "name": service,
        "description": format!("{service} (fm sandbox)"),
        "position": 1,
        "status": status,
        "showcase": true,
        "only_show_if_degraded": false,
        "automation_email": format!("component+{}@notifications.statuspage.io", auth::STATUSPAGE_COMPONENT_ID),
        "start_date": "2023-06-01",
    })
}

/// Validates the parts of an incident body the sandbox understands;
/// returns (status, component status) to apply.
fn validate(
    inc: &Map<String, Value>,
    creating: bool,
) -> Result<(Option<String>, Option<String>), Response> {
    if creating
        && inc
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
    {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Name can't be blank",
        ));
    }
    let status = match inc.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if REALTIME_STATUSES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Status is not included in the list",
            ))
        }
    };
    if let Some(ids) = inc.get("component_ids").filter(|v| !v.is_null()) {
        let Some(ids) = ids.as_array() else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "component_ids must be an array",
            ));
        };
        for id in ids {
            if id.as_str() != Some(auth::STATUSPAGE_COMPONENT_ID) {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Component ids contains an unknown component: {id}"),
                ));
            }
        }
    }
    let mut comp_status = None;
    if let Some(c) = inc.get("components").and_then(Value::as_object) {
        for (id, st) in c {
            if id != auth::STATUSPAGE_COMPONENT_ID {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Component {id} not found"),
                ));
            }
            match st.as_str() {
                Some(s) if COMPONENT_STATUSES.contains(&s) => comp_status = Some(s.to_string()),
                _ => {
                    return Err(error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Component status is not included in the list",
                    ))
                }
            }
        }
    }
    Ok((status, comp_status))
}

fn update_json(
    incident_id: &str,
    n: u64,
    status: &str,
    body: &str,
    now: &str,
    comp: Option<(&str, &str, &str)>,
) -> Value {
    let affected: Vec<Value> = comp
        .map(|(name, old, new)| {
            vec![json!({"code": auth::STATUSPAGE_COMPONENT_ID, "name": name, "old_status": old, "new_status": new})]
        })
        .unwrap_or_default();
    json!({
        "id": format!("sbxupd{n:06}"),
        "incident_id": incident_id,
        "status": status,
        "body": body,
        "created_at": now,
        "updated_at": now,
        "display_at": now,
        "affected_components": affected,
        "deliver_notifications": true,
        "custom_tweet": null,
        "tweet_id": null,
    })
}

fn impact_for(component_status: &str) -> &'static str {
    match component_status {
        "major_outage" => "critical",
        "partial_outage" => "major",
        "degraded_performance" => "minor",
        _ => "none",
    }
}

pub(crate) async fn create(
    State(sh): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(page_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = precheck(&headers, q.as_deref(), &page_id) {
        return r;
    }
    sh.pause(sh.latencies.statuspage).await;
    let inc = match parse_incident(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (status, comp_status) = match validate(&inc, true) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let status = status.unwrap_or_else(|| "investigating".into());
    let now = rfc3339_millis(SystemTime::now());
    let mut w = sh.world();
    let n = w.next_id();
    let id = format!("sbxinc{n:06}");
    let service = w.scenario.incident_service();
    let has_component = inc
        .get("component_ids")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
        || comp_status.is_some();
    let comp_status = comp_status.unwrap_or_else(|| {
        if status == "resolved" {
            "operational"
        } else {
            "partial_outage"
        }
        .to_string()
    });
    let components: Vec<Value> = if has_component {
        vec![component_json(service, &comp_status, &now)]
    } else {
        vec![]
    };
    let body_text = inc.get("body").and_then(Value::as_str).unwrap_or("");
    let update = update_json(
        &id,
        n,
        &status,
        body_text,
        &now,
        has_component.then_some((service, "operational", comp_status.as_str())),
    );
    let resolved = status == "resolved";
    let incident = json!({
        "id": id,
        "name": inc.get("name"),
        "status": status,
        "impact": inc.get("impact_override").and_then(Value::as_str).unwrap_or(impact_for(&comp_status)),
        "impact_override": inc.get("impact_override"),
        "created_at": now,
        "updated_at": now,
        "started_at": now,
        "monitoring_at": if status == "monitoring" { json!(now) } else { Value::Null },
        "resolved_at": if resolved { json!(now) } else { Value::Null },
        "shortlink": format!("https://stspg.io/sbx{n:04}"),
        "page_id": auth::STATUSPAGE_PAGE_ID,
        "metadata": inc.get("metadata").cloned().unwrap_or(json!({})),
        "postmortem_body": null,
        "postmortem_published_at": null,
        "scheduled_for": null,
        "scheduled_until": null,
        "scheduled_remind_prior": false,
        "scheduled_auto_in_progress": false,
        "scheduled_auto_completed": false,
        "reminder_intervals": null,
        "components": components,
        "incident_updates": [update],
    });
    w.count("statuspage.incidents_created");
    w.statuspage_incidents.push(incident.clone());
    json(StatusCode::CREATED, incident)
}

pub(crate) async fn update(
    State(sh): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path((page_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = precheck(&headers, q.as_deref(), &page_id) {
        return r;
    }
    sh.pause(sh.latencies.statuspage).await;
    let inc = match parse_incident(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (status, comp_status) = match validate(&inc, false) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = rfc3339_millis(SystemTime::now());
    let mut w = sh.world();
    let n = w.next_id();
    let service = w.scenario.incident_service();
    let Some(existing) = w
        .statuspage_incidents
        .iter_mut()
        .find(|i| i["id"] == id.as_str())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "The requested incident could not be found",
        );
    };
    if let Some(name) = inc.get("name").and_then(Value::as_str) {
        existing["name"] = json!(name);
    }
    let status = status.unwrap_or_else(|| {
        existing["status"]
            .as_str()
            .unwrap_or("investigating")
            .to_string()
    });
    existing["status"] = json!(status);
    existing["updated_at"] = json!(now);
    if status == "resolved" && existing["resolved_at"].is_null() {
        existing["resolved_at"] = json!(now);
    }
    if status == "monitoring" && existing["monitoring_at"].is_null() {
        existing["monitoring_at"] = json!(now);
    }
    let new_comp =
        comp_status.or_else(|| (status == "resolved").then(|| "operational".to_string()));
    let mut affected = None;
    if let (Some(new), Some(comps)) = (new_comp, existing["components"].as_array_mut()) {
        if let Some(c) = comps.first_mut() {
            let old = c["status"].as_str().unwrap_or("operational").to_string();
            c["status"] = json!(new);
            c["updated_at"] = json!(now);
            affected = Some((old, new));
        }
    }
    let body_text = inc.get("body").and_then(Value::as_str).unwrap_or("");
    let upd = update_json(
        &id,
        n,
        &status,
        body_text,
        &now,
        affected
            .as_ref()
            .map(|(o, nw)| (service, o.as_str(), nw.as_str())),
    );
    if let Some(updates) = existing["incident_updates"].as_array_mut() {
        updates.insert(0, upd);
    }
    let out = existing.clone();
    w.count("statuspage.incidents_updated");
    json(StatusCode::OK, out)
}

pub(crate) async fn list(
    State(sh): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(page_id): Path<String>,
) -> Response {
    if let Err(r) = precheck(&headers, q.as_deref(), &page_id) {
        return r;
    }
    sh.pause(sh.latencies.statuspage).await;
    let w = sh.world();
    let mut all = w.statuspage_incidents.clone();
    all.reverse();
    json(StatusCode::OK, Value::Array(all))
}

pub(crate) async fn show(
    State(sh): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path((page_id, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = precheck(&headers, q.as_deref(), &page_id) {
        return r;
    }
    sh.pause(sh.latencies.statuspage).await;
    let w = sh.world();
    match w
        .statuspage_incidents
        .iter()
        .find(|i| i["id"] == id.as_str())
    {
        Some(i) => json(StatusCode::OK, i.clone()),
        None => error(
            StatusCode::NOT_FOUND,
            "The requested incident could not be found",
        ),
    }
}
