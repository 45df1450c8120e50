//! Kubernetes `apps/v1` Deployments and their `autoscaling/v1` Scale
//! subresource, under `/k8s` (the API server root).
//!
//! - `GET|PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}`
//! - `GET|PATCH|PUT /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`
//! - `GET /apis/apps/v1/namespaces/{ns}/deployments` (DeploymentList)
//!
//! PATCH accepts `application/merge-patch+json` and
//! `application/strategic-merge-patch+json` (for the fields that matter here
//! the two merge identically); anything else is 415, like the API server.
//! Errors are `Status` objects. Every call needs `Authorization: Bearer <K8S_TOKEN>`.
//!
//! What a change means: a new `spec.template.metadata.annotations
//! ["kubectl.kubernetes.io/restartedAt"]` is a rolling restart (what
//! `kubectl rollout restart` does); a `spec.replicas` change scales, and 0
//! replicas is an outage.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::auth;
use crate::state::{ServiceState, World, RESTARTED_AT};
use crate::time::rfc3339;
use crate::util::json;

/// A `Status` failure object, as the API server returns.
fn status(code: StatusCode, reason: &str, message: String, name: Option<&str>) -> Response {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let (Some(name), Some(obj)) = (name, v.as_object_mut()) {
        obj.insert(
            "details".into(),
            json!({"name": name, "group": "apps", "kind": "deployments"}),
        );
    }
    json(code, v)
}

fn not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("deployments.apps \"{name}\" not found"),
        Some(name),
    )
}

fn check_auth(headers: &HeaderMap) -> Result<(), Response> {
    if auth::bearer_is(headers, auth::K8S_TOKEN) {
        Ok(())
    } else {
        Err(status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            None,
        ))
    }
}

/// PATCH content types the sandbox applies (JSON Patch is not simulated).
fn check_patch_type(headers: &HeaderMap) -> Result<(), Response> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ctype.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => Ok(()),
        _ => Err(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({}) - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json",
                if ctype.is_empty() { "no Content-Type" } else { ctype.as_str() }
            ),
            None,
        )),
    }
}

fn find<'a>(w: &'a World, ns: &str, name: &str) -> Option<&'a ServiceState> {
    w.services.get(name).filter(|s| s.namespace == ns)
}

/// The Deployment object for a service.
fn deployment_json(s: &ServiceState) -> Value {
    let mut meta_ann = s.metadata_annotations.clone();
    meta_ann.insert(
        "deployment.kubernetes.io/revision".into(),
        json!(s.revision.to_string()),
    );
    let ready = s.replicas;
    let available = if ready > 0 { "True" } else { "False" };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": s.name,
            "namespace": s.namespace,
            "uid": s.uid,
            "resourceVersion": s.resource_version.to_string(),
            "generation": s.generation,
            "creationTimestamp": rfc3339(s.created_at),
            "labels": {"app": s.name},
            "annotations": meta_ann,
        },
        "spec": {
            "replicas": s.replicas,
            "selector": {"matchLabels": {"app": s.name}},
            "template": {
                "metadata": {
                    "labels": {"app": s.name},
                    "annotations": s.template_annotations,
                },
                "spec": {
                    "containers": [{
                        "name": s.name,
                        "image": format!("registry.example.com/{}:{}", s.name, s.version),
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {
                            "limits": {"cpu": "1", "memory": "2Gi"},
                            "requests": {"cpu": "500m", "memory": "1Gi"},
                        },
                    }],
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": s.generation,
            "replicas": s.replicas,
            "updatedReplicas": s.replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                {
                    "type": "Available",
                    "status": available,
                    "reason": if ready > 0 { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                    "message": if ready > 0 { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": format!("ReplicaSet \"{}-{}\" has successfully progressed.", s.name, s.revision),
                },
            ],
        },
    })
}

fn scale_json(s: &ServiceState) -> Value {
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": s.name,
            "namespace": s.namespace,
            "uid": s.uid,
            "resourceVersion": s.resource_version.to_string(),
            "creationTimestamp": rfc3339(s.created_at),
        },
        "spec": {"replicas": s.replicas},
        "status": {"replicas": s.replicas, "selector": s.selector()},
    })
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the request body must be a JSON object".into(),
            None,
        )),
        Err(e) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("error decoding patch: {e}"),
            None,
        )),
    }
}

/// `spec.replicas` of a merged object, validated as the API server would (int32 >= 0).
fn replicas_of(obj: &Value, kind: &str, name: &str) -> Result<i64, Response> {
    match obj.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(1),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(r) if (0..=i32::MAX as i64).contains(&r) => Ok(r),
            Some(r) => Err(status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: spec.replicas: Invalid value: {r}: must be greater than or equal to 0"),
                Some(name),
            )),
            None => Err(status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("json: cannot unmarshal number {n} into Go struct field {kind}Spec.spec.replicas of type int32"),
                None,
            )),
        },
        Some(other) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "json: cannot unmarshal {} into Go struct field {kind}Spec.spec.replicas of type int32",
                json_type(other)
            ),
            None,
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An annotations map after merging (must be string -> string).
fn annotations_at(obj: &Value, pointer: &str, field: &str) -> Result<Map<String, Value>, Response> {
    match obj.pointer(pointer) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type string (key {k:?})", json_type(v)),
                    None,
                ));
            }
            Ok(m.clone())
        }
        Some(other) => Err(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type map[string]string", json_type(other)),
            None,
        )),
    }
}

