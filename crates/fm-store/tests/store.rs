//! One suite, run against SQLite (a temporary directory) and, when `FM_TEST_DATABASE_URL` is set,
//! against PostgreSQL (each test in a schema of its own, dropped at the end).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fm_core::component::{ErrorKind, StageError};
use fm_core::durability::{BudgetDecision, BudgetLedger, StartJournal};
use fm_core::events::{Event, EventKind};
use fm_core::record::RunRecord;
use fm_core::state::{RunStatus, SkipReason};
use fm_store::{
    AlertIn, AlertOutcome, CancelOutcome, NewRun, PostgresStore, RunFilter, RunStore, SqliteStore,
    StoreError,
};
use serde_json::json;

/// A database a test can open any number of stores on (as several processes would).
struct Db {
    sqlite: Option<PathBuf>,
    pg: Option<(String, String)>,
}

impl Db {
    async fn open(&self) -> Arc<dyn RunStore> {
        if let Some(path) = &self.sqlite {
            Arc::new(SqliteStore::open_path(path).await.unwrap())
        } else {
            let (url, schema) = self.pg.as_ref().unwrap();
            Arc::new(PostgresStore::open_in_schema(url, schema).await.unwrap())
        }
    }
}

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let db = Db {
        sqlite: Some(dir.path().join("nested/dir/fm.db")),
        pg: None,
    };
    test(Arc::new(db)).await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = fm_testkit::services::postgres_url() else {
        return;
    };
    let schema = format!("fm_t_{:016x}", fastrand::u64(..));
    let db = Arc::new(Db {
        sqlite: None,
        pg: Some((url.clone(), schema.clone())),
    });
    // Run the test as a task so that the schema is dropped even if it panics.
    let outcome = tokio::spawn(test(db)).await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_sqlite(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_postgres(crate::$name).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_are_idempotent,
    concurrent_first_opens_migrate_once,
    enqueue_claim_finish_lifecycle,
    concurrent_claimers_never_share_a_run,
    expired_lease_resumes_from_the_journal,
    release_hands_a_run_back,
    begin_run_is_claimed_by_its_process,
    concurrent_alerts_with_one_key_start_one_run,
    alert_after_finish_starts_a_new_run,
    budgets_hold_under_concurrency,
    list_runs_filters_and_pages,
    events_round_trip_in_order,
    cancel_requests,
    settled_stages_stay_settled,
    outcomes_are_stored_and_filtered,
    a_cancel_carries_its_reason_and_outcome,
    cancel_requests_are_announced_at_once,
);

// ---- helpers -------------------------------------------------------------------------------

fn new_run(id: &str, pipeline: &str) -> NewRun {
    NewRun {
        id: id.to_owned(),
        pipeline: pipeline.to_owned(),
        input: json!({"service": "checkout", "n": 1}),
        service: Some("checkout".to_owned()),
        dedup_key: None,
        source: "cli".to_owned(),
        dry_run: false,
    }
}

fn alert(key: Option<&str>, service: &str) -> AlertIn {
    AlertIn {
        source: "alertmanager".to_owned(),
        dedup_key: key.map(str::to_owned),
        service: Some(service.to_owned()),
        payload: json!({"labels": {"alertname": "HighErrorRate", "service": service}}),
        received_at: SystemTime::now(),
    }
}

fn ev(kind: EventKind) -> Event {
    Event {
        seq: 0,
        at_ms: 5,
        kind,
    }
}

fn started(stage: &str, attempt: u32) -> Event {
    ev(EventKind::StageStarted {
        stage: stage.to_owned(),
        attempt,
        started_at: "2026-01-01T00:00:00.000Z".to_owned(),
    })
}

fn succeeded(stage: &str, output: serde_json::Value) -> Event {
    ev(EventKind::StageSucceeded {
        stage: stage.to_owned(),
        output,
        attempts: 1,
        duration_ms: 12,
    })
}

fn failed(stage: &str) -> Event {
    ev(EventKind::StageFailed {
        stage: stage.to_owned(),
        error: StageError::new(ErrorKind::HttpStatus, "503 from the deploy API"),
        attempts: 2,
        duration_ms: 40,
        fatal: false,
    })
}

fn record(run_id: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        run_id: run_id.to_owned(),
        pipeline: "incident".to_owned(),
        status,
        dry_run: false,
        started_at: "2026-01-01T00:00:00.000Z".to_owned(),
        duration_ms: 50,
        input: json!({}),
        output: Some(json!({"resolved": true})),
        error: None,
        outcome: None,
        outcome_reason: None,
        stop: None,
        stages: vec![],
        logs: vec![],
        warnings: vec![],
    }
}

