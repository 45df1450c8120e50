//! Runs: start one with a JSON input, list, show (with stage timings), stream events, cancel.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use fm_core::RunStatus;
use fm_store::{CancelOutcome, NewRun, RunFilter};
use futures::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::routes::auth::check_bearer;
use crate::routes::ApiError;
use crate::state::Shared;

pub async fn create(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_bearer(&state, &headers)?;
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let Some(pipeline) = state.pipeline(&name) else {
        let known: Vec<&String> = state.pipelines.keys().collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no pipeline named '{name}'; this server has: {known:?}"),
        ));
    };
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
    };
    fm_core::exec::prepare_input(pipeline, input.clone())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let service = input
        .pointer("/payload/source")
        .or_else(|| input.get("service"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .enqueue_run(NewRun {
            id: id.clone(),
            pipeline: name,
            input,
            service,
            dedup_key: None,
            source: "api".into(),
            dry_run: false,
        })
        .await
        .map_err(ApiError::store)?;
    state.work_ready.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({"run_ids": [id]}))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    outcome: Option<String>,
    pipeline: Option<String>,
    service: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    check_bearer(&state, &headers)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status '{s}'; use queued, running, succeeded, failed, timed_out or cancelled (what a run achieved, such as escalated, is its outcome: ?outcome={s})"
            ))
        })?),
    };
    let page = state
        .store
        .list_runs(&RunFilter {
            status,
            outcome: q.outcome,
            pipeline: q.pipeline,
            service: q.service,
            limit: q.limit.unwrap_or(50).clamp(1, 1000),
            cursor: q.cursor,
        })
        .await
        .map_err(ApiError::store)?;
    Ok(Json(
        json!({"runs": page.items, "next_cursor": page.next_cursor}),
    ))
}

pub async fn show(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_bearer(&state, &headers)?;
    let run = state
        .store
        .get_run(&id)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no run '{id}'")))?;
    let journal = state.store.journal(&id).await.map_err(ApiError::store)?;
    let mut v = serde_json::to_value(&run)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert(
            "stages".into(),
            serde_json::to_value(journal).unwrap_or(Value::Null),
        );
    }
    Ok(Json(v))
}

pub async fn cancel(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_bearer(&state, &headers)?;
    let outcome = state
        .store
        .request_cancel(&id)
        .await
        .map_err(ApiError::store)?;
    let status = match outcome {
        CancelOutcome::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no run '{id}'"),
            ))
        }
        CancelOutcome::AlreadyFinished => StatusCode::CONFLICT,
        CancelOutcome::Cancelled | CancelOutcome::Requested => StatusCode::ACCEPTED,
    };
    Ok((status, Json(json!({"run_id": id, "outcome": outcome}))))
}

/// Server-sent events: the run's stored events, then new ones as they are journaled, until the
/// run has finished. Works whichever server executes the run (it reads the store).
pub async fn events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    check_bearer(&state, &headers)?;
    if state
        .store
        .get_run(&id)
        .await
        .map_err(ApiError::store)?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no run '{id}'"),
        ));
    }
    struct Cursor {
        after: Option<u64>,
        buffered: std::collections::VecDeque<fm_core::Event>,
        done: bool,
    }
    let start = Cursor {
        after: None,
        buffered: Default::default(),
        done: false,
    };
    let stream = stream::unfold(start, move |mut c| {
        let state = state.clone();
        let id = id.clone();
        async move {
            loop {
                if let Some(e) = c.buffered.pop_front() {
                    c.after = Some(e.seq);
                    if matches!(e.kind, fm_core::EventKind::RunFinished { .. }) {
                        c.done = true;
                    }
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    let ev = SseEvent::default()
                        .id(e.seq.to_string())
                        .event("run_event")
                        .data(data);
                    return Some((Ok(ev), c));
                }
                if c.done {
                    return None;
                }
                match state.store.events(&id, c.after).await {
                    Ok(events) if !events.is_empty() => c.buffered.extend(events),
                    Ok(_) => {
                        let finished = matches!(
                            state.store.get_run(&id).await,
                            Ok(Some(r)) if r.summary.status.is_terminal()
                        );
                        if finished {
                            // One last read for events stored just before the finish.
                            if let Ok(events) = state.store.events(&id, c.after).await {
                                c.buffered.extend(events);
                            }
                            c.done = true;
                            continue;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
