-- One outbox for both modes (portable DDL: the same file runs on SQLite and PostgreSQL).
--
-- claim_token: written by each claim; an attempt is recorded only by the holder of the current
--   token, so a dispatcher whose lease ran out cannot overwrite what another one recorded.
-- scheduled_attempts: the dispatcher's attempts since the row was (re)queued; it indexes the
--   retry schedule. `attempts` counts every attempt of the cycle (Temporal's fast path too).
-- 'failed' becomes 'retrying': it is a delivery waiting for its next attempt, not a failed step.
ALTER TABLE webhook_deliveries ADD COLUMN claim_token TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN scheduled_attempts BIGINT NOT NULL DEFAULT 0;
UPDATE webhook_deliveries SET state = 'retrying' WHERE state = 'failed';

-- Every attempt, by either path, kept across redeliveries (a redelivery restarts the counters,
-- not the history).
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id           TEXT PRIMARY KEY,
    step_id      TEXT NOT NULL,
    path         TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    http_status  BIGINT,
    error        TEXT
);

CREATE INDEX IF NOT EXISTS webhook_attempts_by_step ON webhook_attempts (step_id, attempted_at);