const LEASE: Duration = Duration::from_secs(30);

/// The number of the newest migration.
const LATEST_SCHEMA: i64 = 5;

// ---- the tests -----------------------------------------------------------------------------

async fn migrations_are_idempotent(db: Arc<Db>) {
    let a = db.open().await;
    assert_eq!(a.schema_version().await.unwrap(), LATEST_SCHEMA);
    a.enqueue_run(new_run("r1", "incident")).await.unwrap();
    // A second open (another process, or a restart) migrates nothing and sees the data.
    let b = db.open().await;
    assert_eq!(b.schema_version().await.unwrap(), LATEST_SCHEMA);
    assert!(b.get_run("r1").await.unwrap().is_some());
    let c = db.open().await;
    assert_eq!(c.queue_depth().await.unwrap(), 1);
    a.ping().await.unwrap();
}

async fn concurrent_first_opens_migrate_once(db: Arc<Db>) {
    // Several servers starting at once on a fresh database.
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.open().await })
        })
        .collect();
    for o in opens {
        let s = o.await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), LATEST_SCHEMA);
    }
}

async fn enqueue_claim_finish_lifecycle(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("r1", "incident")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    s.enqueue_run(new_run("r2", "incident")).await.unwrap();
    assert_eq!(s.queue_depth().await.unwrap(), 2);
    let queued = s.get_run("r1").await.unwrap().unwrap();
    assert_eq!(queued.summary.status, RunStatus::Queued);
    assert_eq!(queued.input, json!({"service": "checkout", "n": 1}));
    assert!(queued.record.is_none());

    let c = s.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(c.id, "r1", "the oldest run is claimed first");
    assert_eq!(c.pipeline, "incident");
    assert_eq!(c.claims, 1);
    assert!(c.resume.is_none(), "a first claim has nothing to resume");
    assert_eq!(c.input["service"], "checkout");
    assert_eq!(s.queue_depth().await.unwrap(), 1);
    let running = s.get_run("r1").await.unwrap().unwrap();
    assert_eq!(running.summary.status, RunStatus::Running);
    assert!(running.summary.started_at.is_some());
    assert!(s.heartbeat("r1", "w1", LEASE).await.unwrap());
    assert!(!s.heartbeat("r1", "someone-else", LEASE).await.unwrap());

    s.append_events("r1", &[started("a", 1), succeeded("a", json!({"ok": 1}))])
        .await
        .unwrap();
    assert!(s
        .finish_run("r1", &record("r1", RunStatus::Succeeded))
        .await
        .unwrap());
    let done = s.get_run("r1").await.unwrap().unwrap();
    assert_eq!(done.summary.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"resolved": true})));
    assert_eq!(done.record.unwrap().run_id, "r1");
    assert!(done.summary.finished_at.is_some());
    assert!(done.summary.duration_ms.is_some());
    assert!(!s.heartbeat("r1", "w1", LEASE).await.unwrap(), "finished");
    // Terminal states never change.
    assert!(!s
        .finish_run("r1", &record("r1", RunStatus::Failed))
        .await
        .unwrap());
    assert_eq!(
        s.get_run("r1").await.unwrap().unwrap().summary.status,
        RunStatus::Succeeded
    );
    // A record that has not finished is refused.
    assert!(matches!(
        s.finish_run("r2", &record("r2", RunStatus::Running)).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.finish_run("nope", &record("nope", RunStatus::Failed))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let c2 = s.claim_next("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(c2.id, "r2");
    assert!(s.claim_next("w1", LEASE).await.unwrap().is_none());

    let counts = s.run_counts().await.unwrap();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts
        .iter()
        .any(|c| c.status == RunStatus::Succeeded && c.count == 1 && c.pipeline == "incident"));
    assert!(counts
        .iter()
        .any(|c| c.status == RunStatus::Running && c.count == 1));

    // The same id twice is refused, clearly.
    let e = s.enqueue_run(new_run("r1", "incident")).await.unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");
}

async fn concurrent_claimers_never_share_a_run(db: Arc<Db>) {
    let a = db.open().await;
    let b = db.open().await; // a second "process"
    for i in 0..50 {
        a.enqueue_run(new_run(&format!("run-{i:03}"), "incident"))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = store.claim_next(&format!("w{w}"), LEASE).await.unwrap() {
                got.push(c.id);
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 50, "every run claimed once, no run twice");
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 50);
    assert_eq!(a.queue_depth().await.unwrap(), 0);
}

async fn expired_lease_resumes_from_the_journal(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("r1", "incident")).await.unwrap();
    let short = Duration::from_millis(300);
    let c = s.claim_next("w1", short).await.unwrap().unwrap();
    assert_eq!(c.id, "r1");
    s.append_events(
        "r1",
        &[
            started("fetch", 1),
            succeeded("fetch", json!({"errors": 42})),
            started("deploy-api", 1),
            started("deploy-api", 2),
            failed("deploy-api"),
            started("restart", 1), // in flight: the PATCH may have been sent
            started("logs", 1),
            ev(EventKind::StageRetrying {
                stage: "logs".to_owned(),
                attempt: 1,
                delay_ms: 100,
                reason: "timeout".to_owned(),
                output: None,
            }),
            ev(EventKind::StageSkipped {
                stage: "rollback".to_owned(),
                reason: SkipReason::new("route_not_taken", "route 'restart' was taken"),
            }),
            ev(EventKind::StageCancelled {
                stage: "never-started".to_owned(),
                duration_ms: None,
                reason: "run stopped".to_owned(),
            }),
        ],
    )
    .await
    .unwrap();
    // The write-ahead start record alone (the event never made it) marks a stage in flight.
    let journal: Arc<dyn StartJournal> = s.clone();
    journal.stage_starting("r1", "scale", 1).await.unwrap();

    // Not claimable while the lease holds.
    assert!(s.claim_next("w2", LEASE).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;

    let c = s.claim_next("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(c.id, "r1");
    assert_eq!(c.claims, 2);
    let resume = c.resume.expect("a reclaimed run comes with its journal");
    let settled: BTreeSet<_> = resume.settled.keys().cloned().collect();
    assert_eq!(
        settled,
        BTreeSet::from(["deploy-api".to_owned(), "fetch".to_owned()])
    );
    let fetch = &resume.settled["fetch"];
    assert!(fetch.succeeded);
    assert_eq!(fetch.output, Some(json!({"errors": 42})));
    assert_eq!(fetch.duration_ms, 12);
    let deploy = &resume.settled["deploy-api"];
    assert!(!deploy.succeeded);
    assert_eq!(deploy.attempts, 2);
    assert_eq!(deploy.error.as_ref().unwrap().kind, ErrorKind::HttpStatus);
    let in_flight: BTreeSet<_> = resume.in_flight.iter().cloned().collect();
    assert_eq!(
        in_flight,
        BTreeSet::from(["logs".to_owned(), "restart".to_owned(), "scale".to_owned()])
    );

    // The old worker lost its lease: its heartbeat says so and its journal refuses to act.
    assert!(!s.heartbeat("r1", "w1", LEASE).await.unwrap());
    assert!(s.heartbeat("r1", "w2", LEASE).await.unwrap());
    let old = fm_store::leased_journal(s.clone(), "w1");
    let err = old.stage_starting("r1", "restart", 1).await.unwrap_err();
    assert!(err.contains("no longer holds the lease"), "{err}");
    let new = fm_store::leased_journal(s.clone(), "w2");
    new.stage_starting("r1", "logs", 2).await.unwrap();

    // The resumed stream continues after what was stored.
    s.append_events("r1", &[succeeded("logs", json!([]))])
        .await
        .unwrap();
    let events = s.events("r1", None).await.unwrap();
    assert_eq!(events.len(), 11);
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    assert!(s
        .finish_run("r1", &record("r1", RunStatus::Failed))
        .await
        .unwrap());
}

async fn release_hands_a_run_back(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("r1", "incident")).await.unwrap();
    let c = s.claim_next("w1", LEASE).await.unwrap().unwrap();
    s.append_events("r1", &[started("a", 1), succeeded("a", json!(1))])
        .await
        .unwrap();
    assert!(!s.release(&c.id, "w2").await.unwrap(), "not w2's run");
    assert!(s.release(&c.id, "w1").await.unwrap());
    assert_eq!(s.queue_depth().await.unwrap(), 1);
    assert!(!s.heartbeat("r1", "w1", LEASE).await.unwrap());
    let again = s.claim_next("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(again.claims, 2);
    let resume = again.resume.unwrap();
    assert!(resume.settled["a"].succeeded);
    assert!(resume.in_flight.is_empty());
}

async fn begin_run_is_claimed_by_its_process(db: Arc<Db>) {
    let s = db.open().await;
    s.begin_run(new_run("cli-1", "incident"), "cli-pid-1", LEASE)
        .await
        .unwrap();
    let r = s.get_run("cli-1").await.unwrap().unwrap();
    assert_eq!(r.summary.status, RunStatus::Running);
    assert_eq!(r.summary.claims, 1);
    assert!(s.claim_next("server", LEASE).await.unwrap().is_none());
    let j = fm_store::leased_journal(s.clone(), "cli-pid-1");
    j.stage_starting("cli-1", "a", 1).await.unwrap();
    assert!(s
        .finish_run("cli-1", &record("cli-1", RunStatus::Succeeded))
        .await
        .unwrap());
}

async fn concurrent_alerts_with_one_key_start_one_run(db: Arc<Db>) {
    let a = db.open().await;
    let b = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut run = new_run(&format!("run-{i}"), "incident");
            run.source = "alertmanager".to_owned();
            store
                .accept_alert(alert(Some("fp-123"), "checkout"), run)
                .await
                .unwrap()
        }));
    }
    let mut started = Vec::new();
    let mut counts = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            AlertOutcome::Started { run_id, .. } => started.push(run_id),
            AlertOutcome::Attached { run_id, count, .. } => counts.push((run_id, count)),
        }
    }
    assert_eq!(started.len(), 1, "exactly one alert starts a run");
    let run_id = &started[0];
    assert!(counts.iter().all(|(r, _)| r == run_id));
    let mut n: Vec<u32> = counts.iter().map(|(_, c)| *c).collect();
    n.sort_unstable();
    assert_eq!(n, (1..=19).collect::<Vec<_>>());
    let run = a.get_run(run_id).await.unwrap().unwrap();
    assert_eq!(run.summary.attached_alerts, 19);
    assert_eq!(run.summary.dedup_key.as_deref(), Some("fp-123"));
    assert_eq!(a.queue_depth().await.unwrap(), 1);

    // A resolved alert is recorded, starts nothing, and is not counted for flapping.
    a.record_alert_only(alert(Some("fp-123"), "checkout"))
        .await
        .unwrap();
    assert_eq!(a.queue_depth().await.unwrap(), 1);
    assert_eq!(
        a.recent_alert_count("checkout", Duration::from_secs(600), 100)
            .await
            .unwrap(),
        20
    );
    // The count stops at its cap (a flapping check needs only to know it was reached).
    assert_eq!(
        a.recent_alert_count("checkout", Duration::from_secs(600), 5)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        a.recent_alert_count("payments", Duration::from_secs(600), 100)
            .await
            .unwrap(),
        0
    );
    let counts = a.alert_counts().await.unwrap();
    let by = |d: &str| counts.iter().find(|c| c.disposition == d).map(|c| c.count);
    assert_eq!(by("started"), Some(1));
    assert_eq!(by("attached"), Some(19));
    assert_eq!(by("resolved_recorded"), Some(1));

    // Alerts without a key never deduplicate.
    let x = a
        .accept_alert(alert(None, "checkout"), new_run("nokey-1", "incident"))
        .await
        .unwrap();
    let y = a
        .accept_alert(alert(None, "checkout"), new_run("nokey-2", "incident"))
        .await
        .unwrap();
    assert!(matches!(x, AlertOutcome::Started { .. }));
    assert!(matches!(y, AlertOutcome::Started { .. }));
}