pub(crate) async fn list(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> Response {
    if let Err(r) = check_auth(&headers) {
        return r;
    }
    sh.pause(sh.latencies.k8s_read).await;
    let w = sh.world();
    let items: Vec<Value> = w
        .services
        .values()
        .filter(|s| s.namespace == ns)
        .map(deployment_json)
        .collect();
    json(
        StatusCode::OK,
        json!({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "0"}, "items": items}),
    )
}

pub(crate) async fn get_deployment(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_auth(&headers) {
        return r;
    }
    sh.pause(sh.latencies.k8s_read).await;
    let w = sh.world();
    match find(&w, &ns, &name) {
        Some(s) => json(StatusCode::OK, deployment_json(s)),
        None => not_found(&name),
    }
}

pub(crate) async fn patch_deployment(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_auth(&headers).and_then(|_| check_patch_type(&headers)) {
        return r;
    }
    sh.pause(sh.latencies.k8s_patch).await;
    let patch = match parse_body(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = SystemTime::now();
    let mut w = sh.world();
    w.count("k8s.patches");
    let Some(s) = find(&w, &ns, &name) else {
        return not_found(&name);
    };
    let mut merged = deployment_json(s);
    merge_patch(&mut merged, &patch);
    let replicas = match replicas_of(&merged, "Deployment", &name) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let tmpl = match annotations_at(
        &merged,
        "/spec/template/metadata/annotations",
        "spec.template.metadata.annotations",
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut meta = match annotations_at(&merged, "/metadata/annotations", "metadata.annotations") {
        Ok(m) => m,
        Err(r) => return r,
    };
    meta.remove("deployment.kubernetes.io/revision");
    let old_restart = s.template_annotations.get(RESTARTED_AT).cloned();
    let new_restart = tmpl.get(RESTARTED_AT).cloned();
    let template_changed = tmpl != s.template_annotations;
    let rv = w.bump_rv();
    if let Some(s) = w.services.get_mut(&name) {
        s.metadata_annotations = meta;
        s.resource_version = rv;
        if template_changed {
            s.template_annotations = tmpl;
            s.generation += 1;
        }
    }
    if let Some(v) = new_restart.filter(|v| Some(v) != old_restart.as_ref()) {
        w.rolling_restart(&name, &v, now);
    }
    w.set_replicas(&name, replicas, now);
    match w.services.get(&name) {
        Some(s) => json(StatusCode::OK, deployment_json(s)),
        None => not_found(&name),
    }
}

pub(crate) async fn get_scale(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_auth(&headers) {
        return r;
    }
    sh.pause(sh.latencies.k8s_read).await;
    let w = sh.world();
    match find(&w, &ns, &name) {
        Some(s) => json(StatusCode::OK, scale_json(s)),
        None => not_found(&name),
    }
}

async fn change_scale(
    sh: AppState,
    method: Method,
    headers: HeaderMap,
    ns: String,
    name: String,
    body: Bytes,
) -> Response {
    if let Err(r) = check_auth(&headers) {
        return r;
    }
    if method == Method::PATCH {
        if let Err(r) = check_patch_type(&headers) {
            return r;
        }
    } else {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ctype.to_ascii_lowercase().starts_with("application/json") {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format ({ctype}) - accepted media types include: application/json"),
                None,
            );
        }
    }
    sh.pause(sh.latencies.k8s_patch).await;
    let patch = match parse_body(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = SystemTime::now();
    let mut w = sh.world();
    w.count("k8s.scales");
    let Some(s) = find(&w, &ns, &name) else {
        return not_found(&name);
    };
    let merged = if method == Method::PATCH {
        let mut m = scale_json(s);
        merge_patch(&mut m, &patch);
        m
    } else {
        patch
    };
    let replicas = match replicas_of(&merged, "Scale", &name) {
        Ok(r) => r,
        Err(r) => return r,
    };
    w.set_replicas(&name, replicas, now);
    match w.services.get(&name) {
        Some(s) => json(StatusCode::OK, scale_json(s)),
        None => not_found(&name),
    }
}

pub(crate) async fn patch_scale(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    change_scale(sh, Method::PATCH, headers, ns, name, body).await
}

pub(crate) async fn put_scale(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    change_scale(sh, Method::PUT, headers, ns, name, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(&mut t, &json!({"a": {"b": null, "e": 4}, "d": [1]}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 4}, "d": [1]}));
    }
}
