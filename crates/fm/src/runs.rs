//! `fm runs list|show`: read the run store directly, with or without a server.

use anyhow::{anyhow, Context};
use fm_core::RunStatus;
use fm_store::RunFilter;

use crate::cli::RunsCommand;

pub async fn run(cmd: RunsCommand) -> anyhow::Result<i32> {
    match cmd {
        RunsCommand::List {
            store,
            status,
            outcome,
            pipeline,
            service,
            limit,
            json,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                    anyhow!("unknown status '{s}'; use queued, running, succeeded, failed, timed_out or cancelled (what a run achieved, such as escalated, is its outcome: --outcome {s})")
                })?),
            };
            let store = fm_store::open(&store)
                .await
                .context("opening the run store")?;
            let page = store
                .list_runs(&RunFilter {
                    status,
                    outcome,
                    pipeline,
                    service,
                    limit: limit.clamp(1, 1000),
                    cursor: None,
                })
                .await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&page.items)?);
                return Ok(0);
            }
            if page.items.is_empty() {
                outln!("no runs recorded yet");
                return Ok(0);
            }
            outln!(
                "{:<36}  {:<10}  {:<22}  {:<28}  {:<20}  {:>9}  created",
                "id",
                "status",
                "outcome",
                "pipeline",
                "service",
                "duration"
            );
            for r in &page.items {
                let dur = r
                    .duration_ms
                    .map_or("-".to_owned(), |d| format!("{:.1}s", d as f64 / 1000.0));
                outln!(
                    "{:<36}  {:<10}  {:<22}  {:<28}  {:<20}  {:>9}  {}",
                    r.id,
                    r.status.as_str(),
                    r.outcome.as_deref().unwrap_or("-"),
                    r.pipeline,
                    r.service.as_deref().unwrap_or("-"),
                    dur,
                    r.created_at
                );
            }
            Ok(0)
        }
        RunsCommand::Show { id, store, json } => {
            let store = fm_store::open(&store)
                .await
                .context("opening the run store")?;
            let Some(run) = store.get_run(&id).await? else {
                errln!("error: no run '{id}' in the store");
                return Ok(1);
            };
            let journal = store.journal(&id).await?;
            if json {
                let mut v = serde_json::to_value(&run)?;
                v["stages"] = serde_json::to_value(&journal)?;
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            let s = &run.summary;
            outln!("run {}  {}  ({})", s.id, s.status.as_str(), s.pipeline);
            outln!(
                "  source {}  service {}  created {}",
                s.source,
                s.service.as_deref().unwrap_or("-"),
                s.created_at
            );
            if s.attached_alerts > 0 {
                outln!(
                    "  {} more alert(s) attached while it ran",
                    s.attached_alerts
                );
            }
            // The final record has every stage; while a run is going, the journal is what there is.
            let rows: Vec<(String, String, Option<u64>, Option<String>)> = match &run.record {
                Some(rec) => rec
                    .stages
                    .iter()
                    .map(|st| {
                        let err = st
                            .error
                            .as_ref()
                            .map(|e| e.message.clone())
                            .or_else(|| st.skip_reason.as_ref().map(|r| r.message.clone()));
                        (
                            st.id.clone(),
                            st.status.as_str().to_owned(),
                            st.duration_ms,
                            err,
                        )
                    })
                    .collect(),
                None => journal
                    .iter()
                    .map(|j| {
                        let err = j
                            .error
                            .as_ref()
                            .and_then(|e| e.get("message"))
                            .and_then(|m| m.as_str())
                            .map(str::to_owned);
                        (j.stage_id.clone(), j.status.clone(), j.duration_ms, err)
                    })
                    .collect(),
            };
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(8);
            for (id, status, dur, err) in &rows {
                let dur = dur.map_or(String::new(), |d| format!("{d} ms"));
                let err = err
                    .as_deref()
                    .map(|m| format!("  {}", m.lines().next().unwrap_or("")))
                    .unwrap_or_default();
                outln!("  {id:<width$}  {status:<10}  {dur:>8}{err}");
            }
            if let Some(e) = &s.error {
                outln!("  error: {}", e.message);
            }
            if let Some(o) = &s.outcome {
                match &s.outcome_reason {
                    Some(r) => outln!("  outcome: {o} — {r}"),
                    None => outln!("  outcome: {o}"),
                }
            }
            if let Some(out) = &run.output {
                outln!("output:\n{}", serde_json::to_string_pretty(out)?);
            }
            Ok(0)
        }
    }
}