async fn alert_after_finish_starts_a_new_run(db: Arc<Db>) {
    let s = db.open().await;
    let first = s
        .accept_alert(alert(Some("k"), "checkout"), new_run("r1", "incident"))
        .await
        .unwrap();
    assert_eq!(first.run_id(), "r1");
    let c = s.claim_next("w", LEASE).await.unwrap().unwrap();
    // Still attached while it runs.
    let during = s
        .accept_alert(alert(Some("k"), "checkout"), new_run("r2", "incident"))
        .await
        .unwrap();
    assert!(
        matches!(during, AlertOutcome::Attached { ref run_id, count: 1, .. } if run_id == "r1")
    );
    assert!(s
        .finish_run(&c.id, &record(&c.id, RunStatus::Succeeded))
        .await
        .unwrap());
    let after = s
        .accept_alert(alert(Some("k"), "checkout"), new_run("r3", "incident"))
        .await
        .unwrap();
    assert!(matches!(after, AlertOutcome::Started { ref run_id, .. } if run_id == "r3"));
    assert!(
        s.get_run("r2").await.unwrap().is_none(),
        "r2 was never created"
    );
}

async fn budgets_hold_under_concurrency(db: Arc<Db>) {
    let a = db.open().await;
    let b = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        // The ledger the engine sees: the store, upcast.
        let ledger: Arc<dyn BudgetLedger> = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            ledger
                .try_consume(
                    "restart:checkout",
                    3,
                    Duration::from_secs(3600),
                    &format!("run-{i}"),
                    "restart",
                )
                .await
                .unwrap()
        }));
    }
    let mut allowed = Vec::new();
    let mut exceeded = 0;
    for t in tasks {
        match t.await.unwrap() {
            BudgetDecision::Allowed { used } => allowed.push(used),
            BudgetDecision::Exceeded { used } => {
                assert_eq!(used, 3);
                exceeded += 1;
            }
        }
    }
    allowed.sort_unstable();
    assert_eq!(allowed, vec![1, 2, 3]);
    assert_eq!(exceeded, 7);
    // Another key has its own budget.
    assert_eq!(
        a.consume_budget("restart:payments", 3, Duration::from_secs(3600), "r", "s")
            .await
            .unwrap(),
        BudgetDecision::Allowed { used: 1 }
    );
    // Uses age out of the window (generous margins: the suite runs many tests at once).
    let per = Duration::from_millis(1500);
    for _ in 0..2 {
        a.consume_budget("scale:x", 2, per, "r", "s").await.unwrap();
    }
    assert_eq!(
        a.consume_budget("scale:x", 2, per, "r", "s").await.unwrap(),
        BudgetDecision::Exceeded { used: 2 }
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        a.consume_budget("scale:x", 2, per, "r", "s").await.unwrap(),
        BudgetDecision::Allowed { used: 1 }
    );
}

