-- Portable DDL: the same file runs on SQLite and PostgreSQL. Timestamps are Unix milliseconds.

CREATE TABLE IF NOT EXISTS steps (
    id                TEXT PRIMARY KEY,
    agent_id          TEXT NOT NULL,
    run_id            TEXT,
    status            TEXT NOT NULL,
    model             TEXT,
    provider          TEXT,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens      BIGINT NOT NULL DEFAULT 0,
    stop_reason       TEXT,
    error_type        TEXT,
    error_data        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    completed_at      BIGINT
);

CREATE INDEX IF NOT EXISTS steps_by_run ON steps (run_id, created_at);

CREATE TABLE IF NOT EXISTS step_metrics (
    step_id        TEXT PRIMARY KEY REFERENCES steps (id),
    step_ms        BIGINT NOT NULL,
    model_call_ms  BIGINT NOT NULL,
    recorded_at    BIGINT NOT NULL
);

-- One row per step notification: the outbox of direct mode and the record of undelivered
-- notifications of Temporal mode.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    step_id          TEXT PRIMARY KEY REFERENCES steps (id),
    step_status      TEXT NOT NULL,
    state            TEXT NOT NULL,
    source           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_http_status BIGINT,
    last_error       TEXT,
    last_duration_ms BIGINT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
