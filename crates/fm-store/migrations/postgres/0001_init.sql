-- fm-store schema, version 1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql: the two differ
-- only where the dialects must (identity columns). Times are milliseconds since the Unix epoch
-- (BIGINT); JSON is stored as TEXT.

CREATE TABLE fm_runs (
    id               TEXT    PRIMARY KEY,
    pipeline         TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    input            TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    service          TEXT,
    dedup_key        TEXT,
    source           TEXT    NOT NULL,
    dry_run          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    claims           INTEGER NOT NULL DEFAULT 0,
    attached_alerts  INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    next_event_seq   BIGINT  NOT NULL DEFAULT 0,
    record           TEXT
);

-- At most one active run per dedup key: the backstop of accept_alert.
CREATE UNIQUE INDEX fm_runs_active_dedup ON fm_runs (dedup_key)
    WHERE status IN ('queued', 'running');
-- The queue: queued runs and running runs (whose lease may expire), oldest first.
CREATE INDEX fm_runs_queue ON fm_runs (created_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX fm_runs_newest ON fm_runs (created_at DESC, id DESC);
CREATE INDEX fm_runs_pipeline ON fm_runs (pipeline, created_at DESC);
CREATE INDEX fm_runs_service ON fm_runs (service, created_at DESC);
CREATE INDEX fm_runs_status ON fm_runs (status, created_at DESC);

CREATE TABLE fm_stage_journal (
    run_id      TEXT    NOT NULL REFERENCES fm_runs (id) ON DELETE CASCADE,
    stage_id    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    output      TEXT,
    error       TEXT,
    started_at  TEXT,
    duration_ms BIGINT,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (run_id, stage_id)
);

CREATE TABLE fm_events (
    run_id TEXT   NOT NULL REFERENCES fm_runs (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    event  TEXT   NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE fm_alerts (
    id          TEXT   PRIMARY KEY,
    source      TEXT   NOT NULL,
    dedup_key   TEXT,
    service     TEXT,
    received_at BIGINT NOT NULL,
    payload     TEXT   NOT NULL,
    run_id      TEXT   REFERENCES fm_runs (id) ON DELETE SET NULL,
    disposition TEXT   NOT NULL
        CHECK (disposition IN ('started', 'attached', 'resolved_recorded'))
);
CREATE INDEX fm_alerts_service ON fm_alerts (service, received_at);
CREATE INDEX fm_alerts_run ON fm_alerts (run_id);

CREATE TABLE fm_budget_uses (
    id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key     TEXT    NOT NULL,
    used_at BIGINT  NOT NULL,
    run_id  TEXT    NOT NULL,
    stage   TEXT    NOT NULL
);
CREATE INDEX fm_budget_uses_key ON fm_budget_uses (key, used_at);