async fn list_runs_filters_and_pages(db: Arc<Db>) {
    let s = db.open().await;
    for i in 0..7 {
        let mut r = new_run(
            &format!("r{i}"),
            if i % 2 == 0 { "incident" } else { "deploy" },
        );
        r.service = Some(if i < 4 { "checkout" } else { "payments" }.to_owned());
        s.enqueue_run(r).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(
        s.request_cancel("r0").await.unwrap(),
        CancelOutcome::Cancelled
    );

    let all = s.list_runs(&RunFilter::default()).await.unwrap();
    let ids: Vec<_> = all.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["r6", "r5", "r4", "r3", "r2", "r1", "r0"],
        "newest first"
    );
    assert!(all.next_cursor.is_none());

    let f = |status, pipeline: Option<&str>, service: Option<&str>| RunFilter {
        status,
        pipeline: pipeline.map(str::to_owned),
        service: service.map(str::to_owned),
        ..RunFilter::default()
    };
    let ids = |p: fm_store::Page<fm_store::RunSummary>| {
        p.items.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s.list_runs(&f(None, Some("deploy"), None)).await.unwrap()),
        ["r5", "r3", "r1"]
    );
    assert_eq!(
        ids(s.list_runs(&f(None, None, Some("payments"))).await.unwrap()),
        ["r6", "r5", "r4"]
    );
    assert_eq!(
        ids(s
            .list_runs(&f(Some(RunStatus::Cancelled), None, None))
            .await
            .unwrap()),
        ["r0"]
    );
    assert_eq!(
        ids(s
            .list_runs(&f(
                Some(RunStatus::Queued),
                Some("incident"),
                Some("checkout")
            ))
            .await
            .unwrap()),
        ["r2"]
    );

    // Pages of 3: 3 + 3 + 1, in order, nothing twice.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_runs(&RunFilter {
                limit: 3,
                cursor: cursor.clone(),
                ..RunFilter::default()
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["r6", "r5", "r4", "r3", "r2", "r1", "r0"]);

    let bad = s
        .list_runs(&RunFilter {
            cursor: Some("garbage".to_owned()),
            ..RunFilter::default()
        })
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not a cursor"), "{bad}");
}

async fn events_round_trip_in_order(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("r1", "incident")).await.unwrap();
    let batch1: Vec<Event> = vec![
        Event {
            seq: 0,
            at_ms: 0,
            kind: EventKind::RunStarted {
                run_id: "r1".to_owned(),
                pipeline: "incident".to_owned(),
                started_at: "2026-01-01T00:00:00.000Z".to_owned(),
                input: json!({"a": [1, 2]}),
                dry_run: false,
            },
        },
        started("a", 1),
        ev(EventKind::Log {
            stage: Some("a".to_owned()),
            level: fm_core::LogLevel::Info,
            message: "hello".to_owned(),
            data: Some(json!({"k": "v"})),
        }),
    ];
    let batch2 = vec![
        succeeded("a", json!({"x": 1})),
        ev(EventKind::Warning {
            stage: None,
            message: "careful".to_owned(),
        }),
    ];
    s.append_events("r1", &batch1).await.unwrap();
    s.append_events("r1", &[]).await.unwrap();
    s.append_events("r1", &batch2).await.unwrap();
    let got = s.events("r1", None).await.unwrap();
    let sent: Vec<_> = batch1.iter().chain(&batch2).collect();
    assert_eq!(got.len(), sent.len());
    for (i, (g, e)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(g.seq, i as u64);
        assert_eq!(g.at_ms, e.at_ms);
        assert_eq!(
            serde_json::to_value(&g.kind).unwrap(),
            serde_json::to_value(&e.kind).unwrap()
        );
    }
    let tail = s.events("r1", Some(2)).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(s.events("r1", Some(4)).await.unwrap().is_empty());
    assert!(s.events("unknown", None).await.unwrap().is_empty());
    assert!(matches!(
        s.append_events("unknown", &batch2).await,
        Err(StoreError::NotFound { .. })
    ));
    // A large batch (several multi-row inserts) keeps its order.
    let many: Vec<Event> = (0..150)
        .map(|i| {
            ev(EventKind::Log {
                stage: None,
                level: fm_core::LogLevel::Debug,
                message: format!("line {i}"),
                data: None,
            })
        })
        .collect();
    s.append_events("r1", &many).await.unwrap();
    let got = s.events("r1", Some(4)).await.unwrap();
    assert_eq!(got.len(), 150);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.seq, 5 + i as u64);
        assert!(
            matches!(&g.kind, EventKind::Log { message, .. } if *message == format!("line {i}"))
        );
    }
    let journal = s.journal("r1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, "succeeded");
    assert_eq!(journal[0].output, Some(json!({"x": 1})));
    assert_eq!(
        journal[0].started_at.as_deref(),
        Some("2026-01-01T00:00:00.000Z")
    );
}

async fn cancel_requests(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("queued", "incident")).await.unwrap();
    assert_eq!(
        s.request_cancel("queued").await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert!(s.is_cancel_requested("queued").await.unwrap());
    let r = s.get_run("queued").await.unwrap().unwrap();
    assert_eq!(r.summary.status, RunStatus::Cancelled);
    assert_eq!(r.summary.error.unwrap().kind, "cancelled");
    assert!(
        s.claim_next("w", LEASE).await.unwrap().is_none(),
        "a cancelled run never starts"
    );

    s.enqueue_run(new_run("running", "incident")).await.unwrap();
    s.claim_next("w", LEASE).await.unwrap().unwrap();
    assert!(!s.is_cancel_requested("running").await.unwrap());
    assert_eq!(
        s.request_cancel("running").await.unwrap(),
        CancelOutcome::Requested
    );
    assert!(s.is_cancel_requested("running").await.unwrap());
    assert_eq!(
        s.get_run("running").await.unwrap().unwrap().summary.status,
        RunStatus::Running
    );
    s.finish_run("running", &record("running", RunStatus::Cancelled))
        .await
        .unwrap();
    assert_eq!(
        s.request_cancel("running").await.unwrap(),
        CancelOutcome::AlreadyFinished
    );
    assert_eq!(
        s.request_cancel("nope").await.unwrap(),
        CancelOutcome::NotFound
    );
    assert!(!s.is_cancel_requested("nope").await.unwrap());
}

async fn settled_stages_stay_settled(db: Arc<Db>) {
    let s = db.open().await;
    s.enqueue_run(new_run("r1", "incident")).await.unwrap();
    s.claim_next("w", LEASE).await.unwrap().unwrap();
    s.append_events("r1", &[started("a", 1), succeeded("a", json!(1))])
        .await
        .unwrap();
    // A late start record or start event does not turn a settled stage back into in-flight.
    s.journal_stage_start("r1", "a", 2, None).await.unwrap();
    s.append_events("r1", &[started("a", 2)]).await.unwrap();
    s.append_events(
        "r1",
        &[ev(EventKind::StageCancelled {
            stage: "a".to_owned(),
            duration_ms: Some(1),
            reason: "x".to_owned(),
        })],
    )
    .await
    .unwrap();
    let j = s.journal("r1").await.unwrap();
    assert_eq!(j[0].status, "succeeded");
    assert_eq!(j[0].attempts, 1);

    // Many ends in one batch (a branch not taken skips many stages): written together, the
    // last end of a stage winning, never over a settled stage.
    let skip = |stage: &str| {
        ev(EventKind::StageSkipped {
            stage: stage.to_owned(),
            reason: SkipReason::new("route_not_taken", "route 'x' was taken"),
        })
    };
    s.append_events(
        "r1",
        &[
            skip("b"),
            skip("c"),
            skip("a"),
            skip("d"),
            ev(EventKind::StageCancelled {
                stage: "d".to_owned(),
                duration_ms: Some(3),
                reason: "run stopped".to_owned(),
            }),
        ],
    )
    .await
    .unwrap();
    let status: std::collections::HashMap<String, String> = s
        .journal("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.stage_id, e.status))
        .collect();
    assert_eq!(status["a"], "succeeded");
    assert_eq!(status["b"], "skipped");
    assert_eq!(status["c"], "skipped");
    assert_eq!(status["d"], "cancelled");
    assert!(matches!(
        s.journal_stage_start("nope", "a", 1, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn outcomes_are_stored_and_filtered(db: Arc<Db>) {
    let s = db.open().await;
    for (id, outcome) in [
        ("fixed", Some("auto_remediated")),
        ("paged", Some("escalated")),
        ("plain", None),
    ] {
        s.enqueue_run(new_run(id, "incident")).await.unwrap();
        s.claim_next("w", LEASE).await.unwrap().unwrap();
        let mut r = record(id, RunStatus::Succeeded);
        r.outcome = outcome.map(str::to_owned);
        r.outcome_reason = outcome.map(|o| format!("because {o}"));
        s.finish_run(id, &r).await.unwrap();
    }
    let by = |outcome: &str| RunFilter {
        outcome: Some(outcome.to_owned()),
        ..RunFilter::default()
    };
    let page = s.list_runs(&by("escalated")).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, "paged");
    assert_eq!(page.items[0].outcome.as_deref(), Some("escalated"));
    assert_eq!(
        page.items[0].outcome_reason.as_deref(),
        Some("because escalated")
    );
    let none = s.list_runs(&by("none")).await.unwrap();
    assert_eq!(
        none.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["plain"]
    );
    let shown = s.get_run("fixed").await.unwrap().unwrap();
    assert_eq!(shown.summary.outcome.as_deref(), Some("auto_remediated"));
}

async fn a_cancel_carries_its_reason_and_outcome(db: Arc<Db>) {
    let s = db.open().await;
    let resolved = fm_core::CancelRequest::because("the incident resolved before fm acted")
        .with_outcome("resolved_before_action");
    // Queued: cancelled at once, with the outcome.
    s.enqueue_run(new_run("queued", "incident")).await.unwrap();
    assert_eq!(
        s.cancel_run("queued", &resolved).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let r = s.get_run("queued").await.unwrap().unwrap().summary;
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.outcome.as_deref(), Some("resolved_before_action"));
    assert_eq!(
        r.outcome_reason.as_deref(),
        Some("the incident resolved before fm acted")
    );
    assert!(r
        .error
        .unwrap()
        .message
        .contains("resolved before fm acted"));
    // A plain API cancel of a queued run records no outcome.
    s.enqueue_run(new_run("plain", "incident")).await.unwrap();
    s.request_cancel("plain").await.unwrap();
    assert_eq!(
        s.get_run("plain").await.unwrap().unwrap().summary.outcome,
        None
    );

    // Running: flagged with the first request's reason and outcome.
    s.enqueue_run(new_run("running", "incident")).await.unwrap();
    s.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!(s.cancel_request("running").await.unwrap(), None);
    assert_eq!(
        s.cancel_run("running", &resolved).await.unwrap(),
        CancelOutcome::Requested
    );
    s.request_cancel("running").await.unwrap();
    assert_eq!(s.cancel_request("running").await.unwrap(), Some(resolved));
    assert_eq!(s.cancel_request("nope").await.unwrap(), None);
}

async fn cancel_requests_are_announced_at_once(db: Arc<Db>) {
    let s = db.open().await;
    // SQLite announces within the process (the store object the server shares); PostgreSQL
    // to every process on the database (another store object stands for another server).
    let listener = if db.pg.is_some() {
        db.open().await
    } else {
        s.clone()
    };
    let mut heard = listener.cancel_notifications();
    s.enqueue_run(new_run("running", "incident")).await.unwrap();
    s.claim_next("w", LEASE).await.unwrap().unwrap();
    // LISTEN is set up by a task: give it the time to be in place (a notification before is
    // missed by design, which the workers' poll covers).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let id = loop {
        s.request_cancel("running").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), heard.recv()).await {
            Ok(Ok(id)) => break id,
            _ if std::time::Instant::now() < deadline => continue,
            other => panic!("no cancel announced within 10 s: {other:?}"),
        }
    };
    assert_eq!(id, "running");
    // Once listening, the announcement takes milliseconds, not a heartbeat.
    s.enqueue_run(new_run("second", "incident")).await.unwrap();
    s.claim_next("w", LEASE).await.unwrap().unwrap();
    while heard.try_recv().is_ok() {}
    let asked = std::time::Instant::now();
    s.request_cancel("second").await.unwrap();
    let id = loop {
        let id = tokio::time::timeout(Duration::from_secs(1), heard.recv())
            .await
            .expect("the cancel was not announced within a second")
            .unwrap();
        if id == "second" {
            break id;
        }
    };
    assert_eq!(id, "second");
    assert!(asked.elapsed() < Duration::from_secs(1));
}

// ---- opening -------------------------------------------------------------------------------

#[tokio::test]
async fn migrations_missing_below_the_newest_are_applied() {
    // Work merged in another order: a database at version 3 that never applied 2.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fm.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let old = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::raw_sql(include_str!("../migrations/sqlite/0001_init.sql"))
        .execute(&old)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE fm_schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL); \
         INSERT INTO fm_schema_version VALUES (1, 'init', 0), (3, 'lz4_json', 0);",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let s = SqliteStore::open_path(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), LATEST_SCHEMA);
    let index: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'fm_alerts_firing'",
    )
    .fetch_optional(s.pool())
    .await
    .unwrap();
    assert_eq!(
        index.as_deref(),
        Some("fm_alerts_firing"),
        "version 2 applied"
    );
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM fm_schema_version ORDER BY version")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 5]);
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    // A database as the first release of fm left it: schema 1 and a run in it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fm.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let old = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::raw_sql(include_str!("../migrations/sqlite/0001_init.sql"))
        .execute(&old)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE fm_schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL); \
         INSERT INTO fm_schema_version VALUES (1, 'init', 0); \
         INSERT INTO fm_runs (id, pipeline, status, input, source, created_at) \
         VALUES ('old-run', 'incident', 'queued', '{}', 'api', 1)",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let s = SqliteStore::open_path(&path).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), LATEST_SCHEMA);
    assert!(s.get_run("old-run").await.unwrap().is_some());
    let index: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'fm_alerts_firing'",
    )
    .fetch_optional(s.pool())
    .await
    .unwrap();
    assert_eq!(index.as_deref(), Some("fm_alerts_firing"));
    // The old run is still claimable through the new claim query.
    let c = s.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!(c.id, "old-run");
}

#[tokio::test]
async fn open_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/a/b/fm.db", dir.path().display());
    let s = fm_store::open(&url).await.unwrap();
    assert_eq!(s.backend(), "sqlite");
    assert!(dir.path().join("a/b/fm.db").exists());
    let url = format!(
        "sqlite://{}/fm2.db?synchronous=normal",
        dir.path().display()
    );
    fm_store::open(&url).await.unwrap();

    let e = fm_store::open("mysql://root:pw@db/fm").await.err().unwrap();
    assert!(matches!(e, StoreError::BadUrl { .. }));
    assert!(!e.to_string().contains("pw@"), "{e}");
    let e = fm_store::open("sqlite::memory:").await.err().unwrap();
    assert!(e.to_string().contains("in-memory"), "{e}");
    let e = fm_store::open("sqlite://x.db?cache=shared")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("unknown parameter"), "{e}");
}

#[tokio::test]
async fn open_failure_masks_the_password() {
    // Nothing listens on port 1.
    let e = fm_store::open("postgres://fm:hunter2@127.0.0.1:1/fm")
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(
        msg.starts_with("cannot open postgres://fm:***@127.0.0.1:1/fm"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_json_columns_are_compressed_with_lz4() {
    on_postgres(|db: Arc<Db>| async move {
        let (url, schema) = db.pg.clone().unwrap();
        let s = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), LATEST_SCHEMA);
        let methods: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, a.attcompression::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND (c.relname, a.attname) IN \
               (('fm_events', 'event'), ('fm_stage_journal', 'output'), ('fm_runs', 'record'))",
        )
        .bind(&schema)
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(methods.len(), 3, "{methods:?}");
        // 'l' is lz4. A server without lz4 (it refuses to make it the default) keeps the
        // default (''), and the migration still passes.
        let lz4_available = sqlx::query("SET default_toast_compression = lz4")
            .execute(s.pool())
            .await
            .is_ok();
        let expected = if lz4_available { "l" } else { "" };
        assert!(methods.iter().all(|(_, m)| m == expected), "{methods:?}");
        s.close().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_open_by_url() {
    let Some(url) = fm_testkit::services::postgres_url() else {
        return;
    };
    // Through `open` (the server's path), in a schema of its own set by a URL parameter.
    let schema = format!("fm_t_{:016x}", fastrand::u64(..));
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options[search_path]={schema}");
    let result = async {
        let s = fm_store::open(&scoped).await?;
        s.ping().await?;
        let again = fm_store::open(&scoped).await?;
        Ok::<_, StoreError>((s.backend(), again.schema_version().await?))
    }
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .unwrap();
    assert_eq!(result.unwrap(), ("postgres", LATEST_SCHEMA));
    let e = PostgresStore::open_in_schema(&url, "bad-name;")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("invalid schema name"), "{e}");
}
